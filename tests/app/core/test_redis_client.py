"""The Redis client gives up on a server that never answers or never reads, instead of hanging."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from redis.asyncio.connection import Connection, SSLConnection, UnixDomainSocketConnection
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from app.core.redis_client import CONNECT_TIMEOUT_S, SOCKET_TIMEOUT_S, Lane, connect
from app.dev.redis_server import RedisServer


@pytest.fixture
async def silent_server() -> AsyncIterator[str]:
    """A TCP listener that accepts connections and never sends a byte: a half-open peer."""
    held: list[asyncio.StreamWriter] = []

    async def accept(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield f"redis://127.0.0.1:{port}/0"
    for writer in held:
        writer.close()
    server.close()
    await server.wait_closed()


async def test_a_command_to_a_silent_server_times_out(silent_server: str) -> None:
    client = connect(silent_server, socket_timeout_s=0.3)
    started = time.monotonic()
    with pytest.raises(RedisTimeoutError):
        await asyncio.wait_for(client.ping(), timeout=30)
    assert time.monotonic() - started < 3
    await client.aclose()


def test_the_client_sets_both_timeouts_explicitly() -> None:
    kwargs = connect("redis://127.0.0.1:1/0").connection_pool.connection_kwargs
    assert (kwargs["socket_timeout"], kwargs["socket_connect_timeout"]) == (
        SOCKET_TIMEOUT_S,
        CONNECT_TIMEOUT_S,
    )


@pytest.mark.redis
async def test_a_write_to_a_server_that_stopped_reading_times_out_and_the_client_recovers(
    redis_server: RedisServer,
) -> None:
    del redis_server  # only to skip or fail clearly where no redis-server is installed
    own = RedisServer().start()
    client = connect(own.url, socket_timeout_s=0.5)
    try:
        assert await client.ping()
        assert own.proc is not None
        os.kill(own.proc.pid, signal.SIGSTOP)  # frozen: reads nothing, answers nothing
        try:
            started = time.monotonic()
            with pytest.raises(RedisTimeoutError, match="writing"):
                # far more than the socket buffers hold: the write itself has to wait
                await asyncio.wait_for(client.set("big", "x" * (64 << 20)), timeout=30)
            assert time.monotonic() - started < 3
        finally:
            os.kill(own.proc.pid, signal.SIGCONT)
        assert await client.ping()  # on a new connection
        assert await client.exists("big") == 0  # the cut-off command never ran
    finally:
        await client.aclose()
        own.stop()


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("redis://127.0.0.1:1/0", Connection),
        ("rediss://127.0.0.1:1/0", SSLConnection),
        ("unix:///tmp/tide-none.sock", UnixDomainSocketConnection),
    ],
)
def test_writes_are_bounded_on_the_connection_the_url_asks_for(url: str, kind: type) -> None:
    connection_class = connect(url).connection_pool.connection_class
    assert issubclass(connection_class, kind)
    assert connection_class.__name__ == f"Bounded{kind.__name__}"


@pytest.fixture
async def own_server(redis_server: RedisServer) -> AsyncIterator[RedisServer]:
    """A server of the test's own, to freeze or restart."""
    del redis_server  # only to skip or fail clearly where no redis-server is installed
    own = RedisServer().start()
    yield own
    signal_server(own, signal.SIGCONT)
    own.stop()


def signal_server(server: RedisServer, signum: int) -> None:
    """SIGSTOP freezes the server: it reads nothing and answers nothing until SIGCONT."""
    assert server.proc is not None
    os.kill(server.proc.pid, signum)


@asynccontextmanager
async def lane_to(
    server: RedisServer, socket_timeout_s: float = SOCKET_TIMEOUT_S
) -> AsyncIterator[Lane]:
    client = connect(server.url, socket_timeout_s=socket_timeout_s)
    try:
        yield Lane(client)
    finally:
        await client.aclose()


@pytest.fixture
async def lane(own_server: RedisServer) -> AsyncIterator[Lane]:
    async with lane_to(own_server) as own_lane:
        yield own_lane


@pytest.mark.redis
async def test_the_lane_keeps_its_connection_through_calls_and_server_errors(
    own_server: RedisServer, lane: Lane
) -> None:
    first = await lane.call("CLIENT", "ID")
    await lane.call("SET", "text", "x")
    with pytest.raises(ResponseError, match="not an integer"):
        await lane.call("INCR", "text")
    assert await lane.call("CLIENT", "ID") == first
    pooled = connect(own_server.url)
    assert await pooled.client_id() != first
    await pooled.aclose()


@pytest.mark.redis
async def test_a_lane_call_cancelled_in_flight_leaves_no_reply_for_the_next(
    own_server: RedisServer, lane: Lane
) -> None:
    await lane.call("PING")  # connected: what is cut below is the reply
    signal_server(own_server, signal.SIGSTOP)
    call = asyncio.create_task(lane.call("ECHO", "first"))
    await asyncio.sleep(0.2)
    assert lane.busy
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    assert not lane.busy
    signal_server(own_server, signal.SIGCONT)
    assert await lane.call("ECHO", "second") == "second"


@pytest.mark.redis
async def test_a_lane_call_times_out_on_a_frozen_server_and_the_lane_recovers(
    own_server: RedisServer,
) -> None:
    async with lane_to(own_server, socket_timeout_s=0.3) as lane:
        await lane.call("PING")
        signal_server(own_server, signal.SIGSTOP)
        with pytest.raises(RedisTimeoutError):
            await asyncio.wait_for(lane.call("ECHO", "late"), timeout=30)
        signal_server(own_server, signal.SIGCONT)
        assert await lane.call("ECHO", "on time") == "on time"


@pytest.mark.redis
async def test_the_lane_reconnects_after_the_server_restarts(
    own_server: RedisServer, lane: Lane
) -> None:
    await lane.call("PING")
    own_server.kill()
    own_server.start()
    await asyncio.sleep(0.1)  # a running process's loop sees the close meanwhile
    assert await lane.call("ECHO", "again") == "again"

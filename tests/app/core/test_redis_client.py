"""The Redis client gives up on a server that never answers, instead of hanging."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from redis.exceptions import TimeoutError as RedisTimeoutError

from app.core.redis_client import CONNECT_TIMEOUT_S, SOCKET_TIMEOUT_S, connect


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

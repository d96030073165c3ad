"""Creates the Redis client every Tide process uses."""

from __future__ import annotations

import asyncio
from typing import Any

import hiredis
from redis.asyncio import Redis
from redis.asyncio.connection import AbstractConnection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import TimeoutError as RedisTimeoutError

SOCKET_TIMEOUT_S = 10.0
"""How long one command may wait for its reply. Well above the longest blocking read Tide sends
(a worker's ``XREADGROUP BLOCK`` of 1 s), so only a dead or half-open connection reaches it."""
CONNECT_TIMEOUT_S = 5.0


def connect(
    url: str,
    *,
    socket_timeout_s: float = SOCKET_TIMEOUT_S,
    connect_timeout_s: float = CONNECT_TIMEOUT_S,
) -> Redis:
    """A client that decodes replies to ``str`` and gives up on a silent server.

    Timeouts are explicit: redis-py's defaults differ between versions, and an old one's "none"
    would hang a process forever on a half-open connection. A command that times out raises
    ``redis.exceptions.TimeoutError``. No automatic command retries: a script re-sent after a
    dropped reply could run twice. The loops that call Redis retry at their own level, where they
    know what a repeat means.
    """
    client = Redis.from_url(
        url,
        decode_responses=True,
        health_check_interval=30,
        protocol=2,
        retry=Retry(NoBackoff(), 0),
        socket_timeout=socket_timeout_s,
        socket_connect_timeout=connect_timeout_s,
    )
    pool = client.connection_pool
    pool.connection_class = _bounding_writes(pool.connection_class)
    return client


class _BoundedWrite(AbstractConnection):
    """Bounds a command's write by ``socket_timeout`` in the caller's own task.

    redis-py bounds it with ``asyncio.wait_for``, which on Python 3.11 runs the write in a task
    of its own: more turns of the event loop for every command, a sixth of a light command's
    round trip on a 2-core box. ``asyncio.timeout`` sets the same bound without one. The
    reply's wait is bounded by redis-py as before.
    """

    async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        limit = self.socket_timeout
        if not limit:
            await super().send_packed_command(command, check_health)
            return
        self.socket_timeout = None  # redis-py's wait_for is skipped; the bound is the one below
        try:
            async with asyncio.timeout(limit):
                await super().send_packed_command(command, check_health)
        except TimeoutError:  # the cut-off write closed the connection, as redis-py does
            raise RedisTimeoutError("Timeout writing to socket") from None
        finally:
            self.socket_timeout = limit


def _bounding_writes(cls: type[AbstractConnection]) -> type[AbstractConnection]:
    """The connection class the URL chose (TCP, TLS, Unix socket), writes bounded as above."""
    return type(f"Bounded{cls.__name__}", (_BoundedWrite, cls), {})


class Lane:
    """One connection kept out of the pool for commands sent one at a time.

    A pooled command spends a sixth of a light command's round trip in redis-py's bookkeeping
    (the pool's lock, its observability hooks, the retry wrapper), which an awaited single
    submit feels at once. The lane sends on a connection it keeps. One call uses it at a time:
    while it is :attr:`busy`, callers take the pool. Errors are redis-py's own: a failed or
    cancelled read drops the connection, and a dropped one reconnects on the next call.
    """

    def __init__(self, redis: Redis) -> None:
        self._pool = redis.connection_pool
        self._connection: AbstractConnection | None = None
        self.busy = False

    async def call(self, *args: Any) -> Any:
        self.busy = True
        try:
            # taken from the pool (never given back) so that closing the client closes it too
            connection = self._connection or await self._pool.get_connection()  # type: ignore[no-untyped-call]
            self._connection = connection
            # closed by the server (a restart) or a reply left unread: afresh, as the pool does
            if connection.is_connected and await connection.can_read():
                await connection.disconnect()
            await connection.send_packed_command(hiredis.pack_command(args))  # C: 4x redis-py's
            return await connection.read_response()
        finally:
            self.busy = False

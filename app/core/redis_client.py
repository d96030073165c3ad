"""Creates the Redis client every Tide process uses."""

from __future__ import annotations

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

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
    return Redis.from_url(
        url,
        decode_responses=True,
        health_check_interval=30,
        protocol=2,
        retry=Retry(NoBackoff(), 0),
        socket_timeout=socket_timeout_s,
        socket_connect_timeout=connect_timeout_s,
    )

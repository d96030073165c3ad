"""Creates the Redis client every Tide process uses."""

from __future__ import annotations

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff


def connect(url: str) -> Redis:
    """A client that decodes replies to ``str``.

    No automatic command retries: a script re-sent after a dropped reply could run twice. The
    loops that call Redis retry at their own level, where they know what a repeat means.
    """
    return Redis.from_url(
        url,
        decode_responses=True,
        health_check_interval=30,
        protocol=2,
        retry=Retry(NoBackoff(), 0),
    )

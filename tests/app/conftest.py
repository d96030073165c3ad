"""Fixtures for the queue core's tests: a queue and lease clients with a short lease.

Each fixture that touches Redis sits on ``any_redis``, so a test runs on fakeredis and on a real
``redis-server``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pytest
from redis.asyncio import Redis

from app.core.events import JobEvent, read_events
from app.core.keys import GROUP
from app.core.leases import Lease, LeaseClient
from app.core.queue import Queue
from app.core.settings import CoreSettings

LEASE_S = 0.2
"""The lease the lifecycle tests run with: long enough not to expire by itself while a test
step runs, short enough that waiting one out costs little."""

MakeLeases = Callable[[str], LeaseClient]


@pytest.fixture
def fast(settings: CoreSettings) -> CoreSettings:
    return settings.model_copy(update={"lease_timeout_s": LEASE_S})


@pytest.fixture
def queue(any_redis: Redis, fast: CoreSettings) -> Queue:
    return Queue(any_redis, fast)


@pytest.fixture
def make_leases(any_redis: Redis, fast: CoreSettings) -> MakeLeases:
    """Factory: the lease client of one consumer (a worker) of the ``workers`` group."""

    def make(consumer: str) -> LeaseClient:
        return LeaseClient(any_redis, fast, consumer)

    return make


async def take(
    client: LeaseClient, free: int = 100, queues: Sequence[str] = ("default",)
) -> list[Lease]:
    """Read up to ``free`` new entries and start them, as a worker's lease loop does."""
    for name in queues:
        await client.ensure_group(name)
    entries = await client.read(queues, free, 10)
    return await client.start(entries)


async def changes(redis: Redis, queue: Queue) -> list[JobEvent]:
    """Every status change in the events stream, oldest first."""
    return await read_events(redis, queue.keys, count=100_000)


async def pending_count(redis: Redis, queue: Queue, name: str = "default") -> int:
    """Entries in the group's pending list (0 when the group does not exist)."""
    stream = queue.keys.queue(name)
    if not await redis.exists(stream):
        return 0
    groups: Any = await redis.xinfo_groups(stream)
    return sum(int(g["pending"]) for g in groups if g["name"] == GROUP)


async def server_ms(redis: Redis) -> float:
    seconds, micros = await redis.time()
    return seconds * 1000 + micros / 1000

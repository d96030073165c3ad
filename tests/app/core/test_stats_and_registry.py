"""stats.lua (queue depth as the scaler and dashboard read it), register.lua (the live worker
registry) and prune_consumers.lua (removing dead workers' consumers without stranding entries)."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest
from redis.asyncio import Redis

from app.core.keys import GROUP
from app.core.leases import Outcome, Result
from app.core.models import JobSpec
from app.core.queue import Queue, QueueStats
from tests.app.conftest import MakeLeases, take

# -- stats --------------------------------------------------------------------------------------


async def test_no_queues_no_stats(queue: Queue) -> None:
    assert await queue.stats() == []
    assert await queue.stats([]) == []


async def test_an_unknown_queue_is_all_zero(queue: Queue) -> None:
    assert await queue.stats(["nothing"]) == [QueueStats("nothing", 0, 0, 0, 0, None)]


async def test_waiting_jobs_count_before_any_worker_made_the_group(
    any_redis: Redis, queue: Queue
) -> None:
    await queue.submit_many([JobSpec(type="n") for _ in range(3)])
    await queue.submit(JobSpec(type="n", delay_s=60))
    await asyncio.sleep(0.1)
    assert not await any_redis.xinfo_groups(queue.keys.queue("default"))
    (stats,) = await queue.stats()
    assert (stats.queue, stats.waiting, stats.running, stats.scheduled, stats.dead) == (
        "default",
        3,
        0,
        1,
        0,
    )
    assert stats.oldest_waiting_age_s is not None
    assert 0.09 <= stats.oldest_waiting_age_s < 5


async def test_figures_follow_the_lifecycle_with_acked_entries_deleted(
    any_redis: Redis, queue: Queue, make_leases: MakeLeases
) -> None:
    await queue.submit_many([JobSpec(type="n", payload=i, max_attempts=1) for i in range(3)])
    await asyncio.sleep(0.2)
    await queue.submit(JobSpec(type="n", payload=3))
    worker = make_leases("w1")
    first, second = await take(worker, free=2)

    (stats,) = await queue.stats()
    assert (stats.waiting, stats.running) == (2, 2)
    # the oldest *waiting* entry is the third, submitted with the first two
    assert stats.oldest_waiting_age_s is not None
    assert stats.oldest_waiting_age_s >= 0.19

    await worker.finish([Result(first, Outcome.OK, "1")])
    assert await any_redis.xlen(queue.keys.queue("default")) == 3
    (stats,) = await queue.stats()
    assert (stats.waiting, stats.running, stats.dead) == (2, 1, 0)

    await worker.finish([Result(second, Outcome.ERROR, '{"type":"E","message":"m"}', 0)])
    (stats,) = await queue.stats()
    assert (stats.waiting, stats.running, stats.dead) == (2, 0, 1)

    third, fourth = await take(worker)
    (stats,) = await queue.stats()
    assert (stats.waiting, stats.running) == (0, 2)
    assert stats.oldest_waiting_age_s is None

    await worker.finish([Result(third, Outcome.OK, "1"), Result(fourth, Outcome.OK, "1")])
    (stats,) = await queue.stats()
    assert (stats.waiting, stats.running, stats.scheduled, stats.dead) == (0, 0, 0, 1)
    assert stats.oldest_waiting_age_s is None
    assert await any_redis.xlen(queue.keys.queue("default")) == 0


async def test_stats_cover_several_queues_in_the_order_asked(
    queue: Queue, make_leases: MakeLeases
) -> None:
    await queue.submit_many([JobSpec(type="n", queue="a") for _ in range(2)])
    await queue.submit_many([JobSpec(type="n", queue="b") for _ in range(5)])
    await queue.submit(JobSpec(type="n", queue="c", delay_s=60))
    await take(make_leases("w1"), free=4, queues=["b"])
    got = {s.queue: (s.waiting, s.running, s.scheduled) for s in await queue.stats()}
    assert got == {"a": (2, 0, 0), "b": (1, 4, 0), "c": (0, 0, 1)}
    assert [s.queue for s in await queue.stats(["c", "a"])] == ["c", "a"]


# -- register -----------------------------------------------------------------------------------


async def test_register_writes_the_registry_entry_and_deregister_removes_it(
    any_redis: Redis, queue: Queue, make_leases: MakeLeases
) -> None:
    worker = make_leases("host-1-42")
    info = orjson.dumps({"host": "host-1", "pid": 42, "busy": 0}).decode()
    assert await worker.register(info, 10_000) == 0
    assert await any_redis.hgetall(queue.keys.workers) == {"host-1-42": info}
    assert await any_redis.zscore(queue.keys.workers_seen, "host-1-42") is not None

    busier = orjson.dumps({"host": "host-1", "pid": 42, "busy": 3}).decode()
    await worker.register(busier, 10_000)
    assert await any_redis.hget(queue.keys.workers, "host-1-42") == busier

    assert await worker.register("", 10_000) == 0
    assert await any_redis.hlen(queue.keys.workers) == 0
    assert await any_redis.zcard(queue.keys.workers_seen) == 0


async def test_register_prunes_workers_gone_silent(
    any_redis: Redis, queue: Queue, make_leases: MakeLeases
) -> None:
    await make_leases("silent").register('{"n":1}', 60_000)
    await make_leases("quiet").register('{"n":2}', 60_000)
    await asyncio.sleep(0.15)
    await make_leases("quiet").register('{"n":2}', 60_000)
    assert await make_leases("alive").register('{"n":3}', 100) == 1
    assert await any_redis.hgetall(queue.keys.workers) == {"quiet": '{"n":2}', "alive": '{"n":3}'}
    assert set(await any_redis.zrange(queue.keys.workers_seen, 0, -1)) == {"quiet", "alive"}


# -- prune_consumers ----------------------------------------------------------------------------


async def consumers(redis: Redis, queue: Queue, name: str = "default") -> dict[str, int]:
    rows: Any = await redis.xinfo_consumers(queue.keys.queue(name), GROUP)
    return {row["name"]: int(row["pending"]) for row in rows}


async def test_prune_removes_only_idle_unregistered_consumers_without_pending_entries(
    queue: Queue, make_leases: MakeLeases
) -> None:
    holder, gone, registered, recent = (
        make_leases(name) for name in ("holder", "gone", "registered", "recent")
    )
    await queue.submit_many([JobSpec(type="n") for _ in range(4)])
    await take(holder, free=1)  # dead, but still holds an entry: must stay
    (lease,) = await take(gone, free=1)
    await gone.finish([Result(lease, Outcome.OK, "1")])  # no entries left
    (lease,) = await take(registered, free=1)
    await registered.finish([Result(lease, Outcome.OK, "1")])
    await registered.register('{"n":1}', 60_000)
    await asyncio.sleep(0.2)
    (lease,) = await take(recent, free=1)  # a consumer that just read: not idle
    await recent.finish([Result(lease, Outcome.OK, "1")])
    assert await consumers(recent.redis, queue) == {
        "holder": 1,
        "gone": 0,
        "registered": 0,
        "recent": 0,
    }

    assert await holder.prune_consumers("default", 150) == 1
    assert await consumers(recent.redis, queue) == {"holder": 1, "registered": 0, "recent": 0}
    assert await holder.prune_consumers("default", 150) == 0


async def test_prune_of_a_queue_without_stream_or_group_is_a_no_op(
    any_redis: Redis, queue: Queue, make_leases: MakeLeases
) -> None:
    worker = make_leases("w1")
    assert await worker.prune_consumers("missing", 0) == 0
    await queue.submit(JobSpec(type="n", queue="nogroup"))
    assert await worker.prune_consumers("nogroup", 0) == 0
    assert await any_redis.xlen(queue.keys.queue("nogroup")) == 1


@pytest.mark.parametrize("min_idle_ms", [0, 60_000])
async def test_prune_respects_the_idle_threshold(
    queue: Queue, make_leases: MakeLeases, min_idle_ms: int
) -> None:
    worker = make_leases("w1")
    await queue.submit(JobSpec(type="n"))
    (lease,) = await take(worker)
    await worker.finish([Result(lease, Outcome.OK, "1")])
    await asyncio.sleep(0.01)
    removed = await worker.prune_consumers("default", min_idle_ms)
    assert removed == (1 if min_idle_ms == 0 else 0)

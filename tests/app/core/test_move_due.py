"""move_due.lua through ``LeaseClient.move_due``: due delayed jobs go back into their streams,
once each, however many workers run the mover at the same time."""

from __future__ import annotations

import asyncio
from typing import Any

from redis.asyncio import Redis

from app.core.leases import Outcome, Result
from app.core.models import JobSpec, JobStatus
from app.core.queue import Queue
from tests.app.conftest import MakeLeases, changes, take


async def test_nothing_scheduled_means_nothing_to_wait_for(make_leases: MakeLeases) -> None:
    assert await make_leases("w1").move_due() == (0, -1)


async def test_only_due_jobs_move_and_the_wait_until_the_next_is_returned(
    any_redis: Redis, queue: Queue, make_leases: MakeLeases
) -> None:
    soon, later = await queue.submit_many(
        [
            JobSpec(type="soon", delay_s=0.05, queue="q1", tenant="acme"),
            JobSpec(type="later", delay_s=30, queue="q2"),
        ]
    )
    mover = make_leases("w1")
    moved, wait_ms = await mover.move_due()
    assert moved == 0
    assert 0 <= wait_ms <= 50

    await asyncio.sleep(0.1)
    moved, wait_ms = await mover.move_due()
    assert moved == 1
    assert 29_000 < wait_ms <= 30_000

    job = await queue.get(soon.id)
    assert job is not None
    assert job.status is JobStatus.PENDING
    entries: Any = await any_redis.xrange(queue.keys.queue("q1"))
    stored_entry = await any_redis.hget(queue.keys.job(soon.id), "entry")
    assert [(eid, f) for eid, f in entries] == [(stored_entry, {"j": soon.id})]
    waiting = await queue.get(later.id)
    assert waiting is not None
    assert waiting.status is JobStatus.SCHEDULED
    assert await any_redis.zrange(queue.keys.delayed, 0, -1) == [later.id]
    assert await any_redis.hget(queue.keys.scheduled_counts, "q1") == "0"
    assert await any_redis.hget(queue.keys.scheduled_counts, "q2") == "1"
    assert [c for c in await changes(any_redis, queue) if c.job_id == soon.id][
        -1
    ].status == "pending"

    (lease,) = await take(mover, queues=["q1"])
    assert (lease.job_id, lease.token) == (soon.id, "1")


async def test_the_limit_caps_one_call(
    any_redis: Redis, queue: Queue, make_leases: MakeLeases
) -> None:
    await queue.submit_many([JobSpec(type="n", payload=i, delay_s=0.02) for i in range(5)])
    await asyncio.sleep(0.05)
    mover = make_leases("w1")
    assert await mover.move_due(limit=2) == (2, 0)
    assert await mover.move_due(limit=2) == (2, 0)
    assert await mover.move_due(limit=2) == (1, -1)
    assert await any_redis.xlen(queue.keys.queue("default")) == 5


async def test_due_jobs_move_in_due_order(queue: Queue, make_leases: MakeLeases) -> None:
    await queue.submit_many(
        [JobSpec(type="n", payload=i, delay_s=0.05 - i * 0.01) for i in range(4)]
    )
    await asyncio.sleep(0.08)
    mover = make_leases("w1")
    assert (await mover.move_due())[0] == 4
    leases = await take(mover)
    assert [lease.payload for lease in leases] == ["3", "2", "1", "0"]


async def test_concurrent_movers_never_move_a_job_twice(
    any_redis: Redis, queue: Queue, make_leases: MakeLeases
) -> None:
    jobs = await queue.submit_many([JobSpec(type="n", payload=i, delay_s=0.02) for i in range(60)])
    await asyncio.sleep(0.05)
    movers = [make_leases(f"w{i}") for i in range(8)]
    results = await asyncio.gather(*(m.move_due(limit=7) for m in movers for _ in range(2)))

    assert sum(moved for moved, _ in results) == 60
    assert await any_redis.xlen(queue.keys.queue("default")) == 60
    entries: Any = await any_redis.xrange(queue.keys.queue("default"))
    assert sorted(f["j"] for _, f in entries) == sorted(job.id for job in jobs)
    assert await any_redis.zcard(queue.keys.delayed) == 0
    assert await any_redis.hget(queue.keys.scheduled_counts, "default") == "0"
    assert await movers[0].move_due() == (0, -1)


async def test_a_job_cancelled_after_scheduling_is_not_moved(
    any_redis: Redis, queue: Queue, make_leases: MakeLeases
) -> None:
    job = await queue.submit(JobSpec(type="n", delay_s=0.02))
    assert await queue.cancel(job.id) == "cancelled"
    await asyncio.sleep(0.05)
    assert await make_leases("w1").move_due() == (0, -1)
    assert await any_redis.exists(queue.keys.queue("default")) == 0
    assert await any_redis.hget(queue.keys.scheduled_counts, "default") == "0"


async def test_a_stray_id_whose_job_is_no_longer_scheduled_is_dropped_not_enqueued(
    any_redis: Redis, queue: Queue, make_leases: MakeLeases
) -> None:
    job = await queue.submit(JobSpec(type="n"))
    worker = make_leases("w1")
    (lease,) = await take(worker)
    await any_redis.zadd(queue.keys.delayed, {job.id: 0})  # left behind, e.g. by a crash
    assert await worker.move_due() == (1, -1)
    assert await any_redis.zcard(queue.keys.delayed) == 0
    assert await any_redis.xlen(queue.keys.queue("default")) == 1  # only the running entry
    running = await queue.get(job.id)
    assert running is not None
    assert running.status is JobStatus.RUNNING
    assert await worker.finish([Result(lease, Outcome.OK, "1")]) == [True]

"""cancel.lua through ``Queue.cancel``: waiting jobs end at once and never start, running jobs
are flagged for their worker, ended jobs are a conflict, and nothing outside the caller's tenant
is visible."""

from __future__ import annotations

import asyncio

import orjson
import pytest
from redis.asyncio import Redis

from app.core.errors import JobConflict, JobNotFound
from app.core.leases import LeaseState, Outcome, Result
from app.core.models import JobSpec, JobStatus
from app.core.queue import Queue
from tests.app.conftest import LEASE_S, MakeLeases, changes, pending_count, take


async def test_a_pending_job_is_cancelled_and_never_started(
    any_redis: Redis, queue: Queue, make_leases: MakeLeases
) -> None:
    job, other = await queue.submit_many([JobSpec(type="a"), JobSpec(type="b")])
    # before any worker created the group: there is nothing to check the entry against
    assert await queue.cancel(job.id) == "cancelled"
    assert await any_redis.xlen(queue.keys.queue("default")) == 1

    (lease,) = await take(make_leases("w1"))
    assert lease.job_id == other.id
    cancelled = await queue.get(job.id)
    assert cancelled is not None
    assert cancelled.status is JobStatus.CANCELLED
    assert cancelled.attempts == 0
    assert cancelled.started_at is None
    assert cancelled.finished_at is not None
    assert 0 < await any_redis.ttl(queue.keys.job(job.id)) <= queue.settings.result_ttl_s
    assert [c.status for c in await changes(any_redis, queue) if c.job_id == job.id] == [
        "pending",
        "cancelled",
    ]


async def test_a_pending_job_is_cancelled_once_the_group_exists(
    any_redis: Redis, queue: Queue, make_leases: MakeLeases
) -> None:
    worker = make_leases("w1")
    await worker.ensure_group("default")
    job = await queue.submit(JobSpec(type="a"))
    assert await queue.cancel(job.id) == "cancelled"
    assert await any_redis.xlen(queue.keys.queue("default")) == 0
    assert await take(worker) == []
    (stats,) = await queue.stats(["default"])
    assert (stats.waiting, stats.running) == (0, 0)


async def test_a_scheduled_job_is_cancelled_and_never_moved(
    any_redis: Redis, queue: Queue, make_leases: MakeLeases
) -> None:
    job, kept = await queue.submit_many(
        [JobSpec(type="a", delay_s=0.05), JobSpec(type="b", delay_s=60)]
    )
    assert await queue.cancel(job.id) == "cancelled"
    assert await any_redis.zrange(queue.keys.delayed, 0, -1) == [kept.id]
    assert await any_redis.hget(queue.keys.scheduled_counts, "default") == "1"
    (stats,) = await queue.stats(["default"])
    assert stats.scheduled == 1

    await asyncio.sleep(0.1)
    worker = make_leases("w1")
    moved, wait_ms = await worker.move_due()
    assert moved == 0
    assert wait_ms > 50_000
    assert await any_redis.exists(queue.keys.queue("default")) == 0
    cancelled = await queue.get(job.id)
    assert cancelled is not None
    assert cancelled.status is JobStatus.CANCELLED


async def test_a_running_job_is_flagged_and_its_worker_told(
    any_redis: Redis, queue: Queue, make_leases: MakeLeases
) -> None:
    job = await queue.submit(JobSpec(type="long"))
    worker = make_leases("w1")
    (lease,) = await take(worker)
    assert await queue.cancel(job.id) == "cancelling"
    assert await queue.cancel(job.id) == "cancelling"  # asking again changes nothing

    flagged = await queue.get(job.id)
    assert flagged is not None
    assert flagged.status is JobStatus.RUNNING
    assert flagged.cancel_requested
    assert await pending_count(any_redis, queue) == 1
    assert await worker.extend([lease]) == [LeaseState.CANCEL_REQUESTED]

    stopped = orjson.dumps({"type": "Cancelled", "message": "cancel requested"}).decode()
    assert await worker.finish([Result(lease, Outcome.CANCELLED, stopped)]) == [True]
    done = await queue.get(job.id)
    assert done is not None
    assert done.status is JobStatus.CANCELLED
    assert await any_redis.xlen(queue.keys.queue("default")) == 0


async def test_an_ended_job_is_a_conflict_naming_its_status_and_stays(
    queue: Queue, make_leases: MakeLeases
) -> None:
    job = await queue.submit(JobSpec(type="echo"))
    worker = make_leases("w1")
    (lease,) = await take(worker)
    await worker.finish([Result(lease, Outcome.OK, '"result"')])
    with pytest.raises(JobConflict, match=f"job {job.id} has already ended: succeeded"):
        await queue.cancel(job.id)
    done = await queue.get(job.id)
    assert done is not None
    assert done.status is JobStatus.SUCCEEDED
    assert done.result == "result"
    assert not done.cancel_requested

    other = await queue.submit(JobSpec(type="echo"))
    assert await queue.cancel(other.id) == "cancelled"
    with pytest.raises(JobConflict, match="already ended: cancelled"):
        await queue.cancel(other.id)


async def test_a_failed_job_is_a_conflict(
    any_redis: Redis, queue: Queue, make_leases: MakeLeases
) -> None:
    job = await queue.submit(JobSpec(type="echo", max_attempts=1))
    worker = make_leases("w1")
    (lease,) = await take(worker)
    await worker.finish([Result(lease, Outcome.ERROR, '{"type":"E","message":"m"}', 0)])
    events = await any_redis.xlen(queue.keys.events)
    with pytest.raises(JobConflict, match="already ended: failed"):
        await queue.cancel(job.id)
    assert await any_redis.xlen(queue.keys.events) == events  # a refusal records nothing


async def test_unknown_and_other_tenants_jobs_are_not_found(any_redis: Redis, queue: Queue) -> None:
    with pytest.raises(JobNotFound, match="no job with id 'no-such-job'"):
        await queue.cancel("no-such-job")
    with pytest.raises(JobNotFound):
        await queue.cancel("no-such-job", tenant="acme")

    job = await queue.submit(JobSpec(type="echo", tenant="acme"))
    with pytest.raises(JobNotFound):
        await queue.cancel(job.id, tenant="evil")
    untouched = await queue.get(job.id)
    assert untouched is not None
    assert untouched.status is JobStatus.PENDING
    assert await any_redis.xlen(queue.keys.queue("default")) == 1

    assert await queue.cancel(job.id, tenant="acme") == "cancelled"
    # a missing tenant must not match a job stored without one either
    with pytest.raises(JobNotFound):
        await queue.cancel(job.id, tenant="public")


async def test_a_cancel_requested_job_whose_worker_died_ends_cancelled_when_reclaimed(
    any_redis: Redis, queue: Queue, make_leases: MakeLeases
) -> None:
    job = await queue.submit(JobSpec(type="long"))
    dead, rescuer = make_leases("dead"), make_leases("rescuer")
    await take(dead)
    assert await queue.cancel(job.id) == "cancelling"
    await asyncio.sleep(LEASE_S + 0.1)

    claimed = await rescuer.claim("default", 10)
    assert claimed.leases == []
    done = await queue.get(job.id)
    assert done is not None
    assert done.status is JobStatus.CANCELLED
    assert done.attempts == 1  # never run again
    assert done.finished_at is not None
    assert await any_redis.xlen(queue.keys.queue("default")) == 0
    assert await pending_count(any_redis, queue) == 0
    assert await queue.dead_letters("default") == []
    assert [c.status for c in await changes(any_redis, queue)][-1] == "cancelled"

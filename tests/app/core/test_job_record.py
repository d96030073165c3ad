"""What a finished job's record says: a success carries no trace of earlier failed attempts or
of a cancel request that came too late."""

from __future__ import annotations

import asyncio

import orjson
from redis.asyncio import Redis

from app.core.leases import Outcome, Result
from app.core.models import JobSpec, JobStatus
from app.core.queue import Queue
from tests.app.conftest import MakeLeases, take


async def test_a_job_that_succeeds_after_a_failed_attempt_has_no_error(
    any_redis: Redis, queue: Queue, make_leases: MakeLeases
) -> None:
    job = await queue.submit(JobSpec(type="flaky", max_attempts=2))
    worker = make_leases("w1")
    (first,) = await take(worker)
    boom = orjson.dumps({"type": "RuntimeError", "message": "boom"}).decode()
    assert await worker.finish([Result(first, Outcome.ERROR, boom, retry_delay_ms=0)]) == [True]
    retrying = await queue.get(job.id)
    assert retrying is not None
    assert retrying.status is JobStatus.SCHEDULED
    assert retrying.error == {"type": "RuntimeError", "message": "boom"}

    await asyncio.sleep(0.01)
    assert (await worker.move_due())[0] == 1
    (second,) = await take(worker)
    assert await worker.finish([Result(second, Outcome.OK, '"fine"')]) == [True]

    done = await queue.get(job.id)
    assert done is not None
    assert (done.status, done.attempts, done.result, done.error) == (
        JobStatus.SUCCEEDED,
        2,
        "fine",
        None,
    )
    assert await any_redis.hexists(queue.keys.job(job.id), "error") == 0


async def test_a_job_that_succeeds_despite_a_cancel_request_shows_no_request(
    queue: Queue, make_leases: MakeLeases
) -> None:
    job = await queue.submit(JobSpec(type="quick"))
    worker = make_leases("w1")
    (lease,) = await take(worker)
    assert await queue.cancel(job.id) == "cancelling"
    assert await worker.finish([Result(lease, Outcome.OK, "1")]) == [True]

    done = await queue.get(job.id)
    assert done is not None
    assert done.status is JobStatus.SUCCEEDED
    assert done.cancel_requested is False
    assert done.to_dict()["cancel_requested"] is False

"""Memory stays bounded (DESIGN §2): acked entries are deleted and terminal jobs expire.

Real server only: expiry and SCAN are what is under test.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from redis.asyncio import Redis

from app.core.leases import LeaseClient, Outcome, Result
from app.core.models import JobSpec, JobStatus
from app.core.queue import Queue
from app.core.settings import CoreSettings
from tests.app.conftest import changes, pending_count

pytestmark = pytest.mark.redis

JOBS = 3000
BATCH = 500


async def job_keys(redis: Redis, queue: Queue) -> list[str]:
    return [key async for key in redis.scan_iter(match=queue.keys.job_prefix + "*", count=1000)]


async def test_a_run_of_jobs_leaves_no_entries_and_no_job_records(
    real_redis: Redis, settings: CoreSettings
) -> None:
    short = settings.model_copy(update={"result_ttl_s": 1})
    queue = Queue(real_redis, short)
    worker = LeaseClient(real_redis, short, "w1")
    await worker.ensure_group("default")
    await queue.submit_many([JobSpec(type="n", payload=i) for i in range(JOBS)])
    assert await real_redis.xlen(queue.keys.queue("default")) == JOBS

    done, leases = 0, []
    while done < JOBS:
        leases = await worker.start(await worker.read(["default"], BATCH, 10))
        assert leases, f"ran dry after {done} jobs"
        recorded = await worker.finish(
            [Result(lease, Outcome.OK, lease.payload) for lease in leases]
        )
        assert all(recorded)
        done += len(leases)
    finished_at = time.monotonic()

    assert done == JOBS
    assert await real_redis.xlen(queue.keys.queue("default")) == 0
    assert await pending_count(real_redis, queue) == 0
    assert await real_redis.zcard(queue.keys.delayed) == 0
    (stats,) = await queue.stats()
    assert (stats.waiting, stats.running, stats.scheduled, stats.dead) == (0, 0, 0, 0)
    # the records of the last batch are still there, finished, until their TTL runs out
    last = [lease.job_id for lease in leases]
    sample = await queue.get(last[-1])
    assert sample is not None
    assert sample.status is JobStatus.SUCCEEDED
    assert sample.result == sample.payload
    async with real_redis.pipeline(transaction=False) as pipe:
        for job_id in last:
            pipe.pttl(queue.keys.job(job_id))
        ttls: list[int] = await pipe.execute()
    assert all(0 < ttl <= 1000 for ttl in ttls)

    # SCAN skips keys past their TTL, whether or not Redis has reclaimed them yet
    await asyncio.sleep(max(0.0, finished_at + 1.1 - time.monotonic()))
    assert await job_keys(real_redis, queue) == []
    # what remains is bounded bookkeeping, not per-job data
    remaining = {key async for key in real_redis.scan_iter(count=1000)}
    # the throughput counters: one hash per minute, each expiring by itself
    counters = {key for key in remaining if key.startswith(f"{queue.keys.events}:finished:")}
    assert all([0 < await real_redis.ttl(key) <= 180 for key in counters])
    assert remaining - counters <= {
        queue.keys.queue("default"),
        queue.keys.events,
        queue.keys.events_count,
        queue.keys.events_marks,  # about 64 marks, whatever the number of jobs
        queue.keys.queues,
        queue.keys.metrics,  # counters per queue, status and tenant: not per job
    }
    assert await real_redis.hlen(queue.keys.metrics) < 30
    assert len(await changes(real_redis, queue)) <= short.events_max_changes + BATCH
    assert await real_redis.llen(queue.keys.events_marks) <= 65

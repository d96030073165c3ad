"""The finish batcher on a real redis-server: batches kept through errors, and a close that is
never lost."""

from __future__ import annotations

import asyncio

import orjson
import pytest
import structlog
from redis.asyncio import Redis

from app.core.leases import LeaseClient, Outcome, Result
from app.core.models import JobSpec, JobStatus
from app.core.queue import Queue
from workers.finisher import FinishBatcher
from workers.loops import LoopRunner
from workers.presence import Counters
from workers.renewal import LeaseRenewal
from workers.settings import WorkerSettings

pytestmark = pytest.mark.redis


async def no_groups() -> None:
    return None


async def started(client: LeaseClient, queue: Queue, n: int) -> list[Result]:
    await client.ensure_group("default")
    await queue.submit_many([JobSpec(type="n", payload=i) for i in range(n)])
    leases = await client.start(await client.read(["default"], n, 10))
    return [Result(lease, Outcome.OK, orjson.dumps(lease.payload).decode()) for lease in leases]


async def test_a_close_in_the_same_tick_as_the_last_outcome_records_it_and_ends(
    real_redis: Redis, queue: Queue, wsettings: WorkerSettings
) -> None:
    client = LeaseClient(real_redis, wsettings, "w1")
    (result,) = await started(client, queue, 1)
    log = structlog.get_logger("test")
    batcher = FinishBatcher(client, LeaseRenewal(client), Counters(), log)
    loop = asyncio.create_task(
        LoopRunner(log, no_groups).loop("finish", batcher.step, 0.0, batcher.finished)
    )
    await asyncio.sleep(0.01)  # the batcher waits for outcomes
    batcher.add(result)
    batcher.close()  # both wake-ups land before it runs again
    await asyncio.wait_for(loop, 2)
    job = await queue.get(result.lease.job_id)
    assert job is not None
    assert job.status is JobStatus.SUCCEEDED


async def test_a_batch_that_fails_to_send_is_kept_and_sent_whole_later(
    real_redis: Redis, queue: Queue, wsettings: WorkerSettings
) -> None:
    client = LeaseClient(real_redis, wsettings, "w1")
    results = await started(client, queue, 3)
    counters = Counters()
    batcher = FinishBatcher(client, LeaseRenewal(client), counters, structlog.get_logger("test"))
    for result in results:
        batcher.add(result)
    await real_redis.config_set("min-replicas-to-write", 1)  # NOREPLICAS: writes refused
    try:
        with pytest.raises(Exception, match="NOREPLICAS"):
            await batcher.step()
        assert len(batcher) == 3
    finally:
        await real_redis.config_set("min-replicas-to-write", 0)
    await batcher.step()
    assert (len(batcher), counters.processed, counters.lost) == (0, 3, 0)
    jobs = [await queue.get(r.lease.job_id) for r in results]
    assert [j.status for j in jobs if j is not None] == [JobStatus.SUCCEEDED] * 3

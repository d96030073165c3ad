"""Each tenant's jobs pending, running, scheduled and dead, kept by the scripts in the call that
changes a status: after every path a job can take, they equal a count of the job records."""

from __future__ import annotations

import asyncio
from collections import Counter

from redis.asyncio import Redis

from app.core.leases import Lease, LeaseClient, Outcome, Result
from app.core.metrics import NOW, read_metrics, read_tenant_figures
from app.core.models import Job, JobSpec
from app.core.queue import Queue
from app.core.settings import CoreSettings
from tests.app.conftest import LEASE_S, MakeLeases, take

ERROR = '{"type":"E","message":"m"}'
TENANTS = ("acme", "bolt", "zeta")


async def records(redis: Redis, queue: Queue) -> Counter[tuple[str, str]]:
    """(tenant, figure) -> jobs, counted from the job records themselves."""
    counts: Counter[tuple[str, str]] = Counter()
    async for key in redis.scan_iter(match=f"{queue.keys.job_prefix}*"):
        tenant, status = await redis.hmget(key, ["tenant", "status"])
        if status in NOW:
            counts[tenant, status] += 1
        elif status == "failed":
            counts[tenant, "dead"] += 1
    return counts


async def assert_gauges_true(redis: Redis, queue: Queue) -> None:
    truth = await records(redis, queue)
    fleet = (await read_metrics(queue, top_tenants=len(TENANTS))).tenants
    for tenant in TENANTS:
        own = await read_tenant_figures(queue, tenant)
        expected = {figure: truth[tenant, figure] for figure in (*NOW, "dead")}
        assert {figure: own[figure] for figure in expected} == expected, tenant
        in_fleet = fleet.get(tenant, {})
        assert {figure: in_fleet.get(figure, 0) for figure in expected} == expected, tenant


async def submit(queue: Queue, tenant: str, n: int = 1, max_attempts: int = 3) -> list[Job]:
    specs = [JobSpec(type="t", tenant=tenant, max_attempts=max_attempts) for _ in range(n)]
    return await queue.submit_many(specs)


def by_tenant(leases: list[Lease]) -> dict[str, list[Lease]]:
    out: dict[str, list[Lease]] = {}
    for lease in leases:
        out.setdefault(lease.tenant, []).append(lease)
    return out


async def expire_lease() -> None:
    await asyncio.sleep(LEASE_S + 0.05)


async def test_every_path_keeps_the_gauges_equal_to_the_job_records(
    any_redis: Redis, queue: Queue, make_leases: MakeLeases
) -> None:
    async def check() -> None:
        await assert_gauges_true(any_redis, queue)

    # submit: immediate and delayed, several tenants in one batch
    await queue.submit_many(
        [
            *[JobSpec(type="t", tenant="acme", max_attempts=2) for _ in range(4)],
            *[JobSpec(type="t", tenant="bolt", delay_s=60) for _ in range(2)],
            JobSpec(type="t", tenant="zeta"),
        ]
    )
    await check()
    w1, rescuer = make_leases("w1"), make_leases("rescuer")
    started = by_tenant(await take(w1))  # start: pending -> running
    await check()
    ok, backoff, stopped, bad = started["acme"]
    [zeta] = started["zeta"]
    await w1.finish(
        [
            Result(ok, Outcome.OK, "1"),
            Result(backoff, Outcome.ERROR, ERROR, 0),  # retry with backoff: scheduled
            Result(stopped, Outcome.CANCELLED, ERROR),
            Result(bad, Outcome.ERROR, ERROR),  # not retryable: dead-lettered
        ]
    )
    await check()
    assert (await w1.move_due())[0] == 1  # the backoff is over: pending again
    await check()

    # cancel: scheduled, pending (also once a worker has read its entry), running (flagged)
    bolt = await queue.list_jobs("bolt")
    await queue.cancel(bolt.jobs[0].id)
    [waiting] = await submit(queue, "bolt")
    await queue.cancel(waiting.id)
    await check()
    await queue.cancel(zeta.job_id)
    await check()

    # release at shutdown, then a reclaim by another worker
    [again] = await take(w1)
    assert again.job_id == backoff.job_id
    await check()
    assert await w1.release([again]) == 1
    await check()
    claimed = await rescuer.claim("default", 10)
    assert again.job_id in [lease.job_id for lease in claimed.leases]
    await check()
    # a worker that died: the job whose cancel it was asked ends at the reclaim
    await expire_lease()
    claimed = await rescuer.claim("default", 10)
    assert claimed.leases == []
    await w1.finish([Result(zeta, Outcome.OK, "1")])  # late: changes nothing
    await check()

    # out of attempts at a reclaim: dead-lettered; the lost lease's beat and finish change
    # nothing, nor does a worker adopting its own leases
    [last] = await submit(queue, "zeta", max_attempts=1)
    [held] = await take(w1)
    assert held.job_id == last.id
    await expire_lease()
    await rescuer.claim("default", 10)
    assert await w1.extend([held]) == [0]
    assert await w1.finish([Result(held, Outcome.ERROR, ERROR, 0)]) == [False]
    assert await rescuer.adopt(["default"], 10) != []
    await check()

    # retry of a failed and a cancelled job
    await queue.retry(bad.job_id)
    await queue.retry(stopped.job_id)
    await check()
    for lease in await take(rescuer):
        await rescuer.finish([Result(lease, Outcome.OK, "1")])
    await check()


async def test_a_dead_job_stops_counting_once_its_record_has_expired(
    any_redis: Redis, fast: CoreSettings
) -> None:
    queue = Queue(any_redis, fast.model_copy(update={"result_ttl_s": 1}))
    worker = LeaseClient(any_redis, queue.settings, "w1")
    await submit(queue, "acme", 2, max_attempts=1)
    await worker.finish([Result(lease, Outcome.ERROR, ERROR) for lease in await take(worker)])
    assert (await read_tenant_figures(queue, "acme"))["dead"] == 2
    await asyncio.sleep(1.1)
    assert await records(any_redis, queue) == Counter()
    assert (await read_tenant_figures(queue, "acme"))["dead"] == 0
    assert (await read_metrics(queue, top_tenants=5)).tenants["acme"]["dead"] == 0


async def test_counts_heal_from_jobs_created_before_counting_began(
    any_redis: Redis, queue: Queue, make_leases: MakeLeases
) -> None:
    await submit(queue, "acme", 3)
    await any_redis.delete(queue.keys.tenant_gauges)  # as a deployment upgraded mid-flight
    worker = make_leases("w1")
    await worker.finish([Result(lease, Outcome.OK, "1") for lease in await take(worker)])
    assert await any_redis.hgetall(queue.keys.tenant_gauges) == {}  # nothing below zero
    await submit(queue, "acme", 2)
    figures = await read_tenant_figures(queue, "acme")
    assert (figures["pending"], figures["running"], figures["succeeded"]) == (2, 0, 3)

"""The fleet-wide figures: counters kept by the scripts in the call that changes state, read back
by read_metrics, on fakeredis and a real redis-server."""

from __future__ import annotations

import asyncio
import re

from redis.asyncio import Redis

from app.core.keys import Keys
from app.core.leases import Outcome, Result
from app.core.metrics import DURATION_BUCKETS, OTHER_TENANTS, read_metrics
from app.core.models import JobSpec
from app.core.queue import Queue
from app.core.scaler_state import ScalerRecord
from app.core.scripts import source
from tests.app.conftest import LEASE_S, MakeLeases, take


def test_the_scripts_and_the_reader_share_the_duration_buckets() -> None:
    lua = re.search(r"DURATION_BUCKETS = \{([^}]*)\}", source("finish"))
    assert lua is not None
    assert [float(x) for x in lua.group(1).split(",")] == list(DURATION_BUCKETS)


async def test_ended_jobs_are_counted_by_queue_status_and_tenant_with_their_durations(
    queue: Queue, make_leases: MakeLeases
) -> None:
    specs = [JobSpec(type="t", tenant="acme", max_attempts=1) for _ in range(3)]
    await queue.submit_many([*specs, JobSpec(type="t", queue="later", delay_s=60)])
    leases = make_leases("w1")
    ok, bad, stopped = await take(leases)
    await asyncio.sleep(0.06)
    recorded = await leases.finish(
        [
            Result(ok, Outcome.OK, "1"),
            Result(bad, Outcome.ERROR, '{"type":"E","message":"m"}', 0),  # no attempts left
            Result(stopped, Outcome.CANCELLED, '{"type":"C","message":"c"}'),
        ]
    )
    assert recorded == [True, True, True]
    waiting = await queue.submit(JobSpec(type="t", tenant="zeta"))
    await queue.cancel(waiting.id)

    m = await read_metrics(queue, top_tenants=10)
    assert m.jobs == {"default": {"succeeded": 1, "failed": 1, "cancelled": 2}}
    assert m.totals == {"succeeded": 1, "failed": 1, "cancelled": 2}
    assert m.tenants == {
        "acme": {"succeeded": 1, "failed": 1, "cancelled": 1, "dead": 1},
        "zeta": {"cancelled": 1},
        "public": {"scheduled": 1},
    }
    assert m.dead_lettered == {"default": 1}
    durations = m.durations["default"]
    assert durations.count == 3  # every recorded attempt, whatever its outcome
    assert 3 * 0.05 <= durations.sum_s < 3 * 5
    below_50ms = dict(durations.buckets)[0.05]
    assert below_50ms == 0
    assert [(q.queue, q.scheduled) for q in m.queues] == [("default", 0), ("later", 1)]


async def test_only_the_busiest_tenants_have_series_of_their_own(
    queue: Queue, make_leases: MakeLeases
) -> None:
    busy = [JobSpec(type="t", tenant=f"big{i}") for i in range(3) for _ in range(i + 2)]
    quiet = [JobSpec(type="t", tenant=f"small{i}") for i in range(5)]
    await queue.submit_many([*busy, *quiet])
    leases = make_leases("w1")
    await leases.finish([Result(lease, Outcome.OK, "1") for lease in await take(leases)])
    m = await read_metrics(queue, top_tenants=2)
    assert m.tenants == {
        "big2": {"succeeded": 4},
        "big1": {"succeeded": 3},
        OTHER_TENANTS: {"succeeded": 2 + 5},
    }


async def test_reclaimed_entries_and_lost_leases_are_counted_fleet_wide(
    queue: Queue, make_leases: MakeLeases
) -> None:
    await queue.submit(JobSpec(type="t"))
    slow, rescuer = make_leases("slow"), make_leases("rescuer")
    [lease] = await take(slow)
    await asyncio.sleep(LEASE_S + 0.05)
    claimed = await rescuer.claim("default", 10)
    assert len(claimed.leases) == 1
    assert await slow.extend([lease]) == [0]  # the beat notices
    assert await slow.finish([Result(lease, Outcome.OK, "1")]) == [False]  # and the late finish
    [taken] = claimed.leases
    await rescuer.finish([Result(taken, Outcome.OK, "1")])
    assert await rescuer.extend([taken]) == [0]  # a beat racing its own finish: over, not lost
    m = await read_metrics(queue, top_tenants=10)
    assert (m.reclaimed, m.lease_lost) == (1, 2)


async def test_live_workers_limiter_usage_and_the_scalers_last_decision_are_read(
    any_redis: Redis, queue: Queue, make_leases: MakeLeases
) -> None:
    m = await read_metrics(queue, top_tenants=10)
    assert (m.workers, m.desired_workers) == (0, None)
    assert m.limiters["global"].limit == 60
    await make_leases("w1").register('{"host": "h"}', 10_000)
    scaler = ScalerRecord(any_redis, Keys(), "s", lock_ttl_ms=1000, decisions_maxlen=10)
    lead = await scaler.lead()
    assert lead.fence is not None
    await scaler.commit(lead.fence, {}, {"current": 1, "desired": 3, "reason": "r"})
    m = await read_metrics(queue, top_tenants=10)
    assert (m.workers, m.desired_workers) == (1, 3)

"""The scaler's shared record (leader lock, fenced state, capped decision log) and the readings
it polls, on fakeredis and a real redis-server."""

from __future__ import annotations

import asyncio
import time

import orjson
from redis.asyncio import Redis

from app.core.keys import GLOBAL_LIMITER, Keys
from app.core.limiter import Limiter
from app.core.models import JobSpec
from app.core.queue import Queue
from app.core.scaler_signals import LimiterUsage, limiter_usage, read_scaler_inputs
from app.core.scaler_state import ScalerRecord
from app.core.settings import CoreSettings
from tests.app.conftest import MakeLeases, take

TTL_MS = 300


def record(redis: Redis, owner: str, maxlen: int = 100) -> ScalerRecord:
    return ScalerRecord(redis, Keys(), owner, lock_ttl_ms=TTL_MS, decisions_maxlen=maxlen)


async def test_the_first_scaler_leads_and_the_second_stands_by(any_redis: Redis) -> None:
    a, b = record(any_redis, "a"), record(any_redis, "b")
    first = await a.lead()
    assert (first.fence, first.leader, first.state) == (1, "a", None)
    second = await b.lead()
    assert (second.fence, second.leader) == (None, "a")
    assert abs(second.now_ms - time.time() * 1000) < 5_000


async def test_renewing_keeps_the_fence_and_the_lock_alive(any_redis: Redis) -> None:
    a, b = record(any_redis, "a"), record(any_redis, "b")
    for _ in range(4):
        assert (await a.lead()).fence == 1
        await asyncio.sleep(TTL_MS / 1000 / 3)
    assert (await b.lead()).fence is None


async def test_a_standby_takes_over_with_a_higher_fence_once_the_lock_expires(
    any_redis: Redis,
) -> None:
    a, b = record(any_redis, "a"), record(any_redis, "b")
    assert (await a.lead()).fence == 1
    deadline = time.monotonic() + 5
    while (lead := await b.lead()).fence is None:
        assert time.monotonic() < deadline, "the standby never took over"
        await asyncio.sleep(0.05)
    assert (lead.fence, lead.leader) == (2, "b")
    assert (await a.lead()).fence is None


async def test_a_deposed_leader_cannot_write(any_redis: Redis) -> None:
    a, b = record(any_redis, "a"), record(any_redis, "b")
    await a.lead()
    assert await a.commit(1, {"n": 1}, {"reason": "first"})
    await any_redis.delete(Keys().scaler_leader)  # the lock expired while "a" was paused
    assert (await b.lead()).fence == 2

    assert not await a.commit(1, {"n": 99}, {"reason": "stale"})
    lead = await b.lead()
    assert lead.state == {"n": 1}
    assert [d["reason"] for d in await b.decisions()] == ["first"]


async def test_committed_state_is_what_the_next_leader_reads(any_redis: Redis) -> None:
    a = record(any_redis, "a")
    await a.lead()
    assert await a.commit(1, {"last_change_ms": 5}, {"reason": "r"})
    assert await a.resign(1)
    lead = await record(any_redis, "b").lead()
    assert (lead.fence, lead.state) == (2, {"last_change_ms": 5})


async def test_resigning_frees_the_lock_at_once_and_only_for_its_holder(any_redis: Redis) -> None:
    a, b = record(any_redis, "a"), record(any_redis, "b")
    await a.lead()
    assert not await b.resign(1)
    assert not await a.resign(7)
    assert (await b.lead()).fence is None
    assert await a.resign(1)
    assert (await b.lead()).fence == 2


async def test_the_decision_log_is_capped_and_newest_first(any_redis: Redis) -> None:
    a = record(any_redis, "a", maxlen=5)
    await a.lead()
    for i in range(12):
        assert await a.commit(1, {}, {"reason": f"r{i}"})
    assert await any_redis.xlen(Keys().scaler_decisions) == 5
    assert [d["reason"] for d in await a.decisions(3)] == ["r11", "r10", "r9"]


async def test_readings_count_waiting_running_due_delayed_and_live_workers(
    any_redis: Redis, queue: Queue, make_leases: MakeLeases
) -> None:
    await queue.submit_many([JobSpec(type="n") for _ in range(5)])
    await queue.submit_many([JobSpec(type="n", queue="other") for _ in range(2)])
    await queue.submit(JobSpec(type="n", delay_s=3600))
    await take(make_leases("w1"), free=2)
    await any_redis.hset(queue.keys.workers, "w1", orjson.dumps({"host": "h", "busy": 2}))
    now_ms = (await record(any_redis, "a").lead()).now_ms

    readings = await read_scaler_inputs(queue, ["default"], now_ms)
    assert [(s.queue, s.waiting, s.running) for s in readings.queues] == [("default", 3, 2)]
    assert readings.due_delayed == 0
    assert readings.workers == [{"host": "h", "busy": 2}]
    assert readings.limiter == LimiterUsage(used=0, limit=60)  # GLOBAL_RPM_LIMIT's default

    every = await read_scaler_inputs(queue, None, now_ms + 3_600_001)
    assert [s.queue for s in every.queues] == ["default", "other"]
    assert every.due_delayed == 1


async def test_the_global_limiters_usage_is_the_turns_it_granted_and_none_when_off(
    any_redis: Redis, settings: CoreSettings
) -> None:
    limited = Queue(any_redis, settings.model_copy(update={"global_rpm_limit": 30}))
    limiter = Limiter(any_redis, limited.keys, limited.settings.rates)
    for _ in range(3):
        await limiter.take(GLOBAL_LIMITER, horizon_s=0)  # only turns due now: one
    assert await limiter_usage(limited) == LimiterUsage(used=1, limit=30)
    off = Queue(any_redis, settings.model_copy(update={"global_rpm_limit": 0}))
    assert await limiter_usage(off) is None


async def test_the_lock_carries_its_ttl(any_redis: Redis) -> None:
    await record(any_redis, "a").lead()
    assert 0 < await any_redis.pttl(Keys().scaler_leader) <= TTL_MS

"""The flow line ``tide dev`` prints: jobs finished per second from the events stream, the queue's
depth, and the workers up; quiet while nothing happens."""

from __future__ import annotations

import asyncio

import orjson
import pytest
from redis.asyncio import Redis

from app.core.leases import LeaseClient, Outcome, Result
from app.core.models import JobSpec
from app.core.queue import Queue
from app.core.settings import CoreSettings
from app.dev.flow import Flow, FlowMeter, show_flow

pytestmark = pytest.mark.redis


async def finish(leases: LeaseClient, count: int, outcome: Outcome) -> None:
    await leases.ensure_group("default")
    started = await leases.start(await leases.read(["default"], count, 10))
    data = "null" if outcome is Outcome.OK else orjson.dumps({"type": "E", "message": "m"}).decode()
    await leases.finish([Result(lease, outcome, data) for lease in started])


async def test_the_meter_counts_what_finished_since_it_began(
    real_redis: Redis, settings: CoreSettings
) -> None:
    queue = Queue(real_redis, settings)
    leases = LeaseClient(real_redis, settings, "w1")
    await queue.submit(JobSpec(type="t"))
    await finish(leases, 1, Outcome.OK)  # before the meter began: not this run's flow
    await asyncio.sleep(0.01)
    meter = FlowMeter(queue, ["default"])
    await meter.begin()
    await queue.submit_many([JobSpec(type="t") for _ in range(2)])
    await queue.submit_many([JobSpec(type="t", max_attempts=1) for _ in range(3)])
    await finish(leases, 2, Outcome.OK)
    await finish(leases, 2, Outcome.ERROR)  # the last attempt of each: failed
    await leases.start(await leases.read(["default"], 1, 10))  # one left running
    flow = await meter.read(workers=1, workers_wanted=2)
    assert (flow.succeeded, flow.failed, flow.waiting, flow.running) == (2, 2, 0, 1)
    line = flow.line()
    assert "succeeded/s" in line
    assert "running 1" in line
    assert "workers 1/2" in line
    again = await meter.read(workers=2, workers_wanted=2)
    assert (again.succeeded, again.failed) == (0, 0)


async def test_an_idle_flow_is_shown_once_then_kept_quiet(
    real_redis: Redis, settings: CoreSettings
) -> None:
    lines: list[str] = []
    stop = asyncio.Event()
    meter = FlowMeter(Queue(real_redis, settings), ["default"])
    shown = asyncio.create_task(show_flow(meter, lambda: (1, 1), stop, lines.append, 0.02))
    await asyncio.sleep(0.5)
    stop.set()
    await asyncio.wait_for(shown, 5)
    assert len(lines) == 1
    assert "waiting 0" in lines[0]


def test_rates_are_per_second() -> None:
    flow = Flow(seconds=5, succeeded=50, failed=5, waiting=1, running=2, scheduled=3, workers=2,
                workers_wanted=2)  # fmt: skip
    assert flow.line().startswith("10.0 succeeded/s  1.0 failed/s")

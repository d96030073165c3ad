"""Demo load for ``tide dev --demo``: a trickle of mixed jobs with a burst now and then, so the
dashboard and the autoscaler have something to show. Uses only the built-in task types."""

from __future__ import annotations

import asyncio
import random
from contextlib import suppress

import structlog
from redis.exceptions import RedisError

from app.core.models import JobSpec
from app.core.queue import Queue

log = structlog.get_logger("tide.demo")

TICK_S = 1.0
TRICKLE = (1, 3)
"""Jobs per tick between bursts (inclusive range)."""
BURST = (30, 80)
BURST_EVERY_S = (30.0, 60.0)
FIRST_BURST_S = 10.0
"""Soon enough that someone watching the dashboard sees the fleet react in the first minute."""

_WEIGHTS = {"sleep": 40, "echo": 25, "cpu": 15, "noop": 15, "fail": 5}


def demo_jobs(rng: random.Random, count: int, queue: str = "default") -> list[JobSpec]:
    """``count`` jobs of the built-in types, mostly short sleeps, a few failures."""
    kinds = rng.choices(list(_WEIGHTS), weights=list(_WEIGHTS.values()), k=count)
    return [_job(rng, kind, queue) for kind in kinds]


def _job(rng: random.Random, kind: str, queue: str) -> JobSpec:
    if kind == "sleep":
        seconds = round(rng.uniform(0.2, 3.0), 2)
        return JobSpec(type="sleep", payload={"seconds": seconds}, queue=queue)
    if kind == "echo":
        message = f"hello #{rng.randrange(10_000)}"
        return JobSpec(type="echo", payload={"message": message}, queue=queue)
    if kind == "cpu":
        return JobSpec(type="cpu", payload={"ms": rng.randint(10, 200)}, queue=queue)
    if kind == "fail":
        payload = {"message": "a demo failure (retried, then dead-lettered)"}
        return JobSpec(type="fail", payload=payload, queue=queue, max_attempts=2)
    return JobSpec(type="noop", queue=queue)


async def run_demo(
    queue: Queue,
    stop: asyncio.Event,
    *,
    queue_name: str = "default",
    rng: random.Random | None = None,
) -> None:
    """Submit demo jobs until ``stop`` is set. Redis errors are logged and the loop carries on."""
    rng = rng or random.Random()
    loop = asyncio.get_running_loop()
    next_burst = loop.time() + FIRST_BURST_S
    submitted = 0
    while not stop.is_set():
        count = rng.randint(*TRICKLE)
        burst = loop.time() >= next_burst
        if burst:
            count = rng.randint(*BURST)
            next_burst = loop.time() + rng.uniform(*BURST_EVERY_S)
        try:
            await queue.submit_many(demo_jobs(rng, count, queue_name))
        except RedisError as exc:
            log.warning("demo.submit_failed", error=str(exc))
        else:
            submitted += count
            if burst:
                log.info("demo.burst", jobs=count, submitted=submitted)
        with suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), TICK_S)

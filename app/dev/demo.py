"""Demo load for ``tide dev --demo``: a trickle of mixed jobs, and now and then a wave, so the
dashboard and the autoscaler have something to show. Uses only the built-in task types.

The shape fits ``tide dev``'s scaler (a 2 s poll, 5 s up-cooldown, 30 s down-cooldown, the
default step table, workers of 5 jobs): a wave outruns the workers for a while, so the fleet
grows step by step to several workers; the calm after it lasts long enough for the fleet to
shrink back to one before the next wave.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass, replace

import structlog
from redis.exceptions import RedisError

from app.core.models import JobSpec
from app.core.queue import Queue

log = structlog.get_logger("tide.demo")


@dataclass(frozen=True, slots=True)
class DemoShape:
    """Jobs per tick (inclusive ranges, drawn afresh each time) and how long each phase lasts."""

    tick_s: float = 1.0
    trickle: tuple[int, int] = (1, 3)
    wave: tuple[int, int] = (15, 25)
    wave_ticks: tuple[int, int] = (15, 25)
    calm_ticks: tuple[int, int] = (60, 90)
    first_wave_tick: int = 10
    """Soon enough that someone watching sees the fleet react in the first minute."""


def demo_ticks(rng: random.Random, shape: DemoShape = DemoShape()) -> Iterator[int]:
    """How many jobs to submit at each tick, forever: a calm trickle, then a wave, and again."""
    calm = shape.first_wave_tick
    while True:
        for _ in range(calm):
            yield rng.randint(*shape.trickle)
        for _ in range(rng.randint(*shape.wave_ticks)):
            yield rng.randint(*shape.wave)
        calm = rng.randint(*shape.calm_ticks)


_WEIGHTS = {"sleep": 40, "echo": 25, "cpu": 15, "noop": 15, "fail": 5}
DEMO_TENANT = "demo"
"""The demo's jobs have a tenant of their own: they never use up the slots of ``public``, the
tenant of every request while auth is off, so your own curl next to the demo is never a 429."""


def demo_jobs(rng: random.Random, count: int, queue: str = "default") -> list[JobSpec]:
    """``count`` jobs of the built-in types, mostly short sleeps, a few failures."""
    kinds = rng.choices(list(_WEIGHTS), weights=list(_WEIGHTS.values()), k=count)
    return [replace(_job(rng, kind, queue), tenant=DEMO_TENANT) for kind in kinds]


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
    shape: DemoShape = DemoShape(),
) -> None:
    """Submit demo jobs until ``stop`` is set. Redis errors are logged and the loop carries on."""
    rng = rng or random.Random()
    for count in demo_ticks(rng, shape):
        if stop.is_set():
            return
        try:
            await queue.submit_many(demo_jobs(rng, count, queue_name))
        except RedisError as exc:
            log.warning("demo.submit_failed", error=str(exc))
        with suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), shape.tick_s)

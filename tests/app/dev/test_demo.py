"""The demo load generator: built-in task types only, waves that the dev scaler follows up and
back down, and it stops when told."""

from __future__ import annotations

import asyncio
import itertools
import random

from redis.asyncio import Redis

from app.core.queue import Queue
from app.core.settings import CoreSettings
from app.dev.demo import DEMO_TENANT, DemoShape, demo_jobs, demo_ticks, run_demo
from app.dev.scaler_settings import DevScalerSettings
from scaler.simulate import Model, simulate

PAYLOAD_KEYS = {"sleep": {"seconds"}, "echo": {"message"}, "cpu": {"ms"}, "fail": {"message"}}


def test_demo_jobs_use_only_the_builtin_types() -> None:
    jobs = demo_jobs(random.Random(7), 500, queue="demo")
    assert len(jobs) == 500
    assert {job.type for job in jobs} == {"sleep", "echo", "cpu", "fail", "noop"}
    assert {job.queue for job in jobs} == {"demo"}
    assert {job.tenant for job in jobs} == {DEMO_TENANT}  # never public's limits
    for job in jobs:
        if job.type == "noop":
            assert job.payload is None
        else:
            assert set(job.payload) == PAYLOAD_KEYS[job.type]
    assert all(0 < job.payload["seconds"] <= 3 for job in jobs if job.type == "sleep")


async def test_run_demo_submits_until_stopped(fake_redis: Redis, settings: CoreSettings) -> None:
    queue = Queue(fake_redis, settings)
    stop = asyncio.Event()
    task = asyncio.create_task(run_demo(queue, stop, queue_name="demo", rng=random.Random(1)))
    await asyncio.sleep(0.2)
    stop.set()
    await asyncio.wait_for(task, 2)
    (stats,) = await queue.stats(["demo"])
    assert 1 <= stats.waiting <= 3


def test_demo_ticks_trickle_then_wave_then_calm_again() -> None:
    shape = DemoShape(first_wave_tick=10, wave_ticks=(15, 15), calm_ticks=(60, 60))
    ticks = list(itertools.islice(demo_ticks(random.Random(3), shape), 10 + 15 + 60))
    low, high = shape.trickle
    assert all(low <= n <= high for n in ticks[:10])
    assert all(shape.wave[0] <= n <= shape.wave[1] for n in ticks[10:25])
    assert all(low <= n <= high for n in ticks[25:])


def test_a_demo_wave_grows_the_dev_fleet_to_several_workers_and_the_calm_shrinks_it() -> None:
    """The dev scaler's own policy against the demo's arrivals, with workers that take 2 s to
    start and then finish about 7 jobs a second (5 slots, the demo's jobs last 0.7 s on
    average): three workers or more within the first minute, one again within two minutes of
    the peak."""
    config = DevScalerSettings().policy
    model = Model(concurrency=7, job_s=1.0, startup_s=2.0, poll_s=2.0, drain_s=0)
    for seed in range(5):
        arrivals = [float(n) for n in itertools.islice(demo_ticks(random.Random(seed)), 300)]
        desired = simulate(arrivals, config, model).desired
        peak = desired.index(max(desired[:60]))
        assert desired[peak] >= 3, (seed, desired)
        assert 1 in desired[peak : peak + 120], (seed, desired)

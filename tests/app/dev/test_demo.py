"""The demo load generator: built-in task types only, and it stops when told."""

from __future__ import annotations

import asyncio
import random

from redis.asyncio import Redis

from app.core.queue import Queue
from app.core.settings import CoreSettings
from app.dev.demo import demo_jobs, run_demo

PAYLOAD_KEYS = {"sleep": {"seconds"}, "echo": {"message"}, "cpu": {"ms"}, "fail": {"message"}}


def test_demo_jobs_use_only_the_builtin_types() -> None:
    jobs = demo_jobs(random.Random(7), 500, queue="demo")
    assert len(jobs) == 500
    assert {job.type for job in jobs} == {"sleep", "echo", "cpu", "fail", "noop"}
    assert {job.queue for job in jobs} == {"demo"}
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

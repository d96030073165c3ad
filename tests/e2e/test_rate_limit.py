"""The global rate limit holds across worker processes (GLOBAL_RPM_LIMIT, shared in Redis).

A real minute would make the test last minutes: GLOBAL_RPM_PERIOD_S shortens the window the
limit counts over, and the invariant is the same one, checked over every window of that length.
"""

from __future__ import annotations

import time

import pytest
from redis.asyncio import Redis

from app.core.models import JobSpec, JobStatus
from app.core.queue import Queue
from tests.e2e.conftest import SpawnWorker
from tests.e2e.tasks import RUNS, STARTS
from tests.helpers import wait_terminal

pytestmark = pytest.mark.redis

LIMIT, BURST, PERIOD_S = 60, 5, 4.0
WAKE_JITTER_S = 0.03
"""Turns come exactly one interval (here 67 ms) apart, so turn n + LIMIT + BURST falls exactly one
period after turn n. A start is its turn plus the worker's wake-up delay: when turn n wakes a few
ms late and the later one does not, both land in one period. Windows are shortened by that much,
less than one interval, so one extra start per window still fails the test."""


async def test_three_workers_together_never_start_more_than_the_global_limit_per_window(
    queue: Queue, real_redis: Redis, spawn_worker: SpawnWorker
) -> None:
    limits = {
        "global_rpm_limit": LIMIT,
        "global_rpm_burst": BURST,
        "global_rpm_period_s": PERIOD_S,
    }
    for _ in range(3):
        spawn_worker(concurrency=5, **limits)
    began = time.time()
    jobs = await queue.submit_many([JobSpec(type="limited") for _ in range(200)])
    done = await wait_terminal(queue, [j.id for j in jobs], timeout_s=60)

    assert {j.status for j in done} == {JobStatus.SUCCEEDED}
    assert all(j.attempts == 1 for j in done)
    runs = await real_redis.hgetall(RUNS)
    assert len(runs) == 200
    assert set(runs.values()) == {"1"}, "a job ran twice"
    starts = sorted(float(t) for t in await real_redis.lrange(STARTS, 0, -1))
    assert len(starts) == 200
    window = PERIOD_S - WAKE_JITTER_S
    busiest = max(sum(1 for t in starts if s <= t < s + window) for s in starts)
    assert busiest <= LIMIT + BURST
    # and the fleet did run at the limit: 200 starts need (200 - LIMIT - BURST) more intervals
    # after the first window's worth
    assert starts[-1] - began >= (200 - LIMIT - BURST) * PERIOD_S / LIMIT

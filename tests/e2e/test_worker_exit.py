"""How a worker process ends: a crash exits non-zero at once, and a stop never hands over a job
whose sync task thread is still running it."""

from __future__ import annotations

import signal
import sys
import time

import pytest
from redis.asyncio import Redis

from app.core.models import JobSpec, JobStatus
from app.core.queue import Queue
from app.dev.redis_server import RedisServer
from tests.e2e.conftest import Proc, SpawnWorker, process_env, stop
from tests.e2e.tasks import RUNS
from tests.helpers import wait_status, wait_terminal

pytestmark = pytest.mark.redis


def test_a_worker_that_crashes_exits_non_zero_within_seconds(redis_server: RedisServer) -> None:
    args = [sys.executable, "-m", "workers", "--tasks", "tests.e2e.tasks", "--queues", ","]
    proc = Proc(args, process_env(redis_server))
    started = time.monotonic()
    try:
        code = proc.wait(timeout=20)
        took = time.monotonic() - started
        assert code != 0, proc.output()
        assert took < 10, proc.output()
    finally:
        proc.kill()


async def test_stopping_waits_for_a_sync_task_thread_and_records_its_real_outcome(
    queue: Queue, real_redis: Redis, spawn_worker: SpawnWorker
) -> None:
    leaving = spawn_worker(concurrency=1, shutdown_grace_s=0.2)
    job = await queue.submit(
        JobSpec(type="tracked_sync", payload={"first_seconds": 2.5, "seconds": 0})
    )
    running = await wait_status(queue, job.id, JobStatus.RUNNING)
    spawn_worker(concurrency=1)  # would take the job over if it were released
    asked = time.monotonic()
    assert stop(leaving) == 0, leaving.output()
    assert time.monotonic() - asked < 5  # the thread's 2.5 s, not a lease or a hang
    (done,) = await wait_terminal(queue, [job.id])
    assert (done.status, done.attempts, done.worker) == (JobStatus.SUCCEEDED, 1, running.worker)
    assert await real_redis.hget(RUNS, job.id) == "1"
    assert "worker.released" not in leaving.output()


async def test_a_sync_task_thread_past_the_shutdown_limit_is_left_to_its_lease_not_released(
    queue: Queue, real_redis: Redis, spawn_worker: SpawnWorker
) -> None:
    leaving = spawn_worker(concurrency=1, shutdown_grace_s=0.2, thread_shutdown_limit_s=0.5)
    job = await queue.submit(
        JobSpec(type="tracked_sync", payload={"first_seconds": 60, "seconds": 0})
    )
    running = await wait_status(queue, job.id, JobStatus.RUNNING)
    asked = time.monotonic()
    leaving.signal(signal.SIGTERM)
    assert leaving.wait(timeout=15) != 0
    assert time.monotonic() - asked < 5, leaving.output()
    after = await queue.get(job.id)
    assert after is not None  # not released: still this attempt's until its lease runs out
    assert (after.status, after.attempts, after.worker) == (JobStatus.RUNNING, 1, running.worker)
    assert "worker.released" not in leaving.output()
    spawn_worker(concurrency=1)
    (done,) = await wait_terminal(queue, [job.id], timeout_s=15)
    assert (done.status, done.attempts) == (JobStatus.SUCCEEDED, 2)
    assert await real_redis.hget(RUNS, job.id) == "2"

"""Real workers against hostile task code (``tests.workers.hostile_tasks``) on a real
redis-server: every attempt ends with an outcome, the slot comes back, and the process stops
promptly even while a thread it cannot interrupt runs on."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import tempfile
from pathlib import Path

import pytest

import tests.workers.hostile_tasks  # noqa: F401 - registers the hostile tasks
import workers.builtin  # noqa: F401 - registers the built-in tasks
from app.core.models import JobSpec, JobStatus
from app.core.queue import Queue
from app.dev.redis_server import RedisServer
from tests.helpers import wait_status, wait_terminal
from tests.workers.conftest import StartWorker
from workers.tasks import TaskRegistry, registry

pytestmark = pytest.mark.redis

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def tasks() -> TaskRegistry:
    """The global registry, filled by importing the task modules as ``--tasks`` does."""
    return registry


FAILURES = [
    # type, payload, timeout_s, error type, attempts (of 2)
    ("raises_unprintable", None, 5.0, "Unprintable", 2),
    ("raises_surrogate", None, 5.0, "FileNotFoundError", 2),
    ("returns_object", None, 5.0, "NonRetryable", 1),
    ("returns_surrogate", None, 5.0, "NonRetryable", 1),
    ("exits_async", None, 5.0, "SystemExit", 2),
    ("exits_sync", None, 5.0, "SystemExit", 2),
    ("interrupts_async", None, 5.0, "KeyboardInterrupt", 2),
    ("interrupts_sync", None, 5.0, "KeyboardInterrupt", 2),
    ("awaits_cancelled_helper", None, 5.0, "CancelledError", 2),
    ("blocks", {"seconds": 0.6}, 0.2, "JobTimeout", 2),
    ("nobody_knows", None, 5.0, "UnknownTask", 2),
]


async def test_each_hostile_attempt_ends_with_its_error_and_gives_its_slot_back(
    queue: Queue, start_worker: StartWorker
) -> None:
    hostile = await queue.submit_many(
        [
            JobSpec(type=type_, payload=payload, timeout_s=timeout_s, max_attempts=2)
            for type_, payload, timeout_s, _, _ in FAILURES
        ]
    )
    fine = await queue.submit_many(
        [JobSpec(type=t) for t in ("decorated", "returns_coroutine", "echo")]
    )
    async with start_worker(worker_concurrency=1):
        failed = await wait_terminal(queue, [j.id for j in hostile], timeout_s=40)
        succeeded = await wait_terminal(queue, [j.id for j in fine])
    assert [(j.type, j.status, j.error["type"], j.attempts) for j in failed] == [
        (type_, JobStatus.FAILED, kind, attempts) for type_, _, _, kind, attempts in FAILURES
    ]
    assert [(j.status, j.result) for j in succeeded] == [
        (JobStatus.SUCCEEDED, "awaited"),
        (JobStatus.SUCCEEDED, "awaited"),
        (JobStatus.SUCCEEDED, None),
    ]


async def test_sync_jobs_stuck_past_their_timeout_do_not_keep_the_next_from_starting(
    queue: Queue, start_worker: StartWorker
) -> None:
    stuck = await queue.submit_many(
        [
            JobSpec(type="blocks", payload={"seconds": 10}, timeout_s=0.2, max_attempts=1)
            for _ in range(7)
        ]
    )
    async with start_worker(worker_concurrency=8):
        timed_out = await wait_terminal(queue, [j.id for j in stuck])
        eighth = await queue.submit(JobSpec(type="thread_name", timeout_s=3, max_attempts=1))
        (done,) = await wait_terminal(queue, [eighth.id])
    assert {j.error["type"] for j in timed_out} == {"JobTimeout"}
    assert done.status is JobStatus.SUCCEEDED
    assert done.result.startswith("tide-task-")


async def test_a_worker_process_survives_exits_in_threads_and_stops_at_once_past_lingering_ones(
    queue: Queue, redis_server: RedisServer
) -> None:
    jobs = await queue.submit_many(
        [
            JobSpec(type="exits_sync", max_attempts=1),
            JobSpec(type="interrupts_sync", max_attempts=1),
            JobSpec(type="blocks", payload={"seconds": 60}, timeout_s=0.2, max_attempts=1),
        ]
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_", "KEY_PREFIX"))}
    env.update(
        PYTHONPATH=str(ROOT),
        REDIS_URL=redis_server.url,
        LEASE_TIMEOUT_S="1",
        SHUTDOWN_GRACE_S="0.3",
        THREAD_SHUTDOWN_LIMIT_S="0.5",
    )
    with tempfile.TemporaryFile() as log:
        proc = await asyncio.create_subprocess_exec(
            *[sys.executable, "-m", "workers", "--tasks", "tests.workers.hostile_tasks"],
            *["--concurrency", "2"],
            cwd=ROOT,
            env=env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=log,
        )
        try:
            done = await wait_terminal(queue, [j.id for j in jobs], timeout_s=30)
            assert proc.returncode is None, "the worker died"
            # one thread lingers past its timeout; the other runs a job that outlasts the grace
            long = await queue.submit(JobSpec(type="blocks", payload={"seconds": 60}))
            await wait_status(queue, long.id, JobStatus.RUNNING)
            proc.send_signal(signal.SIGTERM)
            code = await asyncio.wait_for(proc.wait(), 15)  # not the 60 s of the threads
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        log.seek(0)
        output = log.read().decode(errors="replace")
    assert [j.error["type"] for j in done] == ["SystemExit", "KeyboardInterrupt", "JobTimeout"]
    # the thread still running its job outlived the limit: its lease is kept, not released
    assert code == 1, output
    assert "worker.threads_outlived_shutdown" in output
    assert "worker.released" not in output

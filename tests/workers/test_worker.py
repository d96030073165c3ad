"""The worker engine in-process on a real redis-server: results, retries, timeouts, cancel,
dead letters, delays, leases of long jobs, concurrency and draining."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from typing import Any

import orjson
import pytest
from pydantic import BaseModel
from redis.asyncio import Redis

from app.core.errors import NonRetryable
from app.core.leases import LeaseClient
from app.core.models import JobSpec, JobStatus
from app.core.queue import Queue
from tests.helpers import wait_status, wait_terminal
from tests.workers.conftest import StartWorker
from workers.settings import WorkerSettings
from workers.tasks import Context, TaskRegistry

pytestmark = pytest.mark.redis


class Order(BaseModel):
    sku: str
    qty: int


async def test_jobs_run_once_and_record_their_results(
    queue: Queue, tasks: TaskRegistry, start_worker: StartWorker
) -> None:
    runs: Counter[str] = Counter()

    @tasks.task
    async def echo(ctx: Context, payload: Any) -> Any:
        runs[ctx.job_id] += 1
        return payload

    jobs = await queue.submit_many([JobSpec(type="echo", payload={"n": i}) for i in range(40)])
    async with start_worker() as worker:
        done = await wait_terminal(queue, [j.id for j in jobs])
    assert [j.result for j in done] == [{"n": i} for i in range(40)]
    assert {j.status for j in done} == {JobStatus.SUCCEEDED}
    assert {j.attempts for j in done} == {1}
    assert {j.worker for j in done} == {worker.id}
    assert set(runs.values()) == {1}
    assert all(j.started_at and j.finished_at and j.finished_at >= j.started_at for j in done)


async def test_failures_retry_with_growing_backoff_then_succeed(
    queue: Queue, tasks: TaskRegistry, start_worker: StartWorker
) -> None:
    seen: list[float] = []

    @tasks.task
    async def flaky(ctx: Context, payload: Any) -> str:
        seen.append(time.monotonic())
        if ctx.attempt < 3:
            raise RuntimeError(f"boom {ctx.attempt}")
        return "third time lucky"

    job = await queue.submit(JobSpec(type="flaky", max_attempts=3))
    async with start_worker(retry_backoff_s=0.2, retry_backoff_max_s=1.0):
        (done,) = await wait_terminal(queue, [job.id])
    assert done.status is JobStatus.SUCCEEDED
    assert done.attempts == 3
    assert done.result == "third time lucky"
    first_gap, second_gap = seen[1] - seen[0], seen[2] - seen[1]
    assert first_gap >= 0.1  # 0.2 s * jitter in [0.5, 1]
    assert second_gap >= 0.2  # 0.4 s * jitter


async def test_poison_job_is_dead_lettered_while_other_jobs_flow(
    queue: Queue, tasks: TaskRegistry, start_worker: StartWorker
) -> None:
    @tasks.task
    async def poison(ctx: Context, payload: Any) -> None:
        raise ValueError("always broken")

    @tasks.task
    async def fine(ctx: Context, payload: Any) -> int:
        await asyncio.sleep(0.01)
        return int(payload)

    bad = await queue.submit(JobSpec(type="poison", max_attempts=3))
    good = await queue.submit_many([JobSpec(type="fine", payload=i) for i in range(30)])
    async with start_worker():
        done = await wait_terminal(queue, [bad.id, *(j.id for j in good)])
    poisoned, rest = done[0], done[1:]
    assert poisoned.status is JobStatus.FAILED
    assert poisoned.attempts == 3
    assert poisoned.error == {"type": "ValueError", "message": "always broken"}
    assert {j.status for j in rest} == {JobStatus.SUCCEEDED}
    dead = await queue.dead_letters("default")
    assert [(d["job"], d["attempts"]) for d in dead] == [(bad.id, 3)]


async def test_non_retryable_errors_and_bad_payloads_fail_on_the_first_attempt(
    queue: Queue, tasks: TaskRegistry, start_worker: StartWorker
) -> None:
    @tasks.task
    async def refuse(ctx: Context, payload: Any) -> None:
        raise NonRetryable("not this one")

    @tasks.task
    async def order(ctx: Context, payload: Order) -> int:
        return payload.qty

    jobs = await queue.submit_many(
        [
            JobSpec(type="refuse", max_attempts=5),
            JobSpec(type="order", payload={"sku": "a"}, max_attempts=5),
            JobSpec(type="order", payload={"sku": "a", "qty": 2}),
        ]
    )
    async with start_worker():
        refused, invalid, valid = await wait_terminal(queue, [j.id for j in jobs])
    assert (refused.status, refused.attempts) == (JobStatus.FAILED, 1)
    assert refused.error == {"type": "NonRetryable", "message": "not this one"}
    assert (invalid.status, invalid.attempts) == (JobStatus.FAILED, 1)
    assert "qty" in invalid.error["message"]
    assert (valid.status, valid.result) == (JobStatus.SUCCEEDED, 2)


async def test_a_job_past_its_timeout_is_stopped_and_counts_as_a_failed_attempt(
    queue: Queue, tasks: TaskRegistry, start_worker: StartWorker
) -> None:
    @tasks.task
    async def hang(ctx: Context, payload: Any) -> None:
        await asyncio.sleep(30)

    job = await queue.submit(JobSpec(type="hang", timeout_s=0.2, max_attempts=2))
    started = time.monotonic()
    async with start_worker():
        (done,) = await wait_terminal(queue, [job.id])
    assert time.monotonic() - started < 5
    assert (done.status, done.attempts) == (JobStatus.FAILED, 2)
    assert done.error["type"] == "JobTimeout"


async def test_delayed_jobs_wait_until_they_are_due(
    queue: Queue, tasks: TaskRegistry, start_worker: StartWorker
) -> None:
    @tasks.task
    async def tick(ctx: Context, payload: Any) -> None:
        return None

    job = await queue.submit(JobSpec(type="tick", delay_s=0.6))
    assert job.status is JobStatus.SCHEDULED
    async with start_worker():
        await asyncio.sleep(0.3)
        waiting = await queue.get(job.id)
        assert waiting is not None
        assert waiting.status is JobStatus.SCHEDULED
        (done,) = await wait_terminal(queue, [job.id])
    assert done.status is JobStatus.SUCCEEDED
    assert done.started_at is not None
    assert float(done.started_at) - float(done.created_at) >= 600


async def test_cancelled_pending_job_never_runs(
    queue: Queue, tasks: TaskRegistry, start_worker: StartWorker
) -> None:
    runs: list[str] = []

    @tasks.task
    async def work(ctx: Context, payload: Any) -> None:
        runs.append(ctx.job_id)

    doomed, kept = await queue.submit_many([JobSpec(type="work"), JobSpec(type="work")])
    assert await queue.cancel(doomed.id) == "cancelled"
    async with start_worker():
        cancelled, succeeded = await wait_terminal(queue, [doomed.id, kept.id])
    assert cancelled.status is JobStatus.CANCELLED
    assert succeeded.status is JobStatus.SUCCEEDED
    assert runs == [kept.id]


async def test_cancelled_running_job_stops_within_a_heartbeat(
    queue: Queue, tasks: TaskRegistry, start_worker: StartWorker
) -> None:
    stopped = asyncio.Event()

    @tasks.task
    async def long(ctx: Context, payload: Any) -> None:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            stopped.set()
            raise

    job = await queue.submit(JobSpec(type="long"))
    async with start_worker():
        await wait_status(queue, job.id, JobStatus.RUNNING)
        assert await queue.cancel(job.id) == "cancelling"
        asked = time.monotonic()
        (done,) = await wait_terminal(queue, [job.id], timeout_s=5)
    assert time.monotonic() - asked < 1.5  # heartbeats come every lease/3 = 0.33 s
    assert stopped.is_set()
    assert done.status is JobStatus.CANCELLED
    assert done.attempts == 1


async def test_a_job_five_times_longer_than_the_lease_runs_once(
    queue: Queue, tasks: TaskRegistry, start_worker: StartWorker
) -> None:
    runs: Counter[str] = Counter()

    @tasks.task
    async def slow(ctx: Context, payload: Any) -> str:
        runs[ctx.worker_id] += 1
        await asyncio.sleep(5.0)  # the lease is 1 s
        return ctx.worker_id

    job = await queue.submit(JobSpec(type="slow"))
    async with start_worker(), start_worker():
        (done,) = await wait_terminal(queue, [job.id], timeout_s=15)
    assert done.status is JobStatus.SUCCEEDED
    assert done.attempts == 1
    assert sum(runs.values()) == 1
    assert done.result == done.worker


async def test_never_runs_more_jobs_at_once_than_its_concurrency(
    queue: Queue, tasks: TaskRegistry, start_worker: StartWorker
) -> None:
    now_running = 0
    most = 0

    @tasks.task
    async def busy(ctx: Context, payload: Any) -> None:
        nonlocal now_running, most
        now_running += 1
        most = max(most, now_running)
        await asyncio.sleep(0.1)
        now_running -= 1

    jobs = await queue.submit_many([JobSpec(type="busy") for _ in range(20)])
    async with start_worker(worker_concurrency=3):
        await wait_terminal(queue, [j.id for j in jobs])
    assert most == 3


async def test_plain_functions_run_in_a_thread(
    queue: Queue, tasks: TaskRegistry, start_worker: StartWorker
) -> None:
    @tasks.task
    def blocking(ctx: Context, payload: Any) -> str:
        time.sleep(0.05)
        return threading.current_thread().name

    job = await queue.submit(JobSpec(type="blocking"))
    async with start_worker():
        (done,) = await wait_terminal(queue, [job.id])
    assert done.status is JobStatus.SUCCEEDED
    assert done.result != threading.main_thread().name


async def test_stopping_drains_then_releases_what_is_left_for_another_worker(
    queue: Queue, tasks: TaskRegistry, start_worker: StartWorker
) -> None:
    runs: list[str] = []

    @tasks.task
    async def stubborn(ctx: Context, payload: Any) -> int:
        runs.append(ctx.worker_id)
        if len(runs) == 1:
            await asyncio.sleep(30)
        return ctx.attempt

    @tasks.task
    async def quick(ctx: Context, payload: Any) -> str:
        await asyncio.sleep(0.2)
        return "done"

    slow, fast = await queue.submit_many([JobSpec(type="stubborn"), JobSpec(type="quick")])
    async with start_worker(shutdown_grace_s=0.5, lease_timeout_s=30.0) as first:
        await wait_status(queue, fast.id, JobStatus.RUNNING)
        first.request_stop()
        stopped_at = time.monotonic()
    assert time.monotonic() - stopped_at < 3
    finished_fast = await queue.get(fast.id)
    assert finished_fast is not None
    assert finished_fast.status is JobStatus.SUCCEEDED
    # The lease is 30 s, yet another worker takes the released job within its reclaim interval.
    async with start_worker(lease_timeout_s=30.0):
        (done,) = await wait_terminal(queue, [slow.id], timeout_s=5)
    assert time.monotonic() - stopped_at < 6
    # a released attempt is handed back: the job still has all its attempts
    assert (done.status, done.attempts, done.result) == (JobStatus.SUCCEEDED, 1, 1)
    assert len(runs) == 2
    assert runs[0] != runs[1]


async def test_entries_deleted_while_pending_are_counted_and_published(
    queue: Queue, real_redis: Redis, start_worker: StartWorker, wsettings: WorkerSettings
) -> None:
    ghost = LeaseClient(real_redis, wsettings, "ghost")
    await ghost.ensure_group("default")
    await queue.submit(JobSpec(type="noop"))
    (lease,) = await ghost.start(await ghost.read(["default"], 1, 100))
    await real_redis.xdel(queue.keys.queue("default"), lease.entry)  # behind everyone's back
    async with start_worker() as worker:
        deadline = time.monotonic() + 5
        while worker.counters.deleted_entries == 0:
            assert time.monotonic() < deadline, "the deleted entry was never reported"
            await asyncio.sleep(0.05)
        await asyncio.sleep(wsettings.heartbeat_interval_s + 0.1)  # next registry refresh
        info = orjson.loads(await real_redis.hget(queue.keys.workers, worker.id))
    assert info["deleted_entries"] == 1


async def test_a_worker_forgets_a_queue_that_is_empty_and_idle(
    queue: Queue, real_redis: Redis, start_worker: StartWorker
) -> None:
    once = await queue.submit(JobSpec(type="echo", queue="sent-once"))
    await queue.cancel(once.id)  # the queue's only job ends; its stream is empty
    assert "sent-once" in await queue.queue_names()
    await asyncio.sleep(0.3)  # idle past QUEUE_IDLE_FORGET_S below
    async with start_worker(queue_idle_forget_s=0.2):
        deadline = time.monotonic() + 10
        while "sent-once" in await queue.queue_names():
            assert time.monotonic() < deadline, "the worker never forgot the idle queue"
            await asyncio.sleep(0.05)
    assert not await real_redis.exists(queue.keys.queue("sent-once"))

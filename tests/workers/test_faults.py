"""The worker through faults on a real redis-server: Redis refusing writes, replies lost on the
wire (through ``tests.proxy``), an event loop blocked past the lease, fewer slots than queues,
threads that outlive their attempt, and a stop right after the last outcome."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from typing import Any

import pytest
from redis.asyncio import Redis
from structlog.testing import capture_logs

from app.core.leases import LeaseClient
from app.core.models import JobSpec, JobStatus
from app.core.queue import Queue
from app.core.scripts import source
from app.dev.redis_server import RedisServer
from tests.helpers import wait_status, wait_terminal
from tests.proxy import lossy_proxy, script_sha
from tests.workers.conftest import StartWorker
from workers.settings import WorkerSettings
from workers.tasks import Context, TaskRegistry

pytestmark = pytest.mark.redis


async def load_scripts(redis: Redis, *names: str) -> None:
    """So that the first EVALSHA of each runs at once (no NOSCRIPT round before it)."""
    for name in names:
        await redis.script_load(source(name))


async def test_outcomes_are_kept_while_redis_refuses_writes_and_recorded_once_it_accepts(
    queue: Queue, real_redis: Redis, tasks: TaskRegistry, start_worker: StartWorker
) -> None:
    gate = asyncio.Event()
    runs: Counter[str] = Counter()

    @tasks.task
    async def gated(ctx: Context, payload: Any) -> Any:
        runs[ctx.job_id] += 1
        await gate.wait()
        return payload

    jobs = await queue.submit_many([JobSpec(type="gated", payload=i) for i in range(5)])
    async with start_worker():
        for job in jobs:
            await wait_status(queue, job.id, JobStatus.RUNNING)
        await real_redis.config_set("maxmemory-policy", "noeviction")
        await real_redis.config_set("maxmemory", 1)  # every write is refused: OOM
        try:
            gate.set()  # the jobs end now; recording their outcomes fails meanwhile
            await asyncio.sleep(1.5)  # the outage: longer than the 1 s lease
        finally:
            await real_redis.config_set("maxmemory", 0)
        done = await wait_terminal(queue, [j.id for j in jobs], timeout_s=15)
    assert [(j.status, j.attempts, j.result) for j in done] == [
        (JobStatus.SUCCEEDED, 1, i) for i in range(5)
    ]
    assert set(runs.values()) == {1}


async def test_a_lost_reply_to_start_is_adopted_without_costing_an_attempt(
    queue: Queue,
    real_redis: Redis,
    redis_server: RedisServer,
    tasks: TaskRegistry,
    start_worker: StartWorker,
) -> None:
    runs: Counter[str] = Counter()

    @tasks.task
    async def once(ctx: Context, payload: Any) -> int:
        runs[ctx.job_id] += 1
        return ctx.attempt

    await load_scripts(real_redis, "start", "adopt")
    async with lossy_proxy("127.0.0.1", redis_server.port) as proxy:
        proxy.drop_reply_to(script_sha("start"))
        async with start_worker(redis_url=proxy.url, lease_timeout_s=5.0):
            job = await queue.submit(JobSpec(type="once", max_attempts=1))
            (done,) = await wait_terminal(queue, [job.id], timeout_s=4)  # within the lease
    assert proxy.dropped == 1
    assert (done.status, done.attempts, done.result) == (JobStatus.SUCCEEDED, 1, 1)
    assert runs[job.id] == 1


async def test_a_lost_reply_to_claim_is_adopted_at_once(
    queue: Queue,
    real_redis: Redis,
    redis_server: RedisServer,
    wsettings: WorkerSettings,
    tasks: TaskRegistry,
    start_worker: StartWorker,
) -> None:
    runs: Counter[str] = Counter()

    @tasks.task
    async def once(ctx: Context, payload: Any) -> int:
        runs[ctx.worker_id] += 1
        return ctx.attempt

    # a lease longer than the worker's blocking read (1 s), which may delay the adoption
    lease_s = 2.0
    ghost = LeaseClient(real_redis, wsettings, "ghost")  # starts the job, then dies
    await ghost.ensure_group("default")
    job = await queue.submit(JobSpec(type="once"))
    await ghost.start(await ghost.read(["default"], 1, 100))
    await load_scripts(real_redis, "claim", "adopt")
    await asyncio.sleep(lease_s + 0.1)  # the worker's first claim takes it over
    with capture_logs() as logs:
        async with lossy_proxy("127.0.0.1", redis_server.port) as proxy:
            proxy.drop_reply_to(script_sha("claim"))
            async with start_worker(redis_url=proxy.url, lease_timeout_s=lease_s) as worker:
                (done,) = await wait_terminal(queue, [job.id])
    assert proxy.dropped == 1
    assert (done.status, done.attempts, done.result) == (JobStatus.SUCCEEDED, 2, 2)
    assert runs == {worker.id: 1}
    assert [e["jobs"] for e in logs if e["event"] == "lease.adopted"] == [[job.id]]


async def test_a_lost_reply_to_finish_is_not_reported_as_a_lost_lease(
    queue: Queue,
    real_redis: Redis,
    redis_server: RedisServer,
    tasks: TaskRegistry,
    start_worker: StartWorker,
) -> None:
    @tasks.task
    async def quick(ctx: Context, payload: Any) -> str:
        return "ok"

    await load_scripts(real_redis, "finish")
    with capture_logs() as logs:
        async with lossy_proxy("127.0.0.1", redis_server.port) as proxy:
            proxy.drop_reply_to(script_sha("finish"))
            async with start_worker(redis_url=proxy.url) as worker:
                job = await queue.submit(JobSpec(type="quick"))
                (done,) = await wait_terminal(queue, [job.id])
                deadline = time.monotonic() + 5
                while worker.counters.processed + worker.counters.lost == 0:
                    assert time.monotonic() < deadline, "the finish was never retried"
                    await asyncio.sleep(0.02)
    assert proxy.dropped == 1
    assert (done.status, done.attempts, done.result) == (JobStatus.SUCCEEDED, 1, "ok")
    assert (worker.counters.processed, worker.counters.lost) == (1, 0)
    assert [e for e in logs if e["event"] == "lease.lost"] == []


async def test_a_task_blocking_the_event_loop_past_its_lease_keeps_its_job(
    queue: Queue, tasks: TaskRegistry, start_worker: StartWorker
) -> None:
    runs: Counter[str] = Counter()

    @tasks.task
    async def hog(ctx: Context, payload: Any) -> str:
        runs[ctx.job_id] += 1
        time.sleep(2.0)  # noqa: ASYNC251 - the fault under test: the lease is 1 s
        await asyncio.sleep(0.5)  # the reclaim and heartbeat loops run meanwhile
        return "mine"

    job = await queue.submit(JobSpec(type="hog"))
    async with start_worker(reclaim_interval_s=0.05) as worker:
        (done,) = await wait_terminal(queue, [job.id])
    assert (done.status, done.attempts, done.result) == (JobStatus.SUCCEEDED, 1, "mine")
    assert runs[job.id] == 1
    assert worker.counters.lost == 0


async def test_every_queue_is_served_at_once_with_fewer_free_slots_than_queues(
    queue: Queue, tasks: TaskRegistry, start_worker: StartWorker
) -> None:
    @tasks.task
    async def noop(ctx: Context, payload: Any) -> None:
        return None

    async with start_worker(worker_concurrency=1, queues="high,default"):
        for name in ["default", "high", "default"]:
            await asyncio.sleep(0.2)  # the worker is blocked in its read again
            submitted = time.monotonic()
            job = await queue.submit(JobSpec(type="noop", queue=name))
            await wait_terminal(queue, [job.id])
            assert time.monotonic() - submitted < 0.5, f"a job on {name} waited for the block"


async def test_a_thread_outliving_its_attempt_holds_its_slot_until_it_returns(
    queue: Queue, tasks: TaskRegistry, start_worker: StartWorker
) -> None:
    returned_at: list[float] = []
    started_at: list[float] = []

    @tasks.task
    def stuck(ctx: Context, payload: Any) -> None:
        time.sleep(1.0)
        returned_at.append(time.monotonic())

    @tasks.task
    async def after(ctx: Context, payload: Any) -> None:
        started_at.append(time.monotonic())

    async with start_worker(worker_concurrency=1):
        first = await queue.submit(JobSpec(type="stuck", timeout_s=0.2, max_attempts=1))
        (timed_out,) = await wait_terminal(queue, [first.id])
        second = await queue.submit(JobSpec(type="after"))
        (done,) = await wait_terminal(queue, [second.id])
    assert timed_out.error is not None
    assert timed_out.error["type"] == "JobTimeout"
    assert done.status is JobStatus.SUCCEEDED
    assert returned_at[0] <= started_at[0] < returned_at[0] + 0.5  # woken when it returned
    assert threading.active_count() >= 1


async def test_stopping_right_after_the_last_outcomes_is_prompt_and_loses_none(
    queue: Queue, tasks: TaskRegistry, start_worker: StartWorker
) -> None:
    @tasks.task
    async def quick(ctx: Context, payload: Any) -> int:
        return int(payload)

    with capture_logs() as logs:
        async with start_worker() as worker:
            jobs = await queue.submit_many([JobSpec(type="quick", payload=i) for i in range(20)])
            await wait_terminal(queue, [j.id for j in jobs])
            asked = time.monotonic()
            worker.request_stop()
        took = time.monotonic() - asked
    assert took < 3
    assert [e for e in logs if e["event"] == "worker.unfinished_outcomes"] == []
    assert worker.counters.processed == 20


async def test_a_damaged_job_record_does_not_stop_the_worker(
    queue: Queue, real_redis: Redis, tasks: TaskRegistry, start_worker: StartWorker
) -> None:
    @tasks.task
    async def echo(ctx: Context, payload: Any) -> Any:
        return payload

    @tasks.task
    async def fail(ctx: Context, payload: Any) -> None:
        raise RuntimeError("retry me")

    damaged, fine = await queue.submit_many([JobSpec(type="echo", payload=i) for i in range(2)])
    failing = await queue.submit(JobSpec(type="fail", max_attempts=5))
    key = queue.keys.job(damaged.id)
    await real_redis.hset(key, "timeout_s", "soon")  # runs with the default timeout
    await real_redis.hdel(queue.keys.job(failing.id), "max_attempts")  # one attempt, then failed
    async with start_worker():
        (done,) = await wait_terminal(queue, [fine.id], timeout_s=10)
        deadline = time.monotonic() + 10
        while await real_redis.hget(key, "status") != "succeeded":
            assert time.monotonic() < deadline, await real_redis.hgetall(key)
            await asyncio.sleep(0.05)
        while await real_redis.hget(queue.keys.job(failing.id), "status") != "failed":
            assert time.monotonic() < deadline, await real_redis.hgetall(queue.keys.job(failing.id))
            await asyncio.sleep(0.05)
    assert (done.status, done.result) == (JobStatus.SUCCEEDED, 1)
    assert await real_redis.hget(key, "result") == "0"

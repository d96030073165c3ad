"""Worker processes killed for real: kill -9, SIGSTOP past the lease, SIGTERM, Redis crashes."""

from __future__ import annotations

import asyncio
import random
import signal
import time

import pytest
from redis.asyncio import Redis

from app.core.keys import GROUP, Keys
from app.core.models import JobSpec, JobStatus
from app.core.queue import Queue
from app.core.settings import CoreSettings
from app.dev.redis_server import RedisServer
from tests.e2e.conftest import Proc, SpawnWorker, stop, wait_registered
from tests.e2e.tasks import RUNS
from tests.helpers import wait_status, wait_terminal

pytestmark = pytest.mark.redis


async def busy_worker(redis: Redis, workers: list[Proc], timeout_s: float = 5.0) -> Proc | None:
    """One of ``workers`` that holds a lease now (a consumer's name carries its pid), so that a
    kill lands mid-job however slowly a loaded machine starts them; None once the work ran out."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        consumers = await redis.xinfo_consumers(Keys().queue("default"), GROUP)
        busy = {c["name"].split("-")[-2] for c in consumers if c["pending"]}
        for proc in workers:
            if str(proc.pid) in busy:
                return proc
        await asyncio.sleep(0.01)
    return None


async def test_kill_9_in_the_middle_of_jobs_loses_nothing(
    queue: Queue, real_redis: Redis, spawn_worker: SpawnWorker
) -> None:
    rng = random.Random(7)
    specs = [
        JobSpec(type="tracked", payload={"seconds": rng.uniform(0.05, 0.3)}, max_attempts=20)
        for _ in range(150)
    ]
    workers = [spawn_worker(concurrency=8), spawn_worker(concurrency=8)]
    jobs = await queue.submit_many(specs)  # once both are up: a slow start must not miss the work
    for _ in range(5):  # kill one worker mid-flight, start a fresh one, repeatedly
        await asyncio.sleep(rng.uniform(0.1, 0.4))
        victim = await busy_worker(real_redis, workers)
        if victim is None:
            break  # the work ran out before this kill
        workers.remove(victim)
        victim.kill()
        workers.append(spawn_worker(concurrency=8))
    done = await wait_terminal(queue, [j.id for j in jobs], timeout_s=60)
    assert {j.status for j in done} == {JobStatus.SUCCEEDED}
    runs = {k: int(v) for k, v in (await real_redis.hgetall(RUNS)).items()}
    interrupted = [j for j in done if runs[j.id] > 1]
    assert interrupted, "no kill landed in the middle of a job"
    assert all(j.attempts >= runs[j.id] >= 1 for j in done)
    assert all(j.attempts >= 2 for j in interrupted)
    assert await real_redis.xlen(Keys().queue("default")) == 0


async def test_a_zombie_worker_is_fenced_out_when_it_wakes(
    queue: Queue, redis_server: RedisServer, spawn_worker: SpawnWorker
) -> None:
    zombie = spawn_worker(concurrency=1)
    job = await queue.submit(JobSpec(type="tracked", payload={"first_seconds": 4, "seconds": 1}))
    running = await wait_status(queue, job.id, JobStatus.RUNNING)
    zombie.signal(signal.SIGSTOP)
    try:
        rescuer = spawn_worker(concurrency=1)
        rescuer_id = wait_registered(redis_server, rescuer)
        deadline = time.monotonic() + 10
        while (current := await queue.get(job.id)) and current.worker != rescuer_id:
            assert time.monotonic() < deadline, "the job was not reclaimed"
            await asyncio.sleep(0.05)
    finally:
        zombie.signal(signal.SIGCONT)
    (done,) = await wait_terminal(queue, [job.id])
    assert running.worker != rescuer_id
    assert done.status is JobStatus.SUCCEEDED
    print("DONE", done, "\nZOMBIE", zombie.output()[-3000:], "\nRESCUER", rescuer.output()[-3000:])
    assert done.worker == rescuer_id
    assert done.result == {"worker": rescuer_id, "attempt": 2}
    assert done.attempts == 2
    await asyncio.sleep(1.0)  # the zombie's next heartbeat or ack has happened by now
    assert "lease.lost" in zombie.output()
    after = await queue.get(job.id)
    assert after is not None
    assert after.result == {"worker": rescuer_id, "attempt": 2}


async def test_sigterm_finishes_short_jobs_and_hands_long_ones_over_at_once(
    queue: Queue, real_redis: Redis, spawn_worker: SpawnWorker
) -> None:
    leaving = spawn_worker(concurrency=4, lease_timeout_s=30, shutdown_grace_s=1)
    short = await queue.submit_many(
        [JobSpec(type="tracked", payload={"seconds": 0.4}) for _ in range(2)]
    )
    long = await queue.submit_many(
        [JobSpec(type="tracked", payload={"first_seconds": 60, "seconds": 0.1}) for _ in range(2)]
    )
    for job in [*short, *long]:
        await wait_status(queue, job.id, JobStatus.RUNNING)
    spawn_worker(concurrency=4, lease_timeout_s=30)
    asked = time.monotonic()
    assert stop(leaving) == 0
    assert time.monotonic() - asked < 5
    finished_short = await wait_terminal(queue, [j.id for j in short])
    assert all(j.status is JobStatus.SUCCEEDED and j.attempts == 1 for j in finished_short)
    finished_long = await wait_terminal(queue, [j.id for j in long], timeout_s=10)
    assert time.monotonic() - asked < 10  # seconds, not the 30 s lease
    # released, not failed: the attempt is handed back, yet each ran twice
    assert all(j.status is JobStatus.SUCCEEDED and j.attempts == 1 for j in finished_long)
    runs = await real_redis.hgetall(RUNS)
    assert [runs[j.id] for j in long] == ["2", "2"]
    assert "worker.released" in leaving.output()


async def test_a_worker_rides_out_a_redis_crash_and_restart(spawn_worker: SpawnWorker) -> None:
    with RedisServer(appendonly=True) as server:
        worker = spawn_worker(concurrency=10, server=server)
        async with Redis.from_url(server.url, decode_responses=True) as before:
            jobs = await Queue(before, CoreSettings(redis_url=server.url)).submit_many(
                [JobSpec(type="tracked", payload={"seconds": 0.05}, max_attempts=10)] * 200
            )
        await asyncio.sleep(0.3)
        server.kill()
        await asyncio.sleep(1.0)
        server.start()  # same port, same append-only file (fsync always): nothing is lost
        async with Redis.from_url(server.url, decode_responses=True) as after:
            queue = Queue(after, CoreSettings(redis_url=server.url))
            done = await wait_terminal(queue, [j.id for j in jobs], timeout_s=60)
        assert {j.status for j in done} == {JobStatus.SUCCEEDED}
        assert "redis.unreachable" in worker.output()


async def test_memory_returns_when_jobs_are_done_and_results_expire(
    queue: Queue, real_redis: Redis, spawn_worker: SpawnWorker
) -> None:
    spawn_worker(concurrency=50, result_ttl_s=1)
    short_lived = Queue(real_redis, queue.settings.model_copy(update={"result_ttl_s": 1}))
    jobs = await short_lived.submit_many([JobSpec(type="noop") for _ in range(3000)])
    await wait_terminal(short_lived, [jobs[-1].id, jobs[0].id], timeout_s=60)
    keys = Keys()
    deadline = time.monotonic() + 30
    while await real_redis.xlen(keys.queue("default")) or (await short_lived.stats())[0].running:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.1)
    await asyncio.sleep(1.5)
    left = [k async for k in real_redis.scan_iter(match=keys.job("*"), count=1000)]
    assert left == []
    assert await real_redis.xlen(keys.queue("default")) == 0
    assert await real_redis.zcard(keys.delayed) == 0


async def test_a_second_signal_exits_at_once_and_the_lease_recovers_the_job(
    queue: Queue, spawn_worker: SpawnWorker
) -> None:
    leaving = spawn_worker(concurrency=1, shutdown_grace_s=60)
    job = await queue.submit(JobSpec(type="tracked", payload={"first_seconds": 60, "seconds": 0}))
    await wait_status(queue, job.id, JobStatus.RUNNING)
    leaving.signal(signal.SIGTERM)
    await asyncio.sleep(0.3)
    asked = time.monotonic()
    assert stop(leaving) == 1  # the second signal: no 60 s drain
    assert time.monotonic() - asked < 3
    spawn_worker(concurrency=1)  # lease 1 s: the job comes back after it runs out
    (done,) = await wait_terminal(queue, [job.id], timeout_s=15)
    assert done.status is JobStatus.SUCCEEDED
    assert "worker.killed" in leaving.output()

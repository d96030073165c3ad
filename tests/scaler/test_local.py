"""The local backend with real ``tide worker`` processes: it starts them, drains them on the way
down with no job lost, restarts one that died, counts out one that gave up, and its workers end
with the scaler even when it is killed with SIGKILL."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from redis.asyncio import Redis

from app.core.models import JobSpec, JobStatus
from app.core.queue import Queue
from app.dev.redis_server import RedisServer
from scaler.backends.local import LocalBackend
from scaler.settings import ScalerSettings
from tests.helpers import clean_env, wait_gone, wait_terminal

pytestmark = pytest.mark.redis


@pytest.fixture
async def backend(redis_server: RedisServer, real_redis: Redis) -> AsyncIterator[LocalBackend]:
    settings = ScalerSettings(
        redis_url=redis_server.url, local_worker_concurrency=3, local_worker_queues="default"
    )
    local = LocalBackend(settings, os.environ)
    await local.start()
    yield local
    await local.close()


async def registered(redis: Redis) -> dict[str, dict[str, Any]]:
    entries: dict[str, str] = await redis.hgetall(Queue(redis, ScalerSettings()).keys.workers)
    return {wid: orjson.loads(raw) for wid, raw in entries.items()}


async def until(check: Callable[[], Any], what: str, timeout_s: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while not (result := await check()):
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        await asyncio.sleep(0.1)
    return result


async def test_workers_start_and_drain_with_no_job_lost(
    backend: LocalBackend, real_redis: Redis
) -> None:
    await backend.scale(2)
    assert await backend.current() == 2

    async def two_registered() -> bool:
        return len(await registered(real_redis)) == 2

    await until(two_registered, "two workers registered")
    queue = Queue(real_redis, ScalerSettings())
    jobs = await queue.submit_many(
        [JobSpec(type="sleep", payload={"seconds": 1.5}, max_attempts=1) for _ in range(6)]
    )

    async def all_running() -> bool:
        (stats,) = await queue.stats(["default"])
        return stats.running == 6

    await until(all_running, "every job runs")
    await backend.scale(0)  # both drain while their jobs are mid-flight
    assert await backend.current() == 0
    done = await wait_terminal(queue, [j.id for j in jobs], timeout_s=30)
    assert [(j.status, j.attempts) for j in done] == [(JobStatus.SUCCEEDED, 1)] * 6

    async def none_registered() -> bool:
        return not await registered(real_redis)

    await until(none_registered, "the drained workers deregister")


async def test_a_worker_that_died_is_restarted(backend: LocalBackend, real_redis: Redis) -> None:
    await backend.scale(1)

    async def one_registered() -> dict[str, dict[str, Any]]:
        return await registered(real_redis)

    (first,) = (await until(one_registered, "a worker registered")).values()
    os.kill(first["pid"], signal.SIGKILL)

    async def new_pid_registered() -> bool:
        return any(w["pid"] != first["pid"] for w in (await registered(real_redis)).values())

    await until(new_pid_registered, "the new worker registers")
    assert await backend.current() == 1


async def test_a_worker_that_gave_up_is_reported_and_no_longer_counts(
    redis_server: RedisServer,
) -> None:
    """A worker whose configuration is bad exits 2 and its fleet gives up: it runs nothing, so
    the backend counts it out (the next scale starts another) and says why."""
    settings = ScalerSettings(redis_url=redis_server.url, local_worker_tasks="no_such_tasks_mod")
    reasons: list[str] = []
    local = LocalBackend(settings, os.environ, on_worker_failed=reasons.append)
    try:
        await local.scale(1)

        async def counted_out() -> bool:
            return await local.current() == 0

        await until(counted_out, "the worker that gave up no longer counts")
        assert len(reasons) == 1
        assert "exited with code 2" in reasons[0]
    finally:
        await local.close()


async def test_the_workers_of_a_killed_scaler_end_with_it(
    redis_server: RedisServer, real_redis: Redis, tmp_path: Path
) -> None:
    """Each worker runs in a session of its own (a Ctrl-C reaches only the scaler), so nothing
    but the kernel's parent-death signal stops it when the scaler is killed with SIGKILL."""
    env = clean_env(
        REDIS_URL=redis_server.url,
        SCALER_BACKEND="local",
        MIN_WORKERS="1",
        POLL_INTERVAL_MS="200",
        PORT="0",
        SHUTDOWN_GRACE_S="1",
    )
    with (tmp_path / "scaler.err").open("wb") as err:
        scaler = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "scaler", env=env, stderr=err
        )
    try:

        async def one_registered() -> dict[str, dict[str, Any]]:
            return await registered(real_redis)

        (worker,) = (await until(one_registered, "the scaler's worker registers")).values()
        scaler.kill()
        await scaler.wait()
        await wait_gone([worker["pid"]], timeout_s=15)
    finally:
        if scaler.returncode is None:
            scaler.kill()
            await scaler.wait()

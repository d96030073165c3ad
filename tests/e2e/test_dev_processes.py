"""``tide dev`` and its children as real processes: a crashed worker comes back, workers that
cannot start stop ``tide dev`` with the reason, and neither a closed terminal (SIGHUP) nor a
``kill -9`` leaves a worker (of a fixed fleet or the scaler's) or a redis-server behind."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import aiohttp
import pytest
from redis.asyncio import Redis

from app.core.models import JobSpec, JobStatus
from app.core.queue import Queue
from app.core.settings import CoreSettings
from app.dev.redis_server import RedisServer
from tests.helpers import DevProcess, children_of, dev_env, key, wait_gone, wait_terminal

pytestmark = pytest.mark.redis


async def wait_for(condition: str, check: object, dev: DevProcess, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while not callable(check) or not check():
        assert time.monotonic() < deadline, f"no {condition} after {timeout_s} s\n{dev.output()}"
        await asyncio.sleep(0.1)


async def test_a_worker_killed_under_dev_is_restarted_and_runs_jobs(
    redis_server: RedisServer, real_redis: Redis, tmp_path: Path
) -> None:
    env = dev_env(REDIS_URL=redis_server.url)
    dev = DevProcess(tmp_path, ["--workers", "1", "--concurrency", "2"], env)
    try:
        await dev.wait_healthy()
        (first,) = dev.worker_pids()
        os.kill(first, signal.SIGKILL)
        await wait_for("restarted worker", lambda: len(dev.worker_pids()) == 2, dev)
        queue = Queue(real_redis, CoreSettings(redis_url=redis_server.url))
        job = await queue.submit(JobSpec(type="echo", payload="again"))
        (done,) = await wait_terminal(queue, [job.id], timeout_s=30)
        assert done.status is JobStatus.SUCCEEDED, dev.output()
        assert '"fleet.restarting"' in dev.output()
        assert await dev.interrupt() == 0, dev.output()
    finally:
        dev.kill()


async def test_the_banner_names_the_dashboard_and_an_admin_key_that_opens_it(
    redis_server: RedisServer, real_redis: Redis, tmp_path: Path
) -> None:
    dev = DevProcess(tmp_path, ["--workers", "0"], dev_env(REDIS_URL=redis_server.url))
    try:
        await dev.wait_healthy()
        admin = await dev.admin_key()
        assert f"Dashboard: {dev.base}/ " in dev.out_path.read_text()
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{dev.base}/") as page:
                assert (page.status, page.content_type) == (200, "text/html")
            async with session.get(f"{dev.base}/v1/tenants") as response:
                assert response.status == 401  # the key turned auth on
            async with session.get(f"{dev.base}/v1/tenants", headers=key(admin)) as response:
                assert response.status == 200  # an admin's: it sees every tenant
        assert await dev.interrupt() == 0, dev.output()
    finally:
        dev.kill()


@pytest.mark.parametrize("workers", [["--workers", "2"], []], ids=["fixed", "scaled"])
async def test_dev_exits_with_the_reason_when_its_workers_cannot_start(
    redis_server: RedisServer, tmp_path: Path, workers: list[str]
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "broken.py").write_text("import not_installed_anywhere\n")
    env = dev_env(REDIS_URL=redis_server.url, POLL_INTERVAL_MS="300")
    dev = DevProcess(tmp_path, [*workers, "--tasks", "broken"], env, cwd=project)
    try:
        code = await dev.exited(30)
        err = dev.err_path.read_text()
        assert code == 1, dev.output()
        assert "not_installed_anywhere" in err  # the worker's own line
        assert "tide dev: a worker exited with code 2" in err
        assert "Traceback" not in err
    finally:
        dev.kill()


@pytest.mark.parametrize(
    "workers",
    [["--workers", "2"], ["--min-workers", "2"]],
    ids=["fixed", "scaled"],
)
@pytest.mark.parametrize("sig", [signal.SIGHUP, signal.SIGKILL], ids=["SIGHUP", "kill-9"])
async def test_dev_leaves_no_process_behind(
    tmp_path: Path, sig: signal.Signals, workers: list[str]
) -> None:
    """Its own redis-server (no REDIS_URL) and its workers, a fixed fleet or the scaler's, end
    with it."""
    dev = DevProcess(tmp_path, [*workers, "--concurrency", "1"], dev_env())
    try:
        await dev.wait_healthy()
        await wait_for("two workers", lambda: len(dev.worker_pids()) == 2, dev)
        children = children_of(dev.proc.pid)
        assert set(dev.worker_pids()) < set(children), children  # and the redis-server
        dev.proc.send_signal(sig)
        code = await dev.exited(15)
        assert code == (0 if sig == signal.SIGHUP else -signal.SIGKILL), dev.output()
        await wait_gone(children, timeout_s=15)
    finally:
        dev.kill()

"""``tide dev`` with its scaler, as real processes: a burst grows the worker fleet, every job
succeeds, the calm shrinks it back; workers that cannot start, or scaler settings that cannot
work, stop ``tide dev`` with the reason."""

from __future__ import annotations

import asyncio
import re
import signal
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest
from redis.asyncio import Redis

from app.core.models import JobSpec, JobStatus
from app.core.queue import Queue
from app.core.settings import CoreSettings
from app.dev.redis_server import RedisServer
from tests.helpers import DevProcess, dev_env, wait_terminal

pytestmark = pytest.mark.redis

QUICK = {
    "POLL_INTERVAL_MS": "300",
    "SCALE_UP_COOLDOWN_MS": "0",
    "SCALE_DOWN_COOLDOWN_MS": "2000",
}
"""Scaler timings for a test: decide every 0.3 s, grow at once, shrink after 2 s of calm."""


async def until(check: Callable[[], Awaitable[bool]], what: str, dev: DevProcess) -> None:
    deadline = time.monotonic() + 30
    while not await check():
        assert time.monotonic() < deadline, f"timed out waiting until {what}\n{dev.output()}"
        assert dev.proc.poll() is None, f"tide dev exited\n{dev.output()}"
        await asyncio.sleep(0.1)


def scaler_url(dev: DevProcess) -> str:
    found = re.search(r"Scaler:\s+(http://\S+)/health", dev.out_path.read_text())
    assert found, dev.output()
    return found[1]


async def test_a_burst_grows_the_fleet_and_the_calm_shrinks_it(
    redis_server: RedisServer, real_redis: Redis, tmp_path: Path
) -> None:
    dev = DevProcess(tmp_path, ["--concurrency", "2"], dev_env(REDIS_URL=redis_server.url, **QUICK))
    queue = Queue(real_redis, CoreSettings(redis_url=redis_server.url))
    try:
        await dev.wait_healthy()
        async with aiohttp.ClientSession() as session:
            health = f"{scaler_url(dev)}/health"

            async def wanted() -> int:
                async with session.get(health) as response:
                    return int((await response.json())["workers"])

            async def registered() -> int:
                return int(await real_redis.hlen(queue.keys.workers))

            async def one_each() -> bool:
                return await wanted() == 1 and await registered() == 1

            await until(one_each, "MIN_WORKERS (1) waits for work", dev)
            burst = [JobSpec(type="sleep", payload={"seconds": 1}) for _ in range(40)]
            jobs = await queue.submit_many(burst)  # depth 40: three workers by the step table

            async def grown() -> bool:
                return await wanted() > 1 and await registered() > 1

            await until(grown, "the burst grows the fleet", dev)
            done = await wait_terminal(queue, [job.id for job in jobs], timeout_s=60)
            assert {job.status for job in done} == {JobStatus.SUCCEEDED}
            await until(one_each, "the calm shrinks the fleet back", dev)
        assert await dev.interrupt() == 0, dev.output()
    finally:
        dev.kill()


async def test_a_second_ctrl_c_hurries_the_scaled_workers_past_their_drain(
    redis_server: RedisServer, real_redis: Redis, tmp_path: Path
) -> None:
    """The first Ctrl-C lets a running job finish for up to SHUTDOWN_GRACE_S (a minute here);
    the second stops its worker at once (the lease timeout recovers the job)."""
    env = {**dev_env(REDIS_URL=redis_server.url, **QUICK), "SHUTDOWN_GRACE_S": "60"}
    dev = DevProcess(tmp_path, [], env)
    queue = Queue(real_redis, CoreSettings(redis_url=redis_server.url))
    try:
        await dev.wait_healthy()
        await queue.submit(JobSpec(type="sleep", payload={"seconds": 60}))

        async def running() -> bool:
            (stats,) = await queue.stats(["default"])
            return stats.running == 1

        await until(running, "the job runs", dev)
        dev.proc.send_signal(signal.SIGINT)

        async def draining() -> bool:
            return '"worker.stopping"' in dev.err_path.read_text()

        await until(draining, "the worker drains", dev)
        assert await dev.interrupt() == 0, dev.output()  # within the helpers' stop timeout
    finally:
        dev.kill()


@pytest.mark.parametrize(
    ("args", "env", "reason"),
    [
        (
            ["--min-workers", "3", "--max-workers", "2"],
            {},
            "MIN_WORKERS (3) is above MAX_WORKERS (2)",
        ),
        ([], {"SCALE_STEPS": "10"}, "SCALE_STEPS: '10' is not DEPTH:WORKERS"),
    ],
    ids=["bounds", "steps"],
)
async def test_dev_exits_2_with_the_reason_when_its_scaler_settings_are_bad(
    tmp_path: Path, args: list[str], env: dict[str, str], reason: str
) -> None:
    dev = DevProcess(tmp_path, args, dev_env(**env))
    try:
        assert await dev.exited(30) == 2, dev.output()
        err = dev.err_path.read_text()
        assert err.startswith("tide dev: bad scaler settings: "), err
        assert reason in err
        assert "Traceback" not in err
    finally:
        dev.kill()

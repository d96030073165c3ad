"""Leader failover between two real scaler processes: one acts, the other stands by; when the
leader dies the standby takes over once the lock's TTL runs out, and at once on a graceful stop."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import aiohttp
import pytest
from redis.asyncio import Redis

from app.core.keys import Keys
from app.core.models import JobSpec
from app.core.queue import Queue
from app.dev.redis_server import RedisServer, free_port
from scaler.settings import ScalerSettings
from tests.helpers import wait_healthy

pytestmark = pytest.mark.redis

TTL_MS = 3_000


class ScalerProcess:
    def __init__(self, redis_url: str, log: Path) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = log
        env = {
            **os.environ,
            "REDIS_URL": redis_url,
            "PORT": str(self.port),
            "SCALER_BACKEND": "log",
            "POLL_INTERVAL_MS": "200",
            "SCALER_LOCK_TTL_MS": str(TTL_MS),
            "SCALE_UP_COOLDOWN_MS": "0",
        }
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "scaler"], env=env, stdout=out, stderr=out
            )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    async def status(self, session: aiohttp.ClientSession) -> str:
        async with session.get(f"{self.base}/health") as response:
            body = await response.json()
        return str(body["status"])


@pytest.fixture
def start_scaler(
    redis_server: RedisServer, tmp_path: Path
) -> Iterator[Callable[[], ScalerProcess]]:
    started: list[ScalerProcess] = []

    def start() -> ScalerProcess:
        process = ScalerProcess(redis_server.url, tmp_path / f"scaler-{len(started)}.log")
        started.append(process)
        return process

    yield start
    for process in started:
        if process.proc.poll() is None:
            process.proc.kill()
        process.proc.wait()


async def leader_owner(redis: Redis) -> tuple[str | None, str | None]:
    owner, fence = await redis.hmget(Keys().scaler_leader, ["owner", "fence"])
    return owner, fence


async def wait_leader(
    session: aiohttp.ClientSession, candidates: list[ScalerProcess], timeout_s: float
) -> ScalerProcess:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for process in candidates:
            if process.proc.poll() is None and await process.status(session) == "ok":
                return process
        await asyncio.sleep(0.05)
    raise AssertionError("no scaler took the lead\n" + "\n".join(p.output() for p in candidates))


async def test_the_standby_takes_over_when_the_leader_dies_or_steps_down(
    start_scaler: Callable[[], ScalerProcess], real_redis: Redis
) -> None:
    first, second = start_scaler(), start_scaler()
    await wait_healthy(first.base, first.proc, first.output)
    await wait_healthy(second.base, second.proc, second.output)
    async with aiohttp.ClientSession() as session:
        leader = await wait_leader(session, [first, second], 10)
        standby = second if leader is first else first
        assert await standby.status(session) == "standby"
        assert (await leader_owner(real_redis))[1] == "1"

        leader.proc.kill()  # no resignation: the lock must run out
        killed = time.monotonic()
        assert await wait_leader(session, [standby], TTL_MS / 1000 + 10) is standby
        took_over = time.monotonic() - killed
        assert (await leader_owner(real_redis))[1] == "2"
        assert took_over < TTL_MS / 1000 + 3, f"took {took_over:.1f} s"

        # the new leader acts: a burst is decided on by the scaler holding fence 2
        await Queue(real_redis, ScalerSettings()).submit_many(
            [JobSpec(type="n") for _ in range(15)]
        )
        async with asyncio.timeout(20):
            while True:
                async with session.get(f"{standby.base}/decisions?count=1") as response:
                    (latest,) = (await response.json())["decisions"]
                if latest["fence"] == 2 and latest["desired"] == 2:
                    break
                await asyncio.sleep(0.1)

        third = start_scaler()
        await wait_healthy(third.base, third.proc, third.output)
        assert await third.status(session) == "standby"
        standby.proc.send_signal(signal.SIGTERM)
        stepped_down = time.monotonic()
        assert await wait_leader(session, [third], 10) is third
        # a resigned lock is free at once: the standby takes it at its next tick, not after a TTL
        assert time.monotonic() - stepped_down < TTL_MS / 2000, "no handover on a graceful stop"
        assert standby.proc.wait(10) == 0
        assert (await leader_owner(real_redis))[1] == "3"

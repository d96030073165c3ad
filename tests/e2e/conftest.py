"""Worker (and API) processes for end-to-end tests, killed for real."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import orjson
import pytest
import redis
from redis.asyncio import Redis

from app.core.keys import Keys
from app.core.queue import Queue
from app.core.settings import CoreSettings
from app.dev.redis_server import RedisServer

ROOT = Path(__file__).resolve().parents[2]


class Proc:
    """A child process whose stderr goes to a file the test can read."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.log: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 - closed by kill()
        self.popen = subprocess.Popen(
            args, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=self.log
        )
        self.pid = self.popen.pid

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def signal(self, sig: int) -> None:
        os.kill(self.pid, sig)

    def wait(self, timeout: float) -> int:
        return self.popen.wait(timeout=timeout)

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait()
        self.log.close()


def process_env(server: RedisServer, **settings: object) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_", "KEY_PREFIX"))}
    env.update(
        PYTHONPATH=str(ROOT),
        REDIS_URL=server.url,
        LOG_LEVEL="info",
        LEASE_TIMEOUT_S="1",
        RECLAIM_INTERVAL_S="0.2",
        RETRY_BACKOFF_S="0.05",
        RETRY_BACKOFF_MAX_S="0.2",
    )
    env.update({key.upper(): str(value) for key, value in settings.items()})
    return env


SpawnWorker = Callable[..., Proc]


@pytest.fixture
async def queue(real_redis: Redis, redis_server: RedisServer) -> Queue:
    return Queue(real_redis, CoreSettings(redis_url=redis_server.url))


@pytest.fixture
def spawn_worker(redis_server: RedisServer) -> Iterator[SpawnWorker]:
    """Starts ``python -m workers`` processes and waits until each has registered."""
    procs: list[Proc] = []

    def spawn(concurrency: int = 5, server: RedisServer | None = None, **settings: object) -> Proc:
        srv = server or redis_server
        args = [sys.executable, "-m", "workers", "--tasks", "tests.e2e.tasks"]
        proc = Proc([*args, "--concurrency", str(concurrency)], process_env(srv, **settings))
        procs.append(proc)
        wait_registered(srv, proc)
        return proc

    yield spawn
    for proc in procs:
        proc.kill()


def wait_registered(server: RedisServer, proc: Proc, timeout_s: float = 15.0) -> str:
    """The worker id of ``proc`` once it is in the live registry."""
    client = redis.Redis.from_url(server.url, decode_responses=True)
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            for worker_id, info in client.hgetall(Keys().workers).items():
                if orjson.loads(info)["pid"] == proc.pid:
                    return str(worker_id)
            if proc.popen.poll() is not None:
                raise AssertionError(f"worker exited early:\n{proc.output()}")
            time.sleep(0.05)
    finally:
        client.close()
    raise AssertionError(f"worker {proc.pid} did not register:\n{proc.output()}")


def stop(proc: Proc, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
    proc.signal(sig)
    return proc.wait(timeout)

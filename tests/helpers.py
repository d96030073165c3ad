"""Small helpers the test packages share."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from app.core.models import TERMINAL, Job, JobStatus
from app.core.queue import Queue
from app.dev.redis_server import free_port

ApiClient = TestClient[web.Request, web.Application]
MakeApiClient = Callable[[web.Application | TestServer], Awaitable[ApiClient]]
API_MAX_BODY = 4096
"""The body limit of the API tests' settings."""

TIDE = str(Path(sys.executable).with_name("tide"))
"""The ``tide`` console script of this venv: what a user runs (no ``-m``, so the working
directory is not on ``sys.path`` by itself)."""
NOT_BUILT_YET: set[tuple[str, str]] = set()
"""(method, path) of the OpenAPI document's operations that the app does not serve yet: the
document test expects exactly these missing, the schemathesis run a 404 or 405 from each."""
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0


async def wait_terminal(queue: Queue, job_ids: Iterable[str], timeout_s: float = 20.0) -> list[Job]:
    """The jobs once every one is terminal; fails the test with their states on timeout."""
    ids = list(job_ids)
    deadline = time.monotonic() + timeout_s
    while True:
        jobs = [await queue.get(job_id) for job_id in ids]
        if all(j is not None and j.status in TERMINAL for j in jobs):
            return [j for j in jobs if j is not None]
        if time.monotonic() > deadline:
            states = {j.id: (j.status.value, j.attempts) for j in jobs if j is not None}
            raise AssertionError(f"jobs not terminal after {timeout_s} s: {states}")
        await asyncio.sleep(0.05)


async def wait_status(queue: Queue, job_id: str, status: JobStatus, timeout_s: float = 10.0) -> Job:
    """The job once it has ``status``."""
    deadline = time.monotonic() + timeout_s
    while (job := await queue.get(job_id)) is None or job.status is not status:
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} not {status} after {timeout_s} s: {job}")
        await asyncio.sleep(0.02)
    return job


async def wait_healthy(
    base: str, proc: subprocess.Popen[bytes], output: Callable[[], str], timeout_s: float = 30.0
) -> None:
    """Returns once ``base``/health answers 200; fails early if ``proc`` exits."""
    deadline = time.monotonic() + timeout_s
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            assert proc.poll() is None, f"the server exited early\n{output()}"
            try:
                async with session.get(f"{base}/health") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError(f"{base} did not become healthy\n{output()}")


async def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status == status, await response.text()
    assert response.content_type == "application/json"
    body = await response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str)
    assert body["error"]["message"]
    assert "Traceback" not in await response.text()
    error: dict[str, Any] = body["error"]
    return error


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without anything that points a Tide process at a Redis or a port, and
    without PYTHONPATH: a child finds Tide as a user's would, installed in the venv."""
    dropped = {"REDIS_URL", "PORT", "KEY_PREFIX", "PYTHONPATH", "TASKS_MODULE", "QUEUES"}
    env = {k: v for k, v in os.environ.items() if k not in dropped}
    return {**env, "LOG_LEVEL": "info", **extra}


def dev_env(**extra: str) -> dict[str, str]:
    return clean_env(PORT=str(free_port()), SHUTDOWN_GRACE_S="1", **extra)


class DevProcess:
    """``tide dev`` with its output in files (a full pipe would block it), run in ``cwd``."""

    def __init__(
        self, tmp_path: Path, args: list[str], env: dict[str, str], cwd: Path | None = None
    ) -> None:
        self.port = int(env["PORT"])
        self.out_path = tmp_path / "dev.out"
        self.err_path = tmp_path / "dev.err"
        with self.out_path.open("wb") as out, self.err_path.open("wb") as err:
            self.proc = subprocess.Popen(
                [TIDE, "dev", *args], stdout=out, stderr=err, env=env, cwd=cwd
            )

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        return f"stdout:\n{self.out_path.read_text()}\nstderr:\n{self.err_path.read_text()}"

    async def wait_healthy(self) -> None:
        await wait_healthy(self.base, self.proc, self.output, START_TIMEOUT_S)

    async def admin_key(self) -> str:
        """The admin key its banner prints (its API has auth on with it)."""
        deadline = time.monotonic() + START_TIMEOUT_S
        while (found := re.search(r"Admin key: (\S+)", self.out_path.read_text())) is None:
            assert time.monotonic() < deadline, f"no admin key in the banner\n{self.output()}"
            await asyncio.sleep(0.1)
        return found[1]

    async def interrupt(self, sig: int = signal.SIGINT) -> int:
        """``sig`` (SIGINT, as Ctrl-C sends); the exit code, or a failure after the timeout."""
        self.proc.send_signal(sig)
        return await self.exited(STOP_TIMEOUT_S)

    async def exited(self, timeout_s: float) -> int:
        try:
            return await asyncio.to_thread(self.proc.wait, timeout_s)
        except subprocess.TimeoutExpired:
            pytest.fail(f"tide dev did not exit within {timeout_s}s\n{self.output()}")

    def worker_pids(self) -> list[int]:
        """Pids of the workers it started, from its ``fleet.worker_started`` log lines."""
        lines = self.err_path.read_text().splitlines()
        events = [orjson.loads(line) for line in lines if line.startswith("{")]
        return [e["pid"] for e in events if e.get("event") == "fleet.worker_started"]

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


def children_of(pid: int) -> list[int]:
    """Live child processes of ``pid`` (Linux ``/proc``)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(stat.parent.name))
    return found


def is_running(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


async def wait_gone(pids: Iterable[int], timeout_s: float = 15.0) -> None:
    """Returns once none of ``pids`` runs; fails the test naming the survivors."""
    deadline = time.monotonic() + timeout_s
    while alive := [pid for pid in pids if is_running(pid)]:
        if time.monotonic() > deadline:
            raise AssertionError(f"still running after {timeout_s} s: {alive}")
        await asyncio.sleep(0.1)


ROOMY_LIMITS = {"TENANT_MAX_ACTIVE": "1000000", "TENANT_RPM": "1000000"}
"""Tenant limits no test meets unless it is about them."""


class ApiProcess:
    """``python -m app api`` on a free port against ``redis_url``, its log in ``log_path``;
    as a context manager it is healthy inside and stopped after."""

    def __init__(self, redis_url: str, log_path: Path, **settings: str) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.env = clean_env(
            REDIS_URL=redis_url, PORT=str(self.port), **{**ROOMY_LIMITS, **settings}
        )

    def __enter__(self) -> ApiProcess:
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "app", "api"], env=self.env, stdout=log, stderr=log
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self._healthy():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.__exit__()
                raise AssertionError(f"tide api did not become healthy:\n{self.output()}")
            time.sleep(0.1)
        return self

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.base}/health", timeout=1) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def __exit__(self, *exc: object) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(STOP_TIMEOUT_S)

    def output(self) -> str:
        return self.log_path.read_text()

    def errors(self) -> list[str]:
        """Its log lines at level error (an unhandled exception among them)."""
        lines = [line for line in self.output().splitlines() if line.startswith("{")]
        return [line for line in lines if orjson.loads(line).get("level") == "error"]


ACME = "acme-secret-0123456789"
BOLT = "bolt-secret-0123456789"
ADMIN = "admin-secret-0123456789"
"""API keys of the tests with auth on: tenants acme and bolt, and an admin."""


def key(secret: str) -> dict[str, str]:
    """The header that authenticates a request with ``secret``."""
    return {"X-API-Key": secret}

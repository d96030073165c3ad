"""Small helpers the test packages share."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Callable, Iterable

import aiohttp

from app.core.models import TERMINAL, Job, JobStatus
from app.core.queue import Queue


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

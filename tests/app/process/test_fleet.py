"""Local worker processes: one SIGTERM and a drain, a second on hurry, SIGKILL after the timeout.

The workers here are small stand-in scripts, so each stop path can be forced.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from pathlib import Path

from structlog.testing import capture_logs

from app.process.fleet import WorkerFleet, worker_command

STAND_IN = """
import os, signal, sys, time, pathlib
mode, ready = sys.argv[1], pathlib.Path(sys.argv[2])
terms = 0
def on_term(signum, frame):
    global terms
    terms += 1
    if mode == "graceful":
        time.sleep(0.2)
        sys.exit(0)
    if mode == "hurry" and terms >= 2:
        sys.exit(3)
if mode == "crash":
    sys.exit(1)
signal.signal(signal.SIGTERM, signal.SIG_IGN if mode == "stubborn" else on_term)
(ready / str(os.getpid())).touch()
while True:
    time.sleep(0.02)
"""


def stand_in(mode: str, ready: Path) -> list[str]:
    return [sys.executable, "-c", STAND_IN, mode, str(ready)]


async def started(fleet: WorkerFleet, ready: Path) -> None:
    """Start the fleet and wait until every process has its signal handler in place."""
    await fleet.start()
    deadline = time.monotonic() + 20
    while len(await asyncio.to_thread(lambda: list(ready.iterdir()))) < fleet.count:
        assert time.monotonic() < deadline, "stand-in workers did not start"
        await asyncio.sleep(0.02)


async def test_workers_drain_and_exit_on_one_sigterm(tmp_path: Path) -> None:
    fleet = WorkerFleet(2, stand_in("graceful", tmp_path), {}, stop_timeout_s=10)
    await started(fleet, tmp_path)
    began = time.monotonic()
    await fleet.stop()
    assert time.monotonic() - began < 5
    assert [p.returncode for p in fleet.procs] == [0, 0]


async def test_a_worker_that_ignores_sigterm_is_killed_after_the_timeout(tmp_path: Path) -> None:
    fleet = WorkerFleet(1, stand_in("stubborn", tmp_path), {}, stop_timeout_s=0.5)
    await started(fleet, tmp_path)
    with capture_logs() as logs:
        await fleet.stop()
    assert [p.returncode for p in fleet.procs] == [-signal.SIGKILL]
    assert any(e["event"] == "fleet.killing" for e in logs)


async def test_hurry_sends_the_second_sigterm(tmp_path: Path) -> None:
    fleet = WorkerFleet(2, stand_in("hurry", tmp_path), {}, stop_timeout_s=30)
    await started(fleet, tmp_path)
    hurry = asyncio.Event()
    asyncio.get_running_loop().call_later(0.3, hurry.set)
    began = time.monotonic()
    await fleet.stop(hurry)
    assert time.monotonic() - began < 10
    assert [p.returncode for p in fleet.procs] == [3, 3]


async def test_a_worker_that_dies_on_its_own_is_reported(tmp_path: Path) -> None:
    fleet = WorkerFleet(1, stand_in("crash", tmp_path), {})
    with capture_logs() as logs:
        await fleet.start()
        await asyncio.wait_for(fleet.procs[0].wait(), 20)
        await asyncio.sleep(0)  # let the watcher see it
        await fleet.stop()
    assert [e["code"] for e in logs if e["event"] == "fleet.worker_exited"] == [1]


async def test_no_workers_is_fine() -> None:
    fleet = WorkerFleet(0, worker_command(4, "default"), {})
    await fleet.start()
    await fleet.stop()
    assert fleet.procs == []


def test_the_worker_command_runs_the_workers_package_in_this_interpreter() -> None:
    assert worker_command(3, "a,b") == [
        sys.executable, "-m", "workers", "--concurrency", "3", "--queues", "a,b",
    ]  # fmt: skip

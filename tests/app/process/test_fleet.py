"""Local worker processes: one SIGTERM and a drain, a second on hurry, SIGKILL after the timeout;
a worker that exits is restarted, a fleet that cannot start gives up and says why.

The workers here are small stand-in scripts, so each stop and exit path can be forced.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from pathlib import Path

from structlog.testing import capture_logs

from app.process.fleet import RestartPolicy, WorkerFleet, worker_command

QUICK = RestartPolicy(first_delay_s=0.05, max_delay_s=0.2, quick_exit_s=30, max_quick_exits=3)
"""Every exit counts as a failed start; restarts come fast."""

STAND_IN = """
import os, signal, sys, time, pathlib
mode, ready = sys.argv[1], pathlib.Path(sys.argv[2])
terms = 0
def on_term(signum, frame):
    global terms
    terms += 1
    if mode in ("graceful", "crash-once"):
        time.sleep(0.2)
        sys.exit(0)
    if mode == "hurry" and terms >= 2:
        sys.exit(3)
if mode == "crash":
    sys.exit(1)
if mode == "config":
    print("tide worker: LOG_LEVEL='verbose': choose one", file=sys.stderr)
    sys.exit(2)
if mode == "crash-once" and not (ready / "crashed").exists():
    (ready / "crashed").touch()
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
    while len(await asyncio.to_thread(lambda: list(ready.glob("[0-9]*")))) < fleet.count:
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


async def test_a_worker_that_dies_on_its_own_is_reported_and_restarted(tmp_path: Path) -> None:
    policy = RestartPolicy(first_delay_s=0.05, quick_exit_s=0)
    fleet = WorkerFleet(1, stand_in("crash-once", tmp_path), {}, policy=policy)
    with capture_logs() as logs:
        await started(fleet, tmp_path)  # only the second process gets this far
        assert fleet.alive() == 1
        await fleet.stop()
    assert [e["code"] for e in logs if e["event"] == "fleet.worker_exited"] == [1]
    assert len({e["pid"] for e in logs if e["event"] == "fleet.worker_started"}) == 2
    assert not fleet.failed.is_set()


async def test_workers_that_keep_exiting_at_once_make_the_fleet_give_up(tmp_path: Path) -> None:
    fleet = WorkerFleet(1, stand_in("crash", tmp_path), {}, policy=QUICK)
    with capture_logs() as logs:
        await fleet.start()
        await asyncio.wait_for(fleet.failed.wait(), 20)
        await fleet.stop()
    assert len([e for e in logs if e["event"] == "fleet.worker_started"]) == 3
    assert fleet.failure is not None
    assert "3 times in a row" in fleet.failure
    assert "exit code 1" in fleet.failure


async def test_a_worker_that_exits_with_code_2_is_not_restarted(tmp_path: Path) -> None:
    output = tmp_path / "workers.log"
    fleet = WorkerFleet(1, stand_in("config", tmp_path), {}, policy=QUICK, output=output)
    with capture_logs() as logs:
        await fleet.start()
        await asyncio.wait_for(fleet.failed.wait(), 20)
        await fleet.stop()
    assert len([e for e in logs if e["event"] == "fleet.worker_started"]) == 1
    assert fleet.failure is not None
    assert "configuration is bad" in fleet.failure
    assert "LOG_LEVEL='verbose'" in fleet.failure  # the worker's own line, from its log file


async def test_without_restarts_any_exit_fails_the_fleet(tmp_path: Path) -> None:
    fleet = WorkerFleet(1, stand_in("crash", tmp_path), {}, restart=False, policy=QUICK)
    await fleet.start()
    await asyncio.wait_for(fleet.failed.wait(), 20)
    await fleet.stop()
    assert fleet.failure == "a worker exited with code 1"


async def test_no_workers_is_fine() -> None:
    fleet = WorkerFleet(0, worker_command(4, "default"), {})
    await fleet.start()
    await fleet.stop()
    assert fleet.procs == []


def test_the_worker_command_runs_the_workers_package_in_this_interpreter() -> None:
    assert worker_command(3, "a,b") == [
        sys.executable, "-P", "-m", "workers", "--concurrency", "3", "--queues", "a,b",
    ]  # fmt: skip
    assert worker_command(1, "q", "myapp.tasks")[-2:] == ["--tasks", "myapp.tasks"]

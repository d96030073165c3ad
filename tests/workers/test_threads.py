"""The worker's own threads: bounded, counting what outlives its attempt, never holding up exit."""

from __future__ import annotations

import asyncio
import sys
import textwrap
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from workers.threads import TaskThreads

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def make_threads() -> AsyncIterator[Callable[..., TaskThreads]]:
    made: list[TaskThreads] = []

    def make(size: int, on_idle: Callable[[], None] | None = None) -> TaskThreads:
        made.append(TaskThreads(size, on_idle))
        return made[-1]

    yield make
    for pool in made:
        pool.close()


async def until(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def test_runs_at_most_size_calls_at_once_in_named_daemon_threads(
    make_threads: Callable[..., TaskThreads],
) -> None:
    pool = make_threads(2)
    pair = threading.Barrier(2, timeout=10)  # each call waits for a second one running beside it
    lock = threading.Lock()
    running, most = 0, 0

    def work() -> threading.Thread:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        pair.wait()
        with lock:
            running -= 1
        return threading.current_thread()

    used = await asyncio.gather(*(pool.run(work) for _ in range(6)))
    assert most == 2
    assert len(set(used)) == 2
    assert all(t.daemon and t.name.startswith("tide-task-") for t in used)


async def test_a_call_cancelled_while_running_lingers_until_it_returns(
    make_threads: Callable[..., TaskThreads],
) -> None:
    idle: list[int] = []
    pool = make_threads(1, on_idle=lambda: idle.append(pool.lingering))
    started, release = threading.Event(), threading.Event()

    def held() -> None:
        started.set()
        release.wait(10)

    call = asyncio.create_task(pool.run(held))
    await until(started.is_set)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    assert pool.lingering == 1
    release.set()
    await until(lambda: pool.lingering == 0)
    assert idle == [0]


async def test_a_call_cancelled_before_a_thread_takes_it_never_runs(
    make_threads: Callable[..., TaskThreads],
) -> None:
    pool = make_threads(1)
    release = threading.Event()
    ran: list[str] = []
    first = asyncio.create_task(pool.run(release.wait, 10))
    queued = asyncio.create_task(pool.run(ran.append, "queued"))
    await asyncio.sleep(0)  # both calls are submitted; the only thread is the first's
    queued.cancel()
    with pytest.raises(asyncio.CancelledError):
        await queued
    release.set()
    assert await first is True
    assert await pool.run(ran.append, "next") is None
    assert ran == ["next"]
    assert pool.lingering == 0


@pytest.mark.parametrize("raised", [SystemExit(3), KeyboardInterrupt(), ValueError("bad")])
async def test_what_a_call_raises_reaches_its_caller_and_the_thread_serves_on(
    make_threads: Callable[..., TaskThreads], raised: BaseException
) -> None:
    pool = make_threads(1)

    def hostile() -> None:
        raise raised

    with pytest.raises(type(raised)):
        await pool.run(hostile)
    assert (await pool.run(threading.current_thread)).name == "tide-task-0"


async def test_on_start_learns_when_a_thread_began_the_call(
    make_threads: Callable[..., TaskThreads],
) -> None:
    pool = make_threads(1)
    loop = asyncio.get_running_loop()
    starts: list[float] = []
    hog = asyncio.create_task(pool.run(time.sleep, 0.3))
    await asyncio.sleep(0.05)
    asked = loop.time()
    await pool.run(time.sleep, 0, on_start=starts.append)
    await hog
    assert starts
    assert starts[0] - asked >= 0.15  # it waited for the hog's thread first


async def test_a_process_with_a_lingering_thread_exits_at_once() -> None:
    script = textwrap.dedent(
        """
        import asyncio, time
        from workers.threads import TaskThreads

        async def main():
            pool = TaskThreads(1)
            try:
                await asyncio.wait_for(pool.run(time.sleep, 60), 0.1)
            except TimeoutError:
                print("lingering", pool.lingering, flush=True)

        asyncio.run(main())
        """
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", script, stdout=asyncio.subprocess.PIPE, cwd=ROOT
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), 20)  # not the 60 s of its thread
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert (proc.returncode, out.decode().split()) == (0, ["lingering", "1"])

"""The worker's own threads for plain ``def`` tasks, sized to its concurrency.

A thread cannot be interrupted: when its attempt ends early (timeout, cancel, shutdown) it runs on.
Such a *lingering* thread still holds a thread, so the worker counts it against its free slots,
and ``on_idle`` tells the worker when one returns. The threads are daemons, so a process that is
done never waits for one (``ThreadPoolExecutor`` joins its threads at interpreter exit).
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
import time
from collections.abc import Callable
from enum import Enum
from typing import Any, TypeVar, cast

T = TypeVar("T")
Returned = tuple[Any, BaseException | None]
"""What a thread hands back: the return value, or what was raised (``SystemExit`` included)."""


class _State(Enum):
    QUEUED = "queued"
    RUNNING = "running"
    DROPPED = "dropped"  # its caller was cancelled before a thread took it: never runs


class _Call:
    """One ``fn(*args)`` on its way through a thread; the outcome goes back to the caller's loop."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        on_start: Callable[[float], None] | None,
    ) -> None:
        self.loop, self.fn, self.args, self.on_start = loop, fn, args, on_start
        self.future: asyncio.Future[Returned] = loop.create_future()
        self.abandoned = False  # read and written on the loop only
        self._state = _State.QUEUED
        self._lock = threading.Lock()

    def run(self) -> None:
        """In a thread: run ``fn`` unless the caller gave up first, whatever it raises."""
        with self._lock:
            if self._state is _State.DROPPED:
                return
            self._state = _State.RUNNING
        self._post(self._started, time.monotonic())
        try:
            outcome: Returned = (self.fn(*self.args), None)
        # a task's SystemExit must end neither this thread nor, raised there, the event loop
        except BaseException as exc:
            outcome = (None, exc)
        self._post(self._settle, outcome)

    def abandon(self) -> bool:
        """On the loop, when the caller is cancelled: True if ``fn`` has started (it lingers)."""
        self.abandoned = True
        with self._lock:
            if self._state is _State.QUEUED:
                self._state = _State.DROPPED
                return False
            return True

    def _post(self, callback: Callable[[Any], None], arg: Any) -> None:
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits for it any more
            self.loop.call_soon_threadsafe(callback, arg)

    def _started(self, started_monotonic: float) -> None:
        if self.on_start is not None and not self.abandoned:
            self.on_start(self.loop.time() - (time.monotonic() - started_monotonic))

    def _settle(self, outcome: Returned) -> None:
        if not self.future.done():
            self.future.set_result(outcome)


class TaskThreads:
    """Runs sync task code in up to ``size`` daemon threads, started as needed, and keeps count
    of those that outlive their attempt."""

    def __init__(self, size: int, on_idle: Callable[[], None] | None = None) -> None:
        self._size = size
        self._on_idle = on_idle
        self._lingering = 0
        self._work: queue.SimpleQueue[_Call | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._idle = 0
        self._lock = threading.Lock()
        self._closed = False

    @property
    def lingering(self) -> int:
        """Threads still running code whose attempt has already ended."""
        return self._lingering

    async def run(
        self, fn: Callable[..., T], *args: Any, on_start: Callable[[float], None] | None = None
    ) -> T:
        """``fn(*args)`` in a thread, raising what it raises. ``on_start(t)`` learns the loop time
        at which a thread began it: the call may first wait for a free thread.

        Cancelling the caller drops a call still waiting for a thread; one already running runs
        on, counted as lingering until it returns.
        """
        call = _Call(asyncio.get_running_loop(), fn, args, on_start)
        self._submit(call)
        try:
            value, error = await asyncio.shield(call.future)
        except asyncio.CancelledError:
            if call.abandon() and not call.future.done():
                self._linger(call.future)
            raise
        if error is not None:
            raise error
        return cast(T, value)

    def close(self) -> None:
        """Stop taking work and let idle threads end; never waits for running threads."""
        with self._lock:
            self._closed = True
            for _ in self._threads:
                self._work.put(None)

    def _submit(self, call: _Call) -> None:
        with self._lock:
            if self._closed:
                raise RuntimeError("the task threads are closed")
            self._work.put(call)
            if self._idle:
                self._idle -= 1  # that idle thread takes the call
            elif len(self._threads) < self._size:
                thread = threading.Thread(
                    target=self._serve, name=f"tide-task-{len(self._threads)}", daemon=True
                )
                self._threads.append(thread)
                thread.start()

    def _serve(self) -> None:
        while (call := self._work.get()) is not None:
            call.run()
            with self._lock:
                self._idle += 1

    def _linger(self, future: asyncio.Future[Returned]) -> None:
        self._lingering += 1

        def returned(_: asyncio.Future[Returned]) -> None:
            self._lingering -= 1
            if self._on_idle is not None:
                self._on_idle()

        future.add_done_callback(returned)

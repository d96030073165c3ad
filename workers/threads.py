"""The worker's own threads for plain ``def`` tasks, sized to its concurrency.

A thread cannot be interrupted: when its attempt ends early (timeout, cancel, shutdown) it runs on.
Such a *lingering* thread still holds a thread, so the worker counts it against its free slots,
and ``on_idle`` tells the worker when one returns.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


class TaskThreads:
    """Runs sync task code in threads and keeps count of those that outlive their attempt."""

    def __init__(self, size: int, on_idle: Callable[[], None] | None = None) -> None:
        self._pool = ThreadPoolExecutor(max_workers=size, thread_name_prefix="tide-task")
        self._on_idle = on_idle
        self._lingering = 0

    @property
    def lingering(self) -> int:
        """Threads still running code whose attempt has already ended."""
        return self._lingering

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` in a thread. Cancelling the caller leaves the thread running, counted
        as lingering until it returns."""
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._pool, fn, *args)
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            if not future.done():
                self._linger(loop, future)
            raise

    def _linger(self, loop: asyncio.AbstractEventLoop, future: asyncio.Future[Any]) -> None:
        self._lingering += 1

        def returned(_: asyncio.Future[Any]) -> None:
            self._lingering -= 1
            if self._on_idle is not None:
                self._on_idle()

        future.add_done_callback(returned)

    def close(self) -> None:
        """Stop taking work; never waits for running threads."""
        self._pool.shutdown(wait=False, cancel_futures=True)

"""The one place that decides what a worker loop does when a step fails.

Every background loop of the worker is a *step* handed to :class:`LoopRunner`, which calls it
until told to stop and owns the only outage policy: capped exponential backoff, a warning while
Redis is unreachable, recreating the consumer groups when Redis lost them, and a logged error for
anything else. A loop never dies unobserved, and a step is never cancelled mid-call: a script whose
reply is lost would leave its work half known.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import structlog
from redis import exceptions as redis_errors
from redis.exceptions import ResponseError

OUTAGE = (redis_errors.ConnectionError, redis_errors.TimeoutError, OSError)
"""Errors that mean Redis cannot be reached right now (as opposed to a reply that says no)."""

Step = Callable[[], Awaitable[float | None]]
"""One round of a loop; returns how long to wait before the next (None: the loop's interval)."""


class Backoff:
    """Capped exponential wait between attempts to reach Redis again."""

    def __init__(self, first: float = 0.1, cap: float = 5.0) -> None:
        self.first, self.cap, self.current = first, cap, first

    def next(self) -> float:
        wait, self.current = self.current, min(self.cap, self.current * 2)
        return wait

    def reset(self) -> None:
        self.current = self.first


class LoopRunner:
    """Runs the worker's loops under one failure policy.

    ``recreate_groups`` is called when Redis answers NOGROUP (it restarted without its data).
    """

    def __init__(
        self,
        log: structlog.typing.FilteringBoundLogger,
        recreate_groups: Callable[[], Awaitable[None]],
    ) -> None:
        self.log = log
        self._recreate_groups = recreate_groups

    async def loop(self, name: str, step: Step, interval: float, until: asyncio.Event) -> None:
        """Call ``step`` until ``until`` is set, waiting what it asks or ``interval`` between."""
        backoff = Backoff()
        while not until.is_set():
            _, wait = await self._call(name, step, backoff)
            await self._pause(interval if wait is None else wait, until)

    async def until_ok(self, name: str, step: Step, stop: asyncio.Event) -> bool:
        """Call ``step`` until it succeeds once; False if ``stop`` was set before it did."""
        backoff = Backoff()
        while not stop.is_set():
            ok, wait = await self._call(name, step, backoff)
            if ok:
                return True
            await self._pause(wait or 0.0, stop)
        return False

    @staticmethod
    async def _pause(wait: float, until: asyncio.Event) -> None:
        if wait > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(until.wait(), wait)

    async def _call(self, name: str, step: Step, backoff: Backoff) -> tuple[bool, float | None]:
        """One step under the policy: (True, its answer), or (False, how long to back off)."""
        try:
            wait = await step()
        except OUTAGE as exc:
            wait = backoff.next()
            self.log.warning("redis.unreachable", loop=name, error=str(exc), retry_in_s=wait)
            return False, wait
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):
                return False, self._error(name, exc, backoff)
            self.log.warning("redis.group_missing", loop=name, error=str(exc))
            try:
                await self._recreate_groups()
            except Exception as again:
                return False, self._error(name, again, backoff)
            return False, 0.0
        except Exception as exc:
            return False, self._error(name, exc, backoff)
        backoff.reset()
        return True, wait

    def _error(self, name: str, exc: Exception, backoff: Backoff) -> float:
        wait = backoff.next()
        self.log.error(
            "worker.loop_error", loop=name, error=repr(exc), retry_in_s=wait, exc_info=exc
        )
        return wait

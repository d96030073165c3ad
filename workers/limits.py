"""A rate-limited task's wait for its turn, before its code starts.

The attempt already holds its slot and its lease (extended by the heartbeat like any other), so
a long wait loses nothing; the job's timeout starts only with its code. A turn is reserved at
most :data:`RESERVE_AHEAD_S` ahead: a waiter that is cancelled or stopped at shutdown before its
turn wastes at most that, and holds no turn further ahead.
"""

from __future__ import annotations

import asyncio
import random

import structlog

from app.core.keys import GLOBAL_LIMITER
from app.core.limiter import Limiter
from app.core.rates import Rate
from app.process.startup import ConfigError
from workers.loops import Backoff
from workers.tasks import TaskRegistry

RESERVE_AHEAD_S = 2.0


def check_limits(tasks: TaskRegistry, rates: dict[str, Rate]) -> None:
    """A task waiting for a limiter no setting defines is a ConfigError: it must not run
    unlimited by a typo. The global limiter at 0 is "no limit", not missing."""
    missing = {
        task: limit
        for task, limit in tasks.limits().items()
        if limit not in rates and limit != GLOBAL_LIMITER
    }
    if missing:
        named = ", ".join(f"{task} (limit={limit!r})" for task, limit in missing.items())
        known = ", ".join(sorted(set(rates) - {GLOBAL_LIMITER})) or "none"
        raise ConfigError(
            f"tasks wait for limiters LIMITS does not define: {named}; defined: {known}"
        )


class Turns:
    """Waits for turns of the deployment's limiters; every attempt of a worker shares it."""

    def __init__(self, limiter: Limiter, log: structlog.typing.FilteringBoundLogger) -> None:
        self._limiter = limiter
        self._log = log

    async def wait(self, name: str) -> None:
        """Return when limiter ``name`` grants this attempt its turn (at once when the limiter
        is off). Redis failing is waited out with backoff: without Redis the lease is not
        extended either, and the heartbeat then stops this attempt as lost."""
        rate = self._limiter.rates.get(name)
        if rate is None:
            return
        backoff = Backoff(first=0.2)
        while True:
            try:
                turn = await self._limiter.take(name, RESERVE_AHEAD_S)
            except Exception as exc:
                wait = backoff.next()
                self._log.warning(
                    "limiter.unreachable", limit=name, error=repr(exc), retry_in_s=wait
                )
                await asyncio.sleep(wait)
                continue
            if turn.granted:
                await asyncio.sleep(turn.wait_s)
                return
            # waiters of every worker learn the same time: spread them over one interval
            await asyncio.sleep(turn.wait_s + random.uniform(0, rate.interval_ms / 1000))

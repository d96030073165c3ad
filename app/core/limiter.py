"""Rate limits shared by every worker: the global one (``GLOBAL_RPM_LIMIT``) and named ones
(``LIMITS="openai:60/m,stripe:100/s"``), each a GCRA in one Lua script on Redis's own clock.

A worker asks for a turn before a rate-limited task runs; the answer is a reserved turn (wait this
long, then go) or "ask again later" when the next turn is beyond the horizon. Usage (turns granted
over the last period) is what the scaler and the metrics read.
"""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis

from app.core.keys import Keys
from app.core.rates import Rate
from app.core.scripts import source


@dataclass(frozen=True, slots=True)
class Turn:
    """One answer of :meth:`Limiter.take`."""

    granted: bool
    """True: the turn is reserved, go after ``wait_s``. False: ask again after ``wait_s``."""
    wait_s: float


@dataclass(frozen=True, slots=True)
class Usage:
    used: int
    """Turns granted over the limiter's last period."""
    limit: int
    period_s: float


class Limiter:
    """The rate limiters of one deployment: take turns, read usage. Safe to share."""

    def __init__(self, redis: Redis, keys: Keys, rates: dict[str, Rate]) -> None:
        self.redis = redis
        self.keys = keys
        self.rates = rates
        self._take = redis.register_script(source("limiter_take"))
        self._usage = redis.register_script(source("limiter_usage"))

    def _call_keys(self, name: str) -> tuple[list[str], list[float | int]]:
        rate = self.rates[name]
        keys = [self.keys.limiter(name), self.keys.limiter_starts(name)]
        return keys, [rate.interval_ms, rate.burst, rate.period_s * 1000]

    async def take(self, name: str, horizon_s: float) -> Turn:
        """Reserve the next turn of limiter ``name`` if it comes within ``horizon_s``."""
        keys, head = self._call_keys(name)
        granted, wait_ms = await self._take(keys=keys, args=[*head, horizon_s * 1000])
        return Turn(bool(int(granted)), max(0.0, float(wait_ms)) / 1000)

    async def usage(self, name: str) -> Usage:
        keys, head = self._call_keys(name)
        rate = self.rates[name]
        used = await self._usage(keys=keys, args=head)
        return Usage(int(used), rate.count, rate.period_s)

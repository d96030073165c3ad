"""What the scaler reads each poll (DESIGN §7): queue depth, due delayed jobs, live workers and
the global limiter's usage, read through the core like every other Redis access."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from app.core.keys import GLOBAL_LIMITER
from app.core.limiter import Limiter
from app.core.queue import Queue, QueueStats


@dataclass(frozen=True, slots=True)
class LimiterUsage:
    used: int
    """Starts counted against the global limit over its period (a minute)."""
    limit: int


@dataclass(frozen=True, slots=True)
class ScalerReadings:
    queues: list[QueueStats]
    due_delayed: int
    """Jobs in the delayed set whose time has come (every queue: the set is shared)."""
    workers: list[dict[str, Any]]
    """The live worker registry's entries (host, pid, queues, concurrency, busy, ...)."""
    limiter: LimiterUsage | None


async def limiter_usage(queue: Queue) -> LimiterUsage | None:
    """The global RPM limiter's usage (``P:rpm``), or None when ``GLOBAL_RPM_LIMIT`` is 0: no
    limit, so it never vetoes a scale-up."""
    rates = queue.settings.rates
    if GLOBAL_LIMITER not in rates:
        return None
    usage = await Limiter(queue.redis, queue.keys, rates).usage(GLOBAL_LIMITER)
    return LimiterUsage(usage.used, usage.limit)


async def read_scaler_inputs(
    queue: Queue, watch: Sequence[str] | None, now_ms: int
) -> ScalerReadings:
    """Everything one poll needs. ``now_ms`` is the Redis server's clock (due times use it)."""
    stats = await queue.stats(watch)
    async with queue.redis.pipeline(transaction=False) as pipe:
        pipe.zcount(queue.keys.delayed, "-inf", now_ms)
        pipe.hvals(queue.keys.workers)
        due, workers = await pipe.execute()
    return ScalerReadings(
        queues=stats,
        due_delayed=int(due),
        workers=[orjson.loads(raw) for raw in workers],
        limiter=await limiter_usage(queue),
    )

"""Fleet-wide figures for ``GET /metrics``, read from Redis, so every API replica answers the same.

Gauges come from the queues themselves (depth, age, live workers, limiter usage, the scaler's last
decision); counters from the ``P:metrics`` hash that the scripts keep in the very call that changes
state (``done.lua``'s ``tally``). Per-tenant series are bounded: the busiest tenants by name, the
rest summed as ``other``.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from app.core.limiter import Limiter, Usage
from app.core.queue import Queue, QueueStats
from app.core.scaler_state import recent_decisions

DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800)
"""Upper bounds (s) of the job-duration buckets: the same list as ``done.lua``'s."""
OTHER_TENANTS = "other"
ENDED = ("succeeded", "failed", "cancelled")


@dataclass(frozen=True, slots=True)
class Histogram:
    """Cumulative bucket counts by upper bound (the last one ``inf``), their sum and count."""

    buckets: list[tuple[float, int]]
    sum_s: float

    @property
    def count(self) -> int:
        return self.buckets[-1][1]


@dataclass(frozen=True, slots=True)
class FleetMetrics:
    queues: list[QueueStats]
    """Depth of every known queue."""
    jobs: dict[str, dict[str, int]]
    """Queue -> terminal status -> jobs that ended so."""
    tenants: dict[str, dict[str, int]]
    """The busiest tenants (and ``other``) -> terminal status -> jobs that ended so."""
    durations: dict[str, Histogram]
    """Queue -> how long attempts ran, from start to recorded outcome."""
    dead_lettered: dict[str, int]
    lease_lost: int
    reclaimed: int
    workers: int
    limiters: dict[str, Usage]
    desired_workers: int | None
    """The scaler's last decision; None before its first."""
    totals: dict[str, int] = field(init=False)
    """Terminal status -> jobs that ended so, every queue."""

    def __post_init__(self) -> None:
        totals = {status: sum(q.get(status, 0) for q in self.jobs.values()) for status in ENDED}
        object.__setattr__(self, "totals", totals)


async def read_metrics(queue: Queue, top_tenants: int) -> FleetMetrics:
    """Every figure of the fleet, in a few round trips whatever the number of jobs."""
    keys = queue.keys
    async with queue.redis.pipeline(transaction=False) as pipe:
        pipe.hgetall(keys.metrics)
        pipe.hlen(keys.workers)
        counters, workers = await pipe.execute()
    limiter = Limiter(queue.redis, keys, queue.settings.rates)
    decisions = await recent_decisions(queue.redis, keys, 1)
    desired = decisions[0].get("desired") if decisions else None
    parsed = _Counters(counters)
    return FleetMetrics(
        queues=await queue.stats(),
        jobs=parsed.jobs,
        tenants=_bounded(parsed.tenants, top_tenants),
        durations=parsed.durations(),
        dead_lettered=parsed.dead_lettered,
        lease_lost=parsed.plain.get("lease_lost", 0),
        reclaimed=parsed.plain.get("reclaimed", 0),
        workers=int(workers),
        limiters={name: await limiter.usage(name) for name in sorted(limiter.rates)},
        desired_workers=int(desired) if desired is not None else None,
    )


async def tenants_with_ended_jobs(queue: Queue) -> set[str]:
    """Every tenant that has had a job end (the per-tenant counters' names): with the tenants
    that have keys, the ones an admin's listing shows."""
    names: Any = await queue.redis.hkeys(queue.keys.metrics)
    return {
        parts[1]
        for parts in (n.split("\n") for n in names)
        if parts[0] == "tenant" and len(parts) == 3 and parts[1]
    }


class _Counters:
    """The ``P:metrics`` hash sorted by kind (fields are parts joined by newlines)."""

    def __init__(self, raw: dict[str, Any]) -> None:
        self.jobs: dict[str, dict[str, int]] = defaultdict(dict)
        self.tenants: dict[str, dict[str, int]] = defaultdict(dict)
        self.dead_lettered: dict[str, int] = {}
        self.plain: dict[str, int] = {}
        self._buckets: dict[str, dict[str, int]] = defaultdict(dict)
        self._sums: dict[str, float] = {}
        for name, value in raw.items():
            kind, *parts = name.split("\n")
            if kind == "jobs" and len(parts) == 2:
                self.jobs[parts[0]][parts[1]] = int(value)
            elif kind == "tenant" and len(parts) == 2:
                self.tenants[parts[0]][parts[1]] = int(value)
            elif kind == "duration" and len(parts) == 2:
                self._buckets[parts[0]][parts[1]] = int(value)
            elif kind == "duration_sum" and len(parts) == 1:
                self._sums[parts[0]] = float(value)
            elif kind == "dead_lettered" and len(parts) == 1:
                self.dead_lettered[parts[0]] = int(value)
            elif not parts:
                self.plain[kind] = int(value)

    def durations(self) -> dict[str, Histogram]:
        out = {}
        for queue, counts in sorted(self._buckets.items()):
            running, buckets = 0, []
            for bound in (*DURATION_BUCKETS, float("inf")):
                running += counts.get("+Inf" if bound == float("inf") else _lua_number(bound), 0)
                buckets.append((float(bound), running))
            out[queue] = Histogram(buckets, self._sums.get(queue, 0.0))
        return out


def _lua_number(bound: float) -> str:
    """How Lua's ``tostring`` writes a bucket bound: ``1`` for 1.0, ``0.005`` for 0.005."""
    return f"{bound:g}"


def _bounded(tenants: dict[str, dict[str, int]], top: int) -> dict[str, dict[str, int]]:
    """The ``top`` tenants by jobs ended, and every other one summed as ``other``."""
    ranked = sorted(tenants.items(), key=lambda item: (-sum(item[1].values()), item[0]))
    kept = dict(ranked[:top])
    for _, counts in ranked[top:]:
        other = kept.setdefault(OTHER_TENANTS, {})  # a tenant named "other" shares the series
        for status, n in counts.items():
            other[status] = other.get(status, 0) + n
    return kept

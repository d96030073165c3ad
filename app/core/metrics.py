"""Fleet-wide figures for ``GET /metrics``, read from Redis, so every API replica answers the same.

Gauges come from the queues themselves (depth, age, live workers, limiter usage, the scaler's last
decision) and from each tenant's gauges (``gauges.lua``); counters from the ``P:metrics`` hash that
the scripts keep in the very call that changes state (``done.lua``'s ``tally``). Per-tenant series
are bounded: the busiest tenants by name, the rest summed as ``other``.
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
NOW = ("pending", "running", "scheduled")
"""The statuses the tenant gauges count; ``dead`` (failed jobs still kept) is counted apart."""
TENANT_FIGURES = (*NOW, "dead", *ENDED)
"""A tenant's figures: its jobs in each status now, then those that ended so, ever."""


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
    """The busiest tenants (and ``other``) -> each of ``TENANT_FIGURES`` (absent: 0)."""
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
    """Every figure of the fleet, in a few round trips whatever the number of jobs; with
    ``top_tenants`` 0, none per tenant (what the dashboard's stats frame needs)."""
    keys = queue.keys
    async with queue.redis.pipeline(transaction=False) as pipe:
        pipe.hgetall(keys.metrics)
        pipe.hlen(keys.workers)
        counters, workers = await pipe.execute()
    limiter = Limiter(queue.redis, keys, queue.settings.rates)
    decisions = await recent_decisions(queue.redis, keys, 1)
    desired = decisions[0].get("desired") if decisions else None
    parsed = _Counters(counters)
    tenants = await _with_jobs_now(queue, parsed.tenants) if top_tenants > 0 else {}
    return FleetMetrics(
        queues=await queue.stats(),
        jobs=parsed.jobs,
        tenants=_bounded(tenants, top_tenants),
        durations=parsed.durations(),
        dead_lettered=parsed.dead_lettered,
        lease_lost=parsed.plain.get("lease_lost", 0),
        reclaimed=parsed.plain.get("reclaimed", 0),
        workers=int(workers),
        limiters={name: await limiter.usage(name) for name in sorted(limiter.rates)},
        desired_workers=int(desired) if desired is not None else None,
    )


async def tenants_seen(queue: Queue) -> set[str]:
    """Every tenant that has had a job end, or has one waiting or running now (the names in the
    per-tenant counters and gauges): with the tenants that have keys, an admin's listing."""
    async with queue.redis.pipeline(transaction=False) as pipe:
        pipe.hkeys(queue.keys.metrics)
        pipe.hkeys(queue.keys.tenant_gauges)
        counters, gauges = await pipe.execute()
    ended = (n.split("\n") for n in counters)
    now = (n.partition("\n")[0] for n in gauges)
    return {p[1] for p in ended if p[0] == "tenant" and len(p) == 3 and p[1]} | set(
        filter(None, now)
    )


async def _with_jobs_now(
    queue: Queue, tenants: dict[str, dict[str, int]]
) -> dict[str, dict[str, int]]:
    """``tenants``' ended totals, with every tenant's jobs in each status now added."""
    async with queue.redis.pipeline(transaction=False) as pipe:
        pipe.hgetall(queue.keys.tenant_gauges)
        pipe.time()
        gauges, now = await pipe.execute()
    for name, n in gauges.items():
        tenant, _, status = name.partition("\n")
        tenants[tenant][status] = int(n)
    failed = [tenant for tenant, counts in tenants.items() if counts.get("failed")]
    for tenant, dead in zip(failed, await _dead(queue, failed, now), strict=True):
        tenants[tenant]["dead"] = dead
    return tenants


async def read_tenant_figures(queue: Queue, tenant: str) -> dict[str, int]:
    """One tenant's ``TENANT_FIGURES``, read without looking at any other tenant's."""
    keys = queue.keys
    async with queue.redis.pipeline(transaction=False) as pipe:
        pipe.hmget(keys.tenant_gauges, [f"{tenant}\n{status}" for status in NOW])
        pipe.hmget(keys.metrics, [f"tenant\n{tenant}\n{status}" for status in ENDED])
        pipe.time()
        now_counts, ended_counts, now = await pipe.execute()
    [dead] = await _dead(queue, [tenant], now)
    counts = [int(n or 0) for n in (*now_counts, dead, *ended_counts)]
    return dict(zip(TENANT_FIGURES, counts, strict=True))


async def _dead(queue: Queue, tenants: list[str], now: tuple[int, int]) -> list[int]:
    """Per tenant, its failed jobs whose record is still kept at ``now`` (Redis ``TIME``)."""
    after = f"({now[0] * 1000 + now[1] // 1000}"
    async with queue.redis.pipeline(transaction=False) as pipe:
        for tenant in tenants:
            pipe.zcount(queue.keys.tenant_dead(tenant), after, "+inf")
        return [int(n) for n in await pipe.execute()]


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
    """The ``top`` tenants by jobs ended plus jobs not ended yet, every other one summed as
    ``other``. Ended totals only grow, so the kept set changes slowly and a tenant's counters do
    not hop in and out of ``other`` between scrapes; the jobs not ended give a new tenant with a
    large backlog (or a stuck one) a series of its own at once."""

    def weight(counts: dict[str, int]) -> int:
        return sum(counts.get(status, 0) for status in (*NOW, *ENDED))

    ranked = sorted(tenants.items(), key=lambda item: (-weight(item[1]), item[0]))
    kept = dict(ranked[:top])
    for _, counts in ranked[top:]:
        other = kept.setdefault(OTHER_TENANTS, {})  # a tenant named "other" shares the series
        for status, n in counts.items():
            other[status] = other.get(status, 0) + n
    return kept

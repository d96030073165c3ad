"""``GET /metrics``: the fleet's figures as JSON, or as Prometheus text / OpenMetrics when the
client asks for ``text/plain`` or ``application/openmetrics-text`` (what Prometheus sends).

Fleet-wide figures come from Redis (:mod:`app.core.metrics`), so every replica answers the same;
the HTTP figures (``tide_http_*``) are this replica's own, counted by :func:`http_middleware`.
With auth on, an admin key sees all of it and a tenant's key only its own tenant's figures:
anything fleet-wide (queues, totals, workers, limiters, HTTP requests) counts other tenants'
work too, and the difference from its own figures would tell a tenant theirs.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter
from prometheus_client import Histogram as HttpHistogram
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from app.api.auth import AUTHENTICATOR, principal_of
from app.api.state import QUEUE
from app.core.metrics import ENDED, NOW, FleetMetrics, read_metrics, read_tenant_figures
from app.process.http import json_response

TOP_TENANTS = 20
"""Tenants with series of their own; the rest are summed as ``other``."""
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
PROMETHEUS_TYPES = ("text/plain", "application/openmetrics-text")


class HttpMetrics:
    """This replica's request counter and latency histogram."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "tide_http_requests",
            "HTTP requests answered by this API replica.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.duration = HttpHistogram(
            "tide_http_request_duration_seconds",
            "Time this API replica took to answer, by route.",
            ["method", "route"],
            registry=self.registry,
        )
        self._series: dict[tuple[str, str, int], tuple[Counter, HttpHistogram]] = {}
        """Each label set's children: ``labels()`` takes a lock and builds a key per call."""

    def observe(self, request: web.Request, status: int, seconds: float) -> None:
        # labels stay bounded: the route's pattern, not the path; unknown methods as one
        resource = request.match_info.route.resource
        route = resource.canonical if resource is not None else "unmatched"
        method = request.method if request.method in METHODS else "other"
        series = self._series.get((method, route, status))
        if series is None:
            series = (
                self.requests.labels(method, route, str(status)),
                self.duration.labels(method, route),
            )
            self._series[method, route, status] = series
        series[0].inc()
        series[1].observe(seconds)


HTTP_METRICS = web.AppKey("http_metrics", HttpMetrics)


async def metrics(request: web.Request) -> web.Response:
    principal = principal_of(request)
    accept = request.headers.get("Accept", "")
    prometheus = any(kind in accept for kind in PROMETHEUS_TYPES)
    collector: _Snapshot | _TenantSnapshot
    if principal.admin or not await request.app[AUTHENTICATOR].enabled():
        snapshot = await read_metrics(request.app[QUEUE], TOP_TENANTS)
        if not prometheus:
            return json_response(as_json(snapshot))
        collector = _Snapshot(snapshot, request.app[HTTP_METRICS].registry)
    else:
        tenant = principal.tenant
        figures = {tenant: await read_tenant_figures(request.app[QUEUE], tenant)}
        if not prometheus:
            return json_response(tenant_json(figures))
        collector = _TenantSnapshot(figures)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    encode, content_type = choose_encoder(accept)
    return web.Response(body=encode(registry), headers={"Content-Type": content_type})


def setup(app: web.Application) -> None:
    """The route, and this replica's HTTP figures (``log_middleware`` records each request)."""
    app[HTTP_METRICS] = HttpMetrics()
    app.router.add_get("/metrics", metrics, name="metrics")


def as_json(m: FleetMetrics) -> dict[str, Any]:
    queues: dict[str, Any] = {}
    for q in m.queues:
        queues[q.queue] = {
            "pending": q.waiting,
            "running": q.running,
            "scheduled": q.scheduled,
            "dead": q.dead,
            "oldest_waiting_s": q.oldest_waiting_age_s,
        }
    for name, counts in m.jobs.items():
        entry = queues.setdefault(name, {})
        entry.update({f"{status}_total": counts.get(status, 0) for status in ENDED})
        entry["dead_lettered_total"] = m.dead_lettered.get(name, 0)
    for name, histogram in m.durations.items():
        queues.setdefault(name, {})["duration_s"] = {
            "count": histogram.count,
            "sum": histogram.sum_s,
            "buckets": {_le(bound): n for bound, n in histogram.buckets},
        }
    glob = m.limiters.get("global")
    return {
        "pending": sum(q.waiting for q in m.queues),
        "running": sum(q.running for q in m.queues),
        "scheduled": sum(q.scheduled for q in m.queues),
        "dead": sum(q.dead for q in m.queues),
        **{f"{status}_total": n for status, n in m.totals.items()},
        "dead_lettered_total": sum(m.dead_lettered.values()),
        "lease_lost_total": m.lease_lost,
        "reclaimed_total": m.reclaimed,
        "workers": m.workers,
        "rpm": {"used": glob.used, "limit": glob.limit} if glob else None,
        "limits": {
            name: {"used": u.used, "limit": u.limit, "period_s": u.period_s}
            for name, u in m.limiters.items()
        },
        "scaler": {"desired_workers": m.desired_workers},
        "queues": queues,
        "tenants": _tenants_json(m.tenants),
    }


def tenant_json(tenants: dict[str, dict[str, int]]) -> dict[str, Any]:
    """What a tenant's key sees: its own figures, at the top as the fleet's are for an admin,
    and under ``tenants`` as in the admin's view."""
    [entry] = _tenants_json(tenants).values()
    return {**entry, "tenants": _tenants_json(tenants)}


def _tenants_json(tenants: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
    return {
        tenant: {
            **{status: counts.get(status, 0) for status in (*NOW, "dead")},
            **{f"{status}_total": counts.get(status, 0) for status in ENDED},
        }
        for tenant, counts in tenants.items()
    }


def _le(bound: float) -> str:
    return "+Inf" if bound == float("inf") else f"{bound:g}"


class _Snapshot:
    """A one-scrape collector: the fleet's figures, then this replica's HTTP figures."""

    def __init__(self, snapshot: FleetMetrics, http: CollectorRegistry) -> None:
        self._m = snapshot
        self._http = http

    def collect(self) -> Iterator[Metric]:
        yield from _families(self._m)
        yield from self._http.collect()


class _TenantSnapshot:
    """A one-scrape collector of a tenant's own series, and nothing else."""

    def __init__(self, tenants: dict[str, dict[str, int]]) -> None:
        self._tenants = tenants

    def collect(self) -> Iterator[Metric]:
        yield from _tenant_families(self._tenants, "The tenant's")


def _gauge(name: str, doc: str, value: float | None) -> Iterator[Metric]:
    if value is not None:
        yield GaugeMetricFamily(name, doc, value=value)


def _families(m: FleetMetrics) -> Iterator[Metric]:
    jobs = CounterMetricFamily(
        "tide_jobs", "Jobs that ended, by queue and terminal status.", labels=["queue", "status"]
    )
    for queue, counts in sorted(m.jobs.items()):
        for status in ENDED:
            jobs.add_metric([queue, status], counts.get(status, 0))
    yield jobs
    whose = f"By tenant (the {TOP_TENANTS} busiest; the rest as 'other'):"
    yield from _tenant_families(m.tenants, whose)
    durations = HistogramMetricFamily(
        "tide_job_duration_seconds",
        "How long attempts ran, from start to recorded outcome.",
        labels=["queue"],
    )
    for queue, h in m.durations.items():
        durations.add_metric([queue], [(_le(b), n) for b, n in h.buckets], sum_value=h.sum_s)
    yield durations
    yield from _queue_gauges(m)
    dead = CounterMetricFamily(
        "tide_dead_lettered", "Jobs moved to a dead-letter stream.", labels=["queue"]
    )
    for queue, n in sorted(m.dead_lettered.items()):
        dead.add_metric([queue], n)
    yield dead
    yield CounterMetricFamily(
        "tide_lease_lost", "Attempts whose lease another worker took over.", value=m.lease_lost
    )
    yield CounterMetricFamily(
        "tide_reclaimed", "Entries taken over from workers that stopped.", value=m.reclaimed
    )
    yield from _gauge("tide_workers", "Live workers in the registry.", m.workers)
    glob = m.limiters.get("global")
    if glob is not None:
        yield GaugeMetricFamily(
            "tide_rpm_used", "Starts counted by the global limiter over its period.", glob.used
        )
        yield GaugeMetricFamily("tide_rpm_limit", "GLOBAL_RPM_LIMIT.", glob.limit)
    for name, doc in (("used", "Starts over its period"), ("limit", "Starts allowed per period")):
        family = GaugeMetricFamily(
            f"tide_limiter_{name}", f"{doc}, per limiter.", labels=["limiter"]
        )
        for limiter, usage in m.limiters.items():
            family.add_metric([limiter], getattr(usage, name))
        yield family
    yield from _gauge(
        "tide_scaler_desired_workers", "Workers the scaler last decided on.", m.desired_workers
    )


TENANT_GAUGES = (
    ("waiting", "pending", "jobs waiting in a queue's stream."),
    ("running", "running", "jobs leased by a worker."),
    ("scheduled", "scheduled", "jobs waiting for their time (run_at or a retry's backoff)."),
    ("dead", "dead", "failed (dead-lettered) jobs whose record is still kept, so retryable."),
)
"""Per-tenant gauge: its name after ``tide_tenant_`` (as the queues'), figure, what it counts."""


def _tenant_families(tenants: dict[str, dict[str, int]], whose: str) -> Iterator[Metric]:
    ended = CounterMetricFamily(
        "tide_tenant_jobs", f"{whose} jobs that ended, by status.", labels=["tenant", "status"]
    )
    for tenant, counts in tenants.items():
        for status in ENDED:
            ended.add_metric([tenant, status], counts.get(status, 0))
    yield ended
    for name, figure, doc in TENANT_GAUGES:
        family = GaugeMetricFamily(f"tide_tenant_{name}", f"{whose} {doc}", labels=["tenant"])
        for tenant, counts in tenants.items():
            family.add_metric([tenant], counts.get(figure, 0))
        yield family


def _queue_gauges(m: FleetMetrics) -> Iterator[Metric]:
    figures = (
        ("waiting", "Jobs waiting in the queue's stream."),
        ("running", "Jobs leased by a worker."),
        ("scheduled", "Jobs waiting for their time (run_at or a retry's backoff)."),
        ("dead", "Entries in the queue's dead-letter stream."),
    )
    for name, doc in figures:
        family = GaugeMetricFamily(f"tide_queue_{name}", doc, labels=["queue"])
        for q in m.queues:
            family.add_metric([q.queue], getattr(q, name))
        yield family
    oldest = GaugeMetricFamily(
        "tide_queue_oldest_waiting_seconds", "Age of the oldest waiting job.", labels=["queue"]
    )
    for q in m.queues:
        oldest.add_metric([q.queue], q.oldest_waiting_age_s or 0.0)
    yield oldest

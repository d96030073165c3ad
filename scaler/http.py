"""The scaler's small HTTP server: ``/health`` and ``/metrics`` with the original design's field
names, and ``/decisions`` (the capped decision log, newest first)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from app.process.http import json_response
from scaler.service import Scaler

SCALER = web.AppKey("scaler", Scaler)

PROMETHEUS_TYPES = ("text/plain", "application/openmetrics-text")

GAUGES = {
    "workers_current": "Workers the backend runs now.",
    "workers_max": "MAX_WORKERS: the most workers the scaler will run.",
    "queue_pending": "Jobs waiting in the watched queues (due delayed jobs included).",
    "queue_processing": "Jobs running in the watched queues.",
    "rpm_used": "Requests counted by the global RPM limiter over the last minute.",
    "rpm_limit": "GLOBAL_RPM_LIMIT.",
}


def create_app(scaler: Scaler) -> web.Application:
    app = web.Application()
    app[SCALER] = scaler
    app.router.add_get("/health", health)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/decisions", decisions)
    return app


async def health(request: web.Request) -> web.Response:
    """200 while the scaler leads or stands by; 503 before its first poll or while Redis (or
    its backend) fails."""
    scaler = request.app[SCALER]
    snap = scaler.snapshot
    signals = snap.signals
    body = {
        "status": "ok" if snap.role == "leader" else snap.role,
        "workers": snap.workers,
        "maxWorkers": scaler.config.max_workers,
        "queueDepth": signals.depth if signals else None,
        "rpmUsage": signals.rpm_used if signals else None,
        "rpmLimit": scaler.settings.global_rpm_limit,
    }
    healthy = snap.role in ("leader", "standby")
    return json_response(body, status=200 if healthy else 503)


def _figures(scaler: Scaler) -> dict[str, int | None]:
    snap = scaler.snapshot
    signals = snap.signals
    return {
        "workers_current": snap.workers,
        "workers_max": scaler.config.max_workers,
        "queue_pending": signals.waiting + signals.due_delayed if signals else None,
        "queue_processing": signals.running if signals else None,
        "rpm_used": signals.rpm_used if signals else None,
        "rpm_limit": scaler.settings.global_rpm_limit,
    }


def prometheus_text(figures: dict[str, int | None], prefix: str = "tide_scaler_") -> str:
    """Gauges in Prometheus' text exposition format; unknown figures are left out."""
    lines: list[str] = []
    for name, value in figures.items():
        if value is None:
            continue
        lines += [
            f"# HELP {prefix}{name} {GAUGES[name]}",
            f"# TYPE {prefix}{name} gauge",
            f"{prefix}{name} {value}",
        ]
    return "\n".join(lines) + "\n"


async def metrics(request: web.Request) -> web.Response:
    """JSON by default; Prometheus text when the client asks for it (as Prometheus does)."""
    figures = _figures(request.app[SCALER])
    accept = request.headers.get("Accept", "")
    if any(kind in accept for kind in PROMETHEUS_TYPES):
        return web.Response(
            text=prometheus_text(figures), content_type="text/plain", charset="utf-8"
        )
    return json_response(figures)


async def decisions(request: web.Request) -> web.Response:
    try:
        count = min(max(int(request.query.get("count", "50")), 1), 1000)
    except ValueError:
        return json_response(
            {"error": {"code": "invalid_request", "message": "count must be an integer"}}, 400
        )
    entries: list[dict[str, Any]] = await request.app[SCALER].record.decisions(count)
    return json_response({"decisions": entries})

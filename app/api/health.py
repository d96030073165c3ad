"""``GET /health``: liveness and readiness in one answer (503 while Redis does not answer)."""

from __future__ import annotations

import asyncio

import structlog
from aiohttp import web

from app.api.state import QUEUE, SETTINGS
from app.process.http import json_response

log = structlog.get_logger("tide.api")


async def health(request: web.Request) -> web.Response:
    """PING Redis with a short timeout: a load balancer must not wait on a hung connection."""
    timeout = request.app[SETTINGS].health_timeout_s
    try:
        await asyncio.wait_for(request.app[QUEUE].redis.ping(), timeout)
    except Exception as exc:  # any failure to answer means "not ready", whatever its kind
        log.warning("api.health_failed", error=repr(exc), timeout_s=timeout)
        return json_response({"status": "unavailable", "redis": "unavailable"}, status=503)
    return json_response({"status": "ok", "redis": "ok"})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/health", health, name="health")

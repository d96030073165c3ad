"""What the fleet is doing, for the dashboard and anyone watching: the live workers, the
scaler's recent decisions, and the figures of the ``stats`` frame for a page that polls.

Fleet-wide and tenant-free (counts, hosts, reasons; never a job id), so any key may read them.
"""

from __future__ import annotations

from aiohttp import web

from app.api.bodies import validated
from app.api.live.stats import stats_figures
from app.api.schemas import Newest
from app.api.state import QUEUE
from app.core.models import iso
from app.core.scaler_state import recent_decisions
from app.core.worker_registry import live_workers
from app.process.http import json_response

ANNOUNCED = ("host", "pid", "queues", "concurrency", "busy", "processed", "failed")
"""What a worker announces that the listing shows (``workers/presence.py`` writes it)."""


async def list_workers(request: web.Request) -> web.Response:
    """``GET /v1/workers``: every live worker, most recently seen first."""
    queue = request.app[QUEUE]
    workers = await live_workers(queue.redis, queue.keys)
    body = [
        {
            "id": w.id,
            "heartbeat_age_s": round(w.heartbeat_age_s, 3),
            **{k: w.info[k] for k in ANNOUNCED if k in w.info},
        }
        for w in workers
    ]
    return json_response({"workers": body})


async def scaler_decisions(request: web.Request) -> web.Response:
    """``GET /v1/scaler/decisions``: the newest decisions first, each with its reason."""
    query = validated(Newest, dict(request.query), "the query")
    queue = request.app[QUEUE]
    decisions = await recent_decisions(queue.redis, queue.keys, query.limit)
    body = [{**d, "at": iso(d["id"].split("-")[0])} for d in decisions]
    return json_response({"decisions": body})


async def stats(request: web.Request) -> web.Response:
    """``GET /v1/stats``: the deployment's figures, as the WebSocket's ``stats`` frame has them."""
    return json_response(await stats_figures(request.app[QUEUE]))


def add_routes(app: web.Application) -> None:
    app.router.add_get("/v1/workers", list_workers, name="list_workers")
    app.router.add_get("/v1/scaler/decisions", scaler_decisions, name="scaler_decisions")
    app.router.add_get("/v1/stats", stats, name="stats")

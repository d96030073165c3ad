"""``GET /v1/queues``: per queue, what waits, runs, is scheduled or dead, and how fast it drains.

Queues are shared by every tenant, so the figures are the whole deployment's. Throughput comes
from per-minute counters the scripts keep (see ``Queue.stats``), not from reading the events
stream: a scan of the last minute's events would grow with the load the dashboard polls it under.
"""

from __future__ import annotations

from dataclasses import asdict

from aiohttp import web

from app.api.state import QUEUE
from app.process.http import json_response


async def list_queues(request: web.Request) -> web.Response:
    """Every known queue, by name, in one script call; each is ``QueueInfo`` in the document."""
    stats = await request.app[QUEUE].stats()
    return json_response({"queues": [asdict(s) for s in stats]})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/v1/queues", list_queues, name="list_queues")

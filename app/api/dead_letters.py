"""``GET /v1/dead-letters``: the jobs that failed for good, newest first, over every queue.

``GET /v1/jobs?status=failed`` lists one tenant's failed jobs; an admin watching the whole
deployment needs every tenant's, and the dead-letter streams hold them in the order they died.
A tenant sees its own; an admin sees all.
"""

from __future__ import annotations

from aiohttp import web

from app.api.auth import principal_of
from app.api.bodies import validated
from app.api.schemas import Newest
from app.api.state import QUEUE
from app.core.dead_letters import newest_dead_letters
from app.core.models import iso
from app.process.http import json_response


async def list_dead_letters(request: web.Request) -> web.Response:
    query = validated(Newest, dict(request.query), "the query")
    letters = await newest_dead_letters(
        request.app[QUEUE], principal_of(request).scope, query.limit
    )
    body = [
        {
            "entry": d.entry,
            "at": iso(d.entry.split("-")[0]),
            "queue": d.queue,
            "job_id": d.job_id,
            "error": d.error,
            "attempts": d.attempts,
            "job": None if d.job is None else d.job.to_dict(),
        }
        for d in letters
    ]
    return json_response({"dead_letters": body})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/v1/dead-letters", list_dead_letters, name="list_dead_letters")

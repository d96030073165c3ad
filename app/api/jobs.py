"""``/v1/jobs``: submit a job and read it back."""

from __future__ import annotations

from aiohttp import web

from app.api.bodies import parse_body
from app.api.schemas import SubmitJob
from app.api.state import QUEUE
from app.core.errors import JobNotFound
from app.process.http import json_response

PUBLIC_TENANT = "public"
"""Every request's tenant until API keys arrive (DESIGN §4: no keys configured → auth off)."""


def tenant_of(request: web.Request) -> str:
    """The tenant a request acts for: the one seam auth will replace."""
    return PUBLIC_TENANT


async def submit_job(request: web.Request) -> web.Response:
    """``POST /v1/jobs``: 201 with the job and its ``Location``."""
    body = await parse_body(request, SubmitJob)
    job = await request.app[QUEUE].submit(body.to_spec(tenant_of(request)))
    location = str(request.app.router["get_job"].url_for(job_id=job.id))
    return json_response(job.to_dict(), status=201, headers={"Location": location})


async def get_job(request: web.Request) -> web.Response:
    """``GET /v1/jobs/{job_id}``: another tenant's job is as unknown as a missing one."""
    job_id = request.match_info["job_id"]
    job = await request.app[QUEUE].get(job_id)
    if job is None or job.tenant != tenant_of(request):
        raise JobNotFound(f"no job with id {job_id!r}")
    return json_response(job.to_dict())


def add_routes(app: web.Application) -> None:
    app.router.add_post("/v1/jobs", submit_job, name="submit_job")
    app.router.add_get("/v1/jobs/{job_id}", get_job, name="get_job")

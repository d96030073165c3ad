"""``/v1/jobs``: submit one job or a batch, list, read, cancel and retry, within the caller's
tenant (an admin key reaches every tenant's jobs)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from aiohttp import web

from app.api.auth import Principal, principal_of
from app.api.bodies import parse_body, read_json, validated
from app.api.limits import quota_headers
from app.api.responses import ApiError
from app.api.schemas import ListJobs, SubmitBatch, SubmitJob
from app.api.state import GROUP_COMMIT, QUEUE, SETTINGS
from app.core.errors import JobNotFound
from app.core.models import MAX_IDEMPOTENCY_KEY, Job
from app.core.tenants import SubmitRequest
from app.process.http import json_response

IDEMPOTENCY_HEADER = "Idempotency-Key"
JOB_PATH = "/v1/jobs/"


def _idempotency_key(request: web.Request) -> str | None:
    key = request.headers.get(IDEMPOTENCY_HEADER)
    if key is None:
        return None
    if not 0 < len(key) <= MAX_IDEMPOTENCY_KEY or not key.isprintable():
        raise ApiError(
            422,
            "invalid_idempotency_key",
            f"{IDEMPOTENCY_HEADER} must be 1 to {MAX_IDEMPOTENCY_KEY} printable characters",
        )
    return key


def _location(job: Job) -> str:
    """``GET /v1/jobs/{id}`` of the job, its id quoted (a library caller's ids may hold any
    printable character). Formatted by hand: the router's ``url_for`` cost more than the rest
    of the headers on the single-submit path."""
    return JOB_PATH + quote(job.id, safe="")


async def submit_job(request: web.Request) -> web.Response:
    """``POST /v1/jobs``: 201 with the job and its ``Location``; 200 and
    ``Idempotent-Replayed: true`` when its ``Idempotency-Key`` created the job before."""
    principal = principal_of(request)
    key = _idempotency_key(request)
    body = await parse_body(request, SubmitJob)
    spec = body.to_spec(principal.tenant, key)
    admitted = await request.app[GROUP_COMMIT].admit(SubmitRequest([spec], principal.limits))
    job = admitted.jobs[0]
    headers = {"Location": _location(job), **quota_headers(admitted.quota)}
    if admitted.replayed[0]:
        headers["Idempotent-Replayed"] = "true"
        return json_response(job.to_dict(), status=200, headers=headers)
    return json_response(job.to_dict(), status=201, headers=headers)


async def submit_batch(request: web.Request) -> web.Response:
    """``POST /v1/jobs/batch``: every job or none (limits, idempotency); the results in request
    order, each with ``replayed``. 201 when any job was created, else 200."""
    principal = principal_of(request)
    batch_max = request.app[SETTINGS].batch_max
    data = await read_json(request)
    items = data.get("jobs") if isinstance(data, dict) else None
    if isinstance(items, list) and len(items) > batch_max:  # before validating them all
        message = f"a batch holds at most {batch_max} jobs, this one has {len(items)}"
        raise ApiError(413, "batch_too_large", message)
    body = validated(SubmitBatch, data)
    specs = [item.to_spec(principal.tenant, item.idempotency_key) for item in body.jobs]
    admitted = await request.app[QUEUE].admit(SubmitRequest(specs, principal.limits))
    results = [
        {"job": job.to_dict(), "replayed": replayed}
        for job, replayed in zip(admitted.jobs, admitted.replayed, strict=True)
    ]
    status = 200 if all(admitted.replayed) else 201
    return json_response({"results": results}, status, quota_headers(admitted.quota))


async def list_jobs(request: web.Request) -> web.Response:
    """``GET /v1/jobs``: the tenant's recent jobs, newest first, and ``next_cursor``."""
    principal = principal_of(request)
    query = validated(ListJobs, dict(request.query), "the query")
    tenant = principal.tenant
    if query.tenant is not None and query.tenant != tenant:
        if not principal.admin:
            raise ApiError(403, "forbidden", "only an admin key lists another tenant's jobs")
        tenant = query.tenant
    page = await request.app[QUEUE].list_jobs(
        tenant,
        status=query.status,
        queue=query.queue,
        type=query.type,
        limit=query.limit,
        cursor=query.cursor,
    )
    return json_response({"jobs": [job.to_dict() for job in page.jobs], "next_cursor": page.cursor})


async def _visible_job(request: web.Request, principal: Principal) -> Job:
    """The job of the path, if the caller may see it: another tenant's is as unknown as none."""
    job_id = request.match_info["job_id"]
    job = await request.app[QUEUE].get(job_id)
    if job is None or not (principal.admin or job.tenant == principal.tenant):
        raise JobNotFound(f"no job with id {job_id!r}")
    return job


async def get_job(request: web.Request) -> web.Response:
    """``GET /v1/jobs/{job_id}``."""
    return json_response((await _visible_job(request, principal_of(request))).to_dict())


async def cancel_job(request: web.Request) -> web.Response:
    """``POST /v1/jobs/{job_id}/cancel``: the job after the cancel (a running one keeps running
    until its worker's next heartbeat, with ``cancel_requested``); 409 when it has ended."""
    principal = principal_of(request)
    await request.app[QUEUE].cancel(request.match_info["job_id"], principal.scope)
    return json_response(await _read_back(request, principal))


async def retry_job(request: web.Request) -> web.Response:
    """``POST /v1/jobs/{job_id}/retry``: a failed or cancelled job runs again from its first
    attempt, taking an active slot (429 over the limit); 409 for any other status."""
    principal = principal_of(request)
    job_id = request.match_info["job_id"]
    # an admin acts for the operator, over any tenant's limit
    limit = None if principal.admin else principal.limits.max_active
    await request.app[QUEUE].retry(job_id, principal.scope, limit)
    return json_response(await _read_back(request, principal))


async def _read_back(request: web.Request, principal: Principal) -> dict[str, Any]:
    return (await _visible_job(request, principal)).to_dict()


def add_routes(app: web.Application) -> None:
    app.router.add_post("/v1/jobs", submit_job, name="submit_job")
    app.router.add_get("/v1/jobs", list_jobs, name="list_jobs")
    app.router.add_post("/v1/jobs/batch", submit_batch, name="submit_batch")
    app.router.add_get(JOB_PATH + "{job_id}", get_job, name="get_job")
    app.router.add_post("/v1/jobs/{job_id}/cancel", cancel_job, name="cancel_job")
    app.router.add_post("/v1/jobs/{job_id}/retry", retry_job, name="retry_job")

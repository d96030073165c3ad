"""The API's operations as a table (DESIGN §4): path, method, body, query, answers and errors.

The OpenAPI document (``openapi.py``) is rendered from it, and a test checks that the app serves
every operation in it, so this is the one list of what the API offers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from app import wire as w
from app.api import contract as c
from app.api import schemas as s
from app.api.schemas import SubmitJob

JSON = "application/json"


@dataclass(frozen=True, slots=True)
class Reply:
    """A successful answer: status, what it means, its body's model and its headers."""

    status: int
    description: str
    model: type[BaseModel] | None = None
    headers: tuple[str, ...] = ()
    """Headers it always carries."""
    optional_headers: tuple[str, ...] = ()
    media: str = JSON
    links: tuple[str, ...] = ()
    """Operations that take this answer's ``id`` as their ``job_id``."""


@dataclass(frozen=True, slots=True)
class Operation:
    """One method on one path; `errors` are statuses answered with the error shape."""

    method: str
    path: str
    operation_id: str
    summary: str
    tag: str
    replies: tuple[Reply, ...]
    errors: tuple[int, ...] = ()
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    idempotent: bool = False
    """Takes the ``Idempotency-Key`` header."""
    public: bool = False
    """Needs no ``X-API-Key``."""
    description: str = ""
    extra_media: dict[str, str] = field(default_factory=dict)
    """Other media types of the 200 answer: media type -> description."""


JOB_LINKS = ("get_job", "cancel_job", "retry_job")
QUOTA = ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset")
CREATED = Reply(201, "Created: the job.", w.Job, ("Location",), QUOTA, links=JOB_LINKS)
REPLAYED = Reply(
    200,
    "A replay of an earlier request with the same Idempotency-Key and body: the original job.",
    w.Job,
    ("Idempotent-Replayed",),
    ("Location", *QUOTA),
    links=JOB_LINKS,
)
SUBMIT_ERRORS = (400, 401, 409, 413, 422, 429, 503)

ROUTES: tuple[Operation, ...] = (
    Operation(
        "post",
        "/v1/jobs",
        "submit_job",
        "Submit a job",
        "jobs",
        (CREATED, REPLAYED),
        SUBMIT_ERRORS,
        body=SubmitJob,
        idempotent=True,
        description="Over a tenant limit the answer is a 429 whose `code` names the limit.",
    ),
    Operation(
        "post",
        "/v1/jobs/batch",
        "submit_batch",
        "Submit up to BATCH_MAX jobs at once",
        "jobs",
        (
            Reply(201, "Created: one result per item, in request order.", w.BatchResult, (), QUOTA),
            Reply(200, "Every item was a replay of an earlier request.", w.BatchResult, (), QUOTA),
        ),
        SUBMIT_ERRORS,
        body=s.SubmitBatch,
        description="Admission against the tenant's limits is all or nothing. Each item may "
        "carry its own `idempotency_key`.",
    ),
    Operation(
        "get",
        "/v1/jobs",
        "list_jobs",
        "List the tenant's jobs, newest first",
        "jobs",
        (Reply(200, "One page; follow `next_cursor` for the next.", w.JobPage),),
        (401, 403, 422, 503),
        query=s.ListJobs,
    ),
    Operation(
        "get",
        "/v1/jobs/{job_id}",
        "get_job",
        "Read a job",
        "jobs",
        (Reply(200, "The job.", w.Job),),
        (401, 404, 503),
        description="Another tenant's job is a 404, exactly like an unknown id.",
    ),
    Operation(
        "post",
        "/v1/jobs/{job_id}/cancel",
        "cancel_job",
        "Cancel a job",
        "jobs",
        (Reply(200, "The job: `cancelled`, or running with `cancel_requested`.", w.Job),),
        (401, 404, 409, 503),
        description="A waiting job ends `cancelled` at once; a running one is stopped by its "
        "worker within a heartbeat. 409 when the job has already ended.",
    ),
    Operation(
        "post",
        "/v1/jobs/{job_id}/retry",
        "retry_job",
        "Run a failed or cancelled job again",
        "jobs",
        (Reply(200, "The job, waiting again.", w.Job),),
        (401, 404, 409, 429, 503),
        description="409 unless the job is `failed` or `cancelled`.",
    ),
    Operation(
        "get",
        "/v1/queues",
        "list_queues",
        "Figures of every queue",
        "queues",
        (Reply(200, "Every known queue, by name.", w.QueueList),),
        (401, 503),
        description="Queues are shared by all tenants: the figures are the deployment's.",
    ),
    Operation(
        "get",
        "/v1/events",
        "poll_events",
        "Long-poll for job status changes",
        "live",
        (Reply(200, "The changes after `after` (possibly none, at the timeout).", w.EventPage),),
        (401, 422, 503),
        query=c.EventsQuery,
    ),
    Operation(
        "post",
        "/v1/ws/ticket",
        "ws_ticket",
        "A ticket for a browser's WebSocket",
        "live",
        (Reply(201, "The ticket.", w.WsTicket),),
        (401, 503),
    ),
    Operation(
        "get",
        "/v1/ws",
        "websocket",
        "WebSocket live updates",
        "live",
        (Reply(101, "Switching protocols: JSON text frames follow.", None),),
        (401, 403, 503),
        description='Send `{"op": "subscribe", "jobs": [ids] | "all", "after"?, "batch"?}`; '
        "the server answers `subscribed` (after replaying what came after `after`, preceded "
        "by `gap` if the stream no longer holds all of it), then sends `event` frames (with "
        '`"batch": true`: `events` frames, `{"events": [{"event_id", "job"}, ...]}`, several '
        "changes each, in order), `gap` if it lost changes, `stats` (once a second) and "
        "`error` frames. Browsers pass `?ticket=` from `POST /v1/ws/ticket` (single use, "
        "60 s); a page's `Origin` must be in ALLOWED_ORIGINS (403). A client that falls "
        "LIVE_QUEUE_MAX changes behind is closed with code 4008.",
    ),
    Operation(
        "get",
        "/v1/stats",
        "stats",
        "The deployment's figures, as the live stats frame has them",
        "live",
        (Reply(200, "Depth, throughput, workers and the scaler's last decision.", w.Stats),),
        (401, 503),
        description="For a client that cannot hold the WebSocket (which sends these figures "
        "once a second) and polls instead.",
    ),
    Operation(
        "get",
        "/v1/workers",
        "list_workers",
        "The live workers",
        "fleet",
        (Reply(200, "Most recently seen first.", w.WorkerList),),
        (401, 503),
        description="Fleet-wide: hosts, queues and how busy each worker is, no job of anyone.",
    ),
    Operation(
        "get",
        "/v1/scaler/decisions",
        "scaler_decisions",
        "The scaler's recent decisions, with their reasons",
        "fleet",
        (Reply(200, "Newest first; none before a scaler has run.", w.ScalerDecisions),),
        (401, 422, 503),
        query=s.Newest,
    ),
    Operation(
        "get",
        "/v1/dead-letters",
        "list_dead_letters",
        "Jobs that failed for good, over every queue",
        "jobs",
        (Reply(200, "Newest first.", w.DeadLetterList),),
        (401, 422, 503),
        query=s.Newest,
        description="A tenant's key sees its own; an admin key sees every tenant's. Retry one "
        "with `POST /v1/jobs/{job_id}/retry`.",
    ),
    Operation(
        "get",
        "/v1/tenants",
        "list_tenants",
        "Each tenant's use of its limits",
        "fleet",
        (Reply(200, "The tenants that have a key, by name.", w.TenantList),),
        (401, 403, 422, 503),
        query=s.ListTenants,
        description="Admin keys only (403 otherwise).",
    ),
    Operation(
        "get",
        "/health",
        "health",
        "Liveness and readiness",
        "service",
        (
            Reply(200, "Redis answers.", w.Health),
            Reply(503, "Redis does not answer.", w.Health),
        ),
        public=True,
    ),
    Operation(
        "get",
        "/metrics",
        "metrics",
        "Queue and tenant figures",
        "service",
        (Reply(200, "JSON figures.", w.Metrics),),
        (401, 503),
        extra_media={"text/plain": "Prometheus text, when the client asks for text/plain."},
        description="With auth on, an admin key sees the whole deployment: queues, totals, "
        "workers, limiters, and per tenant (the busiest, the rest as `other`) jobs pending, "
        "running, scheduled and dead and those ended by status. Any other key sees only its "
        "own tenant's figures, at the top and under `tenants`: nothing fleet-wide, since that "
        "counts other tenants' jobs too. With auth off it needs no key and shows everything. "
        "The key may also come as `Authorization: Bearer <key>` (for Prometheus).",
    ),
    Operation(
        "get",
        "/openapi.json",
        "openapi",
        "This document",
        "service",
        (Reply(200, "The OpenAPI 3.1 document.", None),),
        public=True,
    ),
    Operation(
        "get",
        "/",
        "dashboard_html",
        "The dashboard",
        "service",
        (
            Reply(
                200,
                "An HTML page; it asks for an API key when the API needs one.",
                None,
                media="text/html",
            ),
        ),
        public=True,
    ),
    Operation(
        "get",
        "/static/dashboard.js",
        "dashboard_js",
        "The dashboard's script",
        "service",
        (Reply(200, "A JavaScript module.", None, media="text/javascript"),),
        public=True,
    ),
    Operation(
        "get",
        "/static/dashboard.css",
        "dashboard_css",
        "The dashboard's stylesheet",
        "service",
        (Reply(200, "CSS.", None, media="text/css"),),
        public=True,
    ),
    Operation(
        "get",
        "/docs",
        "docs",
        "A page that shows this document",
        "service",
        (Reply(200, "An HTML page, self-contained.", None, media="text/html"),),
        public=True,
    ),
)

# fmt: off
ERRORS: dict[int, tuple[str, str, tuple[str, ...]]] = {
    400: ("BadRequest", "The body is not JSON, or could not be read (`invalid_json`, "
          "`invalid_body`).", ()),
    401: ("Unauthorized", "No X-API-Key, or an unknown or revoked one (`unauthorized`).", ()),
    403: ("Forbidden", "Only an admin key may do this (`forbidden`), or the page's Origin may "
          "not open a WebSocket (`forbidden_origin`).", ()),
    404: ("NotFound", "No such job for this tenant (`job_not_found`), or no such route.", ()),
    409: ("Conflict", "The job's state forbids the action (`job_conflict`), or the job an "
          "Idempotency-Key created has expired since.", ()),
    413: ("PayloadTooLarge", "The body is over MAX_BODY_BYTES (`payload_too_large`), or the "
          "batch over BATCH_MAX (`batch_too_large`).", ()),
    422: ("Unprocessable", "The request breaks the schema (`validation_error`; `details` lists "
          "each offending field), or reuses an Idempotency-Key with another body.", ()),
    429: ("TooManyRequests", "Over a tenant limit; `code` says which.", ("Retry-After", *QUOTA)),
    503: ("Unavailable", "Redis is unreachable or refusing writes (`redis_unavailable`); "
          "retry after Retry-After.", ("Retry-After",)),
}
SECONDS = {"type": "string", "pattern": "^[0-9]+$"}
HEADERS: dict[str, tuple[str, dict[str, Any]]] = {
    "Location": ("Where the job can be read.", {"type": "string"}),
    "Idempotent-Replayed": ("The answer replays an earlier request's.", {"const": "true"}),
    "Retry-After": ("Seconds to wait before trying again.", SECONDS),
    "RateLimit-Limit": ("Submissions allowed per rolling minute (on a 429: the limit that "
                        "refused).", SECONDS),
    "RateLimit-Remaining": ("What is left of it.", SECONDS),
    "RateLimit-Reset": ("Seconds until it is whole again.", SECONDS),
}
# fmt: on

"""The JSON the HTTP API answers with, as pydantic models: the one definition that the API's
OpenAPI document and the Python client (``app.client``) share.

Pydantic and the job statuses only, so the client imports it without Redis or the server.
Answers allow extra fields: the server may add one without breaking an older client.
"""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, JsonValue

from app.core.models import JobStatus


class Answer(BaseModel):
    """Base of every answer: fields added later do not break an older reader."""

    model_config = ConfigDict(extra="allow")


class JobError(Answer):
    """Why the last attempt failed: the exception's type and message."""

    type: str
    message: str


class Job(Answer):
    """A job as the API shows it (``app.core.models.Job.to_dict``). Times are ISO 8601 UTC."""

    id: str
    tenant: str
    queue: str
    type: str
    payload: JsonValue
    status: JobStatus
    attempts: int = Field(ge=0)
    max_attempts: int = Field(ge=1)
    timeout_s: float
    result: JsonValue = None
    error: JobError | None = None
    created_at: AwareDatetime
    run_at: AwareDatetime | None = None
    started_at: AwareDatetime | None = None
    finished_at: AwareDatetime | None = None
    worker: str | None = None
    cancel_requested: bool = False
    idempotency_key: str | None = None


class BatchItemResult(Answer):
    """One item's outcome: the job, and whether an earlier request with its key created it."""

    job: Job
    replayed: bool = False


class BatchResult(Answer):
    """Per-item results, in the order of the request's items."""

    results: list[BatchItemResult]


class JobPage(Answer):
    """One page of jobs; ``next_cursor`` is null on the last page."""

    jobs: list[Job]
    next_cursor: str | None = None


class QueueInfo(Answer):
    """One queue's figures (``app.core.queue.QueueStats``)."""

    queue: str
    waiting: int = Field(ge=0, description="In the stream, not yet leased by a worker.")
    running: int = Field(ge=0, description="Leased by a worker.")
    scheduled: int = Field(ge=0, description="Waiting for their run_at or a retry's backoff.")
    dead: int = Field(ge=0, description="Entries in the queue's dead-letter stream.")
    oldest_waiting_age_s: float | None = Field(
        description="Age of the oldest waiting job; null when none waits."
    )
    finished_per_min: float = Field(
        ge=0, description="Jobs that ended (succeeded, failed, cancelled) over the last minute."
    )


class QueueList(Answer):
    queues: list[QueueInfo]


class Health(Answer):
    status: Literal["ok", "unavailable"]
    redis: Literal["ok", "unavailable"]


class Metrics(Answer):
    """JSON figures; Prometheus text instead when the client asks for ``text/plain``. A
    tenant's key sees only its own: ``pending``, ``running``, ``scheduled``, ``dead``, the
    ``*_total`` of its ended jobs, and the same under ``tenants``."""


class JobChange(Answer):
    """What a status change says of its job; read the job for the rest of its record."""

    id: str
    status: JobStatus
    queue: str
    tenant: str


class JobEvent(Answer):
    """A status change: ``event_id`` is ``<entry id>:<index>`` in the events stream."""

    event_id: str
    job: JobChange


class EventPage(Answer):
    """What changed after ``after``; pass ``last_event_id`` as the next ``after``."""

    events: list[JobEvent]
    last_event_id: str = Field(description="Where the next poll resumes.")
    gap: bool = Field(
        default=False, description="The stream no longer holds some changes after `after`."
    )


class WsTicket(Answer):
    """A short-lived ticket a browser passes as ``?ticket=`` to ``GET /v1/ws``."""

    ticket: str
    expires_in_s: float


class Worker(Answer):
    """A live worker: what it announced, and how long since its last heartbeat."""

    id: str
    heartbeat_age_s: float = Field(ge=0, description="On the Redis server's clock.")
    host: str | None = None
    pid: int | None = None
    queues: list[str] = Field(default_factory=list)
    concurrency: int | None = Field(default=None, description="Jobs it runs at once at most.")
    busy: int | None = Field(default=None, description="Jobs it ran at its last heartbeat.")
    processed: int | None = None
    failed: int | None = None


class WorkerList(Answer):
    workers: list[Worker]


class ScalerDecision(Answer):
    """One decision of the scaler, with why it was taken."""

    id: str = Field(description="Its id in the decision log.")
    at: AwareDatetime = Field(description="When it was logged.")
    current: int | None = None
    desired: int | None = None
    action: str | None = Field(default=None, description="`up`, `down` or `hold`.")
    reason: str | None = None


class ScalerDecisions(Answer):
    decisions: list[ScalerDecision] = Field(description="Newest first.")


class TenantUsage(Answer):
    """A tenant's use of its limits right now."""

    tenant: str
    active: int = Field(ge=0, description="Non-terminal jobs.")
    submitted_last_minute: int = Field(ge=0)
    keys: int = Field(ge=0, description="Its API keys (environment and stored); 0: none.")
    max_active_limit: int = Field(
        ge=0, description="The highest any of its keys allows (no key: the default)."
    )
    rpm_limit: int = Field(
        ge=0, description="The highest any of its keys allows (no key: the default)."
    )


class TenantList(Answer):
    tenants: list[TenantUsage] = Field(description="By name: those with a key or with jobs.")
    truncated: bool = Field(description="There are more than `limit`.")


class DeadLetter(Answer):
    """A job that failed for good, as its queue's dead-letter stream recorded it."""

    entry: str = Field(description="Its id in the dead-letter stream.")
    at: AwareDatetime = Field(description="When it was dead-lettered.")
    queue: str
    job_id: str
    error: JsonValue = None
    attempts: int = Field(ge=0)
    job: Job | None = Field(
        description="The job now (it may have been retried since); "
        "null once its record has expired."
    )


class DeadLetterList(Answer):
    dead_letters: list[DeadLetter] = Field(description="Newest first.")


class QueueFigures(Answer):
    queue: str
    waiting: int = Field(ge=0)
    running: int = Field(ge=0)
    scheduled: int = Field(ge=0)
    dead: int = Field(ge=0)
    finished_per_min: float = Field(ge=0)


class RpmUsage(Answer):
    used: int = Field(ge=0, description="Starts over the limiter's last period.")
    limit: int = Field(ge=0)


class ScalerSummary(Answer):
    current: int | None = None
    desired: int | None = None
    decision: JsonValue = Field(description="The scaler's last decision.")


class Stats(Answer):
    """The deployment's figures: what the WebSocket's ``stats`` frame carries once a second."""

    waiting: int = Field(ge=0)
    running: int = Field(ge=0)
    scheduled: int = Field(ge=0)
    dead: int = Field(ge=0)
    finished_per_min: float = Field(ge=0)
    totals: dict[str, int] = Field(description="Terminal status -> jobs that ended so, ever.")
    workers: int = Field(ge=0, description="Live workers.")
    rpm: RpmUsage | None = Field(description="The global limiter; null when GLOBAL_RPM_LIMIT=0.")
    queues: list[QueueFigures]
    scaler: ScalerSummary | None = Field(description="Null until a scaler has decided.")


class ErrorDetail(Answer):
    code: str = Field(description="snake_case, stable: what a program branches on.")
    message: str = Field(description="For people; may change.")
    details: JsonValue = Field(default=None, description="e.g. the offending fields of a 422.")


class ErrorBody(Answer):
    """Every error answer, whatever its status."""

    error: ErrorDetail

"""Request models of DESIGN §4 beyond the submit body (``schemas.py``): the batch body and the
listing and event queries. Unknown fields are refused (422), as for every request.

``BatchJob``, ``SubmitBatch`` and ``ListJobs`` mirror those of the tenants branch's
``schemas.py``: after its merge they go, and ``operations.py`` imports that module's. What the
API answers is in :mod:`app.wire`, shared with the client.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from app.api.schemas import QUEUE_PATTERN, TYPE_PATTERN, SubmitJob
from app.core.models import JobStatus

IDEMPOTENCY_KEY_MAX = 255
TENANT_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"

IdempotencyKey = Annotated[
    str, Field(min_length=1, max_length=IDEMPOTENCY_KEY_MAX, pattern=TYPE_PATTERN)
]


class BatchJob(SubmitJob):
    """One job of ``POST /v1/jobs/batch``: a job body, with its own idempotency key."""

    idempotency_key: IdempotencyKey | None = None


class SubmitBatch(BaseModel):
    """Body of ``POST /v1/jobs/batch``: up to ``BATCH_MAX`` jobs, admitted all or none."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    jobs: list[BatchJob] = Field(min_length=1)


class ListJobs(BaseModel):
    """Query of ``GET /v1/jobs``. ``tenant`` is for admin keys (others see only their own)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    status: JobStatus | None = None
    queue: str | None = Field(default=None, pattern=QUEUE_PATTERN)
    type: str | None = Field(default=None, min_length=1, max_length=200, pattern=TYPE_PATTERN)
    limit: int = Field(default=50, ge=1, le=200)
    cursor: str | None = Field(default=None, min_length=1, max_length=1000)
    tenant: str | None = Field(default=None, pattern=TENANT_PATTERN)


class EventsQuery(BaseModel):
    """Query of ``GET /v1/events``: changes after ``after``, waiting up to ``timeout_s``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    after: str | None = Field(default=None, pattern=r"^\d+-\d+$", description="An event id.")
    timeout_s: float = Field(default=25, ge=0, le=60)

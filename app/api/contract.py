"""Request models of DESIGN §4 beyond the submit body (``schemas.py``): the batch body and the
listing and event queries. Unknown fields are refused (422), as for every request.

What the API answers is in :mod:`app.wire`, shared with the client.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from app.api.schemas import QUEUE_PATTERN, TYPE_PATTERN, SubmitJob
from app.core.models import JobStatus

BATCH_MAX = 1000
"""Default of ``BATCH_MAX``: items one ``POST /v1/jobs/batch`` may carry."""
LIST_LIMIT_MAX = 200
IDEMPOTENCY_KEY_MAX = 255

IdempotencyKey = Annotated[str, Field(min_length=1, max_length=IDEMPOTENCY_KEY_MAX)]


class BatchJob(SubmitJob):
    """One item of a batch: a job as for ``POST /v1/jobs``, with its own idempotency key."""

    idempotency_key: IdempotencyKey | None = Field(
        default=None, description="Plays the part of the Idempotency-Key header for this item."
    )


class SubmitBatch(BaseModel):
    """Body of ``POST /v1/jobs/batch``: admitted or refused whole against the tenant's limits."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    jobs: list[BatchJob] = Field(min_length=1, max_length=BATCH_MAX)


class ListJobs(BaseModel):
    """Query of ``GET /v1/jobs``: the tenant's jobs, newest first."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    status: JobStatus | None = None
    queue: str | None = Field(default=None, pattern=QUEUE_PATTERN)
    type: str | None = Field(default=None, min_length=1, max_length=200, pattern=TYPE_PATTERN)
    limit: int = Field(default=50, ge=1, le=LIST_LIMIT_MAX)
    cursor: str | None = Field(
        default=None, min_length=1, description="``next_cursor`` of the previous page, as is."
    )


class EventsQuery(BaseModel):
    """Query of ``GET /v1/events``: changes after ``after``, waiting up to ``timeout_s``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    after: str | None = Field(default=None, pattern=r"^\d+-\d+$", description="An event id.")
    timeout_s: float = Field(default=25, ge=0, le=60)

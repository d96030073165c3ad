"""Request bodies the API accepts, validated by pydantic; unknown fields are rejected.

Numbers are strict (``"3"`` and ``true`` are not numbers), so a client bug shows up as a 422 instead
of a job that does something other than what was meant.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    StrictInt,
    field_validator,
    model_validator,
)

from app.core.models import (
    MAX_IDEMPOTENCY_KEY,
    CheckedSpec,
    JobSpec,
    JobStatus,
    printable,
    within_reach,
)
from app.core.tenants import TENANT_PATTERN

MAX_DELAY_S = 366 * 86_400
"""A year and a day: further out is almost surely a unit mistake (ms sent as s)."""

QUEUE_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"
TYPE_PATTERN = r"^[^\x00-\x1f\x7f]+$"
"""Any printable text: a task name is a Python name in practice, but the API need not say so."""

StrictSeconds = Annotated[float, Field(strict=True, allow_inf_nan=False)]


class SubmitJob(BaseModel):
    """Body of ``POST /v1/jobs``. ``delay_s`` and ``run_at`` are mutually exclusive."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Annotated[str, AfterValidator(printable)] = Field(
        min_length=1, max_length=200, pattern=TYPE_PATTERN, description="Task name the worker runs."
    )
    payload: JsonValue = Field(default=None, description="Any JSON value, given to the task.")
    queue: str = Field(default="default", pattern=QUEUE_PATTERN)
    max_attempts: StrictInt | None = Field(default=None, ge=1, le=100)
    timeout_s: StrictSeconds | None = Field(default=None, gt=0, le=86_400)
    delay_s: StrictSeconds | None = Field(default=None, ge=0, le=MAX_DELAY_S)
    run_at: Annotated[AwareDatetime | None, AfterValidator(within_reach)] = Field(
        default=None, description="ISO 8601 with a UTC offset, e.g. 2030-01-01T00:00:00Z."
    )

    @field_validator("run_at", mode="before")
    @classmethod
    def _run_at_is_text(cls, value: Any) -> Any:
        # pydantic would read a bare number as a Unix time; the contract says ISO 8601
        if value is not None and not isinstance(value, str):
            raise ValueError("run_at must be an ISO 8601 string")
        return value

    @model_validator(mode="after")
    def _one_schedule(self) -> SubmitJob:
        if self.delay_s is not None and self.run_at is not None:
            raise ValueError("give delay_s or run_at, not both")
        return self

    def to_spec(self, tenant: str, idempotency_key: str | None = None) -> JobSpec:
        """The queue's view of this request, owned by ``tenant`` (a checked name) with
        ``idempotency_key`` (checked as :func:`printable`): this schema holds every field to at
        least the core's rules, so the core does not check them again."""
        run_at: datetime | None = self.run_at
        return CheckedSpec(
            idempotency_key=idempotency_key,
            type=self.type,
            payload=self.payload,
            queue=self.queue,
            tenant=tenant,
            max_attempts=self.max_attempts,
            timeout_s=self.timeout_s,
            delay_s=self.delay_s or 0.0,
            run_at=run_at,
        )


IdempotencyKey = Annotated[
    str,
    Field(min_length=1, max_length=MAX_IDEMPOTENCY_KEY, pattern=TYPE_PATTERN),
    AfterValidator(printable),
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
    cursor: str | None = Field(default=None, min_length=1, max_length=200)
    tenant: str | None = Field(default=None, pattern=TENANT_PATTERN)


class Newest(BaseModel):
    """Query of the short newest-first lists: the scaler's decisions, the dead letters."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    limit: int = Field(default=20, ge=1, le=100)


class ListTenants(BaseModel):
    """Query of ``GET /v1/tenants``: the first ``limit`` tenants by name."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    limit: int = Field(default=100, ge=1, le=1000)

"""Job statuses, the job record, and what a submission carries (checked before it is stored)."""

from __future__ import annotations

import reprlib
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from functools import lru_cache
from typing import Annotated, Any

import orjson
from pydantic import (
    AfterValidator,
    AwareDatetime,
    ConfigDict,
    Field,
    StrictStr,
    TypeAdapter,
    ValidationError,
    with_config,
)

from app.core.errors import InvalidRequest
from app.core.frozen import frozen


class JobStatus(StrEnum):
    PENDING = "pending"
    SCHEDULED = "scheduled"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


TERMINAL = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED})

_STATUSES = {status.value: status for status in JobStatus}


def status_of(text: str) -> JobStatus:
    """``JobStatus(text)`` at the cost of a dict lookup: the enum's own call was the slowest step
    of turning a batch's replies into jobs."""
    try:
        return _STATUSES[text]
    except KeyError:
        raise ValueError(f"{text!r} is not a job status") from None


MAX_ATTEMPTS = 1000
MAX_TIMEOUT_S = 7 * 86_400
"""A week: a longer attempt is a lease held through a whole release cycle of its workers."""
MAX_DELAY_S = 366 * 86_400
"""A year and a day, for ``delay_s`` and for how far ahead ``run_at`` may be: further out is
almost surely a unit mistake (ms sent as s), and stays within what timestamps can render."""
MAX_NAME = 200
MAX_IDEMPOTENCY_KEY = 255


def printable(name: str) -> str:
    # events entries and metrics fields join names with newlines, and a name is part of a key
    if not name.isprintable():
        raise ValueError("names must be printable text")
    return name


def within_reach(when: datetime | None) -> datetime | None:
    if when is not None and when > datetime.now(UTC) + timedelta(seconds=MAX_DELAY_S):
        raise ValueError(f"run_at must be at most {MAX_DELAY_S // 86_400} days ahead")
    return when


Name = Annotated[StrictStr, Field(min_length=1, max_length=MAX_NAME), AfterValidator(printable)]
Seconds = Annotated[float, Field(allow_inf_nan=False)]
IdempotencyKey = Annotated[
    StrictStr, Field(min_length=1, max_length=MAX_IDEMPOTENCY_KEY), AfterValidator(printable)
]


@with_config(ConfigDict(strict=True, revalidate_instances="always"))
@frozen
class JobSpec:
    """A job to submit. ``payload`` is any JSON-serialisable value.

    ``None`` means the setting's default for ``max_attempts`` and ``timeout_s``. ``run_at`` must
    carry a timezone (a naive datetime is refused rather than guessed); when given it wins over
    ``delay_s``. :func:`checked` enforces the annotated types and ranges. A spec with an
    ``idempotency_key`` that its tenant used before (within ``IDEMPOTENCY_TTL_S``) creates no
    new job: the same request gets the original job back, a different one is refused.
    """

    type: Name
    payload: Any = None
    queue: Name = "default"
    tenant: Name = "public"
    max_attempts: Annotated[int | None, Field(ge=1, le=MAX_ATTEMPTS)] = None
    timeout_s: Annotated[Seconds | None, Field(gt=0, le=MAX_TIMEOUT_S)] = None
    delay_s: Annotated[Seconds, Field(ge=0, le=MAX_DELAY_S)] = 0.0
    run_at: Annotated[AwareDatetime | None, AfterValidator(within_reach)] = None
    id: Name | None = None
    idempotency_key: IdempotencyKey | None = None


@frozen
class CheckedSpec(JobSpec):
    """A spec whose fields were held to at least :func:`checked`'s rules where it was built (the
    API's request schemas do so), so that :func:`checked` passes it on as it is: a request is
    not validated twice on the submit path. Library callers build a :class:`JobSpec`."""


_SPEC = TypeAdapter(JobSpec)


def checked(spec: JobSpec) -> JobSpec:
    """``spec`` with its types and ranges checked (ints for floats allowed), or
    :class:`InvalidRequest` saying which fields are wrong. Library callers get no less checking
    than the API."""
    if type(spec) is CheckedSpec:
        return spec
    try:
        return _SPEC.validate_python(spec)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc']))}: {e['msg']} (got {reprlib.repr(e['input'])})"
            for e in exc.errors()
        )
        raise InvalidRequest(f"invalid job: {problems}") from None


def encode_payload(payload: Any) -> str:
    """The payload as stored: compact JSON, or :class:`InvalidRequest` when it has none (an
    integer beyond 64 bits, a set, a non-text dict key...)."""
    try:
        return orjson.dumps(payload).decode()
    except orjson.JSONEncodeError as exc:
        raise InvalidRequest(f"payload is not JSON-serialisable: {exc}") from None


@lru_cache(maxsize=4096)
def iso(ms: str | None) -> str | None:
    """Render a stored millisecond timestamp as ISO 8601 UTC (cached: the jobs of one batch
    share their timestamps, and rendering costs more than the rest of a job's answer)."""
    if not ms:
        return None
    stamp = datetime.fromtimestamp(float(ms) / 1000, tz=UTC)
    return stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _json(raw: str | None) -> Any:
    return None if raw is None or raw == "" else orjson.loads(raw)


@frozen
class Job:
    """A job record as stored in ``P:job:<id>`` (timestamps in ms, server clock)."""

    id: str
    tenant: str
    queue: str
    type: str
    payload: Any
    status: JobStatus
    attempts: int
    max_attempts: int
    timeout_s: float
    created_at: str
    run_at: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    worker: str | None = None
    result: Any = None
    error: Any = None
    cancel_requested: bool = False
    idempotency_key: str | None = None

    @classmethod
    def from_hash(cls, fields: dict[str, str]) -> Job:
        return cls(
            id=fields["id"],
            tenant=fields.get("tenant", "public"),
            queue=fields["queue"],
            type=fields["type"],
            payload=_json(fields.get("payload")),
            status=status_of(fields["status"]),
            attempts=int(fields.get("attempts", 0)),
            max_attempts=int(fields["max_attempts"]),
            timeout_s=float(fields["timeout_s"]),
            created_at=fields["created_at"],
            run_at=fields.get("run_at"),
            started_at=fields.get("started_at"),
            finished_at=fields.get("finished_at"),
            worker=fields.get("worker"),
            result=_json(fields.get("result")),
            error=_json(fields.get("error")),
            cancel_requested=fields.get("cancel") == "1",
            idempotency_key=fields.get("idempotency_key"),
        )

    def to_dict(self) -> dict[str, Any]:
        """The job as the API shows it. Built per job of every answer, so the status stays the
        member (a ``str``, which JSON encodes as its value) and unset times skip ``iso``."""
        return {
            "id": self.id,
            "tenant": self.tenant,
            "queue": self.queue,
            "type": self.type,
            "payload": self.payload,
            "status": self.status,
            "attempts": self.attempts,
            "max_attempts": self.max_attempts,
            "timeout_s": self.timeout_s,
            "result": self.result,
            "error": self.error,
            "created_at": iso(self.created_at),
            "run_at": iso(self.run_at) if self.run_at else None,
            "started_at": iso(self.started_at) if self.started_at else None,
            "finished_at": iso(self.finished_at) if self.finished_at else None,
            "worker": self.worker,
            "cancel_requested": self.cancel_requested,
            "idempotency_key": self.idempotency_key,
        }

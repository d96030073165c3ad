"""Job statuses, the job record, and what a submission carries."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import orjson


class JobStatus(StrEnum):
    PENDING = "pending"
    SCHEDULED = "scheduled"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


TERMINAL = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED})


@dataclass(frozen=True, slots=True)
class JobSpec:
    """A job to submit. ``payload`` is any JSON-serialisable value."""

    type: str
    payload: Any = None
    queue: str = "default"
    tenant: str = "public"
    max_attempts: int | None = None
    timeout_s: float | None = None
    delay_s: float = 0.0
    run_at: datetime | None = None
    id: str | None = None


def iso(ms: str | None) -> str | None:
    """Render a stored millisecond timestamp as ISO 8601 UTC."""
    if not ms:
        return None
    stamp = datetime.fromtimestamp(float(ms) / 1000, tz=UTC)
    return stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _json(raw: str | None) -> Any:
    return None if raw is None or raw == "" else orjson.loads(raw)


@dataclass(frozen=True, slots=True)
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

    @classmethod
    def from_hash(cls, fields: dict[str, str]) -> Job:
        return cls(
            id=fields["id"],
            tenant=fields.get("tenant", "public"),
            queue=fields["queue"],
            type=fields["type"],
            payload=_json(fields.get("payload")),
            status=JobStatus(fields["status"]),
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
        )

    def to_dict(self) -> dict[str, Any]:
        """The job as the API shows it."""
        return {
            "id": self.id,
            "tenant": self.tenant,
            "queue": self.queue,
            "type": self.type,
            "payload": self.payload,
            "status": self.status.value,
            "attempts": self.attempts,
            "max_attempts": self.max_attempts,
            "timeout_s": self.timeout_s,
            "result": self.result,
            "error": self.error,
            "created_at": iso(self.created_at),
            "run_at": iso(self.run_at),
            "started_at": iso(self.started_at),
            "finished_at": iso(self.finished_at),
            "worker": self.worker,
            "cancel_requested": self.cancel_requested,
        }

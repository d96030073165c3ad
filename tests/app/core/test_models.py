"""The job model: statuses, timestamp rendering, and the record read back from its hash."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest

from app.core.models import TERMINAL, Job, JobSpec, JobStatus, iso

STORED = {
    "id": "01J0000000000000000000000A",
    "tenant": "acme",
    "queue": "mail",
    "type": "send",
    "payload": '{"to":["a@b.c"],"n":1}',
    "status": "failed",
    "attempts": "3",
    "max_attempts": "3",
    "timeout_s": "12.5",
    "created_at": "1700000000000.000",
    "run_at": "1700000001000.250",
    "started_at": "1700000002000.999",
    "finished_at": "1700000003123.456",
    "worker": "host-1-42",
    "result": "",
    "error": '{"type":"ValueError","message":"bad"}',
    "cancel": "1",
    "entry": "1700000000000-0",
}


def test_terminal_statuses_are_exactly_the_final_ones() -> None:
    assert {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED} == TERMINAL
    assert JobStatus("running") is JobStatus.RUNNING
    assert JobStatus.RUNNING.value == "running"
    assert f"{JobStatus.RUNNING}" == "running"


@pytest.mark.parametrize(
    ("ms", "expected"),
    [
        ("0", "1970-01-01T00:00:00.000Z"),
        ("1700000000000", "2023-11-14T22:13:20.000Z"),
        ("1700000000123.456", "2023-11-14T22:13:20.123Z"),
        ("1700000000999.9", "2023-11-14T22:13:20.999Z"),  # truncated, never rounded up
        ("1700000000000.999", "2023-11-14T22:13:20.000Z"),
    ],
)
def test_iso_renders_stored_milliseconds_as_utc(ms: str, expected: str) -> None:
    assert iso(ms) == expected
    assert datetime.fromisoformat(expected).utcoffset() == timedelta(0)


@pytest.mark.parametrize("ms", [None, ""])
def test_iso_of_a_missing_timestamp_is_none(ms: str | None) -> None:
    assert iso(ms) is None


def test_from_hash_decodes_every_field() -> None:
    job = Job.from_hash(STORED)
    assert job.id == STORED["id"]
    assert job.tenant == "acme"
    assert job.queue == "mail"
    assert job.type == "send"
    assert job.payload == {"to": ["a@b.c"], "n": 1}
    assert job.status is JobStatus.FAILED
    assert job.attempts == 3
    assert job.max_attempts == 3
    assert job.timeout_s == 12.5
    assert job.worker == "host-1-42"
    assert job.result is None  # stored as ''
    assert job.error == {"type": "ValueError", "message": "bad"}
    assert job.cancel_requested is True


def test_from_hash_of_a_fresh_record_fills_the_defaults() -> None:
    fresh = {
        "id": "x",
        "queue": "default",
        "type": "echo",
        "payload": "null",
        "status": "pending",
        "max_attempts": "3",
        "timeout_s": "300.0",
        "created_at": "1700000000000.000",
    }
    job = Job.from_hash(fresh)
    assert job.tenant == "public"
    assert job.attempts == 0
    assert job.payload is None
    assert (job.run_at, job.started_at, job.finished_at, job.worker) == (None, None, None, None)
    assert job.result is None
    assert job.error is None
    assert job.cancel_requested is False


def test_to_dict_shows_the_job_as_the_api_does() -> None:
    shown = Job.from_hash(STORED).to_dict()
    assert shown == {
        "id": STORED["id"],
        "tenant": "acme",
        "queue": "mail",
        "type": "send",
        "payload": {"to": ["a@b.c"], "n": 1},
        "status": "failed",
        "attempts": 3,
        "max_attempts": 3,
        "timeout_s": 12.5,
        "result": None,
        "error": {"type": "ValueError", "message": "bad"},
        "created_at": "2023-11-14T22:13:20.000Z",
        "run_at": "2023-11-14T22:13:21.000Z",
        "started_at": "2023-11-14T22:13:22.000Z",
        "finished_at": "2023-11-14T22:13:23.123Z",
        "worker": "host-1-42",
        "cancel_requested": True,
        "idempotency_key": None,
    }
    # what the API sends is plain JSON
    assert orjson.loads(orjson.dumps(shown)) == shown


def test_hash_to_dict_round_trip_keeps_the_values() -> None:
    """A record written back from ``to_dict`` values reads as the same job."""
    job = Job.from_hash(STORED)
    shown = job.to_dict()
    rewritten = {
        **{k: str(v) for k, v in shown.items() if k in {"id", "tenant", "queue", "type"}},
        "status": shown["status"],
        "attempts": str(shown["attempts"]),
        "max_attempts": str(shown["max_attempts"]),
        "timeout_s": str(shown["timeout_s"]),
        "payload": orjson.dumps(shown["payload"]).decode(),
        "error": orjson.dumps(shown["error"]).decode(),
        "result": "",
        "worker": shown["worker"],
        "cancel": "1" if shown["cancel_requested"] else "",
        **{
            k: STORED[k]  # timestamps stay in stored ms: iso() is for display only
            for k in ("created_at", "run_at", "started_at", "finished_at")
        },
    }
    assert Job.from_hash(rewritten) == job


def test_job_spec_defaults() -> None:
    spec = JobSpec(type="echo")
    assert spec.queue == "default"
    assert spec.tenant == "public"
    assert spec.payload is None
    assert spec.delay_s == 0.0
    assert spec.run_at is None
    assert spec.id is None
    assert spec.max_attempts is None
    assert spec.timeout_s is None
    when = datetime(2030, 1, 1, tzinfo=UTC)
    assert JobSpec(type="echo", run_at=when).run_at == when

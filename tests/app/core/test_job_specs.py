"""What ``Queue.submit`` accepts: typed, ranged specs; anything else is an ``InvalidRequest``
that stores nothing, for library callers as much as for the API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from redis.asyncio import Redis

from app.core.errors import InvalidRequest
from app.core.models import (
    MAX_ATTEMPTS,
    MAX_DELAY_S,
    MAX_TIMEOUT_S,
    CheckedSpec,
    JobSpec,
    JobStatus,
    checked,
)
from app.core.queue import Queue

A_YEAR_AHEAD = timedelta(seconds=MAX_DELAY_S)


def spec(**fields: Any) -> JobSpec:
    return JobSpec(**{"type": "echo", **fields})


BAD_SPECS = {
    "max_attempts as a float": (spec(max_attempts=3.0), "max_attempts"),
    "max_attempts as a bool": (spec(max_attempts=True), "max_attempts"),
    "max_attempts as text": (spec(max_attempts="3"), "max_attempts"),
    "max_attempts zero": (spec(max_attempts=0), "max_attempts"),
    "max_attempts negative": (spec(max_attempts=-1), "max_attempts"),
    "max_attempts too many": (spec(max_attempts=MAX_ATTEMPTS + 1), "max_attempts"),
    "timeout_s zero": (spec(timeout_s=0), "timeout_s"),
    "timeout_s negative": (spec(timeout_s=-5.0), "timeout_s"),
    "timeout_s infinite": (spec(timeout_s=float("inf")), "timeout_s"),
    "timeout_s too long": (spec(timeout_s=MAX_TIMEOUT_S + 1), "timeout_s"),
    "timeout_s as text": (spec(timeout_s="10"), "timeout_s"),
    "delay_s negative": (spec(delay_s=-1), "delay_s"),
    "delay_s not a number": (spec(delay_s=float("nan")), "delay_s"),
    "delay_s beyond a year": (spec(delay_s=MAX_DELAY_S + 1), "delay_s"),
    "delay_s as None": (spec(delay_s=None), "delay_s"),
    "type not text": (spec(type=3), "type"),
    "type empty": (spec(type=""), "type"),
    "queue empty": (spec(queue=""), "queue"),
    "queue not text": (spec(queue=b"q"), "queue"),
    "queue name too long": (spec(queue="q" * 201), "queue"),
    "tenant empty": (spec(tenant=""), "tenant"),
    "id empty": (spec(id=""), "id"),
    "run_at as a number": (spec(run_at=1_700_000_000), "run_at"),
    "run_at naive": (spec(run_at=datetime(2030, 1, 1)), "run_at"),
    "run_at beyond a year": (spec(run_at=datetime.now(UTC) + A_YEAR_AHEAD * 2), "run_at"),
    "run_at past year 9999 in UTC": (
        spec(run_at=datetime(9999, 12, 31, 23, tzinfo=timezone(timedelta(hours=-5)))),
        "run_at",
    ),
    "payload integer beyond 64 bits": (spec(payload={"n": 2**64}), "64-bit"),
    "payload not JSON": (spec(payload={"s": {1, 2}}), "JSON-serialisable"),
}


@pytest.mark.parametrize(("bad", "field"), BAD_SPECS.values(), ids=BAD_SPECS.keys())
async def test_a_bad_spec_is_an_invalid_request_that_stores_nothing(
    any_redis: Redis, queue: Queue, bad: JobSpec, field: str
) -> None:
    with pytest.raises(InvalidRequest, match=field):
        await queue.submit(bad)
    assert await any_redis.dbsize() == 0


async def test_one_bad_spec_in_a_batch_stores_none_and_is_named(
    any_redis: Redis, queue: Queue
) -> None:
    specs = [spec(payload=i) for i in range(1200)]
    specs[1100] = spec(max_attempts=0)
    with pytest.raises(InvalidRequest, match=r"^job 1100: invalid job: max_attempts"):
        await queue.submit_many(specs)
    assert await any_redis.dbsize() == 0


async def test_the_edges_of_each_range_are_accepted(queue: Queue) -> None:
    far = datetime.now(UTC) + A_YEAR_AHEAD - timedelta(minutes=1)
    jobs = await queue.submit_many(
        [
            spec(max_attempts=1, timeout_s=0.001, delay_s=0),
            spec(max_attempts=MAX_ATTEMPTS, timeout_s=MAX_TIMEOUT_S, delay_s=MAX_DELAY_S),
            spec(run_at=far.astimezone(timezone(timedelta(hours=9)))),
            spec(payload={"n": 2**63 - 1, "m": -(2**63)}),
        ]
    )
    stored = [await queue.get(job.id) for job in jobs]
    assert stored == jobs
    assert [job.status for job in jobs] == [JobStatus.PENDING] + [JobStatus.SCHEDULED] * 2 + [
        JobStatus.PENDING
    ]
    assert (jobs[0].max_attempts, jobs[0].timeout_s) == (1, 0.001)
    assert jobs[1].max_attempts == MAX_ATTEMPTS
    assert jobs[2].run_at is not None
    assert abs(float(jobs[2].run_at) - far.timestamp() * 1000) < 1
    assert jobs[3].payload == {"n": 2**63 - 1, "m": -(2**63)}


async def test_whole_seconds_are_stored_as_seconds_and_none_means_the_default(
    queue: Queue,
) -> None:
    job = await queue.submit(spec(timeout_s=10, max_attempts=None))
    stored = await queue.get(job.id)
    assert stored is not None
    assert (stored.timeout_s, stored.max_attempts) == (10.0, queue.settings.default_max_attempts)


def test_a_spec_checked_where_it_was_built_is_not_checked_again() -> None:
    """The API's schemas check a request; the core trusts the CheckedSpec they build. A library
    caller's JobSpec with the same fields is still checked in full."""
    trusted = CheckedSpec(type="echo", max_attempts=3)
    assert checked(trusted) is trusted
    with pytest.raises(InvalidRequest, match="max_attempts"):
        checked(JobSpec(type="echo", max_attempts=3.0))  # type: ignore[arg-type]

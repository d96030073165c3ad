"""submit.lua through ``Queue.submit``/``submit_many``: pending or scheduled, the stored record,
the events it appends, large batches and taken ids."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from redis.asyncio import Redis

from app.core.errors import InvalidRequest, JobConflict
from app.core.models import JobSpec, JobStatus
from app.core.queue import SUBMIT_CHUNK, Queue
from app.core.settings import CoreSettings
from tests.app.conftest import changes, server_ms


async def test_a_job_due_now_is_pending_with_a_stream_entry(any_redis: Redis, queue: Queue) -> None:
    before = await server_ms(any_redis)
    job = await queue.submit(
        JobSpec(type="echo", payload={"x": [1, "two"]}, tenant="acme", queue="mail")
    )
    after = await server_ms(any_redis)

    assert job.status is JobStatus.PENDING
    assert job.run_at is None
    assert before <= float(job.created_at) <= after
    stored: Any = await any_redis.hgetall(queue.keys.job(job.id))
    assert stored["status"] == "pending"
    assert stored["attempts"] == "0"
    entries: Any = await any_redis.xrange(queue.keys.queue("mail"))
    assert [(eid, fields) for eid, fields in entries] == [(stored["entry"], {"j": job.id})]
    assert await any_redis.zcard(queue.keys.delayed) == 0
    assert await queue.queue_names() == ["mail"]


async def test_the_record_holds_every_field(queue: Queue) -> None:
    spec = JobSpec(
        type="resize",
        payload={"url": "http://x/a.png", "sizes": [1, 2]},
        queue="images",
        tenant="acme",
        max_attempts=5,
        timeout_s=12.5,
        id="my-own-id",
    )
    submitted = await queue.submit(spec)
    job = await queue.get("my-own-id")
    assert job is not None
    assert job == submitted
    assert (job.id, job.type, job.queue, job.tenant) == ("my-own-id", "resize", "images", "acme")
    assert job.payload == {"url": "http://x/a.png", "sizes": [1, 2]}
    assert (job.max_attempts, job.timeout_s, job.attempts) == (5, 12.5, 0)
    assert (job.started_at, job.finished_at, job.worker, job.result, job.error) == (None,) * 5
    assert job.cancel_requested is False


async def test_defaults_come_from_the_settings(queue: Queue) -> None:
    job = await queue.submit(JobSpec(type="echo"))
    stored = await queue.get(job.id)
    assert stored is not None
    assert stored.max_attempts == queue.settings.default_max_attempts == 3
    assert stored.timeout_s == queue.settings.default_timeout_s
    assert stored.queue == "default"
    assert stored.tenant == "public"
    assert stored.payload is None
    assert uuid.UUID(job.id).version == 7  # sortable by creation time


async def test_a_delay_schedules_the_job_on_the_server_clock(
    any_redis: Redis, queue: Queue
) -> None:
    before = await server_ms(any_redis)
    job = await queue.submit(JobSpec(type="echo", delay_s=30, queue="later"))
    after = await server_ms(any_redis)

    assert job.status is JobStatus.SCHEDULED
    assert job.run_at is not None
    assert before + 30_000 <= float(job.run_at) <= after + 30_000
    score = await any_redis.zscore(queue.keys.delayed, job.id)
    assert score is not None
    assert abs(score - float(job.run_at)) < 1
    assert await any_redis.exists(queue.keys.queue("later")) == 0
    assert await any_redis.hget(queue.keys.scheduled_counts, "later") == "1"
    stored = await queue.get(job.id)
    assert stored is not None
    assert stored.status is JobStatus.SCHEDULED
    assert stored.run_at == job.run_at
    (stats,) = await queue.stats(["later"])
    assert (stats.waiting, stats.scheduled) == (0, 1)


async def test_run_at_in_the_future_schedules_at_that_time(any_redis: Redis, queue: Queue) -> None:
    when = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=10)
    job = await queue.submit(JobSpec(type="echo", run_at=when))
    assert job.status is JobStatus.SCHEDULED
    assert job.run_at is not None
    assert abs(float(job.run_at) - when.timestamp() * 1000) < 1
    assert job.to_dict()["run_at"] == when.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    score = await any_redis.zscore(queue.keys.delayed, job.id)
    assert score is not None
    assert abs(score - when.timestamp() * 1000) < 1


async def test_run_at_wins_over_delay_and_a_past_run_at_is_pending(queue: Queue) -> None:
    past = datetime.now(UTC) - timedelta(hours=1)
    job = await queue.submit(JobSpec(type="echo", run_at=past, delay_s=3600))
    assert job.status is JobStatus.PENDING
    assert job.run_at is None
    (stats,) = await queue.stats(["default"])
    assert (stats.waiting, stats.scheduled) == (1, 0)


async def test_submit_appends_one_event_per_call(any_redis: Redis, queue: Queue) -> None:
    now = await queue.submit(JobSpec(type="a", tenant="acme", queue="q1"))
    later, soon = await queue.submit_many(
        [
            JobSpec(type="b", tenant="bob", queue="q2", delay_s=60),
            JobSpec(type="c", queue="q1"),
        ]
    )
    assert await any_redis.xlen(queue.keys.events) == 2
    events = await changes(any_redis, queue)
    assert [(e.job_id, e.status, e.queue, e.tenant) for e in events] == [
        (now.id, "pending", "q1", "acme"),
        (later.id, "scheduled", "q2", "bob"),
        (soon.id, "pending", "q1", "public"),
    ]
    first, second, third = (e.entry_id for e in events)
    assert first != second == third  # one stream entry per script call


async def test_a_batch_larger_than_a_chunk_creates_every_job_in_order(
    any_redis: Redis, queue: Queue
) -> None:
    n = 1200
    assert n > 2 * SUBMIT_CHUNK
    specs = [
        JobSpec(type="n", payload=i, delay_s=60 if i % 100 == 0 else 0, queue=f"q{i % 2}")
        for i in range(n)
    ]
    jobs = await queue.submit_many(specs)

    assert [job.payload for job in jobs] == list(range(n))
    assert len({job.id for job in jobs}) == n
    scheduled = {job.id for job in jobs if job.status is JobStatus.SCHEDULED}
    assert len(scheduled) == 12
    assert {job.status for job in jobs} == {JobStatus.PENDING, JobStatus.SCHEDULED}
    assert await any_redis.xlen(queue.keys.queue("q0")) == 600 - 12
    assert await any_redis.xlen(queue.keys.queue("q1")) == 600
    assert set(await any_redis.zrange(queue.keys.delayed, 0, -1)) == scheduled
    stored = await queue.get(jobs[777].id)
    assert stored is not None
    assert stored.payload == 777
    assert stored.queue == "q1"
    # one events entry per chunk, covering every job
    assert await any_redis.xlen(queue.keys.events) == 3
    assert sorted(c.job_id for c in await changes(any_redis, queue)) == sorted(j.id for j in jobs)
    by_queue = {s.queue: s for s in await queue.stats()}
    assert (by_queue["q0"].waiting, by_queue["q0"].scheduled) == (588, 12)
    assert (by_queue["q1"].waiting, by_queue["q1"].scheduled) == (600, 0)


async def test_a_taken_id_is_refused_and_the_first_job_kept(any_redis: Redis, queue: Queue) -> None:
    await queue.submit(JobSpec(type="first", id="dup"))
    with pytest.raises(JobConflict, match="dup"):
        await queue.submit(JobSpec(type="second", id="dup", delay_s=5))
    job = await queue.get("dup")
    assert job is not None
    assert job.type == "first"
    assert job.status is JobStatus.PENDING
    assert await any_redis.xlen(queue.keys.queue("default")) == 1
    assert await any_redis.zcard(queue.keys.delayed) == 0


async def test_a_taken_id_inside_one_batch_is_refused_and_nothing_stored(
    any_redis: Redis, queue: Queue
) -> None:
    with pytest.raises(JobConflict, match="twice"):
        await queue.submit_many([JobSpec(type="a", id="twice"), JobSpec(type="b", id="twice")])
    assert await any_redis.dbsize() == 0


async def test_a_batch_with_one_taken_id_stores_none_of_its_jobs(
    any_redis: Redis, queue: Queue
) -> None:
    await queue.submit(JobSpec(type="first", id="dup"))
    before = sorted(await any_redis.keys("*"))
    events = await any_redis.xlen(queue.keys.events)
    with pytest.raises(JobConflict, match="job id dup is already taken"):
        await queue.submit_many(
            [JobSpec(type="new", queue="other"), JobSpec(type="second", id="dup")]
        )
    assert sorted(await any_redis.keys("*")) == before
    assert await any_redis.xlen(queue.keys.events) == events
    assert await queue.queue_names() == ["default"]


@pytest.mark.parametrize(
    "spec",
    [
        JobSpec(type="bad\ntype"),
        JobSpec(type="t", queue="q\n"),
        JobSpec(type="t", tenant="a\tb"),
        JobSpec(type="t", id="x\ny"),
    ],
)
async def test_names_that_would_break_the_packed_batch_are_refused(
    any_redis: Redis, queue: Queue, spec: JobSpec
) -> None:
    with pytest.raises(InvalidRequest, match="printable"):
        await queue.submit(spec)
    assert await any_redis.dbsize() == 0


async def test_payload_text_with_newlines_survives_the_packed_batch(queue: Queue) -> None:
    payload = {"text": "line one\nline two\r\n", "tab": "\t", "unicode": "żółw 🐢"}
    job = await queue.submit(JobSpec(type="echo", payload=payload))
    stored = await queue.get(job.id)
    assert stored is not None
    assert stored.payload == payload


async def test_get_of_an_unknown_id_is_none(queue: Queue) -> None:
    assert await queue.get("nope") is None


@pytest.mark.redis
async def test_a_submit_after_the_server_lost_its_scripts_loads_them_again(
    real_redis: Redis, fast: CoreSettings
) -> None:
    queue = Queue(real_redis, fast)
    await queue.submit(JobSpec(type="a"))
    await real_redis.script_flush()  # as a restart without persistence leaves the server
    job = await queue.submit(JobSpec(type="b"))
    assert (await queue.get(job.id)) is not None
    await real_redis.script_flush()
    many = await queue.submit_many([JobSpec(type="c")] * (SUBMIT_CHUNK + 1))
    assert len(many) == SUBMIT_CHUNK + 1

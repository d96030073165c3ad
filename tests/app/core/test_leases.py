"""The lease lifecycle through ``LeaseClient``: read and start (start.lua), extend (extend.lua),
finish (finish.lua), claim (claim.lua) and release (release.lua), each fenced by owner and token.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import orjson
import pytest
from redis.asyncio import Redis

from app.core.keys import GROUP
from app.core.leases import Lease, LeaseClient, LeaseState, Outcome, Result
from app.core.models import JobSpec, JobStatus
from app.core.queue import Queue
from app.core.settings import CoreSettings
from tests.app.conftest import LEASE_S, MakeLeases, changes, pending_count, server_ms, take

PAST_LEASE_S = LEASE_S + 0.1


async def owners(redis: Redis, queue: Queue, name: str = "default") -> dict[str, str]:
    """Entry id -> consumer holding it, from the group's pending list."""
    rows: Any = await redis.xpending_range(queue.keys.queue(name), GROUP, "-", "+", 1000)
    return {row["message_id"]: row["consumer"] for row in rows}


def ok(lease: Lease, value: Any = None) -> Result:
    return Result(lease, Outcome.OK, orjson.dumps(value).decode())


def error(lease: Lease, retry_delay_ms: int = -1, message: str = "boom") -> Result:
    data = orjson.dumps({"type": "RuntimeError", "message": message}).decode()
    return Result(lease, Outcome.ERROR, data, retry_delay_ms)


# -- read + start -------------------------------------------------------------------------------


async def test_start_begins_the_first_attempt(
    any_redis: Redis, queue: Queue, make_leases: MakeLeases
) -> None:
    job = await queue.submit(JobSpec(type="echo", payload={"a": 1}, timeout_s=7, max_attempts=4))
    worker = make_leases("w1")
    await worker.ensure_group("default")
    entries = await worker.read(["default"], 10, 10)
    stored: Any = await any_redis.hget(queue.keys.job(job.id), "entry")
    assert entries == [("default", stored, job.id)]

    before = await server_ms(any_redis)
    (lease,) = await worker.start(entries)
    assert lease == Lease(stored, job.id, "default", "1", "echo", '{"a":1}', 7.0, 4, "public")
    assert lease.attempt == 1
    running = await queue.get(job.id)
    assert running is not None
    assert running.status is JobStatus.RUNNING
    assert running.attempts == 1
    assert running.worker == "w1"
    assert running.started_at is not None
    assert float(running.started_at) >= before
    assert await owners(any_redis, queue) == {stored: "w1"}
    assert [c.status for c in await changes(any_redis, queue)] == ["pending", "running"]


async def test_read_leases_only_as_many_entries_as_there_are_free_slots(
    any_redis: Redis, queue: Queue, make_leases: MakeLeases
) -> None:
    await queue.submit_many([JobSpec(type="n", payload=i) for i in range(5)])
    worker = make_leases("w1")
    first = await take(worker, free=3)
    assert [lease.payload for lease in first] == ["0", "1", "2"]
    assert await pending_count(any_redis, queue) == 3
    rest = await take(worker, free=3)
    assert [lease.payload for lease in rest] == ["3", "4"]
    assert await take(worker, free=3) == []


async def test_multi_queue_read_takes_the_first_queue_first_and_never_more_than_free(
    any_redis: Redis, queue: Queue, make_leases: MakeLeases
) -> None:
    await queue.submit_many([JobSpec(type="n", payload=i, queue="high") for i in range(4)])
    await queue.submit_many([JobSpec(type="n", payload=i, queue="low") for i in range(4)])
    worker = make_leases("w1")
    queues = ["high", "low", "empty"]
    got = await take(worker, free=3, queues=queues)
    assert [(lease.queue, lease.payload) for lease in got] == [
        ("high", "0"),
        ("high", "1"),
        ("high", "2"),
    ]
    got = await take(worker, free=3, queues=queues)
    assert [(lease.queue, lease.payload) for lease in got] == [
        ("high", "3"),
        ("low", "0"),
        ("low", "1"),
    ]
    got = await take(worker, free=5, queues=queues)
    assert [(lease.queue, lease.payload) for lease in got] == [("low", "2"), ("low", "3")]
    assert await pending_count(any_redis, queue, "high") == 4
    assert await pending_count(any_redis, queue, "low") == 4


async def test_a_read_of_empty_queues_returns_nothing(make_leases: MakeLeases) -> None:
    worker = make_leases("w1")
    for name in ("a", "b", "c"):
        await worker.ensure_group(name)
    assert await worker.read(["a", "b", "c"], 2, 10) == []
    assert await worker.read(["a"], 2, 10) == []


@pytest.mark.redis
async def test_a_blocking_read_wakes_for_new_work_without_overshooting(
    real_redis: Redis, fast: CoreSettings
) -> None:
    """Real server only: fakeredis answers a blocking XREADGROUP with COUNT at once."""
    queue, worker = Queue(real_redis, fast), LeaseClient(real_redis, fast, "w1")
    for name in ("a", "b", "c"):
        await worker.ensure_group(name)

    reading = asyncio.create_task(worker.read(["a", "b", "c"], 2, 5000))
    await asyncio.sleep(0.05)
    assert not reading.done()
    await queue.submit_many([JobSpec(type="n", queue="a") for _ in range(5)])
    got = await asyncio.wait_for(reading, 5)
    assert 1 <= len(got) <= 2
    assert {name for name, _, _ in got} == {"a"}

    single = asyncio.create_task(worker.read(["b"], 3, 5000))
    await asyncio.sleep(0.05)
    assert not single.done()
    await queue.submit_many([JobSpec(type="n", queue="b") for _ in range(5)])
    assert len(await asyncio.wait_for(single, 5)) == 3


@pytest.mark.redis
async def test_a_blocking_read_with_fewer_slots_than_queues_serves_every_queue_at_once(
    real_redis: Redis, fast: CoreSettings
) -> None:
    queue, worker = Queue(real_redis, fast), LeaseClient(real_redis, fast, "w1")
    for name in ("high", "default"):
        await worker.ensure_group(name)

    reading = asyncio.create_task(worker.read(["high", "default"], 1, 5000))
    await asyncio.sleep(0.05)
    assert not reading.done()
    await queue.submit(JobSpec(type="n", queue="default"))
    got = await asyncio.wait_for(reading, 0.5)  # not the 5 s block
    assert [name for name, _, _ in got] == ["default"]

    # work waiting in both queues at the read: still never more than the free slots
    await queue.submit_many([JobSpec(type="n", queue=name) for name in ("high", "default")])
    assert [name for name, _, _ in await worker.read(["high", "default"], 1, 5000)] == ["high"]
    assert [name for name, _, _ in await worker.read(["high", "default"], 1, 5000)] == ["default"]


async def test_a_read_of_no_queues_returns_nothing(make_leases: MakeLeases) -> None:
    assert await make_leases("w1").read([], 3, 10) == []


async def test_start_drops_the_entry_of_a_job_cancelled_after_the_read(
    any_redis: Redis, queue: Queue, make_leases: MakeLeases
) -> None:
    job = await queue.submit(JobSpec(type="echo"))
    worker = make_leases("w1")
    await worker.ensure_group("default")
    entries = await worker.read(["default"], 10, 10)
    assert await queue.cancel(job.id) == "cancelled"
    # read, so cancel left the entry to start: deleting it under a pending list would make a
    # later reclaim report it as lost
    assert await pending_count(any_redis, queue) == 1
    assert await any_redis.xlen(queue.keys.queue("default")) == 1

    assert await worker.start(entries) == []
    assert await pending_count(any_redis, queue) == 0
    assert await any_redis.xlen(queue.keys.queue("default")) == 0
    stored = await queue.get(job.id)
    assert stored is not None
    assert stored.status is JobStatus.CANCELLED
    assert stored.attempts == 0


async def test_start_drops_a_stray_entry_that_is_not_the_jobs_current_one(
    any_redis: Redis, queue: Queue, make_leases: MakeLeases
) -> None:
    job = await queue.submit(JobSpec(type="echo"))
    # a duplicate entry for the same job, as an old delivery that outlived its job would be
    stray = await any_redis.xadd(queue.keys.queue("default"), {"j": job.id})
    worker = make_leases("w1")
    (lease,) = await take(worker)
    assert lease.entry != stray
    assert lease.token == "1"
    assert await owners(any_redis, queue) == {lease.entry: "w1"}
    entries: Any = await any_redis.xrange(queue.keys.queue("default"))
    assert [eid for eid, _ in entries] == [lease.entry]


async def test_start_ignores_an_entry_whose_job_is_gone(
    any_redis: Redis, queue: Queue, make_leases: MakeLeases
) -> None:
    job = await queue.submit(JobSpec(type="echo"))
    await any_redis.delete(queue.keys.job(job.id))
    assert await take(make_leases("w1")) == []
    assert await any_redis.xlen(queue.keys.queue("default")) == 0
    assert await pending_count(any_redis, queue) == 0


# -- heartbeat / extend -------------------------------------------------------------------------


async def test_extend_holds_the_lease_and_resets_its_idle_time(
    any_redis: Redis, queue: Queue, make_leases: MakeLeases
) -> None:
    await queue.submit(JobSpec(type="echo"))
    worker, other = make_leases("w1"), make_leases("w2")
    (lease,) = await take(worker)
    for _ in range(3):  # past the lease in total, but never a whole lease without an extension
        await asyncio.sleep(LEASE_S * 0.6)
        assert await worker.extend([lease]) == [LeaseState.HELD]
    claimed = await other.claim("default", 10)
    assert claimed.leases == []
    assert await owners(any_redis, queue) == {lease.entry: "w1"}


async def test_extend_reports_a_cancel_request(queue: Queue, make_leases: MakeLeases) -> None:
    job = await queue.submit(JobSpec(type="echo"))
    worker = make_leases("w1")
    (lease,) = await take(worker)
    assert await queue.cancel(job.id) == "cancelling"
    assert await worker.extend([lease]) == [LeaseState.CANCEL_REQUESTED]


async def test_extend_reports_a_lease_lost_to_another_worker(
    any_redis: Redis, queue: Queue, make_leases: MakeLeases
) -> None:
    await queue.submit(JobSpec(type="echo"))
    zombie, rescuer = make_leases("zombie"), make_leases("rescuer")
    (lease,) = await take(zombie)
    await asyncio.sleep(PAST_LEASE_S)
    (taken,) = (await rescuer.claim("default", 10)).leases
    assert await zombie.extend([lease]) == [LeaseState.LOST]
    # the refused extension did not steal the entry back
    assert await owners(any_redis, queue) == {lease.entry: "rescuer"}
    assert await rescuer.extend([taken]) == [LeaseState.HELD]


async def test_extend_with_a_stale_token_is_lost_and_a_batch_answers_per_lease(
    queue: Queue, make_leases: MakeLeases
) -> None:
    await queue.submit_many([JobSpec(type="a"), JobSpec(type="b")])
    worker = make_leases("w1")
    first, second = await take(worker)
    stale = dataclasses.replace(first, token="0")
    foreign = dataclasses.replace(second, job_id="not-a-job")
    states = await worker.extend([stale, first, foreign, second])
    assert states == [LeaseState.LOST, LeaseState.HELD, LeaseState.LOST, LeaseState.HELD]
    assert await make_leases("w2").extend([first]) == [LeaseState.LOST]


# -- finish -------------------------------------------------------------------------------------


async def test_ok_records_the_result_acks_deletes_and_expires_the_job(
    any_redis: Redis, queue: Queue, make_leases: MakeLeases
) -> None:
    job = await queue.submit(JobSpec(type="echo"))
    worker = make_leases("w1")
    (lease,) = await take(worker)
    assert await worker.finish([ok(lease, {"answer": 42})]) == [True]

    done = await queue.get(job.id)
    assert done is not None
    assert done.status is JobStatus.SUCCEEDED
    assert done.result == {"answer": 42}
    assert done.error is None
    assert done.finished_at is not None
    assert done.started_at is not None
    assert float(done.finished_at) >= float(done.started_at)
    assert await any_redis.xlen(queue.keys.queue("default")) == 0
    assert await pending_count(any_redis, queue) == 0
    ttl = await any_redis.ttl(queue.keys.job(job.id))
    assert 0 < ttl <= queue.settings.result_ttl_s
    assert [c.status for c in await changes(any_redis, queue)] == [
        "pending",
        "running",
        "succeeded",
    ]


async def test_an_error_with_attempts_left_is_retried_after_its_delay(
    any_redis: Redis, queue: Queue, make_leases: MakeLeases
) -> None:
    job = await queue.submit(JobSpec(type="flaky", max_attempts=2))
    worker = make_leases("w1")
    (lease,) = await take(worker)
    before = await server_ms(any_redis)
    assert await worker.finish([error(lease, retry_delay_ms=100)]) == [True]

    waiting = await queue.get(job.id)
    assert waiting is not None
    assert waiting.status is JobStatus.SCHEDULED
    assert waiting.error == {"type": "RuntimeError", "message": "boom"}
    assert waiting.run_at is not None
    assert float(waiting.run_at) >= before + 100
    score = await any_redis.zscore(queue.keys.delayed, job.id)
    assert score is not None
    assert abs(score - float(waiting.run_at)) < 1
    assert await any_redis.xlen(queue.keys.queue("default")) == 0
    assert await any_redis.ttl(queue.keys.job(job.id)) == -1
    (stats,) = await queue.stats(["default"])
    assert (stats.waiting, stats.running, stats.scheduled) == (0, 0, 1)

    moved, wait_ms = await worker.move_due()
    assert moved == 0
    assert 0 < wait_ms <= 100
    await asyncio.sleep(wait_ms / 1000 + 0.02)
    assert await worker.move_due() == (1, -1)
    (retry,) = await take(worker)
    assert retry.token == "2"
    assert retry.entry != lease.entry
    assert await worker.finish([ok(retry, "fine")]) == [True]
    done = await queue.get(job.id)
    assert done is not None
    assert done.status is JobStatus.SUCCEEDED
    assert done.attempts == 2
    assert done.result == "fine"


@pytest.mark.parametrize(("max_attempts", "retry_delay_ms"), [(1, 0), (3, -1)])
async def test_an_error_without_a_retry_fails_the_job_into_the_dead_letters(
    any_redis: Redis,
    queue: Queue,
    make_leases: MakeLeases,
    max_attempts: int,
    retry_delay_ms: int,
) -> None:
    job = await queue.submit(JobSpec(type="bad", max_attempts=max_attempts))
    worker = make_leases("w1")
    (lease,) = await take(worker)
    assert await worker.finish([error(lease, retry_delay_ms, "no luck")]) == [True]

    failed = await queue.get(job.id)
    assert failed is not None
    assert failed.status is JobStatus.FAILED
    assert failed.error == {"type": "RuntimeError", "message": "no luck"}
    assert failed.finished_at is not None
    assert await any_redis.zcard(queue.keys.delayed) == 0
    assert await any_redis.xlen(queue.keys.queue("default")) == 0
    assert 0 < await any_redis.ttl(queue.keys.job(job.id)) <= queue.settings.result_ttl_s
    (dead,) = await queue.dead_letters("default")
    assert dead["job"] == job.id
    assert dead["error"] == {"type": "RuntimeError", "message": "no luck"}
    assert dead["attempts"] == 1
    (stats,) = await queue.stats(["default"])
    assert stats.dead == 1


async def test_the_last_retry_failing_dead_letters_the_job(
    queue: Queue, make_leases: MakeLeases
) -> None:
    job = await queue.submit(JobSpec(type="bad", max_attempts=2))
    worker = make_leases("w1")
    (first,) = await take(worker)
    await worker.finish([error(first, retry_delay_ms=0)])
    assert await worker.move_due() == (1, -1)
    (second,) = await take(worker)
    await worker.finish([error(second, retry_delay_ms=0, message="again")])
    failed = await queue.get(job.id)
    assert failed is not None
    assert failed.status is JobStatus.FAILED
    assert failed.attempts == 2
    (dead,) = await queue.dead_letters("default")
    assert (dead["job"], dead["attempts"], dead["error"]["message"]) == (job.id, 2, "again")


async def test_a_cancelled_outcome_ends_the_job_cancelled(
    any_redis: Redis, queue: Queue, make_leases: MakeLeases
) -> None:
    job = await queue.submit(JobSpec(type="echo"))
    worker = make_leases("w1")
    (lease,) = await take(worker)
    data = '{"type":"Cancelled","message":"stopped"}'
    assert await worker.finish([Result(lease, Outcome.CANCELLED, data)]) == [True]
    done = await queue.get(job.id)
    assert done is not None
    assert done.status is JobStatus.CANCELLED
    assert done.error == {"type": "Cancelled", "message": "stopped"}
    assert await any_redis.xlen(queue.keys.queue("default")) == 0
    assert await queue.dead_letters("default") == []


async def test_after_a_cancel_request_an_error_ends_cancelled_but_success_stands(
    queue: Queue, make_leases: MakeLeases
) -> None:
    failing, succeeding = await queue.submit_many([JobSpec(type="a"), JobSpec(type="b")])
    worker = make_leases("w1")
    first, second = await take(worker)
    assert await queue.cancel(failing.id) == "cancelling"
    assert await queue.cancel(succeeding.id) == "cancelling"
    assert await worker.finish([error(first, retry_delay_ms=0), ok(second, 1)]) == [True, True]
    a, b = await queue.get(failing.id), await queue.get(succeeding.id)
    assert a is not None
    assert a.status is JobStatus.CANCELLED
    assert b is not None
    assert b.status is JobStatus.SUCCEEDED
    assert b.result == 1
    assert await queue.dead_letters("default") == []


async def test_a_lost_lease_cannot_record_its_outcome(
    any_redis: Redis, queue: Queue, make_leases: MakeLeases
) -> None:
    job = await queue.submit(JobSpec(type="echo"))
    zombie, rescuer = make_leases("zombie"), make_leases("rescuer")
    (old,) = await take(zombie)
    await asyncio.sleep(PAST_LEASE_S)
    (new,) = (await rescuer.claim("default", 10)).leases

    # before the new owner finishes: refused, and the attempt stays running with its owner
    assert await zombie.finish([ok(old, "zombie")]) == [False]
    running = await queue.get(job.id)
    assert running is not None
    assert (running.status, running.worker, running.attempts) == (JobStatus.RUNNING, "rescuer", 2)
    assert await owners(any_redis, queue) == {new.entry: "rescuer"}

    assert await rescuer.finish([ok(new, "rescuer")]) == [True]
    # after: still refused, and the new owner's result stays
    assert await zombie.finish([error(old, retry_delay_ms=0)]) == [False]
    done = await queue.get(job.id)
    assert done is not None
    assert done.status is JobStatus.SUCCEEDED
    assert done.result == "rescuer"
    assert done.error is None
    assert await any_redis.zcard(queue.keys.delayed) == 0


async def test_finish_answers_per_attempt_in_a_batch(queue: Queue, make_leases: MakeLeases) -> None:
    await queue.submit_many([JobSpec(type="n", payload=i) for i in range(3)])
    worker = make_leases("w1")
    a, b, c = await take(worker)
    forged = dataclasses.replace(b, token="7")
    assert await worker.finish([ok(a), ok(forged), ok(c)]) == [True, False, True]
    assert await worker.extend([b]) == [LeaseState.HELD]


async def test_finish_sent_again_after_a_lost_reply_answers_recorded_not_lost(
    queue: Queue, make_leases: MakeLeases
) -> None:
    jobs = await queue.submit_many([JobSpec(type="n", payload=i) for i in range(2)])
    worker = make_leases("w1")
    a, b = await take(worker)
    assert await worker.finish([ok(a, "first"), error(b, retry_delay_ms=60_000)]) == [True, True]
    # the same batch again, as after a reply that never arrived: nothing changes
    assert await worker.finish([ok(a, "again"), error(b, retry_delay_ms=0)]) == [True, True]
    done, retrying = [await queue.get(j.id) for j in jobs]
    assert done is not None
    assert (done.status, done.result) == (JobStatus.SUCCEEDED, "first")
    assert retrying is not None
    assert (retrying.status, retrying.attempts) == (JobStatus.SCHEDULED, 1)
    # another consumer sending the same fence is still refused
    assert await make_leases("w2").finish([ok(a)]) == [False]


# -- adopt --------------------------------------------------------------------------------------


async def test_adopt_returns_the_attempts_this_consumer_runs_by_the_job_records(
    any_redis: Redis, queue: Queue, make_leases: MakeLeases
) -> None:
    await queue.submit_many([JobSpec(type="n", payload=i) for i in range(3)])
    await queue.submit(JobSpec(type="n", payload=9, queue="other"))
    mine, theirs = make_leases("mine"), make_leases("theirs")
    started = await take(mine, free=2, queues=("default", "other"))
    (finished, kept) = started
    assert await mine.finish([ok(finished)]) == [True]
    # read but never started (the reply to XREADGROUP lost): not an attempt of this consumer
    await mine.read(["default"], 1, 10)
    (other,) = await take(theirs, queues=("other",))

    assert await mine.adopt(["default", "other"], 100) == [kept]
    assert await theirs.adopt(["default", "other"], 100) == [other]
    assert await mine.adopt([], 100) == []


# -- claim --------------------------------------------------------------------------------------


async def test_claim_takes_only_entries_idle_for_a_whole_lease(
    any_redis: Redis, queue: Queue, make_leases: MakeLeases
) -> None:
    jobs = await queue.submit_many([JobSpec(type="n", payload=i) for i in range(3)])
    dead, alive, rescuer = make_leases("dead"), make_leases("alive"), make_leases("rescuer")
    abandoned = await take(dead, free=2)
    assert (await rescuer.claim("default", 10)).leases == []  # not idle long enough yet

    await asyncio.sleep(PAST_LEASE_S)
    (fresh,) = await take(alive)  # read just now: its lease is young
    claimed = await rescuer.claim("default", 10)
    assert claimed.cursor == "0-0"
    assert claimed.deleted == []
    assert [lease.entry for lease in claimed.leases] == [lease.entry for lease in abandoned]
    assert {lease.token for lease in claimed.leases} == {"2"}
    for lease in claimed.leases:
        job = await queue.get(lease.job_id)
        assert job is not None
        assert (job.status, job.worker, job.attempts) == (JobStatus.RUNNING, "rescuer", 2)
    assert await owners(any_redis, queue) == {
        abandoned[0].entry: "rescuer",
        abandoned[1].entry: "rescuer",
        fresh.entry: "alive",
    }
    assert {lease.job_id for lease in [*claimed.leases, fresh]} == {job.id for job in jobs}


async def test_claim_follows_the_cursor_to_the_end(queue: Queue, make_leases: MakeLeases) -> None:
    await queue.submit_many([JobSpec(type="n", payload=i) for i in range(5)])
    dead, rescuer = make_leases("dead"), make_leases("rescuer")
    abandoned = await take(dead)
    await asyncio.sleep(PAST_LEASE_S)

    taken: list[Lease] = []
    cursor, calls = "0-0", 0
    while True:
        claimed = await rescuer.claim("default", 2, cursor)
        taken += claimed.leases
        cursor, calls = claimed.cursor, calls + 1
        assert len(claimed.leases) <= 2
        if cursor == "0-0":
            break
    assert calls >= 3
    assert [lease.entry for lease in taken] == [lease.entry for lease in abandoned]
    assert [lease.payload for lease in taken] == ["0", "1", "2", "3", "4"]


async def test_a_zombie_is_fenced_out_after_its_entry_is_claimed(
    any_redis: Redis, queue: Queue, make_leases: MakeLeases
) -> None:
    job = await queue.submit(JobSpec(type="echo"))
    zombie, rescuer = make_leases("zombie"), make_leases("rescuer")
    (old,) = await take(zombie)
    await asyncio.sleep(PAST_LEASE_S)
    (new,) = (await rescuer.claim("default", 10)).leases
    assert new.entry == old.entry
    assert new.attempt == old.attempt + 1

    assert await zombie.extend([old]) == [LeaseState.LOST]
    assert await zombie.finish([ok(old, "late")]) == [False]
    assert await zombie.release([old]) == 0
    assert await owners(any_redis, queue) == {new.entry: "rescuer"}
    assert await rescuer.finish([ok(new, "on time")]) == [True]
    done = await queue.get(job.id)
    assert done is not None
    assert done.result == "on time"


async def test_claim_dead_letters_a_job_out_of_attempts(
    any_redis: Redis, queue: Queue, make_leases: MakeLeases
) -> None:
    job = await queue.submit(JobSpec(type="echo", max_attempts=1))
    dead, rescuer = make_leases("dead"), make_leases("rescuer")
    await take(dead)
    await asyncio.sleep(PAST_LEASE_S)

    claimed = await rescuer.claim("default", 10)
    assert claimed.leases == []
    failed = await queue.get(job.id)
    assert failed is not None
    assert failed.status is JobStatus.FAILED
    assert failed.attempts == 1
    assert failed.error is not None
    assert failed.error["type"] == "LeaseExpired"
    (letter,) = await queue.dead_letters("default")
    assert letter["job"] == job.id
    assert letter["attempts"] == 1
    assert letter["error"]["type"] == "LeaseExpired"
    assert await any_redis.xlen(queue.keys.queue("default")) == 0
    assert await pending_count(any_redis, queue) == 0
    assert 0 < await any_redis.ttl(queue.keys.job(job.id)) <= queue.settings.result_ttl_s
    assert [c.status for c in await changes(any_redis, queue)][-1] == "failed"


async def test_claim_reports_entries_deleted_while_pending(
    any_redis: Redis, queue: Queue, make_leases: MakeLeases
) -> None:
    await queue.submit_many([JobSpec(type="a"), JobSpec(type="b")])
    dead, rescuer = make_leases("dead"), make_leases("rescuer")
    lost, kept = await take(dead)
    await any_redis.xdel(queue.keys.queue("default"), lost.entry)  # deleted behind our back
    await asyncio.sleep(PAST_LEASE_S)

    claimed = await rescuer.claim("default", 10)
    assert claimed.deleted == [lost.entry]
    assert [lease.entry for lease in claimed.leases] == [kept.entry]


async def test_claim_hands_back_its_own_idle_lease_without_a_new_attempt(
    any_redis: Redis, queue: Queue, make_leases: MakeLeases
) -> None:
    """A worker whose event loop was blocked past its lease must not steal its own job."""
    job = await queue.submit(JobSpec(type="echo"))
    worker = make_leases("w1")
    (lease,) = await take(worker)
    await asyncio.sleep(PAST_LEASE_S)

    claimed = await worker.claim("default", 10)
    assert claimed.leases == []
    assert claimed.own == [lease]
    running = await queue.get(job.id)
    assert running is not None
    assert (running.status, running.worker, running.attempts) == (JobStatus.RUNNING, "w1", 1)
    assert await worker.finish([ok(lease, "kept")]) == [True]
    done = await queue.get(job.id)
    assert done is not None
    assert (done.status, done.result) == (JobStatus.SUCCEEDED, "kept")


async def test_claim_dead_letters_in_the_claimers_name_so_the_late_finish_reads_as_lost(
    queue: Queue, make_leases: MakeLeases
) -> None:
    job = await queue.submit(JobSpec(type="echo", max_attempts=1))
    dead, rescuer = make_leases("dead"), make_leases("rescuer")
    (lease,) = await take(dead)
    await asyncio.sleep(PAST_LEASE_S)
    assert (await rescuer.claim("default", 10)).leases == []

    assert await dead.finish([ok(lease)]) == [False]
    failed = await queue.get(job.id)
    assert failed is not None
    assert (failed.status, failed.worker) == (JobStatus.FAILED, "rescuer")


async def test_claim_on_an_empty_group_takes_nothing(make_leases: MakeLeases) -> None:
    rescuer = make_leases("rescuer")
    await rescuer.ensure_group("default")
    await rescuer.ensure_group("default")  # twice is fine
    claimed = await rescuer.claim("default", 10)
    assert (claimed.cursor, claimed.leases, claimed.deleted) == ("0-0", [], [])


# -- release ------------------------------------------------------------------------------------


async def test_a_released_lease_is_claimable_at_once(
    any_redis: Redis, queue: Queue, make_leases: MakeLeases
) -> None:
    job = await queue.submit(JobSpec(type="long"))
    leaving, staying = make_leases("leaving"), make_leases("staying")
    (lease,) = await take(leaving)
    assert await leaving.release([lease]) == 1
    released = await queue.get(job.id)
    assert released is not None
    assert released.status is JobStatus.PENDING
    assert released.attempts == 0  # stopped on purpose: the attempt is handed back

    claimed = await staying.claim("default", 10)  # no waiting for the lease to run out
    (taken,) = claimed.leases
    assert (taken.entry, taken.token) == (lease.entry, "1")
    assert await owners(any_redis, queue) == {lease.entry: "staying"}
    running = await queue.get(job.id)
    assert running is not None
    assert running.worker == "staying"

    assert await leaving.finish([ok(lease, "too late")]) == [False]
    assert await leaving.extend([lease]) == [LeaseState.LOST]
    assert await staying.finish([ok(taken, "done")]) == [True]
    done = await queue.get(job.id)
    assert done is not None
    assert done.result == "done"
    assert [c.status for c in await changes(any_redis, queue)] == [
        "pending",
        "running",
        "pending",
        "running",
        "succeeded",
    ]


async def test_release_refuses_leases_not_held(queue: Queue, make_leases: MakeLeases) -> None:
    await queue.submit_many([JobSpec(type="a"), JobSpec(type="b")])
    worker = make_leases("w1")
    first, second = await take(worker)
    assert await make_leases("w2").release([first]) == 0
    assert await worker.release([dataclasses.replace(first, token="9"), second]) == 1
    assert await worker.release([second]) == 0  # already released
    assert await worker.extend([first, second]) == [LeaseState.HELD, LeaseState.LOST]


async def test_a_released_job_is_claimed_once_however_many_workers_try(
    queue: Queue, make_leases: MakeLeases
) -> None:
    await queue.submit(JobSpec(type="long"))
    leaving = make_leases("leaving")
    (lease,) = await take(leaving)
    await leaving.release([lease])
    rescuers: list[LeaseClient] = [make_leases(f"r{i}") for i in range(5)]
    results = await asyncio.gather(*(r.claim("default", 10) for r in rescuers))
    assert sum(len(c.leases) for c in results) == 1


async def test_a_job_released_on_its_last_attempt_still_runs(
    queue: Queue, make_leases: MakeLeases
) -> None:
    job = await queue.submit(JobSpec(type="long", max_attempts=1))
    leaving, staying = make_leases("leaving"), make_leases("staying")
    (lease,) = await take(leaving)
    assert await leaving.release([lease]) == 1
    (taken,) = (await staying.claim("default", 10)).leases
    assert taken.token == "1"
    assert await leaving.finish([ok(lease, "too late")]) == [False]
    assert await staying.finish([ok(taken, "done")]) == [True]
    done = await queue.get(job.id)
    assert done is not None
    assert (done.status, done.result, done.attempts) == (JobStatus.SUCCEEDED, "done", 1)
    assert await queue.dead_letters("default") == []


async def test_a_start_too_late_leaves_the_job_to_the_worker_that_claimed_it(
    any_redis: Redis, queue: Queue, make_leases: MakeLeases
) -> None:
    job = await queue.submit(JobSpec(type="echo"))
    slow, rescuer = make_leases("slow"), make_leases("rescuer")
    await slow.ensure_group("default")
    entries = await slow.read(["default"], 1, 100)  # read, then stalled past the lease
    await asyncio.sleep(PAST_LEASE_S)
    (taken,) = (await rescuer.claim("default", 10)).leases
    assert await slow.start(entries) == []  # not run a second time, not acked
    assert await owners(any_redis, queue) == {taken.entry: "rescuer"}
    assert await rescuer.finish([ok(taken, "mine")]) == [True]
    done = await queue.get(job.id)
    assert done is not None
    assert (done.result, done.attempts, done.worker) == ("mine", 1, "rescuer")

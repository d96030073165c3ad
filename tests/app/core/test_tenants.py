"""Per-tenant limits, idempotency and the active count, in submit.lua and the scripts that end
jobs: a refused request stores nothing, and the active count follows the jobs exactly."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from redis.asyncio import Redis

from app.core.errors import (
    IdempotencyMismatch,
    InvalidRequest,
    JobConflict,
    JobNotFound,
    RateLimited,
    TooManyActive,
)
from app.core.leases import Outcome, Result
from app.core.models import JobSpec, JobStatus
from app.core.queue import Queue
from app.core.tenants import Admitted, Limits, SubmitRequest, Usage, fingerprint, usage
from tests.app.conftest import LEASE_S, MakeLeases, take


def jobs(n: int, tenant: str = "acme", **fields: Any) -> list[JobSpec]:
    return [JobSpec(type="t", tenant=tenant, payload=i, **fields) for i in range(n)]


async def active(redis: Redis, queue: Queue, tenant: str = "acme") -> int:
    return int(await redis.get(queue.keys.tenant_active(tenant)) or 0)


async def job_count(redis: Redis, queue: Queue) -> int:
    return len(await redis.keys(queue.keys.job("*")))


# -- active jobs --------------------------------------------------------------------------------


async def test_a_request_over_the_active_limit_stores_nothing(
    any_redis: Redis, queue: Queue
) -> None:
    two = Limits(max_active=2)
    await queue.admit(SubmitRequest(jobs(1), two))
    with pytest.raises(TooManyActive) as refused:
        await queue.admit(SubmitRequest(jobs(2), two))
    assert (refused.value.limit, refused.value.remaining) == (2, 1)
    assert await job_count(any_redis, queue) == 1
    assert await active(any_redis, queue) == 1
    await queue.admit(SubmitRequest(jobs(1), two))
    assert await active(any_redis, queue) == 2


async def test_the_active_limit_counts_only_its_own_tenant(any_redis: Redis, queue: Queue) -> None:
    one = Limits(max_active=1)
    await queue.admit(SubmitRequest(jobs(1, "acme"), one))
    await queue.admit(SubmitRequest(jobs(1, "bolt"), one))
    assert (await active(any_redis, queue, "acme"), await active(any_redis, queue, "bolt")) == (
        1,
        1,
    )


async def test_every_way_a_job_ends_frees_its_active_slot(
    any_redis: Redis, queue: Queue, make_leases: MakeLeases
) -> None:
    ok, failed, retried, cancelled, dead = await queue.submit_many(
        [*jobs(3), *jobs(1), *jobs(1, max_attempts=1)]
    )
    assert await active(any_redis, queue) == 5
    await queue.cancel(cancelled.id)
    assert await active(any_redis, queue) == 4
    worker = make_leases("w1")
    leases = {lease.job_id: lease for lease in await take(worker)}
    await worker.finish(
        [
            Result(leases[ok.id], Outcome.OK, "1"),
            Result(leases[failed.id], Outcome.ERROR, '"x"'),  # not retryable: dead-lettered
            Result(leases[retried.id], Outcome.ERROR, '"x"', retry_delay_ms=60_000),
        ]
    )
    assert await active(any_redis, queue) == 2  # the retry and the one whose worker died
    await asyncio.sleep(LEASE_S * 1.5)
    assert (await make_leases("w2").claim("default", 10)).leases == []  # out of attempts
    assert (await queue.get(dead.id)).status is JobStatus.FAILED  # type: ignore[union-attr]
    assert await active(any_redis, queue) == 1
    assert not await any_redis.exists(queue.keys.tenant_active("public"))


async def test_a_running_job_cancelled_frees_its_slot_when_its_worker_stops(
    any_redis: Redis, queue: Queue, make_leases: MakeLeases
) -> None:
    job = await queue.submit(JobSpec(type="t", tenant="acme"))
    worker = make_leases("w1")
    (lease,) = await take(worker)
    assert await queue.cancel(job.id) == "cancelling"
    assert await active(any_redis, queue) == 1
    await worker.finish([Result(lease, Outcome.CANCELLED, "null")])
    assert await active(any_redis, queue) == 0


# -- rolling minute -----------------------------------------------------------------------------


async def test_the_rolling_minute_admits_its_limit_then_says_when_to_come_back(
    any_redis: Redis, queue: Queue
) -> None:
    three = Limits(rpm=3)
    quotas = [(await queue.admit(SubmitRequest(jobs(1), three))).quota for _ in range(3)]
    assert [(q.limit, q.remaining) for q in quotas if q] == [(3, 2), (3, 1), (3, 0)]
    assert all(q and 0 < q.reset_s <= 60 for q in quotas)
    with pytest.raises(RateLimited) as refused:
        await queue.admit(SubmitRequest(jobs(1), three))
    assert refused.value.remaining == 0
    assert 0 < refused.value.retry_after_s <= 60
    assert await job_count(any_redis, queue) == 3


async def test_a_batch_over_the_rolling_minute_is_refused_whole(
    any_redis: Redis, queue: Queue
) -> None:
    await queue.admit(SubmitRequest(jobs(2), Limits(rpm=5)))
    with pytest.raises(RateLimited) as refused:
        await queue.admit(SubmitRequest(jobs(4), Limits(rpm=5)))
    assert refused.value.remaining == 3
    assert await job_count(any_redis, queue) == 2
    assert await active(any_redis, queue) == 2


async def test_submissions_from_a_minute_ago_leave_the_window(
    any_redis: Redis, queue: Queue
) -> None:
    await queue.admit(SubmitRequest(jobs(2), Limits(rpm=2)))
    # age the tenant's seconds and its summary by a minute, as if they were sent then
    window, summary = queue.keys.tenant_rpm("acme"), queue.keys.tenant_rpm_summary("acme")
    seconds: dict[str, str] = await any_redis.hgetall(window)  # type: ignore[misc]
    oldest = int(await any_redis.hget(summary, "oldest"))  # type: ignore[misc]
    await any_redis.delete(window)
    await any_redis.hset(window, mapping={str(int(s) - 61): n for s, n in seconds.items()})
    await any_redis.hset(summary, "oldest", oldest - 61)  # type: ignore[misc]
    admitted = await queue.admit(SubmitRequest(jobs(2), Limits(rpm=2)))
    assert admitted.quota is not None
    assert admitted.quota.remaining == 0


async def test_requests_in_one_call_share_the_rolling_minute(
    any_redis: Redis, queue: Queue
) -> None:
    results = await queue.admit_many([SubmitRequest(jobs(1), Limits(rpm=3)) for _ in range(4)])
    quotas = [r.quota.remaining for r in results if isinstance(r, Admitted) and r.quota]
    assert quotas == [2, 1, 0]
    assert isinstance(results[3], RateLimited)
    summary: dict[str, str] = await any_redis.hgetall(queue.keys.tenant_rpm_summary("acme"))  # type: ignore[misc]
    second = summary["oldest"]
    assert summary == {"used": "3", "oldest": second}
    window = await any_redis.hgetall(queue.keys.tenant_rpm("acme"))  # type: ignore[misc]
    assert window == {second: "3"}  # one write for the call


async def seed_minute(
    redis: Redis, queue: Queue, ago: dict[int, int], summary: bool = False
) -> int:
    """acme's rolling minute: ``ago[s]`` submissions ``s`` seconds before Redis's clock (which
    it returns), with its summary when asked."""
    now_s: int = (await redis.time())[0]
    seconds = {str(now_s - s): n for s, n in ago.items()}
    await redis.hset(queue.keys.tenant_rpm("acme"), mapping=seconds)  # type: ignore[arg-type]
    if summary:
        summed = {"used": sum(ago.values()), "oldest": now_s - max(ago)}
        await redis.hset(queue.keys.tenant_rpm_summary("acme"), mapping=summed)  # type: ignore[arg-type]
    return now_s


async def test_the_oldest_second_of_the_minute_says_when_a_slot_frees(
    any_redis: Redis, queue: Queue
) -> None:
    # written newest first: the window is found by second, not by the hash's order
    await seed_minute(any_redis, queue, {10: 1, 40: 1})
    with pytest.raises(RateLimited) as refused:
        await queue.admit(SubmitRequest(jobs(1), Limits(rpm=2)))
    assert 18 <= refused.value.retry_after_s <= 21  # the second 40 s ago leaves in 20 s
    admitted = await queue.admit(SubmitRequest(jobs(1), Limits(rpm=3)))
    assert admitted.quota is not None
    assert 18 <= admitted.quota.reset_s <= 21


async def test_a_minute_written_without_its_summary_is_recounted(
    any_redis: Redis, queue: Queue
) -> None:
    now_s = await seed_minute(any_redis, queue, {61: 5, 5: 1})
    admitted = await queue.admit(SubmitRequest(jobs(1), Limits(rpm=3)))
    assert admitted.quota is not None
    assert admitted.quota.remaining == 1  # the second that left the window no longer counts
    seconds = await any_redis.hgetall(queue.keys.tenant_rpm("acme"))  # type: ignore[misc]
    assert str(now_s - 61) not in seconds
    summary = await any_redis.hgetall(queue.keys.tenant_rpm_summary("acme"))  # type: ignore[misc]
    assert summary == {"used": "2", "oldest": str(now_s - 5)}


async def test_a_minute_whose_every_second_left_leaves_no_key(
    any_redis: Redis, queue: Queue
) -> None:
    spec = JobSpec(type="t", tenant="acme", idempotency_key="k1")
    original = await queue.submit(spec)  # the core's own submit counts no minute
    await seed_minute(any_redis, queue, {70: 4}, summary=True)
    # a replay submits nothing: the minute is recounted, found empty and deleted
    replay = await queue.admit(SubmitRequest([spec], Limits(rpm=3)))
    assert replay.jobs[0].id == original.id
    assert replay.quota is not None
    assert (replay.quota.remaining, replay.quota.reset_s) == (3, 0)
    keys = queue.keys.tenant_rpm("acme"), queue.keys.tenant_rpm_summary("acme")
    assert await any_redis.exists(*keys) == 0


# -- idempotency --------------------------------------------------------------------------------


async def test_the_same_key_and_request_returns_the_original_job(
    any_redis: Redis, queue: Queue
) -> None:
    spec = JobSpec(type="t", tenant="acme", payload={"a": 1, "b": 2}, idempotency_key="k1")
    first = await queue.admit(SubmitRequest([spec], Limits(rpm=10)))
    again = JobSpec(type="t", tenant="acme", payload={"b": 2, "a": 1}, idempotency_key="k1")
    second = await queue.admit(SubmitRequest([again], Limits(rpm=10)))
    assert second.jobs[0].id == first.jobs[0].id
    assert (first.replayed, second.replayed) == ([False], [True])
    assert second.jobs[0].idempotency_key == "k1"
    assert second.quota is not None
    assert second.quota.remaining == 9  # a replay is not a submission
    assert await job_count(any_redis, queue) == 1


async def test_the_same_key_with_another_request_is_refused(any_redis: Redis, queue: Queue) -> None:
    await queue.submit(JobSpec(type="t", tenant="acme", payload=1, idempotency_key="k1"))
    with pytest.raises(IdempotencyMismatch, match="k1"):
        await queue.submit(JobSpec(type="t", tenant="acme", payload=2, idempotency_key="k1"))
    assert await job_count(any_redis, queue) == 1


async def test_idempotency_keys_are_per_tenant(any_redis: Redis, queue: Queue) -> None:
    a = await queue.submit(JobSpec(type="t", tenant="acme", idempotency_key="k1"))
    b = await queue.submit(JobSpec(type="t", tenant="bolt", idempotency_key="k1"))
    assert a.id != b.id


async def test_requests_with_one_key_in_one_call_create_one_job(
    any_redis: Redis, queue: Queue
) -> None:
    spec = JobSpec(type="t", tenant="acme", idempotency_key="k1")
    results = await queue.admit_many([SubmitRequest([spec], Limits(1, 1)) for _ in range(5)])
    ids = {r.jobs[0].id for r in results if not isinstance(r, Exception)}
    assert len(ids) == 1
    assert [r.replayed for r in results if not isinstance(r, Exception)] == [
        [False],
        *[[True]] * 4,
    ]
    assert await job_count(any_redis, queue) == 1


async def test_requests_in_one_call_each_get_their_own_verdict(
    any_redis: Redis, queue: Queue
) -> None:
    one = Limits(max_active=1)
    results = await queue.admit_many(
        [SubmitRequest(jobs(1, tenant), one) for tenant in ("acme", "acme", "bolt")]
    )
    assert [type(r).__name__ for r in results] == ["Admitted", "TooManyActive", "Admitted"]
    assert await job_count(any_redis, queue) == 2


def test_the_fingerprint_ignores_key_order_but_not_values() -> None:
    base = JobSpec(type="t", payload={"a": 1, "b": [1, 2]})
    assert fingerprint(base) == fingerprint(JobSpec(type="t", payload={"b": [1, 2], "a": 1}))
    assert fingerprint(base) != fingerprint(JobSpec(type="t", payload={"a": 1, "b": [2, 1]}))
    assert fingerprint(base) != fingerprint(
        JobSpec(type="t", payload={"a": 1, "b": [1, 2]}, queue="q")
    )


# -- retry --------------------------------------------------------------------------------------


async def test_a_failed_job_retried_runs_again_from_its_first_attempt(
    any_redis: Redis, queue: Queue, make_leases: MakeLeases
) -> None:
    job = await queue.submit(JobSpec(type="t", tenant="acme", max_attempts=1))
    worker = make_leases("w1")
    (lease,) = await take(worker)
    await worker.finish([Result(lease, Outcome.ERROR, '"boom"')])
    assert await active(any_redis, queue) == 0
    await queue.retry(job.id, tenant="acme")
    again = await queue.get(job.id)
    assert again is not None
    assert (again.status, again.attempts, again.error, again.finished_at) == (
        JobStatus.PENDING,
        0,
        None,
        None,
    )
    assert await any_redis.ttl(queue.keys.job(job.id)) == -1
    assert await active(any_redis, queue) == 1
    (lease,) = await take(worker)
    assert lease.job_id == job.id


async def test_a_retry_takes_an_active_slot_and_checks_the_limit(
    any_redis: Redis, queue: Queue
) -> None:
    job, _other = await queue.submit_many(jobs(2))
    await queue.cancel(job.id)
    with pytest.raises(TooManyActive):
        await queue.retry(job.id, tenant="acme", max_active=1)
    assert (await queue.get(job.id)).status is JobStatus.CANCELLED  # type: ignore[union-attr]
    await queue.retry(job.id, tenant="acme", max_active=2)
    assert await active(any_redis, queue) == 2


async def test_only_failed_or_cancelled_jobs_can_be_retried(queue: Queue) -> None:
    job = await queue.submit(JobSpec(type="t"))
    with pytest.raises(JobConflict, match="pending"):
        await queue.retry(job.id)


async def test_another_tenants_job_cannot_be_retried(queue: Queue) -> None:
    job = await queue.submit(JobSpec(type="t", tenant="acme"))
    await queue.cancel(job.id)
    with pytest.raises(JobNotFound):
        await queue.retry(job.id, tenant="bolt")


# -- listing ------------------------------------------------------------------------------------


async def test_a_listing_is_newest_first_and_pages_with_its_cursor(queue: Queue) -> None:
    made = [(await queue.submit(spec)).id for spec in jobs(7)]
    await queue.submit(JobSpec(type="t", tenant="bolt"))
    seen, cursor = [], None
    for _ in range(4):
        page = await queue.list_jobs("acme", limit=3, cursor=cursor)
        seen += [job.id for job in page.jobs]
        if (cursor := page.cursor) is None:
            break
    assert seen == made[::-1]


async def test_a_listing_filters_by_status_queue_and_type(queue: Queue) -> None:
    a = await queue.submit(JobSpec(type="a", tenant="acme", queue="q1"))
    b = await queue.submit(JobSpec(type="b", tenant="acme", queue="q2"))
    c = await queue.submit(JobSpec(type="a", tenant="acme", queue="q2"))
    await queue.cancel(c.id)

    async def ids(**filters: str) -> list[str]:
        return [job.id for job in (await queue.list_jobs("acme", **filters)).jobs]  # type: ignore[arg-type]

    assert await ids(type="a") == [c.id, a.id]
    assert await ids(queue="q2") == [c.id, b.id]
    assert await ids(status="pending", queue="q2") == [b.id]
    assert await ids(status="succeeded") == []


async def test_a_listing_skips_and_forgets_expired_jobs(any_redis: Redis, queue: Queue) -> None:
    old, new = await queue.submit_many(jobs(2))
    await any_redis.delete(queue.keys.job(old.id))
    assert [job.id for job in (await queue.list_jobs("acme")).jobs] == [new.id]
    assert await any_redis.zrange(queue.keys.tenant_jobs("acme"), 0, -1) == [new.id]


async def test_the_index_keeps_at_most_its_cap(any_redis: Redis, queue: Queue) -> None:
    capped = Queue(any_redis, queue.settings.model_copy(update={"list_index_max": 3}))
    made = await capped.submit_many(jobs(5))
    await capped.submit(JobSpec(type="t", tenant="acme"))
    assert await any_redis.zcard(queue.keys.tenant_jobs("acme")) == 3
    assert made[0].id not in await any_redis.zrange(queue.keys.tenant_jobs("acme"), 0, -1)


@pytest.mark.parametrize("cursor", ["", "nope", "bmFufGp4", "MTIzfA", "%%%"])
async def test_a_cursor_not_handed_out_is_an_invalid_request(queue: Queue, cursor: str) -> None:
    with pytest.raises(InvalidRequest, match="cursor"):
        await queue.list_jobs("acme", cursor=cursor or "x")


async def test_one_key_twice_in_one_request_creates_one_job(any_redis: Redis, queue: Queue) -> None:
    spec = JobSpec(type="t", tenant="acme", idempotency_key="k1")
    admitted = await queue.admit(SubmitRequest([spec, spec]))
    assert admitted.jobs[0].id == admitted.jobs[1].id
    assert admitted.replayed == [False, True]
    assert await job_count(any_redis, queue) == 1


async def test_a_replay_of_a_job_whose_record_expired_is_a_conflict(
    any_redis: Redis, queue: Queue
) -> None:
    spec = JobSpec(type="t", tenant="acme", idempotency_key="k1")
    job = await queue.submit(spec)
    await any_redis.delete(queue.keys.job(job.id))
    with pytest.raises(JobConflict, match="expired"):
        await queue.submit(spec)


async def test_usage_reads_a_tenants_active_jobs_and_its_last_minute(
    any_redis: Redis, queue: Queue
) -> None:
    await queue.admit(SubmitRequest(jobs(3), Limits(rpm=10)))
    seconds, _ = await any_redis.time()
    assert await usage(any_redis, queue.keys, "acme", seconds) == Usage("acme", 3, 3)
    assert await usage(any_redis, queue.keys, "acme", seconds + 61) == Usage("acme", 3, 0)
    assert await usage(any_redis, queue.keys, "nobody", seconds) == Usage("nobody", 0, 0)


async def test_a_bad_job_in_a_request_is_named_and_stores_nothing(
    any_redis: Redis, queue: Queue
) -> None:
    specs = [*jobs(2), JobSpec(type="t", tenant="acme", max_attempts=0)]
    with pytest.raises(InvalidRequest, match=r"job 2: .*max_attempts"):
        await queue.admit(SubmitRequest(specs, Limits(rpm=10)))
    assert await any_redis.dbsize() == 0


async def test_a_limited_request_carries_one_tenants_jobs(queue: Queue) -> None:
    with pytest.raises(InvalidRequest, match="one tenant"):
        await queue.admit(SubmitRequest([*jobs(1, "acme"), *jobs(1, "bolt")], Limits(rpm=10)))

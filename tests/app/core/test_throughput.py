"""Throughput per queue: jobs that end are counted per minute by the scripts (``done.lua``), and
``Queue.stats`` turns the last two minutes' counts into a sliding one-minute figure."""

from __future__ import annotations

from redis.asyncio import Redis

from app.core.leases import Outcome, Result
from app.core.models import JobSpec
from app.core.queue import Queue
from tests.app.conftest import MakeLeases, server_ms, take

ERROR = '{"type":"E","message":"m"}'


async def finished_counts(redis: Redis, queue: Queue) -> dict[str, int]:
    """Per queue, what the counters of this minute and the previous one hold together."""
    minute = int(await server_ms(redis) // 60_000)
    totals: dict[str, int] = {}
    for key in (queue.keys.finished(minute - 1), queue.keys.finished(minute)):
        counts: dict[str, str] = await redis.hgetall(key)  # type: ignore[misc]
        for name, count in counts.items():
            totals[name] = totals.get(name, 0) + int(count)
    return totals


async def test_jobs_that_end_count_toward_their_queues_throughput_and_retries_do_not(
    any_redis: Redis, queue: Queue, make_leases: MakeLeases
) -> None:
    await queue.submit_many([JobSpec(type="n", max_attempts=1) for _ in range(3)])
    await queue.submit_many([JobSpec(type="n", queue="other", max_attempts=2) for _ in range(2)])
    doomed = await queue.submit(JobSpec(type="n", queue="other", delay_s=60))
    worker = make_leases("w1")
    ok, dead, cancelled = await take(worker, free=3)
    retried, succeeded = await take(worker, free=2, queues=["other"])
    await worker.finish(
        [
            Result(ok, Outcome.OK, "1"),
            Result(dead, Outcome.ERROR, ERROR, 0),
            Result(cancelled, Outcome.CANCELLED, "null"),
            Result(retried, Outcome.ERROR, ERROR, 60_000),
            Result(succeeded, Outcome.OK, "1"),
        ]
    )
    await queue.cancel(doomed.id)

    assert await finished_counts(any_redis, queue) == {"default": 3, "other": 2}
    stats = {s.queue: s.finished_per_min for s in await queue.stats(["default", "other", "idle"])}
    assert 0 < stats["default"] <= 3
    assert 0 < stats["other"] <= 2
    assert stats["idle"] == 0


async def test_the_previous_minute_counts_for_the_part_of_it_the_last_minute_still_covers(
    any_redis: Redis, queue: Queue
) -> None:
    before = await server_ms(any_redis)
    minute = int(before // 60_000)
    await any_redis.hset(queue.keys.finished(minute - 1), "default", 600)
    await any_redis.hset(queue.keys.finished(minute), "default", 7)
    (stats,) = await queue.stats(["default"])
    after = await server_ms(any_redis)
    if int(after // 60_000) != minute:  # a minute boundary passed: the weights moved
        return
    covered = [(60_000 - ms % 60_000) / 60_000 for ms in (after, before)]
    assert 7 + 600 * covered[0] - 0.1 <= stats.finished_per_min <= 7 + 600 * covered[1] + 0.1


async def test_the_counters_expire_by_themselves(any_redis: Redis, queue: Queue) -> None:
    await queue.submit(JobSpec(type="n"))
    job = await queue.submit(JobSpec(type="n"))
    await queue.cancel(job.id)
    minute = int(await server_ms(any_redis) // 60_000)
    ttls = [await any_redis.ttl(queue.keys.finished(m)) for m in (minute - 1, minute)]
    assert any(0 < ttl <= 180 for ttl in ttls), ttls

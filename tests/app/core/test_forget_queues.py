"""forget_queues.lua through ``Queue.forget_idle_queues``: queue names that are empty and idle
are forgotten (name, scheduled count, empty stream and group), while anything with work, dead
letters, recent use or a serving worker stays."""

from __future__ import annotations

import asyncio

import orjson
import pytest
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from app.core.dead_letters import newest_dead_letters
from app.core.leases import LeaseClient, Outcome, Result
from app.core.models import JobSpec
from app.core.queue import FORGET_SCAN, Queue
from app.core.redis_client import connect
from app.core.settings import CoreSettings
from app.dev.redis_server import RedisServer
from tests.app.conftest import MakeLeases, take

IDLE_S = 0.2
PAST_IDLE_S = IDLE_S + 0.1
FAILED = '{"type":"E","message":"m"}'


async def run_one(worker: LeaseClient, queue: str, outcome: Outcome = Outcome.OK) -> None:
    (lease,) = await take(worker, free=1, queues=[queue])
    await worker.finish([Result(lease, outcome, FAILED if outcome is Outcome.ERROR else "1")])


async def test_an_empty_idle_queue_is_forgotten(
    any_redis: Redis, queue: Queue, make_leases: MakeLeases
) -> None:
    await queue.submit_many([JobSpec(type="n", queue="once") for _ in range(2)])
    await queue.submit(JobSpec(type="n", queue="once", delay_s=0.01))
    await queue.cancel((await queue.submit(JobSpec(type="n", queue="once", delay_s=60))).id)
    worker = make_leases("w1")
    await run_one(worker, "once")
    await run_one(worker, "once")
    await asyncio.sleep(0.02)
    await worker.move_due()
    await run_one(worker, "once")
    assert await any_redis.hget(queue.keys.scheduled_counts, "once") == "0"
    await asyncio.sleep(PAST_IDLE_S)

    assert await queue.forget_idle_queues(IDLE_S) == ["once"]
    assert await queue.queue_names() == []
    assert await queue.stats() == []
    assert await any_redis.exists(queue.keys.queue("once")) == 0
    assert await any_redis.hexists(queue.keys.scheduled_counts, "once") == 0
    assert await queue.forget_idle_queues(IDLE_S) == []

    # a new submission brings the name back
    await queue.submit(JobSpec(type="n", queue="once"))
    assert await queue.queue_names() == ["once"]


async def test_a_queue_with_dead_letters_is_kept_and_its_letters_listed(
    queue: Queue, make_leases: MakeLeases
) -> None:
    failed = await queue.submit(JobSpec(type="n", queue="poisoned", max_attempts=1))
    await run_one(make_leases("w1"), "poisoned", Outcome.ERROR)
    await asyncio.sleep(PAST_IDLE_S)
    assert await queue.forget_idle_queues(IDLE_S) == []
    assert await queue.queue_names() == ["poisoned"]
    (letter,) = await newest_dead_letters(queue, "public", 10)
    assert (letter.queue, letter.job_id) == ("poisoned", failed.id)


async def test_a_queue_with_waiting_running_or_scheduled_work_is_kept(
    queue: Queue, make_leases: MakeLeases
) -> None:
    await queue.submit(JobSpec(type="n", queue="waiting"))
    await queue.submit(JobSpec(type="n", queue="running"))
    await take(make_leases("w1"), free=1, queues=["running"])
    await queue.submit(JobSpec(type="n", queue="scheduled", delay_s=60))
    await asyncio.sleep(PAST_IDLE_S)
    assert await queue.forget_idle_queues(IDLE_S) == []
    assert await queue.queue_names() == ["running", "scheduled", "waiting"]


async def test_a_queue_used_within_the_idle_time_is_kept(
    queue: Queue, make_leases: MakeLeases
) -> None:
    await queue.submit(JobSpec(type="n", queue="recent"))
    await run_one(make_leases("w1"), "recent")
    assert await queue.forget_idle_queues(60) == []
    assert await queue.queue_names() == ["recent"]


async def test_a_queue_a_live_worker_serves_is_kept(
    any_redis: Redis, queue: Queue, make_leases: MakeLeases
) -> None:
    await queue.submit_many([JobSpec(type="n", queue=name) for name in ("served", "unserved")])
    worker = make_leases("w1")
    await run_one(worker, "served")
    await run_one(worker, "unserved")
    await worker.register(orjson.dumps({"queues": ["high", "served"]}).decode(), 60_000)
    await make_leases("odd").register("not json", 60_000)  # ignored, never an error
    await asyncio.sleep(PAST_IDLE_S)
    assert await queue.forget_idle_queues(IDLE_S) == ["unserved"]
    assert await any_redis.exists(queue.keys.queue("served")) == 1

    await worker.register("", 60_000)  # the worker stopped
    assert await queue.forget_idle_queues(IDLE_S) == ["served"]


async def test_a_flood_of_names_is_forgotten_in_bounded_calls(
    any_redis: Redis, queue: Queue
) -> None:
    names = [f"spam-{i}" for i in range(FORGET_SCAN * 2 + 50)]
    jobs = await queue.submit_many([JobSpec(type="n", queue=name, delay_s=60) for name in names])
    for job in jobs:
        await queue.cancel(job.id)

    assert sorted(await queue.forget_idle_queues(IDLE_S)) == sorted(names)
    assert await any_redis.scard(queue.keys.queues) == 0
    assert await any_redis.hlen(queue.keys.scheduled_counts) == 0


async def test_the_idle_time_defaults_to_the_setting(any_redis: Redis, fast: CoreSettings) -> None:
    assert fast.queue_idle_forget_s == 86_400
    queue = Queue(any_redis, fast.model_copy(update={"queue_idle_forget_s": IDLE_S}))
    await queue.submit(JobSpec(type="n", queue="q", delay_s=0.01))
    await asyncio.sleep(0.02)
    await LeaseClient(any_redis, queue.settings, "w1").move_due()
    await run_one(LeaseClient(any_redis, queue.settings, "w1"), "q")
    assert await queue.forget_idle_queues() == []
    await asyncio.sleep(PAST_IDLE_S)
    assert await queue.forget_idle_queues() == ["q"]


@pytest.mark.redis
async def test_a_worker_blocked_on_a_forgotten_queue_is_told_and_recovers(
    real_redis: Redis, redis_server: RedisServer, settings: CoreSettings
) -> None:
    """Redis 7 ends a blocked XREADGROUP whose stream is deleted with an error ("UNBLOCKED the
    stream key no longer exists"); the next read answers NOGROUP, on which workers recreate the
    group. Nothing hangs, and the worker leases new jobs again."""
    queue = Queue(real_redis, settings)
    blocked = connect(redis_server.url)  # a connection of its own, as a worker has
    worker = LeaseClient(blocked, settings, "w1")
    await queue.submit(JobSpec(type="n", queue="q"))
    await run_one(worker, "q")

    read = asyncio.create_task(worker.read(["q"], 1, 5000))
    await asyncio.sleep(PAST_IDLE_S)
    assert await queue.forget_idle_queues(IDLE_S) == ["q"]
    with pytest.raises(ResponseError, match="no longer exists"):
        await asyncio.wait_for(read, 4)
    with pytest.raises(ResponseError, match="NOGROUP"):
        await worker.read(["q"], 1, None)

    await worker.ensure_group("q")
    job = await queue.submit(JobSpec(type="n", queue="q"))
    (lease,) = await worker.start(await worker.read(["q"], 1, 1000))
    assert lease.job_id == job.id
    await blocked.aclose()

"""Group commit: single submissions that arrive together share one script call, and each
still gets its own verdict (limits, idempotency) or its own failure."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from app.api.group_commit import MAX_REQUESTS, GroupCommit
from app.core.errors import IdempotencyMismatch, InvalidRequest, RateLimited
from app.core.models import JobSpec
from app.core.queue import Queue
from app.core.redis_client import connect
from app.core.settings import CoreSettings
from app.core.tenants import Admitted, Limits, SubmitRequest
from app.dev.redis_server import free_port


@pytest.fixture
def queue(any_redis: Redis, settings: CoreSettings) -> Queue:
    return Queue(any_redis, settings)


UNLIMITED = Limits()


def single(tenant: str, limits: Limits = UNLIMITED, **fields: object) -> SubmitRequest:
    return SubmitRequest([JobSpec(type="t", tenant=tenant, **fields)], limits)  # type: ignore[arg-type]


async def test_requests_that_arrive_together_share_one_call_with_their_own_verdicts(
    any_redis: Redis, queue: Queue
) -> None:
    commit = GroupCommit(queue)
    requests = [single("acme", Limits(rpm=3)) for _ in range(5)]
    requests += [single("bolt", idempotency_key="k", payload=1) for _ in range(2)]
    requests += [single("bolt", idempotency_key="k", payload=2)]
    results = await asyncio.gather(
        *(commit.admit(request) for request in requests), return_exceptions=True
    )
    kinds = [type(result) for result in results]
    assert kinds == [Admitted] * 3 + [RateLimited] * 2 + [Admitted] * 2 + [IdempotencyMismatch]
    first, replay = results[5], results[6]
    assert isinstance(first, Admitted)
    assert isinstance(replay, Admitted)
    assert (first.jobs[0].id, first.replayed) == (replay.jobs[0].id, [False])
    assert replay.replayed == [True]
    assert await any_redis.xlen(queue.keys.events) == 1  # one script call for all eight


async def test_more_requests_than_one_call_holds_go_in_several(
    any_redis: Redis, queue: Queue
) -> None:
    commit = GroupCommit(queue)
    count = MAX_REQUESTS * 2 + 1
    results = await asyncio.gather(*(commit.admit(single("acme")) for _ in range(count)))
    assert len({result.jobs[0].id for result in results}) == count
    assert await any_redis.xlen(queue.keys.events) == 3


async def test_an_invalid_request_fails_alone(queue: Queue) -> None:
    commit = GroupCommit(queue)
    results = await asyncio.gather(
        commit.admit(single("acme")),
        commit.admit(single("acme", max_attempts=0)),
        return_exceptions=True,
    )
    assert isinstance(results[0], Admitted)
    assert isinstance(results[1], InvalidRequest)


async def test_when_redis_fails_every_request_of_the_call_gets_the_error(
    settings: CoreSettings,
) -> None:
    redis = connect(f"redis://127.0.0.1:{free_port()}/0", connect_timeout_s=0.5)
    try:
        commit = GroupCommit(Queue(redis, settings))
        results = await asyncio.gather(
            *(commit.admit(single("acme")) for _ in range(3)), return_exceptions=True
        )
        assert all(isinstance(result, RedisConnectionError) for result in results)
        # and the next request is sent again, not stuck behind the failed call
        with pytest.raises(RedisConnectionError):
            await asyncio.wait_for(commit.admit(single("acme")), 5)
    finally:
        await redis.aclose()

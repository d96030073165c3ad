"""``GET /v1/queues``: depth, dead letters, age and throughput per queue, over HTTP."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web
from redis.asyncio import Redis

from app.api import create_app
from app.api.settings import ApiSettings
from app.core.leases import LeaseClient, Outcome, Result
from app.core.models import JobSpec
from app.core.queue import Queue
from tests.helpers import ApiClient, assert_error

MakeClient = Callable[[web.Application], Awaitable[ApiClient]]


async def test_no_queue_yet_is_an_empty_list(client: ApiClient) -> None:
    response = await client.get("/v1/queues")
    assert response.status == 200
    assert await response.json() == {"queues": []}


async def test_each_queue_shows_its_waiting_running_scheduled_dead_age_and_throughput(
    any_redis: Redis, api_settings: ApiSettings, make_client: MakeClient
) -> None:
    queue = Queue(any_redis, api_settings)
    client = await make_client(create_app(api_settings, queue))
    await queue.submit_many([JobSpec(type="n", max_attempts=1) for _ in range(4)])
    await queue.submit(JobSpec(type="n", queue="later", delay_s=600))
    worker = LeaseClient(any_redis, api_settings, "w1")
    await worker.ensure_group("default")
    ok, dead, _running = await worker.start(await worker.read(["default"], 3, 10))
    error = '{"type":"E","message":"m"}'
    await worker.finish([Result(ok, Outcome.OK, "1"), Result(dead, Outcome.ERROR, error, 0)])

    response = await client.get("/v1/queues")
    assert response.status == 200
    default, later = (await response.json())["queues"]
    assert {k: v for k, v in default.items() if k not in {"oldest_waiting_age_s"}} == {
        "queue": "default",
        "waiting": 1,
        "running": 1,
        "scheduled": 0,
        "dead": 1,
        "finished_per_min": default["finished_per_min"],
    }
    assert 0 < default["finished_per_min"] <= 2
    assert default["oldest_waiting_age_s"] >= 0
    assert later == {
        "queue": "later",
        "waiting": 0,
        "running": 0,
        "scheduled": 1,
        "dead": 0,
        "oldest_waiting_age_s": None,
        "finished_per_min": 0,
    }


async def test_queues_answer_503_while_redis_is_down(
    api_settings: ApiSettings, down_queue: Queue, make_client: MakeClient
) -> None:
    client = await make_client(create_app(api_settings, down_queue))
    await assert_error(await client.get("/v1/queues"), 503, "redis_unavailable")

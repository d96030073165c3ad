"""The Python client (``app.client``): against a real ``tide api`` on a real redis-server for
what the API serves, and against a small stand-in server for what a real one does only under
duress (429, 503, dropped connections) and for batch chunking."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from redis.asyncio import Redis

from app.client import (
    BadRequest,
    Conflict,
    JobRequest,
    NotFound,
    RateLimited,
    TideClient,
    Unavailable,
    WaitTimeout,
)
from app.core.queue import Queue
from app.core.settings import CoreSettings
from app.dev.redis_server import RedisServer, free_port
from tests.helpers import NOT_BUILT_YET, ApiProcess

FAST = {"backoff_s": 0.01, "backoff_max_s": 0.05}
"""Retry waits short enough for a test."""


# -- against a real tide api ----------------------------------------------------------------


@pytest.fixture(scope="module")
def api_base(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with ApiProcess(redis_server.url, tmp_path_factory.mktemp("api") / "api.log") as api:
        yield api.base


@pytest.fixture
async def tide(api_base: str, real_redis: Redis) -> AsyncIterator[TideClient]:
    async with TideClient(api_base, retries=1, **FAST) as client:
        yield client


@pytest.mark.redis
async def test_a_submitted_job_reads_back_the_same(tide: TideClient) -> None:
    job = await tide.submit("echo", {"x": 1}, queue="mail", max_attempts=2, delay_s=30)
    assert (job.type, job.payload, job.queue, job.max_attempts) == ("echo", {"x": 1}, "mail", 2)
    assert job.status == "scheduled"
    got = await tide.get(job.id)
    assert (got.id, got.status, got.run_at) == (job.id, "scheduled", job.run_at)


@pytest.mark.redis
async def test_wait_returns_the_job_once_it_has_ended(
    tide: TideClient, real_redis: Redis, redis_server: RedisServer
) -> None:
    job = await tide.submit("echo")
    queue = Queue(real_redis, CoreSettings(redis_url=redis_server.url))

    async def cancel_soon() -> None:
        await asyncio.sleep(0.3)
        await queue.cancel(job.id)

    canceller = asyncio.create_task(cancel_soon())
    ended = await tide.wait(job.id, timeout_s=10)
    await canceller
    assert ended.status == "cancelled"
    assert ended.finished_at is not None


@pytest.mark.redis
async def test_wait_gives_up_at_its_timeout_with_the_job_as_last_seen(tide: TideClient) -> None:
    job = await tide.submit("echo")
    started = time.monotonic()
    with pytest.raises(WaitTimeout) as caught:
        await tide.wait(job.id, timeout_s=0.3)
    assert 0.3 <= time.monotonic() - started < 5
    assert caught.value.job.status == "pending"


@pytest.mark.redis
async def test_an_unknown_job_is_a_not_found_error_with_the_api_code(tide: TideClient) -> None:
    with pytest.raises(NotFound) as caught:
        await tide.get("no-such-job")
    assert (caught.value.status, caught.value.code) == (404, "job_not_found")
    assert "no-such-job" in caught.value.message


@pytest.mark.redis
async def test_an_invalid_job_is_a_bad_request_naming_the_field(tide: TideClient) -> None:
    with pytest.raises(BadRequest) as caught:
        await tide.submit("echo", max_attempts=0)
    assert (caught.value.status, caught.value.code) == (422, "validation_error")
    assert [d["loc"] for d in caught.value.details] == [["max_attempts"]]


def needs(method: str, path: str) -> pytest.MarkDecorator:
    """Skips a test while the API does not serve the operation it needs (see NOT_BUILT_YET)."""
    missing = (method, path) in NOT_BUILT_YET
    return pytest.mark.skipif(missing, reason=f"{method.upper()} {path} is not built yet")


@pytest.mark.redis
@needs("post", "/v1/jobs/batch")
async def test_submit_many_creates_every_job_in_order_across_batches(
    api_base: str, real_redis: Redis
) -> None:
    async with TideClient(api_base, retries=1, batch_max=2, **FAST) as tide:
        jobs = await tide.submit_many([JobRequest("echo", i) for i in range(5)])
        assert [job.payload for job in jobs] == [0, 1, 2, 3, 4]
        assert [(await tide.get(job.id)).payload for job in jobs] == [0, 1, 2, 3, 4]


@pytest.mark.redis
@needs("post", "/v1/jobs/batch")
async def test_the_same_idempotency_key_gives_back_the_same_job(tide: TideClient) -> None:
    first = await tide.submit("echo", 1, idempotency_key="once")
    again = await tide.submit("echo", 1, idempotency_key="once")
    assert again.id == first.id


@pytest.mark.redis
@needs("post", "/v1/jobs/{job_id}/cancel")
@needs("post", "/v1/jobs/{job_id}/retry")
async def test_a_cancelled_job_can_be_retried_but_not_cancelled_twice(tide: TideClient) -> None:
    job = await tide.submit("echo")
    assert (await tide.cancel(job.id)).status == "cancelled"
    with pytest.raises(Conflict) as caught:
        await tide.cancel(job.id)
    assert caught.value.status == 409
    assert (await tide.retry(job.id)).status == "pending"


# -- against a stand-in ---------------------------------------------------------------------

JOB = {
    "id": "j1",
    "tenant": "public",
    "queue": "default",
    "type": "echo",
    "payload": None,
    "status": "pending",
    "attempts": 0,
    "max_attempts": 3,
    "timeout_s": 300.0,
    "created_at": "2030-01-01T00:00:00.000Z",
}

Answer = Callable[[web.Request], Awaitable[web.StreamResponse]]


class StandIn:
    """An aiohttp server that plays back scripted answers and records each request."""

    def __init__(self, *answers: Answer) -> None:
        self.answers = list(answers)
        self.requests: list[tuple[str, str, dict[str, str], Any]] = []

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.json() if request.can_read_body else None
        self.requests.append((request.method, request.path, dict(request.headers), body))
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        return await answer(request)

    @property
    def keys(self) -> list[str | None]:
        return [headers.get("Idempotency-Key") for _, _, headers, _ in self.requests]


def status(code: int, headers: dict[str, str] | None = None) -> Answer:
    async def answer(request: web.Request) -> web.StreamResponse:
        error = {"code": f"e{code}", "message": f"status {code}", "details": None}
        return web.json_response({"error": error}, status=code, headers=headers)

    return answer


async def created(request: web.Request) -> web.StreamResponse:
    return web.json_response(JOB, status=201)


async def batch_created(request: web.Request) -> web.StreamResponse:
    items = (await request.json())["jobs"]
    results = [{"job": {**JOB, "id": item["type"]}, "replayed": False} for item in items]
    return web.json_response({"results": results}, status=201)


async def dropped(request: web.Request) -> web.StreamResponse:
    """Closes the connection without an answer, as a crashing proxy or server would."""
    assert request.transport is not None
    request.transport.abort()
    return web.Response()


MakeStandIn = Callable[..., Awaitable[tuple[StandIn, TideClient]]]


@pytest.fixture
async def stand_in() -> AsyncIterator[MakeStandIn]:
    """Factory: a stand-in playing ``answers`` and a client of it; both closed after."""
    servers: list[TestServer] = []
    clients: list[TideClient] = []

    async def make(*answers: Answer, **options: Any) -> tuple[StandIn, TideClient]:
        fake = StandIn(*answers)
        app = web.Application()
        app.router.add_route("*", "/{path:.*}", fake.handle)
        server = TestServer(app)
        await server.start_server()
        servers.append(server)
        client = TideClient(str(server.make_url("/")), **{**FAST, **options})
        clients.append(client)
        return fake, client

    yield make
    for client in clients:
        await client.close()
    for server in servers:
        await server.close()


async def test_a_429_is_retried_after_its_retry_after_with_the_same_idempotency_key(
    stand_in: MakeStandIn,
) -> None:
    fake, tide = await stand_in(status(429, {"Retry-After": "1"}), created)
    started = time.monotonic()
    job = await tide.submit("echo")
    assert time.monotonic() - started >= 1
    assert job.id == "j1"
    assert len(fake.requests) == 2
    first, second = fake.keys
    assert first
    assert first == second


async def test_5xx_answers_are_retried_with_the_same_key_and_the_same_body(
    stand_in: MakeStandIn,
) -> None:
    fake, tide = await stand_in(status(503), status(500), created)
    await tide.submit("echo", {"n": 1}, idempotency_key="mine")
    assert fake.keys == ["mine", "mine", "mine"]
    assert [body for *_, body in fake.requests] == [{"type": "echo", "payload": {"n": 1}}] * 3


async def test_a_dropped_connection_is_retried_with_the_same_key(stand_in: MakeStandIn) -> None:
    fake, tide = await stand_in(dropped, dropped, created)
    job = await tide.submit("echo")
    assert job.id == "j1"
    assert len(set(fake.keys)) == 1
    assert len(fake.keys) == 3


async def test_each_logical_submit_gets_its_own_key(stand_in: MakeStandIn) -> None:
    fake, tide = await stand_in(created)
    await tide.submit("echo")
    await tide.submit("echo")
    assert len(set(fake.keys)) == 2


async def test_when_retries_run_out_the_last_answer_is_raised(stand_in: MakeStandIn) -> None:
    fake, tide = await stand_in(status(503), retries=2)
    with pytest.raises(Unavailable, match="503"):
        await tide.get("j1")
    assert len(fake.requests) == 3

    fake, tide = await stand_in(status(429, {"Retry-After": "0"}), retries=1)
    with pytest.raises(RateLimited) as caught:
        await tide.submit("echo")
    assert (caught.value.status, caught.value.code) == (429, "e429")
    assert len(fake.requests) == 2


async def test_a_4xx_answer_is_not_retried(stand_in: MakeStandIn) -> None:
    fake, tide = await stand_in(status(422))
    with pytest.raises(BadRequest) as caught:
        await tide.submit("echo")
    assert (caught.value.code, caught.value.message) == ("e422", "status 422")
    assert len(fake.requests) == 1


async def test_a_server_that_never_answers_is_unavailable_after_the_retries() -> None:
    async with TideClient(f"http://127.0.0.1:{free_port()}", retries=2, **FAST) as tide:
        with pytest.raises(Unavailable):
            await tide.get("j1")


async def test_submit_many_sends_batches_of_batch_max_in_order_with_a_key_per_item(
    stand_in: MakeStandIn,
) -> None:
    fake, tide = await stand_in(
        batch_created, status(503), batch_created, batch_created, batch_max=3
    )
    requests = [JobRequest(type=f"t{i}") for i in range(6)]
    requests.append(JobRequest(type="t6", idempotency_key="given"))
    jobs = await tide.submit_many(requests)
    assert [job.id for job in jobs] == [f"t{i}" for i in range(7)]
    batches = [body["jobs"] for method, path, _, body in fake.requests]
    assert all(p == "/v1/jobs/batch" for _, p, _, _ in fake.requests)
    assert [len(b) for b in batches] == [3, 3, 3, 1]
    assert batches[1] == batches[2]  # the retried batch carries the same keys
    keys = [item["idempotency_key"] for b in (batches[0], batches[2], batches[3]) for item in b]
    assert len(set(keys)) == 7
    assert keys[-1] == "given"

"""The HTTP API's contract (DESIGN §4): submit, read, health, and the one error shape.

Each test that touches Redis runs twice through ``any_redis``: on fakeredis and on a real server.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import web
from redis.asyncio import Redis
from structlog.testing import capture_logs

from app.api import create_app
from app.api.settings import ApiSettings
from app.core.models import Job, JobSpec
from app.core.queue import Queue
from app.dev.redis_server import RedisServer
from tests.helpers import API_MAX_BODY, ApiClient, assert_error

Client = ApiClient

JOB_FIELDS = {
    "id",
    "queue",
    "type",
    "payload",
    "status",
    "attempts",
    "max_attempts",
    "result",
    "error",
    "created_at",
    "started_at",
    "finished_at",
    "worker",
}
MAX_BODY = API_MAX_BODY


def parse_iso_utc(text: str) -> datetime:
    assert text.endswith("Z"), text
    stamp = datetime.fromisoformat(text)
    assert stamp.utcoffset() == timedelta(0)
    return stamp


# -- submit -------------------------------------------------------------------------------------


async def test_submit_returns_201_with_the_job_and_its_location(client: Client) -> None:
    before = datetime.now(UTC) - timedelta(seconds=5)
    response = await client.post("/v1/jobs", json={"type": "echo", "payload": {"x": [1, 2]}})
    assert response.status == 201
    assert response.content_type == "application/json"
    job = await response.json()
    assert set(job) >= JOB_FIELDS
    assert response.headers["Location"] == f"/v1/jobs/{job['id']}"
    assert job["type"] == "echo"
    assert job["payload"] == {"x": [1, 2]}
    assert job["queue"] == "default"
    assert job["status"] == "pending"
    assert job["attempts"] == 0
    assert job["max_attempts"] == 3
    assert job["result"] is None
    assert job["error"] is None
    assert job["worker"] is None
    assert job["started_at"] is None
    assert job["finished_at"] is None
    assert parse_iso_utc(job["created_at"]) > before


async def test_submit_takes_the_optional_fields(client: Client) -> None:
    body = {"type": "t", "queue": "mail.out-1", "max_attempts": 7, "timeout_s": 12.5}
    response = await client.post("/v1/jobs", json=body)
    assert response.status == 201
    job = await response.json()
    assert (job["queue"], job["max_attempts"], job["timeout_s"]) == ("mail.out-1", 7, 12.5)
    assert job["payload"] is None


async def test_delay_schedules_the_job(client: Client) -> None:
    response = await client.post("/v1/jobs", json={"type": "t", "delay_s": 60})
    assert response.status == 201
    job = await response.json()
    assert job["status"] == "scheduled"
    delay = parse_iso_utc(job["run_at"]) - parse_iso_utc(job["created_at"])
    assert timedelta(seconds=59) < delay < timedelta(seconds=61)


async def test_run_at_schedules_the_job_at_that_time(client: Client) -> None:
    due = (datetime.now(UTC) + timedelta(hours=1)).replace(microsecond=0)
    response = await client.post("/v1/jobs", json={"type": "t", "run_at": due.isoformat()})
    assert response.status == 201
    job = await response.json()
    assert job["status"] == "scheduled"
    assert parse_iso_utc(job["run_at"]) == due


async def test_a_submitted_job_can_be_read_back(client: Client) -> None:
    submitted = await (await client.post("/v1/jobs", json={"type": "t", "payload": "hi"})).json()
    response = await client.get(f"/v1/jobs/{submitted['id']}")
    assert response.status == 200
    assert await response.json() == submitted


async def test_an_unknown_job_is_404(client: Client) -> None:
    response = await client.get("/v1/jobs/01NOSUCHJOB")
    await assert_error(response, 404, "job_not_found")


async def test_another_tenants_job_is_404(client: Client, any_redis: Redis) -> None:
    queue = Queue(any_redis, ApiSettings(redis_url="redis://unused"))
    job: Job = await queue.submit(JobSpec(type="t", tenant="acme"))
    await assert_error(await client.get(f"/v1/jobs/{job.id}"), 404, "job_not_found")


# -- errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [b"{", b"", b"   ", b'{"type": "t",}', b'{"type": "t", "timeout_s": NaN}', b"\xff"],
    ids=["truncated", "empty", "blank", "trailing-comma", "nan", "not-utf8"],
)
async def test_a_body_that_is_not_json_is_400(client: Client, raw: bytes) -> None:
    response = await client.post("/v1/jobs", data=raw)
    await assert_error(response, 400, "invalid_json")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "type"),
        ({"type": ""}, "type"),
        ({"type": "x" * 201}, "type"),
        ({"type": 5}, "type"),
        ({"type": "a\nb"}, "type"),
        ({"type": "tab\there"}, "type"),
        ({"type": "t", "queue": "has space"}, "queue"),
        ({"type": "t", "queue": "q" * 65}, "queue"),
        ({"type": "t", "max_attempts": 0}, "max_attempts"),
        ({"type": "t", "max_attempts": 101}, "max_attempts"),
        ({"type": "t", "max_attempts": "3"}, "max_attempts"),
        ({"type": "t", "max_attempts": True}, "max_attempts"),
        ({"type": "t", "max_attempts": 2.5}, "max_attempts"),
        ({"type": "t", "timeout_s": 0}, "timeout_s"),
        ({"type": "t", "timeout_s": 86_401}, "timeout_s"),
        ({"type": "t", "timeout_s": "10"}, "timeout_s"),
        ({"type": "t", "delay_s": -1}, "delay_s"),
        ({"type": "t", "run_at": "tomorrow"}, "run_at"),
        ({"type": "t", "run_at": "2030-01-01T00:00:00"}, "run_at"),
        ({"type": "t", "run_at": 1_900_000_000}, "run_at"),
        ({"type": "t", "priority": 1}, "priority"),
        ({"type": "t", "delay_s": 5, "run_at": "2030-01-01T00:00:00Z"}, None),
    ],
)
async def test_an_invalid_body_is_422_with_details(
    client: Client, body: dict[str, Any], field: str | None
) -> None:
    error = await assert_error(await client.post("/v1/jobs", json=body), 422, "validation_error")
    details = error["details"]
    assert isinstance(details, list)
    assert details
    assert all({"loc", "msg", "type"} <= set(item) for item in details)
    if field is not None:
        assert [field] in [item["loc"] for item in details]


async def test_unknown_fields_are_rejected(client: Client) -> None:
    response = await client.post("/v1/jobs", json={"type": "t", "tenant": "acme", "x": 1})
    error = await assert_error(response, 422, "validation_error")
    assert sorted(item["loc"][0] for item in error["details"]) == ["tenant", "x"]
    assert {item["type"] for item in error["details"]} == {"extra_forbidden"}


@pytest.mark.parametrize("raw", [b"[]", b'"job"', b"3", b"null"])
async def test_a_body_that_is_not_an_object_is_422(client: Client, raw: bytes) -> None:
    await assert_error(await client.post("/v1/jobs", data=raw), 422, "validation_error")


async def test_a_body_over_the_limit_is_413(client: Client) -> None:
    body = {"type": "t", "payload": "x" * MAX_BODY}
    response = await client.post("/v1/jobs", json=body)
    error = await assert_error(response, 413, "payload_too_large")
    assert str(MAX_BODY) in error["message"]


async def test_a_body_just_under_the_limit_is_accepted(client: Client) -> None:
    body = {"type": "t", "payload": "x" * (MAX_BODY - 100)}
    assert (await client.post("/v1/jobs", json=body)).status == 201


async def test_an_unknown_route_is_404(client: Client) -> None:
    await assert_error(await client.get("/v1/nothing-here"), 404, "not_found")


async def test_a_wrong_method_is_405(client: Client) -> None:
    response = await client.delete("/v1/jobs")
    await assert_error(response, 405, "method_not_allowed")
    assert "POST" in response.headers["Allow"]


async def test_redis_down_is_503(
    down_queue: Queue,
    api_settings: ApiSettings,
    make_client: Callable[[web.Application], Awaitable[Client]],
) -> None:
    client = await make_client(create_app(api_settings, down_queue))
    response = await client.post("/v1/jobs", json={"type": "t"})
    await assert_error(response, 503, "redis_unavailable")
    await assert_error(await client.get("/v1/jobs/any"), 503, "redis_unavailable")


class BrokenQueue(Queue):
    async def get(self, job_id: str) -> Job | None:
        raise RuntimeError("secret internals")


async def test_an_unexpected_error_is_500_without_a_traceback(
    any_redis: Redis,
    api_settings: ApiSettings,
    make_client: Callable[[web.Application], Awaitable[Client]],
) -> None:
    client = await make_client(create_app(api_settings, BrokenQueue(any_redis, api_settings)))
    with capture_logs() as logs:
        response = await client.get("/v1/jobs/x")
    error = await assert_error(response, 500, "internal_error")
    assert "secret" not in error["message"]
    assert "secret" not in await response.text()
    assert any(e["event"] == "api.unhandled_error" and e["log_level"] == "error" for e in logs)


# -- health and logging -------------------------------------------------------------------------


async def test_health_is_ok_while_redis_answers(client: Client) -> None:
    response = await client.get("/health")
    assert response.status == 200
    assert await response.json() == {"status": "ok", "redis": "ok"}


async def test_health_is_503_while_redis_does_not_answer(
    down_queue: Queue,
    api_settings: ApiSettings,
    make_client: Callable[[web.Application], Awaitable[Client]],
) -> None:
    client = await make_client(create_app(api_settings, down_queue))
    response = await client.get("/health")
    assert response.status == 503
    assert (await response.json())["status"] == "unavailable"


async def test_each_request_is_logged_once(client: Client) -> None:
    with capture_logs() as logs:
        await client.post("/v1/jobs", json={"type": "t"})
        await client.get("/v1/missing")
    lines = [e for e in logs if e["event"] == "api.request"]
    assert [(e["method"], e["path"], e["status"]) for e in lines] == [
        ("POST", "/v1/jobs", 201),
        ("GET", "/v1/missing", 404),
    ]
    assert all(isinstance(e["ms"], float) for e in lines)


@pytest.mark.redis
async def test_without_a_queue_the_app_connects_to_redis_url(
    redis_server: RedisServer, make_client: Callable[[web.Application], Awaitable[Client]]
) -> None:
    settings = ApiSettings(redis_url=redis_server.url, key_prefix="{tide-api-test}")
    client = await make_client(create_app(settings))
    assert (await client.get("/health")).status == 200
    job = await (await client.post("/v1/jobs", json={"type": "t"})).json()
    assert (await client.get(f"/v1/jobs/{job['id']}")).status == 200


@pytest.mark.parametrize(
    ("body", "field"),
    [
        # no control character, but not printable text either: what the core refuses
        ({"type": "a\u00a0b"}, "type"),
        ({"type": "a\u2028b"}, "type"),
        ({"type": "t", "run_at": "2999-01-01T00:00:00Z"}, "run_at"),
    ],
)
async def test_what_the_core_refuses_the_schema_refuses_with_422(
    client: Client, body: dict[str, Any], field: str
) -> None:
    """The API's schema holds a job to at least the core's rules (the core trusts it)."""
    response = await client.post("/v1/jobs", json=body)
    error = await assert_error(response, 422, "validation_error")
    assert field in str(error["details"])

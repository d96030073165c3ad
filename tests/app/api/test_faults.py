"""Faults at the API's edge: bodies the client broke, integers JSON cannot keep, and a Redis that
is up but refuses writes. Each answers with the one error shape and no traceback in the log."""

from __future__ import annotations

import asyncio
import gzip
import json

import pytest
from redis.asyncio import Redis
from redis.exceptions import ReadOnlyError, ResponseError
from structlog.testing import capture_logs

from app.api import create_app
from app.api.middleware import refusing_writes
from app.api.settings import ApiSettings
from app.core.models import Job
from app.core.queue import Queue
from app.process.http import serve
from tests.helpers import ApiClient, MakeApiClient, assert_error


def no_tracebacks(logs: list[dict[str, object]]) -> None:
    assert not [e for e in logs if e.get("log_level") in {"error", "critical"}], logs
    assert not [e for e in logs if "exc_info" in e or "exception" in e], logs


# -- bodies the client broke --------------------------------------------------------------------


async def test_a_gzip_body_that_is_not_gzip_is_400_and_an_info_line(client: ApiClient) -> None:
    headers = {"Content-Encoding": "gzip", "Content-Type": "application/json"}
    with capture_logs() as logs:
        response = await client.post("/v1/jobs", data=b'{"type": "t"}', headers=headers)
        error = await assert_error(response, 400, "invalid_body")
        # the connection is closed after the answer; the next request opens a new one
        again = await client.post("/v1/jobs", json={"type": "t"})
    assert "gzip" in error["message"]
    assert again.status == 201
    assert any(e["event"] == "api.body_unreadable" and e["log_level"] == "info" for e in logs)
    no_tracebacks(logs)


async def test_a_real_gzip_body_is_accepted(client: ApiClient) -> None:
    headers = {"Content-Encoding": "gzip", "Content-Type": "application/json"}
    body = gzip.compress(b'{"type": "t", "payload": 1}')
    response = await client.post("/v1/jobs", data=body, headers=headers)
    assert response.status == 201, await response.text()


async def test_a_client_that_hangs_up_mid_body_is_a_400_and_an_info_line(
    any_redis: Redis, api_settings: ApiSettings
) -> None:
    """A real server: the client sends half its declared body and closes the connection."""
    runner = await serve(
        create_app(api_settings, Queue(any_redis, api_settings)), "127.0.0.1", 0, 1
    )
    port = runner.addresses[0][1]
    try:
        with capture_logs() as logs:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            head = b"POST /v1/jobs HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n"
            writer.write(head + b'{"type": ')
            await writer.drain()
            await asyncio.sleep(0.1)
            writer.close()
            deadline = asyncio.get_running_loop().time() + 10
            while not any(e["event"] == "api.request" for e in logs):
                assert asyncio.get_running_loop().time() < deadline, logs
                await asyncio.sleep(0.02)
    finally:
        await runner.cleanup()
    (line,) = [e for e in logs if e["event"] == "api.request"]
    assert line["status"] == 400
    assert any(e["event"] == "api.body_unreadable" and e["log_level"] == "info" for e in logs)
    no_tracebacks(logs)


# -- integers beyond 64 bits --------------------------------------------------------------------


@pytest.mark.parametrize(
    "number",
    ["18446744073709551616", "-9223372036854775809", "1" * 40, "9" * 3000],
    ids=["2**64", "-2**63-1", "40-digits", "3000-digits"],
)
async def test_an_integer_json_cannot_keep_exactly_is_422(client: ApiClient, number: str) -> None:
    raw = f'{{"type": "t", "payload": {{"n": [1, {number}]}}}}'.encode()
    error = await assert_error(await client.post("/v1/jobs", data=raw), 422, "integer_out_of_range")
    assert number[:20] in error["message"]


@pytest.mark.parametrize(
    "number", ["18446744073709551615", "-9223372036854775808", "12345678901234567890.5"]
)
async def test_the_largest_exact_integers_and_long_floats_are_kept(
    client: ApiClient, number: str
) -> None:
    raw = f'{{"type": "t", "payload": {number}}}'.encode()
    response = await client.post("/v1/jobs", data=raw)
    assert response.status == 201, await response.text()
    job = await response.json(loads=json.loads)  # the stdlib keeps big integers exact
    assert job["payload"] == json.loads(number)


async def test_long_digit_runs_inside_strings_are_not_numbers(client: ApiClient) -> None:
    body = {"type": "t", "payload": {"card": "12345678901234567890123"}}
    response = await client.post("/v1/jobs", json=body)
    assert response.status == 201
    assert (await response.json())["payload"] == body["payload"]


# -- Redis refusing writes ----------------------------------------------------------------------


@pytest.mark.redis
async def test_redis_out_of_memory_is_503_with_retry_after(
    real_redis: Redis, api_settings: ApiSettings, make_client: MakeApiClient
) -> None:
    client = await make_client(create_app(api_settings, Queue(real_redis, api_settings)))
    assert (await client.post("/v1/jobs", json={"type": "t"})).status == 201
    await real_redis.config_set("maxmemory-policy", "noeviction")
    await real_redis.config_set("maxmemory", "1")
    try:
        with capture_logs() as logs:
            response = await client.post("/v1/jobs", json={"type": "t"})
    finally:
        await real_redis.config_set("maxmemory", "0")
    error = await assert_error(response, 503, "redis_unavailable")
    assert "refusing writes" in error["message"]
    assert int(response.headers["Retry-After"]) >= 1
    assert [e["why"] for e in logs if e["event"] == "api.redis_unavailable"] == ["refusing"]
    no_tracebacks([e for e in logs if e["event"] != "api.redis_unavailable"])
    assert (await client.post("/v1/jobs", json={"type": "t"})).status == 201


@pytest.mark.parametrize(
    ("error", "refusing"),
    [
        (ReadOnlyError("You can't write against a read only replica."), True),
        (ResponseError("MISCONF Redis is configured to save RDB snapshots, but..."), True),
        (ResponseError("BUSY Redis is busy running a script."), True),
        (ResponseError("LOADING Redis is loading the dataset in memory"), True),
        (ResponseError("OOM command not allowed when used memory > 'maxmemory'."), True),
        (ResponseError("ERR wrong number of arguments"), False),
        (ResponseError("WRONGTYPE Operation against a key holding the wrong kind of value"), False),
    ],
)
def test_which_error_replies_mean_redis_refuses_writes(
    error: ResponseError, refusing: bool
) -> None:
    assert refusing_writes(error) is refusing


class ReadOnlyQueue(Queue):
    async def get(self, job_id: str) -> Job | None:
        raise ReadOnlyError("You can't write against a read only replica.")


async def test_a_read_only_redis_is_503_not_500(
    any_redis: Redis, api_settings: ApiSettings, make_client: MakeApiClient
) -> None:
    client = await make_client(create_app(api_settings, ReadOnlyQueue(any_redis, api_settings)))
    response = await client.get("/v1/jobs/x")
    await assert_error(response, 503, "redis_unavailable")
    assert "Retry-After" in response.headers


async def test_other_error_replies_are_still_500(
    any_redis: Redis, api_settings: ApiSettings, make_client: MakeApiClient
) -> None:
    class Broken(Queue):
        async def get(self, job_id: str) -> Job | None:
            raise ResponseError("ERR something we did wrong")

    client = await make_client(create_app(api_settings, Broken(any_redis, api_settings)))
    await assert_error(await client.get("/v1/jobs/x"), 500, "internal_error")

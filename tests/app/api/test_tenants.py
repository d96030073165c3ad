"""Tenants over HTTP (DESIGN §4): API keys, isolation, admin keys, per-tenant limits with their
headers, idempotency, batches, listing, cancel and retry.

Each test runs on fakeredis and on a real redis-server (``any_redis``)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from redis.asyncio import Redis
from structlog.testing import capture_logs

from app.api import create_app, start
from app.api.settings import ApiSettings
from app.core.apikeys import ApiKeyStore
from app.core.leases import LeaseClient, Outcome, Result
from app.core.queue import Queue
from app.core.redis_client import connect
from app.dev.redis_server import RedisServer
from tests.helpers import ACME, ADMIN, BOLT, ApiClient, assert_error, key

MakeClient = Callable[[web.Application], Awaitable[ApiClient]]


@pytest.fixture
async def queue(any_redis: Redis, keyed_settings: ApiSettings) -> Queue:
    return Queue(any_redis, keyed_settings)


@pytest.fixture
async def api(queue: Queue, keyed_settings: ApiSettings, make_client: MakeClient) -> ApiClient:
    return await make_client(create_app(keyed_settings, queue))


async def limited(
    queue: Queue, keyed_settings: ApiSettings, make_client: MakeClient, **limits: int
) -> ApiClient:
    settings = keyed_settings.model_copy(update=limits)
    return await make_client(create_app(settings, Queue(queue.redis, settings)))


async def submit(api: ApiClient, secret: str = ACME, **body: Any) -> dict[str, Any]:
    response = await api.post("/v1/jobs", json={"type": "t", **body}, headers=key(secret))
    assert response.status == 201, await response.text()
    job: dict[str, Any] = await response.json()
    return job


# -- auth ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("headers", [{}, key("wrong-secret-0123456789"), key("")])
async def test_a_missing_or_unknown_key_is_401(api: ApiClient, headers: dict[str, str]) -> None:
    for method, path in [("POST", "/v1/jobs"), ("GET", "/v1/jobs"), ("GET", "/v1/jobs/x")]:
        response = await api.request(method, path, json={"type": "t"}, headers=headers)
        await assert_error(response, 401, "unauthorized")


async def test_health_and_unknown_routes_need_no_key(api: ApiClient) -> None:
    assert (await api.get("/health")).status == 200
    await assert_error(await api.get("/v1/nothing"), 404, "not_found")


async def test_a_stored_key_works_until_it_is_revoked(
    queue: Queue, api_settings: ApiSettings, make_client: MakeClient
) -> None:
    settings = api_settings.model_copy(update={"key_cache_s": 0})
    api = await make_client(create_app(settings, Queue(queue.redis, settings)))
    store = ApiKeyStore(queue.redis, settings)
    stored, secret = await store.create("acme")
    assert (await submit(api, secret))["tenant"] == "acme"
    assert await store.revoke(stored.key_id)
    await assert_error(await api.get("/v1/jobs", headers=key(secret)), 401, "unauthorized")


async def test_a_revoked_key_works_at_most_key_cache_s_longer(
    queue: Queue, api_settings: ApiSettings, make_client: MakeClient
) -> None:
    settings = api_settings.model_copy(update={"key_cache_s": 0.3})
    store = ApiKeyStore(queue.redis, settings)
    stored, secret = await store.create("acme")
    api = await make_client(create_app(settings, Queue(queue.redis, settings)))
    assert (await api.get("/v1/jobs", headers=key(secret))).status == 200
    await store.revoke(stored.key_id)
    assert (await api.get("/v1/jobs", headers=key(secret))).status == 200  # cached
    await asyncio.sleep(0.35)
    await assert_error(await api.get("/v1/jobs", headers=key(secret)), 401, "unauthorized")


async def test_with_no_key_anywhere_auth_is_off_with_a_warning_at_start(
    queue: Queue, api_settings: ApiSettings, make_client: MakeClient
) -> None:
    app = create_app(api_settings, Queue(queue.redis, api_settings))
    with capture_logs() as logs:
        runner = await start(app, "127.0.0.1", 0)
    try:
        assert any(e["event"] == "api.auth_off" and e["log_level"] == "warning" for e in logs)
        port = runner.addresses[0][1]
        url = f"http://127.0.0.1:{port}/v1/jobs"
        async with aiohttp.ClientSession() as session, session.post(url, json={"type": "t"}) as r:
            assert r.status == 201
            assert (await r.json())["tenant"] == "public"
    finally:
        await runner.cleanup()


async def test_a_stored_key_turns_auth_on(
    queue: Queue, api_settings: ApiSettings, make_client: MakeClient
) -> None:
    settings = api_settings.model_copy(update={"key_cache_s": 0})
    api = await make_client(create_app(settings, Queue(queue.redis, settings)))
    assert (await api.get("/v1/jobs")).status == 200
    await ApiKeyStore(queue.redis, settings).create("acme")
    await assert_error(await api.get("/v1/jobs"), 401, "unauthorized")


# -- isolation ----------------------------------------------------------------------------------


async def test_another_tenants_job_is_404_on_every_route(api: ApiClient) -> None:
    job = await submit(api, ACME)
    path = f"/v1/jobs/{job['id']}"
    for method, route in [("GET", path), ("POST", f"{path}/cancel"), ("POST", f"{path}/retry")]:
        response = await api.request(method, route, headers=key(BOLT))
        error = await assert_error(response, 404, "job_not_found")
        unknown = await api.request(method, route.replace(job["id"], "nope"), headers=key(BOLT))
        assert (await unknown.json())["error"]["message"] == error["message"].replace(
            job["id"], "nope"
        )
    listed = await (await api.get("/v1/jobs", headers=key(BOLT))).json()
    assert listed["jobs"] == []
    response = await api.get("/v1/jobs", params={"tenant": "acme"}, headers=key(BOLT))
    await assert_error(response, 403, "forbidden")
    assert (await api.get(path, headers=key(ACME))).status == 200


async def test_an_admin_key_sees_and_acts_on_every_tenants_jobs(api: ApiClient) -> None:
    job = await submit(api, ACME)
    path = f"/v1/jobs/{job['id']}"
    assert (await (await api.get(path, headers=key(ADMIN))).json())["tenant"] == "acme"
    listed = await api.get("/v1/jobs", params={"tenant": "acme"}, headers=key(ADMIN))
    assert [j["id"] for j in (await listed.json())["jobs"]] == [job["id"]]
    cancelled = await api.post(f"{path}/cancel", headers=key(ADMIN))
    assert (await cancelled.json())["status"] == "cancelled"
    retried = await api.post(f"{path}/retry", headers=key(ADMIN))
    assert (await retried.json())["status"] == "pending"


# -- limits -------------------------------------------------------------------------------------


async def test_over_the_rolling_minute_is_429_with_its_headers(
    queue: Queue, keyed_settings: ApiSettings, make_client: MakeClient
) -> None:
    api = await limited(queue, keyed_settings, make_client, tenant_rpm=2)
    for remaining in (1, 0):
        response = await api.post("/v1/jobs", json={"type": "t"}, headers=key(ACME))
        assert response.status == 201
        assert response.headers["RateLimit-Limit"] == "2"
        assert response.headers["RateLimit-Remaining"] == str(remaining)
        assert 0 < int(response.headers["RateLimit-Reset"]) <= 60
    response = await api.post("/v1/jobs", json={"type": "t"}, headers=key(ACME))
    error = await assert_error(response, 429, "rate_limited")
    assert 0 < int(response.headers["Retry-After"]) <= 60
    assert response.headers["RateLimit-Limit"] == "2"
    assert response.headers["RateLimit-Remaining"] == "0"
    assert error["details"]["limit"] == 2
    # the limit is the tenant's: another tenant still submits
    assert (await api.post("/v1/jobs", json={"type": "t"}, headers=key(BOLT))).status == 201
    assert len(await queue.redis.keys(queue.keys.job("*"))) == 3


async def test_over_the_active_limit_is_429_until_a_job_ends(
    queue: Queue, keyed_settings: ApiSettings, make_client: MakeClient
) -> None:
    api = await limited(queue, keyed_settings, make_client, tenant_max_active=2)
    first = await submit(api)
    await submit(api)
    response = await api.post("/v1/jobs", json={"type": "t"}, headers=key(ACME))
    await assert_error(response, 429, "too_many_active")
    assert response.headers["Retry-After"] == "1"
    assert response.headers["RateLimit-Limit"] == "2"
    assert response.headers["RateLimit-Remaining"] == "0"

    worker = LeaseClient(queue.redis, queue.settings, "w1")
    await worker.ensure_group("default")
    (lease,) = await worker.start(await worker.read(["default"], 1, 10))
    assert lease.job_id == first["id"]
    await worker.finish([Result(lease, Outcome.OK, "1")])
    await submit(api)  # the finished job's slot is free at once


async def test_a_stored_keys_own_limits_override_the_defaults(
    queue: Queue, api_settings: ApiSettings, make_client: MakeClient
) -> None:
    settings = api_settings.model_copy(update={"key_cache_s": 0})
    api = await make_client(create_app(settings, Queue(queue.redis, settings)))
    _, secret = await ApiKeyStore(queue.redis, settings).create("acme", rpm=1)
    response = await api.post("/v1/jobs", json={"type": "t"}, headers=key(secret))
    assert response.headers["RateLimit-Limit"] == "1"
    response = await api.post("/v1/jobs", json={"type": "t"}, headers=key(secret))
    await assert_error(response, 429, "rate_limited")


# -- idempotency --------------------------------------------------------------------------------


async def test_a_replay_returns_the_original_job_with_200(api: ApiClient) -> None:
    headers = {**key(ACME), "Idempotency-Key": "order-1"}
    first = await api.post("/v1/jobs", json={"type": "t", "payload": {"a": 1}}, headers=headers)
    assert first.status == 201
    assert "Idempotent-Replayed" not in first.headers
    again = await api.post("/v1/jobs", json={"payload": {"a": 1}, "type": "t"}, headers=headers)
    assert again.status == 200
    assert again.headers["Idempotent-Replayed"] == "true"
    assert (await again.json())["id"] == (await first.json())["id"]
    other = await api.post("/v1/jobs", json={"type": "t", "payload": {"a": 2}}, headers=headers)
    await assert_error(other, 422, "idempotency_mismatch")


@pytest.mark.parametrize("bad", ["x" * 256, "tab\there"])
async def test_a_bad_idempotency_key_is_422(api: ApiClient, bad: str) -> None:
    headers = {**key(ACME), "Idempotency-Key": bad}
    response = await api.post("/v1/jobs", json={"type": "t"}, headers=headers)
    await assert_error(response, 422, "invalid_idempotency_key")


async def test_fifty_concurrent_requests_with_one_key_create_one_job(
    queue: Queue, keyed_settings: ApiSettings, make_client: MakeClient
) -> None:
    api = await limited(queue, keyed_settings, make_client, tenant_max_active=2, tenant_rpm=2)
    headers = {**key(ACME), "Idempotency-Key": "once"}
    responses = await asyncio.gather(
        *(api.post("/v1/jobs", json={"type": "t"}, headers=headers) for _ in range(50))
    )
    assert sorted(r.status for r in responses) == [200] * 49 + [201]
    assert len({(await r.json())["id"] for r in responses}) == 1
    assert len(await queue.redis.keys(queue.keys.job("*"))) == 1


# -- batch --------------------------------------------------------------------------------------


async def test_a_batch_answers_per_job_in_request_order(api: ApiClient) -> None:
    done = await submit(api, payload=0)
    jobs = [{"type": "t", "payload": i} for i in range(1, 4)]
    jobs[1]["idempotency_key"] = "b1"
    response = await api.post("/v1/jobs/batch", json={"jobs": jobs}, headers=key(ACME))
    assert response.status == 201
    results = (await response.json())["results"]
    assert [r["job"]["payload"] for r in results] == [1, 2, 3]
    assert [r["replayed"] for r in results] == [False] * 3
    assert results[1]["job"]["idempotency_key"] == "b1"

    again = await api.post("/v1/jobs/batch", json={"jobs": [jobs[1]]}, headers=key(ACME))
    assert again.status == 200
    (replay,) = (await again.json())["results"]
    assert (replay["replayed"], replay["job"]["id"]) == (True, results[1]["job"]["id"])
    assert done["id"] not in {r["job"]["id"] for r in results}


async def test_a_batch_over_a_limit_changes_nothing(
    queue: Queue, keyed_settings: ApiSettings, make_client: MakeClient
) -> None:
    api = await limited(queue, keyed_settings, make_client, tenant_max_active=3)
    await submit(api)
    before = sorted(await queue.redis.keys("*"))
    jobs = [{"type": "t", "idempotency_key": f"k{i}"} for i in range(3)]
    response = await api.post("/v1/jobs/batch", json={"jobs": jobs}, headers=key(ACME))
    await assert_error(response, 429, "too_many_active")
    assert sorted(await queue.redis.keys("*")) == before


async def test_a_batch_larger_than_batch_max_is_413(
    queue: Queue, keyed_settings: ApiSettings, make_client: MakeClient
) -> None:
    api = await limited(queue, keyed_settings, make_client, batch_max=2)
    response = await api.post(
        "/v1/jobs/batch", json={"jobs": [{"type": "t"}] * 3}, headers=key(ACME)
    )
    await assert_error(response, 413, "batch_too_large")


@pytest.mark.parametrize(
    "body", [{"jobs": []}, {"jobs": [{"type": "t", "color": 1}]}, {"job": []}, [1]]
)
async def test_a_malformed_batch_is_422(api: ApiClient, body: Any) -> None:
    response = await api.post("/v1/jobs/batch", json=body, headers=key(ACME))
    await assert_error(response, 422, "validation_error")


async def test_a_batch_items_unprintable_idempotency_key_is_422(api: ApiClient) -> None:
    body = {"jobs": [{"type": "t", "idempotency_key": "a\u00a0b"}]}
    response = await api.post("/v1/jobs/batch", json=body, headers=key(ACME))
    error = await assert_error(response, 422, "validation_error")
    assert "idempotency_key" in str(error["details"])


# -- listing, cancel, retry ---------------------------------------------------------------------


async def test_the_listing_is_newest_first_filtered_and_paged(api: ApiClient) -> None:
    made = [await submit(api, type=kind, queue=q) for kind, q in [("a", "q1"), ("b", "q1")] * 3]
    seen, cursor = [], None
    while True:
        params = {"limit": "4", **({"cursor": cursor} if cursor else {})}
        page = await (await api.get("/v1/jobs", params=params, headers=key(ACME))).json()
        seen += [job["id"] for job in page["jobs"]]
        if (cursor := page["next_cursor"]) is None:
            break
    assert seen == [job["id"] for job in made[::-1]]
    page = await (await api.get("/v1/jobs", params={"type": "a"}, headers=key(ACME))).json()
    assert [job["id"] for job in page["jobs"]] == [j["id"] for j in made[::-1] if j["type"] == "a"]
    page = await (
        await api.get("/v1/jobs", params={"status": "succeeded"}, headers=key(ACME))
    ).json()
    assert page == {"jobs": [], "next_cursor": None}


@pytest.mark.parametrize(
    "params",
    [{"limit": "201"}, {"limit": "0"}, {"status": "done"}, {"cursor": "forged"}, {"color": "x"}],
)
async def test_a_bad_listing_query_is_422(api: ApiClient, params: dict[str, str]) -> None:
    response = await api.get("/v1/jobs", params=params, headers=key(ACME))
    assert response.status == 422
    assert (await response.json())["error"]["code"] in {"validation_error", "invalid_request"}


async def test_cancel_is_409_once_the_job_has_ended(api: ApiClient) -> None:
    job = await submit(api)
    path = f"/v1/jobs/{job['id']}/cancel"
    response = await api.post(path, headers=key(ACME))
    assert response.status == 200
    assert (await response.json())["status"] == "cancelled"
    await assert_error(await api.post(path, headers=key(ACME)), 409, "job_conflict")


async def test_retry_runs_a_failed_or_cancelled_job_again_and_refuses_others(
    queue: Queue, api: ApiClient
) -> None:
    cancelled, failed = await submit(api), await submit(api, max_attempts=1)
    await api.post(f"/v1/jobs/{cancelled['id']}/cancel", headers=key(ACME))
    worker = LeaseClient(queue.redis, queue.settings, "w1")
    await worker.ensure_group("default")
    (lease,) = await worker.start(await worker.read(["default"], 1, 10))
    await worker.finish([Result(lease, Outcome.ERROR, '"boom"')])
    for job in (cancelled, failed):
        response = await api.post(f"/v1/jobs/{job['id']}/retry", headers=key(ACME))
        assert response.status == 200, await response.text()
        again = await response.json()
        assert (again["status"], again["attempts"], again["error"]) == ("pending", 0, None)
    response = await api.post(f"/v1/jobs/{failed['id']}/retry", headers=key(ACME))
    await assert_error(response, 409, "job_conflict")


# -- Redis down ---------------------------------------------------------------------------------


@pytest.mark.redis
async def test_while_redis_is_down_requests_are_503_and_the_api_recovers_by_itself(
    redis_server: RedisServer, keyed_settings: ApiSettings, make_client: MakeClient
) -> None:
    del redis_server  # only to skip or fail clearly where no redis-server is installed
    own = RedisServer()
    own.start()
    redis = connect(own.url, socket_timeout_s=2, connect_timeout_s=0.5)
    try:
        settings = keyed_settings.model_copy(update={"key_cache_s": 0})
        api = await make_client(create_app(settings, Queue(redis, settings)))
        await submit(api)
        own.kill()
        for method, path in [("POST", "/v1/jobs"), ("GET", "/v1/jobs"), ("GET", "/v1/jobs/x")]:
            response = await api.request(method, path, json={"type": "t"}, headers=key(ACME))
            error = await assert_error(response, 503, "redis_unavailable")
            assert "Redis" in error["message"]
            assert response.headers["Retry-After"]
        assert (await api.get("/health")).status == 503
        own.start()
        deadline = time.monotonic() + 10
        while (await api.post("/v1/jobs", json={"type": "t"}, headers=key(ACME))).status != 201:
            assert time.monotonic() < deadline, "the API did not recover"
            await asyncio.sleep(0.05)
        assert (await api.get("/health")).status == 200
    finally:
        await redis.aclose()
        own.stop()

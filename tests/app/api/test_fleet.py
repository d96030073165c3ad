"""What the dashboard reads besides jobs (DESIGN §6): live workers, the scaler's decisions, the
stats figures, the dead letters and the tenants' usage; and the dashboard's own files.

Each API test runs on fakeredis and on a real redis-server (``any_redis``)."""

from __future__ import annotations

import re
from typing import Any

import orjson
import pytest
from redis.asyncio import Redis

from app import wire
from app.api import create_app
from app.api.settings import ApiSettings
from app.core.apikeys import ApiKeyStore
from app.core.leases import LeaseClient, Outcome, Result
from app.core.models import JobSpec
from app.core.queue import Queue
from app.core.scaler_state import ScalerRecord
from tests.helpers import ACME, ADMIN, BOLT, ApiClient, MakeApiClient, assert_error, key

LISTINGS = ["/v1/workers", "/v1/scaler/decisions", "/v1/stats", "/v1/dead-letters", "/v1/tenants"]


@pytest.fixture
async def queue(any_redis: Redis, keyed_settings: ApiSettings) -> Queue:
    return Queue(any_redis, keyed_settings)


@pytest.fixture
async def api(queue: Queue, keyed_settings: ApiSettings, make_client: MakeApiClient) -> ApiClient:
    return await make_client(create_app(keyed_settings, queue))


async def get(api: ApiClient, path: str, secret: str = ACME) -> Any:
    response = await api.get(path, headers=key(secret))
    assert response.status == 200, await response.text()
    return await response.json()


async def fail_one(api: ApiClient, queue: Queue, secret: str, queue_name: str) -> str:
    """A job of ``secret``'s tenant that fails for good: its one attempt errs."""
    body = {"type": "t", "queue": queue_name, "max_attempts": 1}
    response = await api.post("/v1/jobs", json=body, headers=key(secret))
    job_id: str = (await response.json())["id"]
    error = orjson.dumps({"type": "ValueError", "message": f"boom {job_id}"}).decode()
    await finish_next(queue, queue_name, Outcome.ERROR, error)
    return job_id


async def finish_next(queue: Queue, queue_name: str, outcome: Outcome, value: str) -> None:
    worker = LeaseClient(queue.redis, queue.settings, "w1")
    await worker.ensure_group(queue_name)
    (lease,) = await worker.start(await worker.read([queue_name], 1, 10))
    await worker.finish([Result(lease, outcome, value)])


@pytest.mark.parametrize("path", LISTINGS)
async def test_each_listing_needs_a_key(api: ApiClient, path: str) -> None:
    await assert_error(await api.get(path), 401, "unauthorized")


async def test_the_workers_are_listed_with_their_heartbeat_age_and_no_job_of_anyone(
    api: ApiClient, queue: Queue
) -> None:
    for name, busy in [("w1", 2), ("w2", 0)]:
        info = {"host": "h", "pid": 7, "queues": ["default"], "concurrency": 5, "busy": busy}
        await LeaseClient(queue.redis, queue.settings, name).register(
            orjson.dumps(info).decode(), 60_000
        )
    listed = wire.WorkerList.model_validate(await get(api, "/v1/workers")).workers
    assert sorted((w.id, w.busy, w.concurrency, w.queues) for w in listed) == [
        ("w1", 2, 5, ["default"]),
        ("w2", 0, 5, ["default"]),
    ]
    assert all(0 <= w.heartbeat_age_s < 5 for w in listed)
    assert listed[0].id == "w2"  # the most recently seen first


async def test_the_scalers_decisions_come_newest_first_with_their_reasons(
    api: ApiClient, queue: Queue
) -> None:
    assert await get(api, "/v1/scaler/decisions") == {"decisions": []}
    record = ScalerRecord(queue.redis, queue.keys, "s", lock_ttl_ms=1000, decisions_maxlen=10)
    fence = (await record.lead()).fence
    assert fence is not None
    for n in range(3):
        decision = {"current": n, "desired": n + 1, "action": "up", "reason": f"depth {n}"}
        assert await record.commit(fence, {}, decision)
    body = await get(api, "/v1/scaler/decisions?limit=2")
    decisions = wire.ScalerDecisions.model_validate(body).decisions
    assert [(d.current, d.desired, d.reason) for d in decisions] == [
        (2, 3, "depth 2"),
        (1, 2, "depth 1"),
    ]
    assert decisions[0].at >= decisions[1].at
    await assert_error(
        await api.get("/v1/scaler/decisions?limit=0", headers=key(ACME)), 422, "validation_error"
    )


async def test_the_stats_are_the_deployments_figures(api: ApiClient) -> None:
    for secret in (ACME, BOLT):
        await api.post("/v1/jobs", json={"type": "t"}, headers=key(secret))
    stats = wire.Stats.model_validate(await get(api, "/v1/stats"))
    assert (stats.waiting, stats.running, stats.workers, stats.scaler) == (2, 0, 0, None)
    assert [q.queue for q in stats.queues] == ["default"]
    assert stats.rpm == wire.RpmUsage(used=0, limit=60)  # GLOBAL_RPM_LIMIT's default


async def test_the_stats_say_no_rate_limit_when_there_is_none(
    queue: Queue, keyed_settings: ApiSettings, make_client: MakeApiClient
) -> None:
    unlimited = keyed_settings.model_copy(update={"global_rpm_limit": 0})
    api = await make_client(create_app(unlimited, Queue(queue.redis, unlimited)))
    assert wire.Stats.model_validate(await get(api, "/v1/stats")).rpm is None


async def test_a_tenant_sees_its_own_dead_letters_and_an_admin_everyones_newest_first(
    api: ApiClient, queue: Queue
) -> None:
    acme = await fail_one(api, queue, ACME, "default")
    bolt = await fail_one(api, queue, BOLT, "other")
    mine = wire.DeadLetterList.model_validate(await get(api, "/v1/dead-letters")).dead_letters
    assert [(d.job_id, d.queue, d.attempts) for d in mine] == [(acme, "default", 1)]
    assert mine[0].error == {"type": "ValueError", "message": f"boom {acme}"}
    assert mine[0].job is not None
    assert mine[0].job.status == "failed"
    body = await get(api, "/v1/dead-letters?limit=5", ADMIN)
    every = wire.DeadLetterList.model_validate(body).dead_letters
    assert [d.job_id for d in every] == [bolt, acme]

    await api.post(f"/v1/jobs/{acme}/retry", headers=key(ACME))
    (again,) = wire.DeadLetterList.model_validate(await get(api, "/v1/dead-letters")).dead_letters
    assert again.job is not None
    assert again.job.status == "pending"  # the letter stays; its job runs again
    assert len((await get(api, "/v1/dead-letters?limit=1", ADMIN))["dead_letters"]) == 1


async def test_only_an_admin_lists_the_tenants_with_their_usage_and_limits(
    api: ApiClient, queue: Queue, keyed_settings: ApiSettings
) -> None:
    await assert_error(await api.get("/v1/tenants", headers=key(ACME)), 403, "forbidden")
    await ApiKeyStore(queue.redis, keyed_settings).create("cove", rpm=7, max_active=3)
    await queue.submit(JobSpec(type="t", tenant="demo", queue="keyless"))
    await finish_next(queue, "keyless", Outcome.OK, "1")  # a tenant without a key, seen ending
    await queue.submit(JobSpec(type="t", tenant="eve", queue="keyless"))  # one with a job waiting
    for _ in range(2):
        await api.post("/v1/jobs", json={"type": "t"}, headers=key(ACME))
    listing = wire.TenantList.model_validate(await get(api, "/v1/tenants", ADMIN))
    assert not listing.truncated
    usage = {t.tenant: t for t in listing.tenants}
    assert list(usage) == ["acme", "admin", "bolt", "cove", "demo", "eve"]
    assert (usage["acme"].active, usage["acme"].submitted_last_minute, usage["acme"].keys) == (
        2,
        2,
        1,
    )
    assert (usage["cove"].rpm_limit, usage["cove"].max_active_limit) == (7, 3)
    assert usage["bolt"].rpm_limit == keyed_settings.tenant_rpm
    assert (usage["demo"].keys, usage["demo"].active, usage["eve"].active) == (0, 0, 1)
    assert usage["demo"].max_active_limit == keyed_settings.tenant_max_active
    first = await get(api, "/v1/tenants?limit=1", ADMIN)
    assert [t["tenant"] for t in first["tenants"]] == ["acme"]
    assert first["truncated"] is True


async def test_with_auth_off_the_dashboard_reads_everything_but_the_tenants(
    fake_redis: Redis, api_settings: ApiSettings, make_client: MakeApiClient
) -> None:
    api = await make_client(create_app(api_settings, Queue(fake_redis, api_settings)))
    for path in LISTINGS[:-1]:
        assert (await api.get(path)).status == 200, path
    await assert_error(await api.get("/v1/tenants"), 403, "forbidden")


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/", "text/html"),
        ("/static/dashboard.js", "text/javascript"),
        ("/static/dashboard.css", "text/css"),
    ],
)
async def test_the_dashboards_files_are_served_with_their_type_and_revalidated_by_etag(
    client: ApiClient, path: str, content_type: str
) -> None:
    response = await client.get(path)
    assert response.status == 200
    assert response.content_type == content_type
    assert response.headers["Cache-Control"] == "no-cache"
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]
    etag = response.headers["ETag"]
    again = await client.get(path, headers={"If-None-Match": etag})
    assert again.status == 304
    assert await again.read() == b""


async def test_the_page_loads_nothing_from_another_origin(client: ApiClient) -> None:
    page = await (await client.get("/")).text()
    script = await (await client.get("/static/dashboard.js")).text()
    assert re.findall(r'(?:src|href)="([^"]+)"', page) == [
        "data:,",
        "/static/dashboard.css",
        "/static/dashboard.js",
    ]
    assert not re.search(r"https?://", page + script)

"""``GET /metrics``: JSON by default, Prometheus text or OpenMetrics by ``Accept``, the same
figures either way, tenant series bounded; with auth on, scoped by the caller's key."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as parse_openmetrics,
)
from prometheus_client.parser import text_string_to_metric_families as parse_text
from redis.asyncio import Redis

from app.api import create_app
from app.api.metrics import TOP_TENANTS
from app.api.settings import ApiSettings
from app.core.leases import LeaseClient, Outcome, Result
from app.core.metrics import ENDED
from app.core.models import JobSpec
from app.core.queue import Queue
from tests.helpers import ACME, ADMIN, BOLT, ApiClient, MakeApiClient, assert_error, key

PROMETHEUS_ACCEPT = (
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;"
    "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)
"""What Prometheus itself sends."""

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
TENANT_FIELDS = ("pending", "running", "scheduled", "dead", *(f"{s}_total" for s in ENDED))
"""A tenant's figures in the JSON."""
TENANT_GAUGES = {
    "tide_tenant_waiting": "pending",
    "tide_tenant_running": "running",
    "tide_tenant_scheduled": "scheduled",
    "tide_tenant_dead": "dead",
}
"""Per-tenant gauge series -> the JSON figure they say."""


async def run_jobs(redis: Redis, settings: ApiSettings, specs: list[JobSpec]) -> None:
    """Submit ``specs`` and end them: even indexes succeed, odd ones fail for good."""
    jobs = await Queue(redis, settings).submit_many(specs)
    leases = LeaseClient(redis, settings, "w1")
    await leases.ensure_group("default")
    started = await leases.start(await leases.read(["default"], len(jobs), 10))
    error = '{"type":"E","message":"m"}'
    await leases.finish(
        [
            Result(lease, Outcome.OK, "1") if i % 2 == 0 else Result(lease, Outcome.ERROR, error)
            for i, lease in enumerate(started)
        ]
    )


async def scrape(client: ApiClient, accept: str) -> tuple[str, str]:
    response = await client.get("/metrics", headers={"Accept": accept})
    assert response.status == 200
    return response.headers["Content-Type"], await response.text()


def samples(text: str, parse: Any = parse_text) -> Samples:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in parse(text)
        for s in family.samples
    }


def value(found: Samples, name: str, **labels: str) -> float:
    return found[(name, frozenset(labels.items()))]


async def test_json_by_default_with_fleet_queue_and_tenant_figures(
    client: ApiClient, any_redis: Redis, api_settings: ApiSettings
) -> None:
    specs = [JobSpec(type="t", tenant="acme", max_attempts=1) for _ in range(3)]
    await run_jobs(any_redis, api_settings, specs)
    await Queue(any_redis, api_settings).submit(JobSpec(type="t", delay_s=60))
    for accept in ("", "application/json", "text/html,*/*;q=0.8"):
        response = await client.get("/metrics", headers={"Accept": accept} if accept else {})
        assert response.content_type == "application/json"
        body = await response.json()
    assert {k: body[k] for k in ("pending", "running", "scheduled", "dead")} == {
        "pending": 0,
        "running": 0,
        "scheduled": 1,
        "dead": 1,
    }
    assert (body["succeeded_total"], body["failed_total"], body["dead_lettered_total"]) == (2, 1, 1)
    nothing = dict.fromkeys(TENANT_FIELDS, 0)
    assert body["tenants"] == {
        "acme": {**nothing, "dead": 1, "succeeded_total": 2, "failed_total": 1},
        "public": {**nothing, "scheduled": 1},
    }
    default = body["queues"]["default"]
    assert (default["succeeded_total"], default["duration_s"]["count"]) == (2, 3)
    assert default["duration_s"]["buckets"]["+Inf"] == 3
    assert body["rpm"] == {"used": 0, "limit": 60}
    assert (body["workers"], body["scaler"]) == (0, {"desired_workers": None})


@pytest.mark.parametrize(
    ("accept", "content_type", "parse"),
    [
        ("text/plain", "text/plain; version=0.0.4; charset=utf-8", parse_text),
        (PROMETHEUS_ACCEPT, "application/openmetrics-text", parse_openmetrics),
    ],
)
async def test_prometheus_text_parses_and_says_what_the_json_says(
    client: ApiClient,
    any_redis: Redis,
    api_settings: ApiSettings,
    accept: str,
    content_type: str,
    parse: Any,
) -> None:
    specs = [JobSpec(type="t", tenant=f"t{i % 2}", max_attempts=1) for i in range(5)]
    await run_jobs(any_redis, api_settings, specs)
    later = [JobSpec(type="t", tenant="t1"), JobSpec(type="t", tenant="t0", delay_s=60)]
    await Queue(any_redis, api_settings).submit_many(later)
    body = await (await client.get("/metrics")).json()
    kind, text = await scrape(client, accept)
    assert kind.startswith(content_type)
    found = samples(text, parse)

    jobs = "tide_jobs_total"
    default = body["queues"]["default"]
    assert value(found, jobs, queue="default", status="succeeded") == default["succeeded_total"]
    assert value(found, jobs, queue="default", status="failed") == default["failed_total"]
    assert set(body["tenants"]) == {"t0", "t1"}
    for tenant, counts in body["tenants"].items():
        for status in ("succeeded", "failed", "cancelled"):
            series = value(found, "tide_tenant_jobs_total", tenant=tenant, status=status)
            assert series == counts[f"{status}_total"]
        for name, figure in TENANT_GAUGES.items():
            assert value(found, name, tenant=tenant) == counts[figure]
    assert body["tenants"]["t1"]["pending"] == 1
    assert body["tenants"]["t0"]["scheduled"] == 1
    assert body["tenants"]["t1"]["dead"] == 2  # odd indexes fail
    duration = "tide_job_duration_seconds"
    assert value(found, f"{duration}_count", queue="default") == default["duration_s"]["count"]
    assert value(found, f"{duration}_bucket", queue="default", le="+Inf") == 5
    assert value(found, "tide_queue_dead", queue="default") == default["dead"]
    assert value(found, "tide_queue_waiting", queue="default") == default["pending"]
    assert value(found, "tide_dead_lettered_total", queue="default") == body["dead_lettered_total"]
    assert value(found, "tide_rpm_limit") == body["rpm"]["limit"]
    assert value(found, "tide_rpm_used") == body["rpm"]["used"]
    assert value(found, "tide_workers") == body["workers"]
    assert value(found, "tide_lease_lost_total") == body["lease_lost_total"]
    assert value(found, "tide_reclaimed_total") == body["reclaimed_total"]


async def test_tenant_series_stay_bounded_with_a_thousand_tenants(
    client: ApiClient, any_redis: Redis, api_settings: ApiSettings
) -> None:
    specs = [JobSpec(type="t", tenant=f"tenant{i:04}", max_attempts=1) for i in range(1000)]
    specs += [JobSpec(type="t", tenant="tenant0999") for _ in range(3)]  # the busiest
    await run_jobs(any_redis, api_settings, specs)
    waiting = [JobSpec(type="t", tenant=f"tenant{i:04}") for i in range(0, 1000, 2)]
    await Queue(any_redis, api_settings).submit_many(waiting)
    body = await (await client.get("/metrics")).json()
    assert len(body["tenants"]) == TOP_TENANTS + 1
    assert "tenant0999" in body["tenants"]
    figures = body["tenants"].values()
    ended = sum(c["succeeded_total"] + c["failed_total"] for c in figures)
    assert ended == 1003  # nothing lost in the bounding
    assert sum(c["pending"] for c in figures) == 500
    assert sum(c["dead"] for c in figures) == body["failed_total"]

    _, text = await scrape(client, "text/plain")
    found = samples(text)
    tenant_series = {labels for name, labels in found if name == "tide_tenant_jobs_total"}
    assert len(tenant_series) == (TOP_TENANTS + 1) * 3
    for name, figure in TENANT_GAUGES.items():
        series = {dict(labels)["tenant"]: n for (kind, labels), n in found.items() if kind == name}
        assert series == {tenant: counts[figure] for tenant, counts in body["tenants"].items()}


async def test_http_requests_are_counted_by_route_pattern_and_status(client: ApiClient) -> None:
    await client.get("/health")
    await client.get("/v1/jobs/nope")
    await client.get("/no/such/path")
    _, text = await scrape(client, "text/plain")
    found = samples(text)
    requests = "tide_http_requests_total"
    assert value(found, requests, method="GET", route="/health", status="200") == 1
    assert value(found, requests, method="GET", route="/v1/jobs/{job_id}", status="404") == 1
    assert value(found, requests, method="GET", route="unmatched", status="404") == 1
    count = "tide_http_request_duration_seconds_count"
    assert value(found, count, method="GET", route="/health") == 1


# -- scoped by the caller's key (auth on) -------------------------------------------------------


@pytest.fixture
async def keyed(
    any_redis: Redis, keyed_settings: ApiSettings, make_client: MakeApiClient
) -> ApiClient:
    """Auth on (tenants acme and bolt, an admin); each tenant has ended and waiting jobs."""
    specs = [JobSpec(type="t", tenant=t, max_attempts=1) for t in ("acme", "bolt", "bolt")]
    await run_jobs(any_redis, keyed_settings, specs)
    await Queue(any_redis, keyed_settings).submit(JobSpec(type="t", tenant="bolt", delay_s=60))
    return await make_client(create_app(keyed_settings, Queue(any_redis, keyed_settings)))


def bearer(secret: str) -> dict[str, str]:
    """How a Prometheus scrape config's ``authorization`` sends a key."""
    return {"Authorization": f"Bearer {secret}"}


@pytest.mark.parametrize("accept", ["", "text/plain", PROMETHEUS_ACCEPT])
@pytest.mark.parametrize(
    "headers",
    [{}, key("wrong-secret-0123456789"), {"Authorization": f"Basic {ADMIN}"}, bearer("nope")],
)
async def test_with_auth_on_metrics_need_a_known_key(
    keyed: ApiClient, accept: str, headers: dict[str, str]
) -> None:
    response = await keyed.get("/metrics", headers={**headers, "Accept": accept})
    await assert_error(response, 401, "unauthorized")


async def test_a_tenants_key_sees_its_own_figures_and_nothing_of_anyone_else(
    keyed: ApiClient,
) -> None:
    response = await keyed.get("/metrics", headers=key(ACME))
    body = await response.json()
    own = {**dict.fromkeys(TENANT_FIELDS, 0), "succeeded_total": 1}
    assert body == {**own, "tenants": {"acme": own}}

    response = await keyed.get("/metrics", headers={**key(BOLT), "Accept": "text/plain"})
    text = await response.text()
    assert "acme" not in text
    found = samples(text)
    assert {dict(labels)["tenant"] for _, labels in found} == {"bolt"}
    assert {name for name, _ in found} == {"tide_tenant_jobs_total", *TENANT_GAUGES}
    assert value(found, "tide_tenant_jobs_total", tenant="bolt", status="failed") == 1
    assert value(found, "tide_tenant_dead", tenant="bolt") == 1
    assert value(found, "tide_tenant_scheduled", tenant="bolt") == 1


async def test_an_admin_key_sees_the_whole_fleet(keyed: ApiClient) -> None:
    body = await (await keyed.get("/metrics", headers=key(ADMIN))).json()
    assert set(body["tenants"]) == {"acme", "bolt"}
    assert (body["succeeded_total"], body["failed_total"], body["scheduled"]) == (2, 1, 1)
    assert "default" in body["queues"]
    response = await keyed.get("/metrics", headers={**bearer(ADMIN), "Accept": "text/plain"})
    found = samples(await response.text())
    assert value(found, "tide_tenant_jobs_total", tenant="acme", status="succeeded") == 1
    assert value(found, "tide_queue_scheduled", queue="default") == 1
    assert value(found, "tide_http_requests_total", method="GET", route="/metrics", status="200")

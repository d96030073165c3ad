"""``GET /metrics``: JSON by default, Prometheus text or OpenMetrics by ``Accept``, the same
figures either way, tenant series bounded."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as parse_openmetrics,
)
from prometheus_client.parser import text_string_to_metric_families as parse_text
from redis.asyncio import Redis

from app.api.metrics import TOP_TENANTS
from app.api.settings import ApiSettings
from app.core.leases import LeaseClient, Outcome, Result
from app.core.models import JobSpec
from app.core.queue import Queue
from tests.helpers import ApiClient

PROMETHEUS_ACCEPT = (
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;"
    "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)
"""What Prometheus itself sends."""

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


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
    assert body["tenants"] == {
        "acme": {"succeeded_total": 2, "failed_total": 1, "cancelled_total": 0},
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
    body = await (await client.get("/metrics")).json()
    kind, text = await scrape(client, accept)
    assert kind.startswith(content_type)
    found = samples(text, parse)

    jobs = "tide_jobs_total"
    default = body["queues"]["default"]
    assert value(found, jobs, queue="default", status="succeeded") == default["succeeded_total"]
    assert value(found, jobs, queue="default", status="failed") == default["failed_total"]
    for tenant, counts in body["tenants"].items():
        series = value(found, "tide_tenant_jobs_total", tenant=tenant, status="succeeded")
        assert series == counts["succeeded_total"]
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
    body = await (await client.get("/metrics")).json()
    assert len(body["tenants"]) == TOP_TENANTS + 1
    assert "tenant0999" in body["tenants"]
    ended = sum(c["succeeded_total"] + c["failed_total"] for c in body["tenants"].values())
    assert ended == 1003  # nothing lost in the bounding
    _, text = await scrape(client, "text/plain")
    tenant_series = {labels for name, labels in samples(text) if name == "tide_tenant_jobs_total"}
    assert len(tenant_series) == (TOP_TENANTS + 1) * 3


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

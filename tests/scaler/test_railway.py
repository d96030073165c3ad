"""The railway backend against a local stand-in for Railway that checks every request's document
(against Railway's schema), variables and auth header, and can fail the ways Railway fails."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from redis.asyncio import Redis

from app.core.models import JobSpec
from app.core.queue import Queue
from app.core.scaler_state import ScalerRecord
from scaler.backends import BackendError, BackendMisconfigured
from scaler.backends.railway import RailwayBackend, spread
from scaler.backends.railway_api import TokenKind
from scaler.service import Scaler
from scaler.settings import ScalerSettings
from tests.scaler.fake_railway import (
    ACCOUNT_TOKEN,
    ENVIRONMENT,
    PROJECT,
    PROJECT_TOKEN,
    SCALER,
    WORKER,
    FakeRailway,
)

MakeBackend = Callable[..., RailwayBackend]


@pytest.fixture
async def railway() -> AsyncIterator[FakeRailway]:
    fake = FakeRailway()
    runner = await fake.start()
    yield fake
    await runner.cleanup()
    assert not fake.problems, fake.problems


def railway_env(fake: FakeRailway, **extra: str) -> dict[str, str]:
    return {
        "SCALER_BACKEND": "railway",
        "RAILWAY_API_URL": fake.url,
        "RAILWAY_API_TOKEN": PROJECT_TOKEN,
        "RAILWAY_PROJECT_ID": PROJECT,
        "RAILWAY_ENVIRONMENT_ID": ENVIRONMENT,
        "RAILWAY_WORKER_SERVICE_ID": WORKER,
        "RAILWAY_SERVICE_ID": SCALER,
        **extra,
    }


@pytest.fixture
async def make_backend(railway: FakeRailway) -> AsyncIterator[MakeBackend]:
    made: list[RailwayBackend] = []

    def make(**overrides: Any) -> RailwayBackend:
        env = {k.lower(): v for k, v in railway_env(railway).items()}
        backend = RailwayBackend(ScalerSettings(**{**env, "railway_timeout_s": 1.0, **overrides}))
        made.append(backend)
        return backend

    yield make
    for backend in made:
        await backend.close()


async def test_a_project_token_is_sent_as_project_access_token(
    railway: FakeRailway, make_backend: MakeBackend
) -> None:
    backend = make_backend()
    await backend.start()
    assert backend.api.kind is TokenKind.PROJECT
    assert await backend.current() == 1
    assert {c.auth for c in railway.calls} == {"project"}


async def test_an_account_token_falls_back_to_bearer(
    railway: FakeRailway, make_backend: MakeBackend
) -> None:
    backend = make_backend(railway_api_token=ACCOUNT_TOKEN)
    await backend.start()
    assert backend.api.kind is TokenKind.ACCOUNT
    await backend.scale(2)
    assert [c.auth for c in railway.calls] == ["account"] * 3


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"railway_api_token": "wrong"}, "Railway refused AutoscalerReplicas: Not Authorized"),
        (
            {"railway_api_token": "wrong", "railway_token_kind": "project"},
            "Railway refused AutoscalerWhoAmI: Not Authorized",
        ),
        (
            {"railway_environment_id": "env-other"},
            "the project token belongs to environmentId env-1, not env-other",
        ),
        (
            {"railway_api_token": ACCOUNT_TOKEN, "railway_worker_service_id": "svc-nope"},
            "Railway refused AutoscalerReplicas: ServiceInstance not found "
            r"\(check RAILWAY_ENVIRONMENT_ID and RAILWAY_WORKER_SERVICE_ID\)",
        ),
    ],
)
async def test_the_self_check_names_a_bad_token_or_id(
    railway: FakeRailway, make_backend: MakeBackend, overrides: dict[str, str], message: str
) -> None:
    with pytest.raises(BackendMisconfigured, match=message):
        await make_backend(**overrides).start()


async def test_a_bad_token_ends_the_process_with_one_clear_log_line(
    railway: FakeRailway, redis_server: Any
) -> None:
    env = {**os.environ, **railway_env(railway, RAILWAY_API_TOKEN="wrong")}
    env["REDIS_URL"], env["PORT"] = redis_server.url, "0"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "scaler", env=env, stderr=subprocess.PIPE
    )
    _, stderr = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 2
    lines = [line for line in stderr.decode().splitlines() if "misconfigured" in line]
    assert len(lines) == 1, stderr.decode()
    assert "Not Authorized" in lines[0]
    assert "Traceback" not in stderr.decode()


@pytest.mark.parametrize(
    ("regions", "legacy", "stopped", "expected"),
    [
        ({"us-west2": {"numReplicas": 3}}, 1, False, 3),
        ({"us-west2": {"numReplicas": 2}, "europe-west4": {"numReplicas": 1}}, 1, False, 3),
        ({"us-west2": {"numReplicas": 2}, "europe-west4": None}, 1, False, 2),
        (None, 4, False, 4),
        ({"us-west2": {"numReplicas": 2}}, 1, True, 0),
    ],
)
async def test_the_committed_count_sums_the_region_map(
    railway: FakeRailway,
    make_backend: MakeBackend,
    regions: dict[str, Any] | None,
    legacy: int,
    stopped: bool,
    expected: int,
) -> None:
    railway.regions, railway.legacy_replicas, railway.stopped = regions, legacy, stopped
    assert await make_backend().current() == expected


async def test_scaling_patches_the_whole_region_map_without_a_redeploy(
    railway: FakeRailway, make_backend: MakeBackend
) -> None:
    railway.regions = {"us-west2": {"numReplicas": 1}, "europe-west4": {"numReplicas": 1}}
    await make_backend().scale(5)
    assert railway.regions == {"europe-west4": {"numReplicas": 3}, "us-west2": {"numReplicas": 2}}
    assert [c.operation for c in railway.calls] == ["AutoscalerReplicas", "AutoscalerScale"]
    (scale,) = [c for c in railway.calls if c.operation == "AutoscalerScale"]
    assert scale.variables["environmentId"] == ENVIRONMENT
    assert scale.variables["commitMessage"] == "tide scaler: 5 workers"


async def test_a_service_without_a_region_map_is_scaled_in_its_region(
    railway: FakeRailway, make_backend: MakeBackend
) -> None:
    railway.regions = None
    await make_backend().scale(2)
    assert railway.regions == {"us-west2": {"numReplicas": 2}}


async def test_zero_stops_the_deployment_and_one_wakes_it_when_opted_in(
    railway: FakeRailway, make_backend: MakeBackend
) -> None:
    backend = make_backend(railway_scale_to_zero=True)
    await backend.scale(0)
    assert railway.stopped
    assert await backend.current() == 0
    await backend.scale(2)
    assert not railway.stopped
    assert railway.regions == {"us-west2": {"numReplicas": 2}}
    assert [c.operation for c in railway.calls] == [
        "AutoscalerReplicas",
        "AutoscalerStop",
        "AutoscalerReplicas",
        "AutoscalerReplicas",
        "AutoscalerRestart",
        "AutoscalerScale",
    ]


async def test_zero_is_refused_without_the_opt_in(
    railway: FakeRailway, make_backend: MakeBackend
) -> None:
    with pytest.raises(BackendError, match="RAILWAY_SCALE_TO_ZERO"):
        await make_backend().scale(0)
    assert not railway.stopped


async def test_graphql_errors_in_a_200_answer_are_failures(
    railway: FakeRailway, make_backend: MakeBackend
) -> None:
    railway.failures.append(("graphql", "Problem processing request"))
    with pytest.raises(
        BackendError, match="Railway refused AutoscalerReplicas: Problem processing"
    ):
        await make_backend().scale(3)
    assert railway.committed() == 1


async def test_a_401_is_a_bad_token(railway: FakeRailway, make_backend: MakeBackend) -> None:
    railway.failures.append(("401", None))
    with pytest.raises(BackendMisconfigured, match="HTTP 401"):
        await make_backend().current()


async def test_a_429_is_honoured_until_retry_after_has_passed(
    railway: FakeRailway, make_backend: MakeBackend
) -> None:
    backend = make_backend()
    railway.failures.append(("429", 1))
    with pytest.raises(BackendError, match=r"rate limit \(429\): retrying after 1 s"):
        await backend.current()
    requests = len(railway.calls)
    with pytest.raises(BackendError, match="Retry-After left"):
        await backend.current()
    assert len(railway.calls) == requests  # nothing was sent
    deadline = time.monotonic() + 10
    while True:
        try:
            assert await backend.current() == 1
            break
        except BackendError:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.1)


async def test_a_hung_request_times_out(railway: FakeRailway, make_backend: MakeBackend) -> None:
    railway.failures.append(("hang", 5))
    started = time.monotonic()
    with pytest.raises(BackendError, match=r"did not answer AutoscalerReplicas within 0\.3 s"):
        await make_backend(railway_timeout_s=0.3).current()
    assert time.monotonic() - started < 3


async def test_the_scaler_never_reads_or_patches_its_own_service(
    railway: FakeRailway, make_backend: MakeBackend
) -> None:
    backend = make_backend(railway_scale_to_zero=True)
    await backend.start()
    for workers in (3, 0, 1):
        await backend.scale(workers)
    targets = {c.variables.get("serviceId") for c in railway.calls} - {None}
    patched = {
        s for c in railway.calls if "patch" in c.variables for s in c.variables["patch"]["services"]
    }
    assert targets == {WORKER}
    assert patched == {WORKER}


@pytest.mark.parametrize(
    ("workers", "regions", "expected"),
    [
        (3, ["a"], {"a": 3}),
        (5, ["b", "a"], {"a": 3, "b": 2}),
        (1, ["a", "b"], {"a": 1, "b": 1}),
    ],
)
def test_spread_keeps_every_region_at_one_or_more(
    workers: int, regions: list[str], expected: dict[str, int]
) -> None:
    assert spread(workers, regions) == expected


@pytest.mark.redis
async def test_the_scaler_sets_the_replicas_its_policy_decides(
    railway: FakeRailway, make_backend: MakeBackend, real_redis: Redis, redis_server: Any
) -> None:
    settings = ScalerSettings(
        **{k.lower(): v for k, v in railway_env(railway).items()}, redis_url=redis_server.url
    )
    queue = Queue(real_redis, settings)
    await queue.submit_many([JobSpec(type="n") for _ in range(45)])
    backend = make_backend()
    await backend.start()
    scaler = Scaler(queue, ScalerRecord(real_redis, queue.keys, "a", 1000, 10), backend, settings)
    await scaler.tick()
    assert railway.regions == {"us-west2": {"numReplicas": 3}}
    assert (scaler.snapshot.role, scaler.snapshot.workers) == ("leader", 3)
    (entry,) = await scaler.record.decisions()
    assert (entry["backend"], entry["current"], entry["desired"], entry["applied"]) == (
        "railway",
        1,
        3,
        True,
    )

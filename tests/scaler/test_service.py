"""The scaler service with the ``log`` backend on a real redis-server: it leads or stands by,
decides from the queue, remembers across restarts, and serves the design's exact fields."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
from redis.asyncio import Redis

from app.core.models import JobSpec
from app.core.queue import Queue
from app.core.redis_client import connect
from app.core.scaler_state import ScalerRecord
from app.dev.redis_server import RedisServer, free_port
from app.process.http import serve
from scaler.backends import Backend, BackendError
from scaler.backends.log import LogBackend
from scaler.http import create_app
from scaler.service import Scaler
from scaler.settings import ScalerSettings

pytestmark = pytest.mark.redis

MakeScaler = Callable[..., Scaler]


@pytest.fixture
def make_scaler(real_redis: Redis, redis_server: RedisServer) -> MakeScaler:
    """Factory: a scaler (its own owner id) on the test server with fast timings."""

    def make(owner: str = "a", backend: Backend | None = None, **overrides: Any) -> Scaler:
        settings = ScalerSettings(
            redis_url=redis_server.url, poll_interval_ms=10, scaler_lock_ttl_ms=600, **overrides
        )
        queue = Queue(real_redis, settings)
        record = ScalerRecord(real_redis, queue.keys, owner, settings.scaler_lock_ttl_ms, 100)
        return Scaler(queue, record, backend or LogBackend(), settings)

    return make


async def submit(redis: Redis, count: int) -> None:
    queue = Queue(redis, ScalerSettings())
    await queue.submit_many([JobSpec(type="n") for _ in range(count)])


async def test_the_leader_scales_to_the_step_of_the_depth_and_logs_why(
    real_redis: Redis, make_scaler: MakeScaler
) -> None:
    await submit(real_redis, 45)
    scaler = make_scaler()
    await scaler.tick()
    assert (scaler.snapshot.role, scaler.snapshot.workers) == ("leader", 3)
    (entry,) = await scaler.record.decisions()
    assert entry["reason"] == "depth 45 → step 31\u201360 → 3 workers; up-cooldown passed"
    assert (entry["action"], entry["current"], entry["desired"], entry["applied"]) == (
        "up",
        0,
        3,
        True,
    )
    assert entry["oldest_waiting_age_s"] is not None


async def test_a_second_scaler_stands_by_and_reports_the_leaders_count(
    real_redis: Redis, make_scaler: MakeScaler
) -> None:
    await submit(real_redis, 12)
    leader, standby = make_scaler("a"), make_scaler("b")
    await leader.tick()
    await standby.tick()
    assert (standby.snapshot.role, standby.snapshot.workers) == ("standby", 2)
    assert len(await leader.record.decisions()) == 1


async def test_a_restarted_scaler_remembers_the_cooldown(
    real_redis: Redis, make_scaler: MakeScaler
) -> None:
    await submit(real_redis, 5)
    first = make_scaler("a")
    await first.tick()
    assert first.snapshot.workers == 1
    stopped = asyncio.Event()
    stopped.set()
    await first.run(stopped)  # resigns

    await submit(real_redis, 40)
    second = make_scaler("b")
    await second.tick()
    assert (second.snapshot.role, second.snapshot.workers) == ("leader", 1)
    (latest, *_) = await second.record.decisions()
    assert "up-cooldown" in latest["reason"]


class FailingBackend(LogBackend):
    name = "failing"

    async def scale(self, workers: int) -> None:
        raise BackendError("the backend said no")


async def test_a_failed_scale_is_recorded_and_does_not_start_the_cooldown(
    real_redis: Redis, make_scaler: MakeScaler
) -> None:
    await submit(real_redis, 45)
    scaler = make_scaler(backend=FailingBackend())
    await scaler.tick()
    (entry,) = await scaler.record.decisions()
    assert (entry["applied"], entry["desired"]) == (False, 0)
    assert entry["reason"].endswith("NOT APPLIED")
    lead = await scaler.record.lead()
    assert lead.state is not None
    assert lead.state["policy"]["last_change_ms"] is None


@pytest.fixture
async def served(make_scaler: MakeScaler, real_redis: Redis) -> AsyncIterator[tuple[str, Scaler]]:
    await submit(real_redis, 45)
    scaler = make_scaler(global_rpm_limit=60, max_workers=4)
    runner = await serve(create_app(scaler), "127.0.0.1", 0, 1.0)
    host, port = runner.addresses[0][:2]
    yield f"http://{host}:{port}", scaler
    await runner.cleanup()


async def test_health_is_503_before_the_first_poll_then_has_the_designs_fields(
    served: tuple[str, Scaler],
) -> None:
    base, scaler = served
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{base}/health") as response:
            assert response.status == 503
        await scaler.tick()
        async with session.get(f"{base}/health") as response:
            assert response.status == 200
            body = await response.json()
    assert body == {
        "status": "ok",
        "workers": 3,
        "maxWorkers": 4,
        "queueDepth": 45,
        "rpmUsage": 0,  # the global limiter's usage, read from Redis
        "rpmLimit": 60,
    }


async def test_metrics_has_the_designs_fields_as_json_and_as_prometheus_text(
    served: tuple[str, Scaler],
) -> None:
    base, scaler = served
    await scaler.tick()
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{base}/metrics") as response:
            body = await response.json()
        async with session.get(f"{base}/metrics", headers={"Accept": "text/plain"}) as response:
            text = await response.text()
            assert response.content_type == "text/plain"
        async with session.get(f"{base}/decisions?count=1") as response:
            logged = await response.json()
    assert body == {
        "workers_current": 3,
        "workers_max": 4,
        "queue_pending": 45,
        "queue_processing": 0,
        "rpm_used": 0,
        "rpm_limit": 60,
    }
    assert "# TYPE tide_scaler_workers_current gauge\ntide_scaler_workers_current 3\n" in text
    assert "tide_scaler_queue_pending 45\n" in text
    assert "tide_scaler_rpm_used 0\n" in text
    assert [d["desired"] for d in logged["decisions"]] == [3]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SCALE_STEPS": "0:0,10"}, "SCALE_STEPS: '10' is not DEPTH:WORKERS"),
        ({"MIN_WORKERS": "3", "MAX_WORKERS": "1"}, "MIN_WORKERS (3) is above MAX_WORKERS (1)"),
        ({"SCALER_BACKEND": "railway"}, "the railway backend needs RAILWAY_API_TOKEN"),
    ],
)
def test_bad_settings_exit_2_with_one_line_and_no_traceback(
    env: dict[str, str], message: str
) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "app", "scaler"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("tide scaler: bad scaler settings: ")
    assert message in lines[0]


async def test_an_unreachable_redis_makes_the_scaler_unavailable_not_dead() -> None:
    settings = ScalerSettings(redis_url=f"redis://127.0.0.1:{free_port()}/0")
    redis = connect(settings.redis_url)
    queue = Queue(redis, settings)
    scaler = Scaler(queue, ScalerRecord(redis, queue.keys, "a", 600, 10), LogBackend(), settings)
    try:
        await scaler.tick()
        assert scaler.snapshot.role == "unavailable"
        await scaler.tick()  # and it keeps trying
        assert scaler.snapshot.role == "unavailable"
    finally:
        await redis.aclose()

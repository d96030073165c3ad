"""``tide dev``'s scaler: its settings (dev defaults, the environment, then the flags), and the
counts its flow line shows: workers up against the scaler's desired count."""

from __future__ import annotations

import asyncio
import time

import pytest
from redis.asyncio import Redis

from app.core.queue import Queue
from app.core.settings import CoreSettings
from app.dev.autoscale import DevScaler
from app.dev.redis_server import RedisServer
from app.dev.scaler_settings import scaler_settings
from app.process.startup import ConfigError
from workers.settings import WorkerSettings

SCALER_VARIABLES = (
    "SCALER_BACKEND",
    "MIN_WORKERS",
    "MAX_WORKERS",
    "POLL_INTERVAL_MS",
    "SCALE_UP_COOLDOWN_MS",
    "SCALE_DOWN_COOLDOWN_MS",
    "WATCH_QUEUES",
    "PORT",
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in SCALER_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def test_the_dev_scaler_runs_the_local_backend_with_quick_defaults(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SCALER_BACKEND", "railway")  # for a tide scaler elsewhere: not this one
    monkeypatch.setenv("PORT", "8000")  # the API's
    workers = WorkerSettings(worker_concurrency=3, queues="mail,default", tasks_module="app_tasks")
    settings = scaler_settings(workers, None, None)
    assert (settings.scaler_backend, settings.host, settings.port) == ("local", "127.0.0.1", 0)
    assert (settings.min_workers, settings.max_workers) == (1, 5)
    assert settings.poll_interval_ms == 2_000
    assert (settings.scale_up_cooldown_ms, settings.scale_down_cooldown_ms) == (5_000, 30_000)
    assert settings.watched == ["mail", "default"]
    assert settings.local_worker_concurrency == 3
    assert settings.local_worker_queues == "mail,default"
    assert settings.local_worker_tasks == "app_tasks"


def test_the_environment_overrides_the_dev_defaults_and_the_flags_override_both(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("POLL_INTERVAL_MS", "700")
    monkeypatch.setenv("MIN_WORKERS", "0")
    monkeypatch.setenv("MAX_WORKERS", "2")
    settings = scaler_settings(WorkerSettings(), None, 4)
    assert settings.poll_interval_ms == 700
    assert (settings.min_workers, settings.max_workers) == (0, 4)


def test_bounds_that_cannot_work_are_a_config_error_naming_them() -> None:
    with pytest.raises(ConfigError, match=r"MIN_WORKERS \(3\) is above MAX_WORKERS \(2\)"):
        scaler_settings(WorkerSettings(), 3, 2)


@pytest.mark.redis
async def test_its_counts_are_the_workers_up_and_the_scalers_desired_count(
    redis_server: RedisServer, real_redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_URL", redis_server.url)
    monkeypatch.setenv("POLL_INTERVAL_MS", "100")
    monkeypatch.setenv("SHUTDOWN_GRACE_S", "1")
    settings = scaler_settings(WorkerSettings(), 2, 3)
    queue = Queue(real_redis, CoreSettings(redis_url=redis_server.url))
    scaler = DevScaler(settings, queue, asyncio.Event(), stop_timeout_s=10, output=None)
    try:
        await scaler.start()
        deadline = time.monotonic() + 30
        while scaler.counts() != (2, 2):
            assert time.monotonic() < deadline, scaler.counts()
            assert not scaler.failed.is_set(), scaler.failure
            await asyncio.sleep(0.1)
    finally:
        await scaler.stop()
    assert scaler.counts()[0] == 0
    assert scaler.failure is None

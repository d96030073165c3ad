"""The settings of ``tide dev``'s scaler: the standalone scaler's, with quicker defaults and the
local backend running ``tide dev``'s workers. Apart from :mod:`app.dev.autoscale` so that
``tide --help`` need not import the scaler's HTTP side."""

from __future__ import annotations

from typing import Any

from pydantic import Field, ValidationError

from app.process.startup import ConfigError
from scaler.settings import ScalerSettings, settings_error
from workers.settings import WorkerSettings


class DevScalerSettings(ScalerSettings):
    """The scaler's settings with quicker defaults, so a burst shows within seconds and the calm
    within a minute; the environment still overrides each (``POLL_INTERVAL_MS=...``)."""

    min_workers: int = Field(default=1, ge=0)
    """One worker waits for the first job, so it starts at once (and a broken ``--tasks`` shows
    at start, not at the first job)."""
    poll_interval_ms: int = Field(default=2_000, ge=10)
    scale_up_cooldown_ms: int = Field(default=5_000, ge=0)
    scale_down_cooldown_ms: int = Field(default=30_000, ge=0)
    scaler_lock_ttl_ms: int = Field(default=10_000, ge=30)
    """A ``tide dev`` killed with ``kill -9`` and started again on the same Redis waits this long
    for its own old lock."""


def scaler_settings(
    workers: WorkerSettings, min_workers: int | None, max_workers: int | None
) -> ScalerSettings:
    """The dev scaler's settings: the local backend running ``workers``' command, watching their
    queues, on a free port of this machine; ``MIN_WORKERS``/``MAX_WORKERS`` or the flags."""
    fixed: dict[str, Any] = {
        "scaler_backend": "local",
        "host": "127.0.0.1",
        "port": 0,
        "watch_queues": workers.queues,
        "local_worker_concurrency": workers.worker_concurrency,
        "local_worker_queues": workers.queues,
        "local_worker_tasks": workers.tasks_module or "",
    }
    bounds = {"min_workers": min_workers, "max_workers": max_workers}
    fixed |= {name: value for name, value in bounds.items() if value is not None}
    try:
        return DevScalerSettings(**fixed)
    except ValidationError as exc:
        raise ConfigError(settings_error(exc)) from None

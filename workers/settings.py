"""Settings of a worker process (``tide worker``), from the environment."""

from __future__ import annotations

from pydantic import Field

from app.core.settings import CoreSettings


class WorkerSettings(CoreSettings):
    worker_concurrency: int = Field(default=5, ge=1, le=10_000)
    queues: str = Field(default="default", description="comma-separated, leased first to last")
    tasks_module: str | None = None
    shutdown_grace_s: float = Field(default=30.0, ge=0)
    thread_shutdown_limit_s: float = Field(
        default=30.0,
        ge=0,
        description="after the grace period, how long a stop waits for sync task threads, "
        "keeping their leases, before exiting non-zero and leaving those leases to expire",
    )
    reclaim_interval_s: float = Field(default=2.0, gt=0)
    log_job_events: bool = Field(
        default=True,
        description="one INFO line per job started and succeeded; off for high throughput "
        "(failures, cancels and lost leases are logged either way)",
    )

    @property
    def job_lines(self) -> bool:
        """Whether the per-job INFO lines are wanted *and* would be written: at a higher
        ``LOG_LEVEL`` they would be dropped anyway, so their fields are not even built."""
        return self.log_job_events and self.log_level.lower() in ("debug", "info")

    @property
    def queue_list(self) -> list[str]:
        return [q.strip() for q in self.queues.split(",") if q.strip()]

    @property
    def heartbeat_interval_s(self) -> float:
        """Leases are extended three times per lease period, so one late beat loses nothing."""
        return self.lease_timeout_s / 3

"""Settings of the scaler process (``tide scaler``), from the environment (DESIGN §7 names)."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, ValidationError, field_validator, model_validator

from app.core.settings import CoreSettings
from scaler.policy import PolicyConfig, Step, parse_steps

RAILWAY_API_URL = "https://backboard.railway.com/graphql/v2"
DEFAULT_STEPS = "0:0,1:1,11:2,31:3,61:4,101:5"


class ScalerSettings(CoreSettings):
    host: str = "0.0.0.0"
    port: int = Field(default=8080, ge=0, le=65535)
    scaler_backend: Literal["railway", "local", "log"] = "log"
    min_workers: int = Field(default=0, ge=0)
    max_workers: int = Field(default=5, ge=1)
    poll_interval_ms: int = Field(default=10_000, ge=10)
    scale_up_cooldown_ms: int = Field(default=30_000, ge=0)
    scale_down_cooldown_ms: int = Field(default=120_000, ge=0)
    scale_steps: str = DEFAULT_STEPS
    watch_queues: str = Field(default="", description="comma-separated; empty: every queue")
    scaler_lock_ttl_ms: int = Field(default=30_000, ge=30)
    scaler_decisions_maxlen: int = Field(default=1_000, ge=1)
    shutdown_grace_s: float = Field(default=5.0, ge=0)

    railway_api_url: str = RAILWAY_API_URL
    railway_api_token: str = ""
    railway_token_kind: Literal["auto", "project", "account"] = "auto"
    railway_project_id: str = ""
    railway_environment_id: str = ""
    railway_worker_service_id: str = ""
    railway_service_id: str = Field(default="", description="set by Railway: our own service")
    railway_scale_to_zero: bool = False
    railway_timeout_s: float = Field(default=10.0, gt=0)

    local_worker_concurrency: int = Field(default=4, ge=1)
    local_worker_queues: str = "default"
    local_worker_tasks: str = ""

    @field_validator("scale_steps")
    @classmethod
    def _steps_parse(cls, value: str) -> str:
        parse_steps(value)
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.min_workers > self.max_workers:
            raise ValueError(
                f"MIN_WORKERS ({self.min_workers}) is above MAX_WORKERS ({self.max_workers})"
            )
        if self.scaler_backend == "railway":
            missing = [
                name.upper()
                for name in (
                    "railway_api_token",
                    "railway_environment_id",
                    "railway_worker_service_id",
                )
                if not getattr(self, name)
            ]
            if missing:
                raise ValueError(f"the railway backend needs {', '.join(missing)}")
            if self.railway_worker_service_id == self.railway_service_id:
                raise ValueError(
                    "RAILWAY_WORKER_SERVICE_ID is this scaler's own service (RAILWAY_SERVICE_ID)"
                )
        return self

    @property
    def steps(self) -> tuple[Step, ...]:
        return parse_steps(self.scale_steps)

    @property
    def watched(self) -> list[str] | None:
        """The queues to watch, or None for every queue."""
        names = [q.strip() for q in self.watch_queues.split(",") if q.strip()]
        return names or None

    @property
    def policy(self) -> PolicyConfig:
        """The policy's configuration. Railway cannot run zero replicas without stopping the
        deployment, so unless that is opted into, its floor is one worker."""
        floor = self.min_workers
        if self.scaler_backend == "railway" and not self.railway_scale_to_zero:
            floor = max(floor, 1)
        return PolicyConfig(
            steps=self.steps,
            min_workers=floor,
            max_workers=self.max_workers,
            up_cooldown_ms=self.scale_up_cooldown_ms,
            down_cooldown_ms=self.scale_down_cooldown_ms,
        )


def settings_error(exc: ValidationError) -> str:
    """A validation failure as one line that names the settings (as env variables)."""
    parts = []
    for error in exc.errors():
        names = ".".join(str(loc).upper() for loc in error["loc"])
        message = str(error["msg"]).removeprefix("Value error, ")
        parts.append(f"{names}: {message}" if names else message)
    return "bad scaler settings: " + "; ".join(parts)

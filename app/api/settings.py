"""Settings of the HTTP API process (``tide api``), from the environment."""

from __future__ import annotations

from pydantic import Field

from app.core.settings import CoreSettings


class ApiSettings(CoreSettings):
    """The HTTP API process (``tide api``)."""

    host: str = "0.0.0.0"
    port: int = Field(default=8000, ge=0, le=65535)
    max_body_bytes: int = Field(default=1_048_576, gt=0)
    health_timeout_s: float = Field(default=1.0, gt=0)
    shutdown_grace_s: float = Field(default=10.0, ge=0)

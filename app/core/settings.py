"""Settings shared by every Tide process, read from the environment by pydantic-settings.

Each process kind extends :class:`CoreSettings`; ``main()`` builds the object once and passes it
down, so nothing below the edge reads ``os.environ``.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class CoreSettings(BaseSettings):
    """What every process needs to talk to the queue."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore", frozen=True)

    redis_url: str = "redis://localhost:6379/0"
    key_prefix: str = Field(default="{tide}", min_length=1)
    lease_timeout_s: float = Field(default=30.0, gt=0)
    result_ttl_s: int = Field(default=86_400, gt=0)
    retry_backoff_s: float = Field(default=1.0, ge=0)
    retry_backoff_max_s: float = Field(default=300.0, ge=0)
    events_maxlen: int = Field(default=10_000, gt=0)
    dead_maxlen: int = Field(default=10_000, gt=0)
    default_max_attempts: int = Field(default=3, ge=1)
    default_timeout_s: float = Field(default=300.0, gt=0)
    log_level: str = "info"

"""Settings shared by every Tide process, read from the environment by pydantic-settings.

Each process kind extends :class:`CoreSettings`; ``main()`` builds the object once and passes it
down, so nothing below the edge reads ``os.environ``.
"""

from __future__ import annotations

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from redis.asyncio import Redis

from app.core.errors import InvalidRequest
from app.core.keys import GLOBAL_LIMITER
from app.core.rates import Rate, parse_limits
from app.core.redis_client import CONNECT_TIMEOUT_S, SOCKET_TIMEOUT_S, connect


def hash_tag(key: str) -> str | None:
    """The part of ``key`` Redis Cluster hashes when it is not the whole key: the text between
    the first ``{`` and the next ``}``, if that text is not empty."""
    start = key.find("{")
    end = key.find("}", start + 1)
    if start < 0 or end < 0 or end == start + 1:
        return None
    return key[start + 1 : end]


class CoreSettings(BaseSettings):
    """What every process needs to talk to the queue."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore", frozen=True)

    redis_url: str = "redis://localhost:6379/0"
    redis_socket_timeout_s: float = Field(default=SOCKET_TIMEOUT_S, ge=2, le=3600)
    redis_connect_timeout_s: float = Field(default=CONNECT_TIMEOUT_S, gt=0, le=3600)
    key_prefix: str = Field(default="{tide}", min_length=1)
    lease_timeout_s: float = Field(default=30.0, gt=0)
    result_ttl_s: int = Field(default=86_400, gt=0)
    retry_backoff_s: float = Field(default=1.0, ge=0)
    retry_backoff_max_s: float = Field(default=300.0, ge=0)
    events_max_changes: int = Field(default=100_000, gt=0)
    """The events stream keeps this many of the newest status changes (whole entries)."""
    dead_maxlen: int = Field(default=10_000, gt=0)
    queue_idle_forget_s: float = Field(default=86_400.0, gt=0)
    """An empty queue that no one enqueued to or read from for this long is forgotten."""
    idempotency_ttl_s: int = Field(default=86_400, gt=0)
    """How long an ``Idempotency-Key`` keeps naming the job it created."""
    list_index_max: int = Field(default=10_000, gt=0)
    """A tenant's job listing reaches back at most this many jobs (and ``RESULT_TTL_S``)."""
    default_max_attempts: int = Field(default=3, ge=1)
    default_timeout_s: float = Field(default=300.0, gt=0)
    log_level: str = "info"
    global_rpm_limit: int = Field(default=60, ge=0)
    """Starts of rate-limited tasks per period across the whole fleet; 0: no global limit."""
    global_rpm_burst: int = Field(default=0, ge=0)
    """Starts allowed at once beyond the steady rate (after a quiet spell)."""
    global_rpm_period_s: float = Field(default=60.0, gt=0)
    """The window GLOBAL_RPM_LIMIT counts over: a minute, shorter only for tests."""
    limits: str = ""
    """Named limiters, ``name:count/unit[+burst]`` comma-separated, e.g. ``openai:60/m``."""

    @field_validator("key_prefix")
    @classmethod
    def _one_slot(cls, prefix: str) -> str:
        if hash_tag(prefix) is None:
            raise ValueError(
                f"KEY_PREFIX {prefix!r} needs a Redis Cluster hash tag: non-empty text in braces,"
                " such as '{tide}' or 'app-{tide}', so that every key of a deployment lands in"
                " one slot and the Lua scripts stay legal on a cluster"
            )
        return prefix

    @field_validator("limits")
    @classmethod
    def _limits_parse(cls, limits: str) -> str:
        try:
            parse_limits(limits)
        except InvalidRequest as exc:
            raise ValueError(str(exc)) from None
        return limits

    @property
    def rates(self) -> dict[str, Rate]:
        """Every configured limiter by name: the global one (unless 0) and the named ones."""
        rates = parse_limits(self.limits)
        if self.global_rpm_limit:
            rates[GLOBAL_LIMITER] = Rate(
                self.global_rpm_limit, self.global_rpm_period_s, self.global_rpm_burst
            )
        return rates

    def connect_redis(self, url: str | None = None) -> Redis:
        """A client of ``url`` (default ``REDIS_URL``) with these settings' timeouts."""
        return connect(
            self.redis_url if url is None else url,
            socket_timeout_s=self.redis_socket_timeout_s,
            connect_timeout_s=self.redis_connect_timeout_s,
        )

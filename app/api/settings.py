"""Settings of the HTTP API process (``tide api``), from the environment."""

from __future__ import annotations

import re

from pydantic import Field, field_validator

from app.core.settings import CoreSettings
from app.core.tenants import TENANT_PATTERN

ADMIN_TENANT = "admin"
"""The tenant of an ``ADMIN_API_KEYS`` entry given without one."""


def _pairs(text: str, name: str, default_tenant: str | None) -> list[tuple[str, str]]:
    """``tenant:key,tenant:key`` (or bare keys when ``default_tenant``) as (tenant, key)."""
    pairs = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        tenant, sep, secret = item.partition(":")
        if not sep:
            if default_tenant is None:
                raise ValueError(f"{name} entries are tenant:key, got one without a ':'")
            tenant, secret = default_tenant, item
        if not re.match(TENANT_PATTERN, tenant):
            raise ValueError(f"{name}: tenant {tenant!r} must match {TENANT_PATTERN}")
        if len(secret) < 16:
            raise ValueError(f"{name}: the key of tenant {tenant!r} is shorter than 16 characters")
        pairs.append((tenant, secret))
    return pairs


class ApiSettings(CoreSettings):
    """The HTTP API process (``tide api``)."""

    host: str = "0.0.0.0"
    port: int = Field(default=8000, ge=0, le=65535)
    max_body_bytes: int = Field(default=1_048_576, gt=0)
    health_timeout_s: float = Field(default=1.0, gt=0)
    shutdown_grace_s: float = Field(default=10.0, ge=0)
    api_keys: str = ""
    """``tenant:key,tenant:key``: keys for simple deployments, besides ``tide keys create``."""
    admin_api_keys: str = ""
    """``key,key`` (tenant ``admin``) or ``tenant:key``: keys that see every tenant's jobs."""
    tenant_max_active: int = Field(default=5, ge=1)
    """Non-terminal jobs a tenant may have at once (a key may override it)."""
    tenant_rpm: int = Field(default=10, ge=1)
    """Submissions a tenant may make per rolling minute (a key may override it)."""
    batch_max: int = Field(default=1000, ge=1, le=10_000)
    key_cache_s: float = Field(default=5.0, ge=0)
    """How long the API trusts a key lookup: a revoked key stops working within this time."""
    allowed_origins: str = ""
    """``https://a.example,https://b.example``: pages that may open ``/v1/ws``. Empty: only the
    API's own origin. Clients that send no ``Origin`` (not browsers) are not checked."""
    live_queue_max: int = Field(default=10_000, ge=1)
    """Changes one WebSocket may have waiting: a client further behind is cut off (close 4008)."""
    live_batch_s: float = Field(default=0.025, ge=0, le=1)
    """While batched WebSocket subscribers listen, the events reader pauses this long after
    handing out a read, so a busy stream makes one ``events`` frame per pause: fewer, larger
    sends for up to this much more latency."""
    long_poll_max_s: float = Field(default=30.0, ge=0, le=30)
    """The longest ``GET /v1/events`` waits, whatever its ``timeout_s`` asks."""
    ws_heartbeat_s: float = Field(default=20.0, gt=0)
    """WebSocket ping interval: a peer that does not answer within it is closed."""

    @field_validator("api_keys")
    @classmethod
    def _api_keys(cls, text: str) -> str:
        _pairs(text, "API_KEYS", None)
        return text

    @field_validator("admin_api_keys")
    @classmethod
    def _admin_api_keys(cls, text: str) -> str:
        _pairs(text, "ADMIN_API_KEYS", ADMIN_TENANT)
        return text

    def origins(self) -> frozenset[str]:
        """``ALLOWED_ORIGINS`` as a set, without trailing slashes."""
        return frozenset(
            o.strip().rstrip("/") for o in self.allowed_origins.split(",") if o.strip()
        )

    def env_keys(self) -> list[tuple[str, str, bool]]:
        """(tenant, secret, admin) of every key given in the environment."""
        return [(t, k, False) for t, k in _pairs(self.api_keys, "API_KEYS", None)] + [
            (t, k, True) for t, k in _pairs(self.admin_api_keys, "ADMIN_API_KEYS", ADMIN_TENANT)
        ]

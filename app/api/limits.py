"""The ``RateLimit-*`` and ``Retry-After`` headers of submissions (IETF RateLimit fields)."""

from __future__ import annotations

from app.core.errors import OverLimit
from app.core.tenants import Quota


def quota_headers(quota: Quota | None) -> dict[str, str]:
    """What an admitted submission tells its client about the rolling minute."""
    if quota is None:
        return {}
    return {
        "RateLimit-Limit": str(quota.limit),
        "RateLimit-Remaining": str(quota.remaining),
        "RateLimit-Reset": str(quota.reset_s),
    }


def limit_headers(exc: OverLimit) -> dict[str, str]:
    """A refusal's headers: the limit that refused it, and when to try again."""
    return {
        "Retry-After": str(exc.retry_after_s),
        "RateLimit-Limit": str(exc.limit),
        "RateLimit-Remaining": str(exc.remaining),
        "RateLimit-Reset": str(exc.reset_s),
    }

"""What a tenant may submit, and what a submission request carries and gets back.

The limits live in Redis (``P:tenant:<t>:…``, kept by the scripts), so they hold across API
replicas: ``active`` counts non-terminal jobs (released by the script that ends a job) and the
rolling minute counts submissions per second for the last 60 seconds, on Redis's clock (its
summary, ``used`` and ``oldest``, spares a submit reading every second).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from redis.asyncio import Redis

from app.core.frozen import frozen
from app.core.keys import Keys
from app.core.models import Job, JobSpec

TENANT_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"
"""Tenant names: no ``:`` so that a tenant's keys never overlap another's."""


@dataclass(frozen=True, slots=True)
class Limits:
    """A tenant's limits for one request; ``None`` = unlimited."""

    rpm: int | None = None
    max_active: int | None = None


UNLIMITED = Limits()
"""What the core's own callers (``submit``, ``submit_many``) are held to."""


@frozen
class SubmitRequest:
    """Jobs admitted all together or not at all; with limits, all of one tenant's."""

    specs: Sequence[JobSpec]
    limits: Limits = UNLIMITED


@frozen
class Quota:
    """The rolling-minute limit after an admitted request (the ``RateLimit-*`` headers)."""

    limit: int
    remaining: int
    reset_s: int


@frozen
class Admitted:
    """An admitted request's jobs in request order; ``replayed[i]``: job ``i`` is the one an
    earlier request with the same idempotency key created."""

    jobs: list[Job]
    replayed: list[bool] = field(default_factory=list)
    quota: Quota | None = None


@dataclass(frozen=True, slots=True)
class Usage:
    tenant: str
    active: int
    submitted_last_minute: int


def fingerprint(spec: JobSpec) -> str:
    """The request an idempotency key stands for: the spec's fields, the payload with its keys
    sorted, so the same request spelled differently still matches."""
    canonical: list[Any] = [
        spec.type,
        spec.payload,
        spec.queue,
        spec.max_attempts,
        spec.timeout_s,
        spec.delay_s,
        None if spec.run_at is None else spec.run_at.timestamp(),
    ]
    return hashlib.sha256(orjson.dumps(canonical, option=orjson.OPT_SORT_KEYS)).hexdigest()[:32]


async def usage(redis: Redis, keys: Keys, tenant: str, now_s: int) -> Usage:
    """A tenant's active jobs and submissions in the minute before ``now_s`` (Redis clock)."""
    return (await usages(redis, keys, [tenant], now_s))[0]


async def usages(
    redis: Redis, keys: Keys, tenants: Sequence[str], now_s: int | None = None
) -> list[Usage]:
    """:func:`usage` of each of ``tenants``, in one round trip; ``now_s`` None: the Redis
    server's clock, read in that same round trip."""
    async with redis.pipeline(transaction=False) as pipe:
        pipe.time()
        for tenant in tenants:
            pipe.get(keys.tenant_active(tenant))
            pipe.hgetall(keys.tenant_rpm(tenant))
        (seconds, _), *replies = await pipe.execute()
    since = (int(seconds) if now_s is None else now_s) - 60
    return [
        Usage(
            tenant,
            max(0, int(active or 0)),
            sum(int(n) for s, n in rpm.items() if int(s) > since),
        )
        for tenant, active, rpm in zip(tenants, replies[::2], replies[1::2], strict=True)
    ]

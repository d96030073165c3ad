"""Tasks for worker processes started by the end-to-end tests (``--tasks tests.e2e.tasks``)."""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import redis

from tide import Context, task

RUNS = "tide-test:runs"
"""Hash job id -> how many times a handler started on it (a test-only key, outside the prefix)."""


@task
async def tracked(ctx: Context, payload: dict[str, Any]) -> dict[str, Any]:
    """Counts its runs, sleeps ``seconds`` (``first_seconds`` on its first run), names its
    worker."""
    runs = await ctx.redis.hincrby(RUNS, ctx.job_id, 1)
    first = payload.get("first_seconds", payload.get("seconds", 0))
    await asyncio.sleep(first if runs == 1 else payload.get("seconds", 0))
    return {"worker": ctx.worker_id, "attempt": ctx.attempt}


@task
def tracked_sync(ctx: Context, payload: dict[str, Any]) -> dict[str, Any]:
    """``tracked`` as a plain ``def``: runs in a thread that no cancel can stop."""
    with redis.Redis.from_url(os.environ["REDIS_URL"]) as client:
        runs = int(client.hincrby(RUNS, ctx.job_id, 1))
    time.sleep(payload.get("first_seconds", 0) if runs == 1 else payload.get("seconds", 0))
    return {"worker": ctx.worker_id, "attempt": ctx.attempt}


STARTS = "tide-test:starts"
"""List of the times (s, this host's clock) at which ``limited`` began its code."""


@task(rate_limited=True)
async def limited(ctx: Context, payload: dict[str, Any]) -> dict[str, Any]:
    """Waits for a turn of the global limiter, then records when it started and counts its runs."""
    started = time.time()
    await ctx.redis.rpush(STARTS, repr(started))
    await ctx.redis.hincrby(RUNS, ctx.job_id, 1)
    return {"worker": ctx.worker_id}

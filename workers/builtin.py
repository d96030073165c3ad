"""Built-in tasks, always registered: used by ``tide dev --demo``, the benchmark and the tests.

Their payloads reject unknown fields (a typo must not silently run with a default), and a
missing payload means the defaults.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from workers.tasks import Context, task


class SleepPayload(BaseModel):
    model_config = ConfigDict(extra="forbid")
    seconds: float = Field(default=1.0, ge=0, le=3600)


class FailPayload(BaseModel):
    model_config = ConfigDict(extra="forbid")
    message: str = "failed on purpose"


class CallApiPayload(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ms: float = Field(default=200.0, ge=0, le=600_000)


class CpuPayload(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ms: float = Field(default=100.0, ge=0, le=600_000)


@task
async def noop(ctx: Context, payload: Any) -> None:
    """Does nothing: measures the queue itself."""


@task
async def echo(ctx: Context, payload: Any) -> Any:
    return payload


@task
async def sleep(ctx: Context, payload: SleepPayload) -> dict[str, float]:
    await asyncio.sleep(payload.seconds)
    return {"slept": payload.seconds}


@task
async def fail(ctx: Context, payload: FailPayload) -> None:
    raise RuntimeError(payload.message)


@task(rate_limited=True)
async def call_api(ctx: Context, payload: CallApiPayload) -> dict[str, float]:
    """A call to someone else's API taking ``ms``: waits for a turn of GLOBAL_RPM_LIMIT first."""
    await asyncio.sleep(payload.ms / 1000)
    return {"ms": payload.ms}


@task
def cpu(ctx: Context, payload: CpuPayload) -> dict[str, float]:
    """Busy work in the thread pool, like a real CPU-bound handler."""
    end = time.perf_counter() + payload.ms / 1000
    n = 0
    while time.perf_counter() < end:
        n += 1
    return {"ms": payload.ms, "loops": n}

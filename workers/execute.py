"""Runs one attempt of a job and turns whatever happens into a :class:`Result`."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from pydantic import BaseModel

from app.core.errors import NonRetryable
from app.core.leases import Lease, Outcome, Result
from workers.retry import retry_delay_s
from workers.settings import WorkerSettings
from workers.tasks import Context, Task
from workers.threads import TaskThreads


def error_json(kind: str, message: str) -> str:
    return orjson.dumps({"type": kind, "message": message}).decode()


def _result_json(value: Any) -> str:
    if isinstance(value, BaseModel):
        return value.model_dump_json()
    try:
        return orjson.dumps(value).decode()
    except orjson.JSONEncodeError as exc:
        raise NonRetryable(f"the task returned a value that is not JSON: {exc}") from exc


async def execute(
    task: Task | None, lease: Lease, ctx: Context, settings: WorkerSettings, threads: TaskThreads
) -> Result:
    """Run the attempt under its timeout. Cancellation (a cancel, a lost lease, shutdown) is not
    caught here: the worker decides what a cancelled attempt means."""
    if task is None:
        return Result(
            lease, Outcome.ERROR, error_json("UnknownTask", f"no task named {lease.type!r}")
        )
    try:
        payload = task.parse(orjson.loads(lease.payload))
        async with asyncio.timeout(lease.timeout_s):
            value = await task.call(ctx, payload, threads)
        return Result(lease, Outcome.OK, _result_json(value))
    except NonRetryable as exc:
        return Result(lease, Outcome.ERROR, error_json(type(exc).__name__, str(exc)))
    except TimeoutError:
        message = f"ran longer than its timeout of {lease.timeout_s:g} s"
        return _retryable(lease, error_json("JobTimeout", message), settings)
    except Exception as exc:
        return _retryable(lease, error_json(type(exc).__name__, str(exc)), settings)


def _retryable(lease: Lease, data: str, settings: WorkerSettings) -> Result:
    delay = retry_delay_s(lease.attempt, settings.retry_backoff_s, settings.retry_backoff_max_s)
    return Result(lease, Outcome.ERROR, data, int(delay * 1000))

"""Runs one attempt of a job and turns whatever its task code does into a :class:`Result`.

Task code may raise anything (``SystemExit``, ``KeyboardInterrupt``, its own ``CancelledError``,
an exception whose ``__str__`` raises) or return anything: the attempt still ends with an outcome.
Only the worker's own cancellation of the attempt propagates.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import orjson
import structlog
from pydantic import BaseModel

from app.core.errors import NonRetryable
from app.core.leases import Lease, Outcome, Result
from workers.retry import retry_delay_s
from workers.settings import WorkerSettings
from workers.tasks import Context, Task
from workers.threads import TaskThreads

log = structlog.get_logger("tide.worker")

_SURROGATE = re.compile("[\ud800-\udfff]")
"""Lone surrogates (a path decoded with ``surrogateescape``) are not UTF-8: JSON refuses them."""


class JobTimeout(Exception):
    """The attempt ran past the job's ``timeout_s``, counted from when its task code started."""


def error_json(kind: str, message: str) -> str:
    """``{type, message}`` as JSON, whatever characters the two hold."""
    clean = {"type": _SURROGATE.sub("\ufffd", kind), "message": _SURROGATE.sub("\ufffd", message)}
    return orjson.dumps(clean).decode()


def _error_of(exc: BaseException) -> str:
    """The error JSON of ``exc``: its ``str``, else its ``repr``, else its type name."""
    return error_json(type(exc).__name__, _message(exc))


def _message(exc: BaseException) -> str:
    for render in (str, repr):
        try:
            return render(exc)
        except BaseException:  # task code's __str__ may raise anything at all
            continue
    return type(exc).__name__


async def execute(
    task: Task | None, lease: Lease, ctx: Context, settings: WorkerSettings, threads: TaskThreads
) -> Result:
    """Run the attempt (a plain ``def`` in ``threads``) under its timeout and return its outcome.

    Raises only ``CancelledError``, and only when the worker cancelled this asyncio task (a
    cancel, a lost lease, shutdown): the worker decides what that means. A ``CancelledError``
    that task code raises on its own is a failed attempt like any other error.
    """
    if task is None:
        # retried: in a rolling deploy the next worker to lease it may know the type
        log.error("job.unknown_task", type=lease.type, **lease.describe())
        message = f"no task named {lease.type!r} in this worker"
        return _retryable(lease, error_json("UnknownTask", message), settings)
    try:
        return Result(lease, Outcome.OK, await _run(task, lease, ctx, threads))
    except BaseException as exc:
        if _stopped_by_worker():
            if isinstance(exc, asyncio.CancelledError):
                raise
            raise asyncio.CancelledError from exc
        if isinstance(exc, NonRetryable):
            return Result(lease, Outcome.ERROR, _error_of(exc))
        return _retryable(lease, _error_of(exc), settings)


async def _run(task: Task, lease: Lease, ctx: Context, threads: TaskThreads) -> str:
    """The attempt's result as JSON; raises what the task raised, or JobTimeout."""
    payload = task.parse(orjson.loads(lease.payload))
    try:
        # No deadline until task code starts: a plain def may first wait for a free thread.
        async with asyncio.timeout(None) as limit:

            def start_clock(at: float) -> None:
                limit.reschedule(at + lease.timeout_s)

            value = await task.call(ctx, payload, threads, on_start=start_clock)
    except TimeoutError:
        if limit.expired():
            message = f"ran longer than its timeout of {lease.timeout_s:g} s"
            raise JobTimeout(message) from None
        raise  # the task's own TimeoutError
    return _result_json(value)


def _result_json(value: Any) -> str:
    try:
        if isinstance(value, BaseModel):
            return value.model_dump_json()
        return orjson.dumps(value).decode()
    except Exception as exc:
        message = f"the task returned a value that is not JSON: {_message(exc)}"
        raise NonRetryable(message) from exc


def _stopped_by_worker() -> bool:
    """Whether a cancel was requested of this asyncio task: the worker's way to stop an attempt
    (a timeout's own cancel is withdrawn by the time its block has exited)."""
    current = asyncio.current_task()
    return current is not None and current.cancelling() > 0


def _retryable(lease: Lease, data: str, settings: WorkerSettings) -> Result:
    delay = retry_delay_s(lease.attempt, settings.retry_backoff_s, settings.retry_backoff_max_s)
    return Result(lease, Outcome.ERROR, data, int(delay * 1000))

"""Task code that misbehaves in every way a worker must survive (``--tasks
tests.workers.hostile_tasks``). Importing it registers these tasks in the global registry."""

from __future__ import annotations

import asyncio
import functools
import sys
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any

from pydantic import BaseModel

from tide import Context, task

SURROGATE_PATH = "/data/caf\udce9.csv"
"""``os.fsdecode(b"/data/caf\\xe9.csv")`` on a UTF-8 system: not encodable as UTF-8."""


class Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no text for you")


class Unrepresentable(Unprintable):
    def __repr__(self) -> str:
        raise RuntimeError("no repr either")


class Abort(BaseException):
    """Some libraries raise their own BaseException subclasses (gevent's, trio's)."""


class BlockPayload(BaseModel):
    seconds: float


@task
async def raises_unprintable(ctx: Context, payload: Any) -> None:
    raise Unprintable("secret")


@task
async def raises_unrepresentable(ctx: Context, payload: Any) -> None:
    raise Unrepresentable


@task
async def raises_surrogate(ctx: Context, payload: Any) -> None:
    raise FileNotFoundError(SURROGATE_PATH)


@task
async def returns_object(ctx: Context, payload: Any) -> object:
    return object()


@task
async def returns_surrogate(ctx: Context, payload: Any) -> str:
    return SURROGATE_PATH


@task
async def exits_async(ctx: Context, payload: Any) -> None:
    sys.exit(3)


@task
def exits_sync(ctx: Context, payload: Any) -> None:
    sys.exit(3)


@task
async def interrupts_async(ctx: Context, payload: Any) -> None:
    raise KeyboardInterrupt


@task
def interrupts_sync(ctx: Context, payload: Any) -> None:
    raise KeyboardInterrupt


@task
async def raises_base_exception(ctx: Context, payload: Any) -> None:
    raise Abort("abort abort")


@task
async def awaits_cancelled_helper(ctx: Context, payload: Any) -> None:
    """Awaits a helper task that something else cancelled: its CancelledError reaches the task."""
    helper = asyncio.create_task(asyncio.sleep(30))
    asyncio.get_running_loop().call_soon(helper.cancel)
    await helper


def logged(fn: Callable[..., Any]) -> Callable[..., Any]:
    """A sync decorator, as people write them around ``async def`` by mistake."""

    @functools.wraps(fn)
    def wrapper(ctx: Context, payload: Any) -> Any:
        return fn(ctx, payload)

    return wrapper


@task
@logged
async def decorated(ctx: Context, payload: Any) -> str:
    await asyncio.sleep(0)
    return "awaited"


async def _later() -> str:
    await asyncio.sleep(0)
    return "awaited"


@task
def returns_coroutine(ctx: Context, payload: Any) -> Coroutine[Any, Any, str]:
    """A plain ``def`` that hands back a coroutine, with nothing to tell so up front."""
    return _later()


@task
def blocks(ctx: Context, payload: BlockPayload) -> float:
    """Holds its thread for ``seconds``, whatever its timeout says."""
    time.sleep(payload.seconds)
    return payload.seconds


@task
def thread_name(ctx: Context, payload: Any) -> str:
    return threading.current_thread().name

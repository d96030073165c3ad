"""Task registration: how user code tells Tide which function runs which job type.

    from tide import Context, task

    @task
    async def resize(ctx: Context, payload: ResizeRequest) -> dict: ...

    @task(rate_limited=True)          # waits for a turn of GLOBAL_RPM_LIMIT
    async def call_vendor(ctx: Context, payload: dict) -> dict: ...

    @task(limit="openai")             # waits for a turn of the limiter LIMITS names openai
    async def summarise(ctx: Context, payload: dict) -> dict: ...

A task is an ``async def`` or a plain ``def`` (run in the worker's threads) taking a context and
the payload. When the payload parameter is annotated with a pydantic model the payload is validated
first (a missing payload means the model's defaults), and a validation failure is not retried.
"""

from __future__ import annotations

import asyncio
import inspect
import typing
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, overload

from pydantic import BaseModel, ValidationError
from redis.asyncio import Redis

from app.core.errors import NonRetryable
from app.core.keys import GLOBAL_LIMITER
from workers.threads import TaskThreads


class TaskDefinitionError(ValueError):
    """A task module defines something no worker can run: a name registered twice, a function
    that does not take ``(ctx, payload)``, annotations that cannot be resolved."""


@dataclass(frozen=True, slots=True)
class Context:
    """What a running task knows about its job and its worker."""

    job_id: str
    type: str
    queue: str
    attempt: int
    max_attempts: int
    worker_id: str
    redis: Redis


TaskFn = Callable[[Context, Any], Any]


@dataclass(frozen=True, slots=True)
class Task:
    name: str
    fn: TaskFn
    is_async: bool
    """Runs on the event loop; otherwise in the worker's threads."""
    payload_model: type[BaseModel] | None
    limit: str | None = None
    """The rate limiter whose turn each attempt waits for before its code starts: ``global``
    (``GLOBAL_RPM_LIMIT``) or a name from ``LIMITS``; None: not rate-limited."""

    def parse(self, payload: Any) -> Any:
        """The payload as the task expects it (``None``: the model's defaults); NonRetryable
        with one line per wrong field when it does not validate."""
        if self.payload_model is None:
            return payload
        try:
            return self.payload_model.model_validate({} if payload is None else payload)
        except ValidationError as exc:
            model = self.payload_model.__name__
            raise NonRetryable(f"payload does not match {model}: {_field_errors(exc)}") from exc

    async def call(
        self,
        ctx: Context,
        payload: Any,
        threads: TaskThreads,
        on_start: Callable[[float], None] | None = None,
    ) -> Any:
        """Run the task: on the loop, or a plain ``def`` in ``threads``. ``on_start(t)`` learns the
        loop time at which task code began. An awaitable that a plain ``def`` returns (a sync
        decorator around an ``async def``) is awaited on the loop."""
        if self.is_async:
            if on_start is not None:
                on_start(asyncio.get_running_loop().time())
            value = self.fn(ctx, payload)
        else:
            value = await threads.run(self.fn, ctx, payload, on_start=on_start)
        return await value if inspect.isawaitable(value) else value


def _field_errors(exc: ValidationError) -> str:
    """``loc: message; ...``: pydantic's errors in one line, without its input dumps and URLs."""
    return "; ".join(
        f"{'.'.join(map(str, e['loc']))}: {e['msg']}" if e["loc"] else e["msg"]
        for e in exc.errors(include_url=False)
    )


def _runs_on_loop(fn: TaskFn) -> bool:
    """An ``async def``, also behind a sync decorator that says what it wraps
    (``functools.wraps``): calling that one on the loop just hands back the coroutine."""
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(inspect.unwrap(fn))


def _payload_model(fn: TaskFn) -> type[BaseModel] | None:
    params = list(inspect.signature(fn).parameters)
    if len(params) < 2:
        raise TaskDefinitionError(f"task {_where(fn)} must take (ctx, payload)")
    try:
        hint = typing.get_type_hints(fn).get(params[1])
    except NameError as exc:
        raise TaskDefinitionError(
            f"cannot resolve the annotations of task {_where(fn)} ({exc}): define payload "
            "models at module level"
        ) from exc
    return hint if isinstance(hint, type) and issubclass(hint, BaseModel) else None


def _where(fn: TaskFn) -> str:
    """``module.qualname`` of a task function, for messages that must point at the code."""
    module = getattr(fn, "__module__", None) or "?"
    return f"{module}.{getattr(fn, '__qualname__', repr(fn))}"


class TaskRegistry:
    """Job type name -> task. Workers use the module-level :data:`registry`."""

    def __init__(self) -> None:
        self._tasks: dict[str, Task] = {}

    @overload
    def task(self, fn: TaskFn, /) -> TaskFn: ...
    @overload
    def task(
        self,
        fn: None = None,
        /,
        *,
        name: str | None = None,
        rate_limited: bool = False,
        limit: str | None = None,
    ) -> Callable[[TaskFn], TaskFn]: ...

    def task(
        self,
        fn: TaskFn | None = None,
        /,
        *,
        name: str | None = None,
        rate_limited: bool = False,
        limit: str | None = None,
    ) -> TaskFn | Callable[[TaskFn], TaskFn]:
        """Register ``fn`` under ``name`` (default: the function's name). Returns ``fn``.

        ``rate_limited=True``: each attempt waits for a turn of the global limiter
        (``GLOBAL_RPM_LIMIT``); ``limit="openai"``: of the named limiter from ``LIMITS``.
        The wait holds a slot and the lease (extended as usual), but not the job's timeout."""
        if rate_limited and limit is not None:
            raise TaskDefinitionError(
                f"give rate_limited=True (the global limiter) or limit={limit!r}, not both"
            )
        chosen = GLOBAL_LIMITER if rate_limited else limit

        def register(fn: TaskFn) -> TaskFn:
            key = name or fn.__name__
            if key in self._tasks and (first := self._tasks[key].fn) is not fn:
                raise TaskDefinitionError(
                    f"task name {key!r} is registered twice: by {_where(first)} and by "
                    f"{_where(fn)}; give one of them another name (@task(name=...))"
                )
            self._tasks[key] = Task(key, fn, _runs_on_loop(fn), _payload_model(fn), chosen)
            return fn

        return register(fn) if fn is not None else register

    def get(self, name: str) -> Task | None:
        return self._tasks.get(name)

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._tasks))

    def limits(self) -> dict[str, str]:
        """Task name -> the limiter it waits for, for the rate-limited tasks."""
        return {name: t.limit for name, t in sorted(self._tasks.items()) if t.limit is not None}


registry = TaskRegistry()
task = registry.task

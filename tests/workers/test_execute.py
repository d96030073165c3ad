"""One attempt, run directly: whatever the task code raises or returns, it ends with an outcome."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, cast

import orjson
import pytest
from redis.asyncio import Redis
from structlog.testing import capture_logs

import tests.workers.hostile_tasks  # noqa: F401 - registers the hostile tasks
import workers.builtin  # noqa: F401 - registers the built-in tasks
from app.core.leases import Lease, Outcome, Result
from workers.execute import execute
from workers.settings import WorkerSettings
from workers.tasks import Context, Task, TaskRegistry, registry
from workers.threads import TaskThreads

SETTINGS = WorkerSettings(retry_backoff_s=1.0, retry_backoff_max_s=1.0)


@pytest.fixture
async def threads() -> AsyncIterator[TaskThreads]:
    pool = TaskThreads(size=2)
    yield pool
    pool.close()


def lease_of(type_: str, payload: Any = None, timeout_s: float = 5.0) -> Lease:
    return Lease(
        "1-0", "job-1", "default", "1", type_, orjson.dumps(payload).decode(), timeout_s, 3
    )


async def attempt(
    threads: TaskThreads,
    type_: str,
    payload: Any = None,
    timeout_s: float = 5.0,
    task: Task | None = None,
) -> Result:
    lease = lease_of(type_, payload, timeout_s)
    ctx = Context(lease.job_id, type_, lease.queue, 1, 3, "worker-1", cast(Redis, None))
    return await execute(task or registry.get(type_), lease, ctx, SETTINGS, threads)


def error(result: Result) -> dict[str, str]:
    assert result.outcome is Outcome.ERROR
    parsed: dict[str, str] = orjson.loads(result.data)
    return parsed


def retryable(result: Result) -> bool:
    return result.retry_delay_ms >= 0


async def test_an_exception_whose_str_raises_is_recorded_with_its_repr(
    threads: TaskThreads,
) -> None:
    result = await attempt(threads, "raises_unprintable")
    assert error(result) == {"type": "Unprintable", "message": "Unprintable('secret')"}
    assert retryable(result)


async def test_an_exception_without_str_or_repr_is_recorded_by_its_type_name(
    threads: TaskThreads,
) -> None:
    result = await attempt(threads, "raises_unrepresentable")
    assert error(result) == {"type": "Unrepresentable", "message": "Unrepresentable"}


async def test_lone_surrogates_in_an_error_become_replacement_characters(
    threads: TaskThreads,
) -> None:
    result = await attempt(threads, "raises_surrogate")
    assert error(result) == {"type": "FileNotFoundError", "message": "/data/caf\ufffd.csv"}
    assert retryable(result)


@pytest.mark.parametrize("type_", ["returns_object", "returns_surrogate"])
async def test_a_result_that_cannot_be_json_is_a_failure_not_retried(
    threads: TaskThreads, type_: str
) -> None:
    result = await attempt(threads, type_)
    err = error(result)
    assert err["type"] == "NonRetryable"
    assert err["message"].startswith("the task returned a value that is not JSON: ")
    assert not retryable(result)


@pytest.mark.parametrize(
    ("type_", "kind", "message"),
    [
        ("exits_async", "SystemExit", "3"),
        ("exits_sync", "SystemExit", "3"),
        ("interrupts_async", "KeyboardInterrupt", ""),
        ("interrupts_sync", "KeyboardInterrupt", ""),
        ("raises_base_exception", "Abort", "abort abort"),
        ("awaits_cancelled_helper", "CancelledError", ""),
    ],
)
async def test_any_base_exception_of_task_code_even_its_own_cancelled_error_is_a_retryable_failure(
    threads: TaskThreads, type_: str, kind: str, message: str
) -> None:
    result = await attempt(threads, type_)
    assert error(result) == {"type": kind, "message": message}
    assert retryable(result)


async def test_the_workers_own_cancel_propagates_whatever_task_code_turns_it_into(
    threads: TaskThreads,
) -> None:
    local = TaskRegistry()
    started = asyncio.Event()

    @local.task
    async def converts(ctx: Context, payload: Any) -> None:
        started.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            raise RuntimeError("cleanup failed") from None

    running = asyncio.create_task(attempt(threads, "converts", task=local.get("converts")))
    await started.wait()
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running


@pytest.mark.parametrize("type_", ["decorated", "returns_coroutine"])
async def test_an_awaitable_returned_by_a_plain_function_is_awaited(
    threads: TaskThreads, type_: str
) -> None:
    result = await attempt(threads, type_)
    assert (result.outcome, result.data) == (Outcome.OK, '"awaited"')


def test_a_sync_decorator_around_an_async_def_runs_on_the_loop() -> None:
    decorated = registry.get("decorated")
    assert decorated is not None
    assert decorated.is_async


async def test_a_timeout_starts_when_a_thread_takes_the_task() -> None:
    pool = TaskThreads(size=1)
    try:
        hog = asyncio.create_task(attempt(pool, "blocks", {"seconds": 1.0}, timeout_s=0.2))
        await asyncio.sleep(0.05)  # the hog has the only thread, for a second
        waiter = await attempt(pool, "blocks", {"seconds": 0.05}, timeout_s=0.6)
        assert error(await hog)["type"] == "JobTimeout"
    finally:
        pool.close()
    assert (waiter.outcome, waiter.data) == (Outcome.OK, "0.05")


async def test_a_timeout_is_recorded_as_a_retryable_job_timeout(threads: TaskThreads) -> None:
    result = await attempt(threads, "blocks", {"seconds": 0.5}, timeout_s=0.1)
    assert error(result) == {
        "type": "JobTimeout",
        "message": "ran longer than its timeout of 0.1 s",
    }
    assert retryable(result)


async def test_a_timeout_error_raised_by_task_code_is_not_the_jobs_timeout(
    threads: TaskThreads,
) -> None:
    local = TaskRegistry()

    @local.task
    async def upstream_slow(ctx: Context, payload: Any) -> None:
        raise TimeoutError("the upstream API did not answer")

    result = await attempt(threads, "upstream_slow", task=local.get("upstream_slow"))
    assert error(result) == {"type": "TimeoutError", "message": "the upstream API did not answer"}


async def test_an_unknown_task_type_is_a_retryable_failure_logged_as_an_error(
    threads: TaskThreads,
) -> None:
    with capture_logs() as logs:
        result = await attempt(threads, "nobody_knows")
    assert error(result) == {
        "type": "UnknownTask",
        "message": "no task named 'nobody_knows' in this worker",
    }
    assert retryable(result)
    assert {
        "event": "job.unknown_task",
        "log_level": "error",
        "job_id": "job-1",
        "queue": "default",
        "tenant": "",
        "attempt": 1,
        "type": "nobody_knows",
    } in logs


async def test_a_missing_payload_means_the_payload_models_defaults(threads: TaskThreads) -> None:
    result = await attempt(threads, "fail", None)
    assert error(result) == {"type": "RuntimeError", "message": "failed on purpose"}
    assert retryable(result)


async def test_a_missing_payload_with_required_fields_names_them(threads: TaskThreads) -> None:
    result = await attempt(threads, "blocks", None)
    assert error(result) == {
        "type": "NonRetryable",
        "message": "payload does not match BlockPayload: seconds: Field required",
    }
    assert not retryable(result)


async def test_a_payload_that_does_not_validate_lists_each_wrong_field_on_one_line(
    threads: TaskThreads,
) -> None:
    result = await attempt(threads, "sleep", {"seconds": "soon", "extra": 1})
    assert error(result)["message"] == (
        "payload does not match SleepPayload: seconds: Input should be a valid number, unable "
        "to parse string as a number; extra: Extra inputs are not permitted"
    )
    assert not retryable(result)

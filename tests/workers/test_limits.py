"""Rate-limited tasks in a worker: waiting for a turn keeps the lease, costs no timeout, and
stops at once for a cancel or a shutdown; named limiters keep their own pace."""

from __future__ import annotations

import time
from typing import Any

import pytest

from app.core.models import JobSpec, JobStatus
from app.core.queue import Queue
from app.process.startup import ConfigError
from tests.helpers import wait_status, wait_terminal
from tests.workers.conftest import StartWorker
from workers.settings import WorkerSettings
from workers.tasks import Context, TaskDefinitionError, TaskRegistry
from workers.worker import Worker

pytestmark = pytest.mark.redis

OPENAI = "openai:100/s"


@pytest.fixture
def started(tasks: TaskRegistry) -> dict[str, list[float]]:
    """Job type -> when its code began (monotonic), for the tasks registered here."""
    seen: dict[str, list[float]] = {"global": [], "openai": [], "free": []}

    async def record(ctx: Context, payload: Any) -> None:
        seen[ctx.type].append(time.monotonic())

    tasks.task(name="global", rate_limited=True)(record)
    tasks.task(name="openai", limit="openai")(record)
    tasks.task(name="free")(record)
    return seen


async def test_waiting_for_a_turn_keeps_the_lease_and_costs_no_timeout(
    queue: Queue, start_worker: StartWorker, started: dict[str, list[float]]
) -> None:
    # one turn per 2.5 s, leases of 1 s, a timeout of 0.5 s: the second job waits through
    # several leases and beyond its timeout before its code starts
    specs = [JobSpec(type="global", timeout_s=0.5) for _ in range(2)]
    async with start_worker(global_rpm_limit=1, global_rpm_period_s=2.5, limits=OPENAI):
        jobs = await queue.submit_many(specs)
        done = await wait_terminal(queue, [j.id for j in jobs], timeout_s=15)
    assert [j.status for j in done] == [JobStatus.SUCCEEDED] * 2
    assert [j.attempts for j in done] == [1, 1]
    first, second = started["global"]
    assert second - first >= 2.0


async def test_named_limiters_keep_their_own_pace(
    queue: Queue, start_worker: StartWorker, started: dict[str, list[float]]
) -> None:
    specs = [JobSpec(type=kind) for kind in ("openai", "free", "global") for _ in range(3)]
    async with start_worker(limits="openai:2/s", global_rpm_limit=0, worker_concurrency=10):
        jobs = await queue.submit_many(specs)
        done = await wait_terminal(queue, [j.id for j in jobs], timeout_s=15)
    assert {j.status for j in done} == {JobStatus.SUCCEEDED}
    openai = started["openai"]
    assert openai[2] - openai[0] >= 0.9  # 2 per second: the third half a second after the second
    # the global limiter at 0 is off, and a task with no limit never waits for another's turn
    assert max(started["global"] + started["free"]) < openai[2]


async def test_a_cancel_stops_a_job_waiting_for_its_turn_before_its_code_runs(
    queue: Queue, start_worker: StartWorker, started: dict[str, list[float]]
) -> None:
    async with start_worker(global_rpm_limit=1, global_rpm_period_s=600, limits=OPENAI):
        first, waiting = await queue.submit_many([JobSpec(type="global") for _ in range(2)])
        await wait_status(queue, first.id, JobStatus.SUCCEEDED)
        await wait_status(queue, waiting.id, JobStatus.RUNNING)
        await queue.cancel(waiting.id)
        await wait_status(queue, waiting.id, JobStatus.CANCELLED, timeout_s=5)
    assert len(started["global"]) == 1


async def test_a_stop_hands_back_jobs_waiting_for_their_turn_at_once(
    queue: Queue, start_worker: StartWorker, started: dict[str, list[float]]
) -> None:
    async with start_worker(
        global_rpm_limit=1, global_rpm_period_s=600, shutdown_grace_s=30, limits=OPENAI
    ):
        first, waiting = await queue.submit_many([JobSpec(type="global") for _ in range(2)])
        await wait_status(queue, first.id, JobStatus.SUCCEEDED)
        await wait_status(queue, waiting.id, JobStatus.RUNNING)
        stopping = time.monotonic()
    assert time.monotonic() - stopping < 5  # not the 30 s grace
    job = await queue.get(waiting.id)
    assert job is not None
    assert (job.status, job.attempts) == (JobStatus.PENDING, 0)  # released: it has not run
    assert len(started["global"]) == 1


def test_a_task_waiting_for_a_limiter_no_setting_defines_stops_the_worker(
    wsettings: WorkerSettings, tasks: TaskRegistry, started: dict[str, list[float]]
) -> None:
    with pytest.raises(ConfigError, match=r"openai \(limit='openai'\).*defined: none"):
        Worker(None, wsettings, tasks)  # type: ignore[arg-type]


def test_a_task_is_rate_limited_by_the_global_limiter_or_a_named_one_not_both() -> None:
    with pytest.raises(TaskDefinitionError, match="not both"):
        TaskRegistry().task(rate_limited=True, limit="openai")


async def test_redis_failing_while_waiting_is_waited_out(
    queue: Queue, start_worker: StartWorker, started: dict[str, list[float]]
) -> None:
    async with start_worker(global_rpm_limit=60, global_rpm_period_s=1, limits=OPENAI) as worker:
        real_take = worker.limiter.take
        failures = 2

        async def flaky(name: str, horizon_s: float) -> Any:
            nonlocal failures
            if failures:
                failures -= 1
                raise ConnectionError("refused")
            return await real_take(name, horizon_s)

        worker.limiter.take = flaky  # type: ignore[method-assign]
        job = await queue.submit(JobSpec(type="global"))
        await wait_status(queue, job.id, JobStatus.SUCCEEDED, timeout_s=10)
    assert failures == 0

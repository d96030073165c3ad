"""The worker's job lines: one INFO line per job started and succeeded, each naming the job, its
queue, attempt and worker; LOG_JOB_EVENTS=false turns them off for high throughput."""

from __future__ import annotations

from typing import Any

import pytest
import structlog
from structlog.testing import capture_logs

from app.core.models import JobSpec
from app.core.queue import Queue
from tests.helpers import wait_terminal
from tests.workers.conftest import StartWorker
from workers.tasks import Context, TaskRegistry

pytestmark = pytest.mark.redis


@pytest.fixture
def bound(tasks: TaskRegistry) -> list[dict[str, Any]]:
    """What task code sees bound to its log lines, per run."""
    seen: list[dict[str, Any]] = []

    @tasks.task
    async def note(ctx: Context, payload: Any) -> None:
        seen.append(structlog.contextvars.get_contextvars())

    return seen


async def test_each_job_logs_its_start_and_success_with_its_names(
    queue: Queue, start_worker: StartWorker, bound: list[dict[str, Any]]
) -> None:
    with capture_logs() as logs:
        async with start_worker() as worker:
            jobs = await queue.submit_many([JobSpec(type="note", tenant="acme") for _ in range(3)])
            await wait_terminal(queue, [j.id for j in jobs])
    for event in ("job.started", "job.succeeded"):
        lines = [e for e in logs if e["event"] == event]
        assert sorted(e["job_id"] for e in lines) == sorted(j.id for j in jobs)
        named = {
            (e["queue"], e["tenant"], e["attempt"], e["worker"], e["log_level"]) for e in lines
        }
        assert named == {("default", "acme", 1, worker.id, "info")}
    assert sorted(b["job_id"] for b in bound) == sorted(j.id for j in jobs)
    assert {(b["queue"], b["tenant"], b["worker"]) for b in bound} == {
        ("default", "acme", worker.id)
    }


async def test_job_lines_can_be_turned_off(
    queue: Queue, start_worker: StartWorker, bound: list[dict[str, Any]]
) -> None:
    with capture_logs() as logs:
        async with start_worker(log_job_events=False):
            jobs = await queue.submit_many([JobSpec(type="note") for _ in range(3)])
            await wait_terminal(queue, [j.id for j in jobs])
    assert [e for e in logs if e["event"].startswith("job.")] == []


async def test_job_lines_are_not_built_when_the_log_level_would_drop_them(
    queue: Queue, start_worker: StartWorker, bound: list[dict[str, Any]]
) -> None:
    with capture_logs() as logs:  # captures whatever is emitted, whatever the level
        async with start_worker(log_level="warning"):
            jobs = await queue.submit_many([JobSpec(type="note") for _ in range(3)])
            await wait_terminal(queue, [j.id for j in jobs])
    assert [e for e in logs if e["event"] in ("job.started", "job.succeeded")] == []

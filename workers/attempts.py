"""The attempts a worker runs: one asyncio task per lease, stopped for a stated reason, and the
slots they leave free. Sync tasks run on the worker's own :class:`TaskThreads`; a thread that
outlives its attempt (a timeout, a cancel) still holds a slot until it returns."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from enum import Enum

import structlog
from redis.asyncio import Redis

from app.core.leases import Lease, Outcome, Result
from workers.execute import error_json, execute
from workers.finisher import FinishBatcher
from workers.limits import Turns
from workers.presence import Counters
from workers.renewal import LeaseKey, LeaseRenewal, lease_key
from workers.settings import WorkerSettings
from workers.tasks import Context, TaskRegistry
from workers.threads import TaskThreads


class Stop(Enum):
    """Why the worker cancelled an attempt's asyncio task."""

    CANCEL = "cancel"  # the job's cancel was asked: record it cancelled
    LOST = "lost"  # another worker owns the lease now: record nothing
    SHUTDOWN = "shutdown"  # draining ran out of time: release the lease
    ABANDON = "abandon"  # its thread outlived the shutdown limit, or a crash: let it expire


@dataclass(eq=False)
class Running:
    lease: Lease
    sync: bool  # runs in a thread that cancelling cannot stop
    task: asyncio.Task[None] | None = None
    stop: Stop | None = None
    waiting_turn: bool = False
    """Waiting for its rate limiter's turn: its code has not started."""


class Attempts:
    """Starts, tracks and stops attempts; an ended one's result goes to the finish batcher."""

    def __init__(
        self,
        worker_id: str,
        redis: Redis,
        settings: WorkerSettings,
        tasks: TaskRegistry,
        renewal: LeaseRenewal,
        finisher: FinishBatcher,
        counters: Counters,
        log: structlog.typing.FilteringBoundLogger,
        turns: Turns,
    ) -> None:
        self._worker_id = worker_id
        self._redis = redis
        self._settings = settings
        self._tasks = tasks
        self._renewal = renewal
        self._finisher = finisher
        self._counters = counters
        self._log = log
        self._turns = turns
        self._running: dict[LeaseKey, Running] = {}
        self.slot_freed = asyncio.Event()
        """Set whenever a slot may have freed: an attempt ended or a lingering thread returned."""
        self.threads = TaskThreads(settings.worker_concurrency, on_idle=self.slot_freed.set)
        self.accepting = True
        self.released: list[Lease] = []
        """Stopped at shutdown: to hand back."""
        self.abandoned: list[Lease] = []
        """Stopped while their code still runs: never handed back, left to expire."""

    def __len__(self) -> int:
        return len(self._running)

    def running(self) -> list[Running]:
        return list(self._running.values())

    def free(self) -> int:
        """Slots for new attempts: threads still running code of ended attempts count too."""
        if not self.accepting:
            return 0
        return self._settings.worker_concurrency - len(self._running) - self.threads.lingering

    def spawn(self, leases: list[Lease]) -> None:
        """Run each lease this worker does not hold yet (running, or its outcome unrecorded)."""
        for lease in leases:
            if self._renewal.holds(lease):
                continue
            task = self._tasks.get(lease.type)
            running = Running(lease, sync=task is not None and not task.is_async)
            self._running[lease_key(lease)] = running
            self._renewal.track(lease)
            running.task = asyncio.create_task(self._attempt(running))

    def stop_lease(self, lease: Lease, why: Stop) -> None:
        running = self._running.get(lease_key(lease))
        if running is not None and running.lease == lease:
            self.stop(running, why)

    def stop(self, running: Running, why: Stop) -> None:
        if running.task is not None and not running.task.done() and running.stop is None:
            running.stop = why
            running.task.cancel()

    async def _attempt(self, running: Running) -> None:
        lease = running.lease
        ctx = Context(
            lease.job_id,
            lease.type,
            lease.queue,
            lease.attempt,
            lease.max_attempts,
            self._worker_id,
            self._redis,
        )
        # task code's own log lines carry these too: the attempt's task has its own context
        structlog.contextvars.bind_contextvars(**lease.describe(), worker=self._worker_id)
        result: Result | None
        try:
            result = await self._execute(running, ctx)
        except asyncio.CancelledError:
            result = self._after_stop(running)
        self._running.pop(lease_key(lease), None)
        # The slot frees now, not when the outcome is recorded: reading new entries overlaps
        # with recording outcomes. Pending entries may then exceed the concurrency by one batch.
        self.slot_freed.set()
        if result is None:
            self._renewal.untrack(lease)  # released, lost or abandoned: not this worker's now
        else:
            self._finisher.add(result)  # which untracks it once recorded

    async def _execute(self, running: Running, ctx: Context) -> Result:
        """The one call into ``workers.execute``, after the task's rate-limit turn if it has one."""
        lease = running.lease
        task = self._tasks.get(lease.type)
        waited = 0.0
        if task is not None and task.limit is not None:
            running.waiting_turn = True
            asked = time.monotonic()
            await self._turns.wait(task.limit)
            waited = round(time.monotonic() - asked, 3)
            running.waiting_turn = False
        if self._settings.job_lines:
            self._log.info("job.started", type=lease.type, limit_wait_s=waited, **lease.describe())
        return await execute(task, lease, ctx, self._settings, self.threads)

    def _after_stop(self, running: Running) -> Result | None:
        lease = running.lease
        if running.stop is Stop.CANCEL:
            self._log.info("job.cancelled", **lease.describe())
            return Result(
                lease, Outcome.CANCELLED, error_json("Cancelled", "cancelled while running")
            )
        if running.stop is Stop.SHUTDOWN:
            self.released.append(lease)
        elif running.stop is Stop.ABANDON:
            self.abandoned.append(lease)
        else:
            self._counters.lost += 1
            self._log.warning(
                "lease.lost", note="another worker owns it; stopped", **lease.describe()
            )
        return None

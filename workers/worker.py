"""The worker engine: lease entries, run them, extend, reclaim, finish, drain.

Loops, each doing one thing: ``_lease_loop`` reads new entries for the free slots and starts them;
``_finish_loop`` records outcomes in batches; ``_heartbeat_loop`` extends leases, stops cancelled
or lost attempts and refreshes the registry; ``_reclaim_loop`` takes over entries of dead workers;
``_mover_loop`` moves due delayed jobs. A Redis outage pauses every loop with capped backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import Enum

import orjson
import structlog
from redis import exceptions as redis_errors
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from app.core.leases import Lease, LeaseClient, LeaseState, Outcome, Result
from workers.execute import error_json, execute
from workers.settings import WorkerSettings
from workers.tasks import Context, TaskRegistry
from workers.threads import TaskThreads

log = structlog.get_logger("tide.worker")

READ_BLOCK_MS = 1000
"""Longest blocking read: also how long a stop waits for the lease loop to notice it."""
MOVER_MAX_SLEEP_S = 0.5
PRUNE_EVERY_S = 60.0
OUTAGE = (redis_errors.ConnectionError, redis_errors.TimeoutError, OSError)


class Stop(Enum):
    """Why the worker cancelled an attempt's asyncio task."""

    CANCEL = "cancel"  # the job's cancel was asked: record it cancelled
    LOST = "lost"  # another worker owns the lease now: record nothing
    SHUTDOWN = "shutdown"  # draining ran out of time: release the lease


@dataclass(eq=False)
class Running:
    lease: Lease
    task: asyncio.Task[None] | None = None
    stop: Stop | None = None


@dataclass
class Counters:
    processed: int = 0
    failed: int = 0
    lost: int = 0
    deleted_entries: int = 0
    started_at: float = field(default_factory=time.time)


def new_worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{os.urandom(2).hex()}"


class Backoff:
    """Capped exponential wait between attempts to reach Redis again."""

    def __init__(self, first: float = 0.1, cap: float = 5.0) -> None:
        self.first, self.cap, self.current = first, cap, first

    def next(self) -> float:
        wait, self.current = self.current, min(self.cap, self.current * 2)
        return wait

    def reset(self) -> None:
        self.current = self.first


class Worker:
    def __init__(
        self,
        redis: Redis,
        settings: WorkerSettings,
        tasks: TaskRegistry,
        worker_id: str | None = None,
    ) -> None:
        self.settings = settings
        self.tasks = tasks
        self.id = worker_id or new_worker_id()
        self.redis = redis
        self.leases = LeaseClient(redis, settings, self.id)
        self.queues = settings.queue_list
        self.counters = Counters()
        self.threads = TaskThreads(settings.worker_concurrency)
        self._free = settings.worker_concurrency
        self._slot_freed = asyncio.Event()
        self._lease_lock = asyncio.Lock()
        self._running: set[Running] = set()
        self._done: list[Result] = []
        self._done_ready = asyncio.Event()
        self._to_release: list[Lease] = []
        self._stopping = asyncio.Event()
        self._drained = asyncio.Event()
        self._closing = False
        self._last_prune = 0.0
        self.log = log.bind(worker=self.id)

    # -- lifecycle -------------------------------------------------------------------------

    def request_stop(self) -> None:
        """Stop leasing and drain; safe to call from a signal handler."""
        if not self._stopping.is_set():
            self.log.info("worker.stopping", running=len(self._running))
        self._stopping.set()
        self._slot_freed.set()

    async def run(self) -> None:
        """Run until :meth:`request_stop`, then drain, release what is left and deregister."""
        if not await self._until_redis(self._setup):
            self.log.info("worker.stopped", note="stopped before Redis could be reached")
            return
        self.log.info(
            "worker.started",
            queues=self.queues,
            concurrency=self.settings.worker_concurrency,
            tasks=list(self.tasks),
        )
        finisher = asyncio.create_task(self._finish_loop())
        beat = asyncio.create_task(
            self._loop(self._heartbeat, self.settings.heartbeat_interval_s, self._drained)
        )
        side = [
            asyncio.create_task(
                self._loop(self._reclaim, self.settings.reclaim_interval_s, self._stopping)
            ),
            asyncio.create_task(self._loop(self._move_due, 0.0, self._stopping)),
        ]
        await self._lease_loop()
        await asyncio.gather(*side)
        await self._drain()
        self._drained.set()
        await beat
        self._closing = True
        self._done_ready.set()
        try:
            await asyncio.wait_for(finisher, timeout=10)
        except TimeoutError:
            self.log.error("worker.unfinished_outcomes", count=len(self._done))
        await self._release_leftovers()
        self.log.info("worker.stopped", processed=self.counters.processed)

    async def _setup(self) -> None:
        for queue in self.queues:
            await self.leases.ensure_group(queue)
        await self._register()

    async def _drain(self) -> None:
        """Let running attempts finish for up to the grace period, then stop the rest."""
        tasks = [r.task for r in self._running if r.task is not None]
        if tasks:
            self.log.info(
                "worker.draining", running=len(tasks), grace_s=self.settings.shutdown_grace_s
            )
            await asyncio.wait(tasks, timeout=self.settings.shutdown_grace_s)
        late = [r for r in self._running if r.task is not None and not r.task.done()]
        for running in late:
            self._stop(running, Stop.SHUTDOWN)
        await asyncio.gather(*(r.task for r in late if r.task is not None), return_exceptions=True)

    async def _release_leftovers(self) -> None:
        try:
            if self._to_release:
                released = await self.leases.release(self._to_release)
                self.log.info("worker.released", leases=released)
            await self.leases.register("", self._stale_ms)
        except OUTAGE as exc:
            self.log.error("worker.release_failed", error=str(exc), leases=len(self._to_release))

    # -- loops -----------------------------------------------------------------------------

    async def _until_redis(self, step: Callable[[], Awaitable[None]]) -> bool:
        """Retry ``step`` through a Redis outage; False if asked to stop before it succeeded."""
        backoff = Backoff()
        while not self._stopping.is_set():
            try:
                await step()
                return True
            except OUTAGE as exc:
                wait = backoff.next()
                self.log.warning("redis.unreachable", error=str(exc), retry_in_s=wait)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), wait)
        return False

    async def _loop(
        self, step: Callable[[], Awaitable[float | None]], interval: float, until: asyncio.Event
    ) -> None:
        """Call ``step`` until ``until`` is set, sleeping what it asks or ``interval``.

        Never cancelled mid-call: a script whose reply is lost would leave its work half known.
        """
        backoff = Backoff()
        while not until.is_set():
            try:
                wait = await step()
                backoff.reset()
            except OUTAGE as exc:
                wait = backoff.next()
                self.log.warning("redis.unreachable", error=str(exc), retry_in_s=wait)
            except ResponseError as exc:
                wait = await self._on_response_error(exc, backoff)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(until.wait(), interval if wait is None else wait)

    async def _on_response_error(self, exc: ResponseError, backoff: Backoff) -> float:
        if "NOGROUP" in str(exc):  # Redis lost its data (restart without persistence)
            self.log.warning("redis.group_missing", error=str(exc))
            await self._setup()
            return 0.0
        wait = backoff.next()
        self.log.error("redis.error", error=str(exc), retry_in_s=wait)
        return wait

    async def _lease_loop(self) -> None:
        backoff = Backoff()
        while not self._stopping.is_set():
            if self._free <= 0:
                self._slot_freed.clear()
                await self._slot_freed.wait()
                continue
            try:
                await self._lease_new()
                backoff.reset()
            except OUTAGE as exc:
                wait = backoff.next()
                self.log.warning("redis.unreachable", error=str(exc), retry_in_s=wait)
                await asyncio.sleep(wait)
            except ResponseError as exc:
                await asyncio.sleep(await self._on_response_error(exc, backoff))

    async def _lease_new(self) -> None:
        async with self._lease_lock:
            free = self._free  # the reclaim loop may have taken the last slot meanwhile
            if free <= 0:
                return
            asked = time.monotonic()
            entries = await self.leases.read(self.queues, free, READ_BLOCK_MS)
            if entries:
                self._spawn(await self.leases.start(entries))
                return
        if time.monotonic() - asked < READ_BLOCK_MS / 10_000:
            # an empty answer long before the block ran out: a server that ignores BLOCK
            # (the embedded fakeredis of `tide dev`) must not make this loop spin
            await asyncio.sleep(0.05)

    async def _reclaim(self) -> float | None:
        """Take over entries idle for a whole lease: their worker died or released them."""
        for queue in self.queues:
            cursor = "0-0"
            while not self._stopping.is_set():
                async with self._lease_lock:
                    if self._free <= 0:
                        return None
                    claimed = await self.leases.claim(queue, self._free, cursor)
                    self._spawn(claimed.leases)
                if claimed.leases:
                    self.log.info(
                        "lease.reclaimed", queue=queue, jobs=[x.job_id for x in claimed.leases]
                    )
                if claimed.deleted:
                    self.counters.deleted_entries += len(claimed.deleted)
                    self.log.error(
                        "lease.entries_deleted",
                        queue=queue,
                        entries=claimed.deleted,
                        note="deleted from the stream while pending; their jobs were not run",
                    )
                cursor = claimed.cursor
                if cursor == "0-0":
                    break
        if time.monotonic() - self._last_prune > PRUNE_EVERY_S:
            self._last_prune = time.monotonic()
            idle_ms = int(self.settings.lease_timeout_s * 10_000)
            for queue in self.queues:
                await self.leases.prune_consumers(queue, idle_ms)
        return None

    async def _move_due(self) -> float:
        moved, wait_ms = await self.leases.move_due()
        if moved:
            self.log.debug("delayed.moved", jobs=moved)
            return 0.0 if moved >= 1000 else 0.01
        return MOVER_MAX_SLEEP_S if wait_ms < 0 else min(MOVER_MAX_SLEEP_S, wait_ms / 1000)

    async def _heartbeat(self) -> None:
        running = list(self._running)
        if running:
            states = await self.leases.extend([r.lease for r in running])
            for r, state in zip(running, states, strict=True):
                if state is LeaseState.LOST:
                    self._stop(r, Stop.LOST)
                elif state is LeaseState.CANCEL_REQUESTED:
                    self._stop(r, Stop.CANCEL)
        await self._register()

    async def _finish_loop(self) -> None:
        """Record outcomes in batches: everything that finished while the last batch was sent."""
        backoff = Backoff()
        while True:
            await self._done_ready.wait()
            self._done_ready.clear()
            if not self._done:
                if self._closing:
                    return
                continue
            batch, self._done = self._done, []
            try:
                recorded = await self.leases.finish(batch)
            except OUTAGE as exc:
                self._done = batch + self._done
                wait = backoff.next()
                self.log.warning("redis.unreachable", error=str(exc), retry_in_s=wait)
                await asyncio.sleep(wait)
                self._done_ready.set()
                continue
            backoff.reset()
            for result, ok in zip(batch, recorded, strict=True):
                if not ok:
                    self.counters.lost += 1
                    self.log.warning(
                        "lease.lost", job=result.lease.job_id, discarded=result.outcome.value
                    )
                elif result.outcome is Outcome.ERROR:
                    self.counters.failed += 1
                    self.log.warning(
                        "job.attempt_failed",
                        job=result.lease.job_id,
                        type=result.lease.type,
                        attempt=result.lease.attempt,
                        max_attempts=result.lease.max_attempts,
                        error=result.data,
                    )
            self.counters.processed += len(batch)
            if self._done:
                self._done_ready.set()

    # -- attempts --------------------------------------------------------------------------

    def _spawn(self, leases: list[Lease]) -> None:
        for lease in leases:
            running = Running(lease)
            self._running.add(running)
            self._free -= 1
            running.task = asyncio.create_task(self._attempt(running))

    async def _attempt(self, running: Running) -> None:
        lease = running.lease
        ctx = Context(
            lease.job_id,
            lease.type,
            lease.queue,
            lease.attempt,
            lease.max_attempts,
            self.id,
            self.redis,
        )
        result: Result | None
        try:
            result = await execute(
                self.tasks.get(lease.type), lease, ctx, self.settings, self.threads
            )
        except asyncio.CancelledError:
            result = self._after_stop(running)
        self._running.discard(running)
        # The slot frees now, not when the outcome is recorded: reading new entries overlaps
        # with recording outcomes. Pending entries may then exceed the concurrency by one batch.
        self._free_slots(1)
        if result is not None:
            self._done.append(result)
            self._done_ready.set()

    def _after_stop(self, running: Running) -> Result | None:
        lease = running.lease
        if running.stop is Stop.CANCEL:
            self.log.info("job.cancelled", job=lease.job_id)
            return Result(
                lease, Outcome.CANCELLED, error_json("Cancelled", "cancelled while running")
            )
        if running.stop is Stop.SHUTDOWN:
            self._to_release.append(lease)
        else:
            self.counters.lost += 1
            self.log.warning("lease.lost", job=lease.job_id, note="another worker owns it; stopped")
        return None

    def _stop(self, running: Running, why: Stop) -> None:
        if running.task is not None and not running.task.done() and running.stop is None:
            running.stop = why
            running.task.cancel()

    def _free_slots(self, n: int) -> None:
        self._free += n
        self._slot_freed.set()

    # -- registry --------------------------------------------------------------------------

    @property
    def _stale_ms(self) -> int:
        return int(max(3 * self.settings.heartbeat_interval_s, 10.0) * 1000)

    async def _register(self) -> None:
        info = {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "queues": self.queues,
            "concurrency": self.settings.worker_concurrency,
            "busy": len(self._running),
            "processed": self.counters.processed,
            "failed": self.counters.failed,
            "lost": self.counters.lost,
            "deleted_entries": self.counters.deleted_entries,
            "started_at": self.counters.started_at,
            "last_seen": time.time(),
        }
        await self.leases.register(orjson.dumps(info).decode(), self._stale_ms)

"""The worker engine: the composition of its loops, reading top to bottom in :meth:`Worker.run`.

Each concern has its own module: ``loops`` (the one outage policy every loop runs under),
``attempts`` (running leased jobs in the free slots), ``renewal`` (extending leases),
``finisher`` (recording outcomes in batches), ``reclaim`` (taking over dead workers' entries),
``presence`` (the live-worker list). Here: leasing new entries, adopting attempts whose start
reply was lost, draining, releasing and deregistering at shutdown.
"""

from __future__ import annotations

import asyncio
import time

import structlog
from redis.asyncio import Redis

from app.core.leases import LeaseClient
from app.core.limiter import Limiter
from app.core.queue import Queue
from workers.attempts import Attempts, Stop
from workers.finisher import FinishBatcher
from workers.limits import Turns, check_limits
from workers.loops import LoopRunner, Step
from workers.presence import Counters, Presence, new_worker_id
from workers.reclaim import Reclaimer
from workers.renewal import LeaseRenewal
from workers.settings import WorkerSettings
from workers.tasks import TaskRegistry

log = structlog.get_logger("tide.worker")

READ_BLOCK_MS = 1000
"""Longest blocking read: also how long a stop waits for the lease loop to notice it."""
MOVER_MAX_SLEEP_S = 0.5
FINISH_AT_STOP_S = 10.0
"""How long a stopping worker keeps trying to record the last outcomes."""


class ThreadsOutlivedShutdown(RuntimeError):
    """Sync task threads still ran at the shutdown limit: the process must exit non-zero,
    without releasing their leases, which then expire."""


class Worker:
    def __init__(
        self,
        redis: Redis,
        settings: WorkerSettings,
        tasks: TaskRegistry,
        worker_id: str | None = None,
    ) -> None:
        rates = settings.rates
        check_limits(tasks, rates)
        self.settings = settings
        self.tasks = tasks
        self.id = worker_id or new_worker_id()
        self.redis = redis
        self.queues = settings.queue_list
        self.log = log.bind(worker=self.id)
        self.counters = Counters()
        self.leases = LeaseClient(redis, settings, self.id)
        self.renewal = LeaseRenewal(self.leases)
        self.finisher = FinishBatcher(
            self.leases, self.renewal, self.counters, self.log, settings.job_lines
        )
        self.limiter = Limiter(redis, self.leases.keys, rates)
        self.attempts = Attempts(
            self.id,
            redis,
            settings,
            tasks,
            self.renewal,
            self.finisher,
            self.counters,
            self.log,
            Turns(self.limiter, self.log),
        )
        self.presence = Presence(self.leases, settings, self.counters)
        self.runner = LoopRunner(self.log, self._create_groups)
        self._lease_lock = asyncio.Lock()
        self.reclaimer = Reclaimer(
            self.leases,
            settings,
            self.counters,
            self.log,
            self._lease_lock,
            self.attempts.free,
            self.attempts.spawn,
            Queue(redis, settings).forget_idle_queues,
        )
        self._stopping = asyncio.Event()
        self._drained = asyncio.Event()
        self._loops: list[asyncio.Task[None]] = []
        self._adopt_due = False

    # -- lifecycle -------------------------------------------------------------------------

    def request_stop(self) -> None:
        """Stop leasing and drain; safe to call from a signal handler."""
        if not self._stopping.is_set():
            self.log.info("worker.stopping", running=len(self.attempts))
        self._stopping.set()
        self.attempts.accepting = False
        self.attempts.slot_freed.set()

    async def run(self) -> None:
        """Run until :meth:`request_stop`, then drain, release what is left and deregister.

        Anything escaping stops every loop and attempt before it is raised: a crash must end the
        process, not leave it half alive."""
        if not self.queues:
            raise ValueError("the worker has no queues to serve")
        try:
            await self._serve()
        except BaseException:
            self._halt()
            raise
        finally:
            self.attempts.threads.close()
        if abandoned := self.attempts.abandoned:
            raise ThreadsOutlivedShutdown(
                f"{len(abandoned)} sync task thread(s) still ran "
                f"{self.settings.thread_shutdown_limit_s:g} s after the grace period; their "
                "leases were kept, not released, and expire: "
                + ", ".join(lease.job_id for lease in abandoned)
            )

    async def _serve(self) -> None:
        if not await self.runner.until_ok("setup", self._setup, self._stopping):
            self.log.info("worker.stopped", note="stopped before Redis could be reached")
            return
        self.log.info(
            "worker.started",
            queues=self.queues,
            concurrency=self.settings.worker_concurrency,
            tasks=list(self.tasks),
        )
        finish = self._start_loop("finish", self.finisher.step, 0.0, self.finisher.finished)
        beat = self._start_loop(
            "heartbeat", self._heartbeat, self.settings.heartbeat_interval_s, self._drained
        )
        side = [
            self._start_loop(
                "reclaim", self._reclaim, self.settings.reclaim_interval_s, self._stopping
            ),
            self._start_loop("mover", self._move_due, 0.0, self._stopping),
        ]
        await self.runner.loop("lease", self._lease_new, 0.0, self._stopping)
        await asyncio.gather(*side)
        await self._drain()
        self._drained.set()
        await beat
        self.finisher.close()
        await asyncio.wait([finish], timeout=FINISH_AT_STOP_S)
        if not finish.done():
            finish.cancel()
            self.log.error("worker.unfinished_outcomes", count=len(self.finisher))
        await self._release_leftovers()
        self.log.info("worker.stopped", processed=self.counters.processed)

    def _start_loop(
        self, name: str, step: Step, interval: float, until: asyncio.Event
    ) -> asyncio.Task[None]:
        task = asyncio.create_task(self.runner.loop(name, step, interval, until))
        self._loops.append(task)
        return task

    def _halt(self) -> None:
        """After a crash: cancel every loop and attempt; their leases expire."""
        for task in self._loops:
            task.cancel()
        for running in self.attempts.running():
            self.attempts.stop(running, Stop.ABANDON)

    async def _setup(self) -> None:
        await self._create_groups()
        await self.presence.announce(busy=0)

    async def _create_groups(self) -> None:
        for queue in self.queues:
            await self.leases.ensure_group(queue)

    async def _drain(self) -> None:
        """Let attempts finish for up to the grace period, then stop the rest. A sync task's
        thread cannot be stopped: its lease is kept (and extended) while it runs, up to a limit
        after which it is abandoned to expire, never released while its code still runs. An
        attempt still waiting for its rate-limit turn has not started: it is released at once."""
        for running in self.attempts.running():
            if running.waiting_turn:
                self.attempts.stop(running, Stop.SHUTDOWN)
        tasks = [r.task for r in self.attempts.running() if r.task is not None]
        if tasks:
            self.log.info(
                "worker.draining", running=len(tasks), grace_s=self.settings.shutdown_grace_s
            )
            await asyncio.wait(tasks, timeout=self.settings.shutdown_grace_s)
        late = [r for r in self.attempts.running() if r.task is not None and not r.task.done()]
        for running in late:
            if not running.sync:
                self.attempts.stop(running, Stop.SHUTDOWN)
        threads = [r.task for r in late if r.sync and r.task is not None]
        if threads:
            limit = self.settings.thread_shutdown_limit_s
            self.log.warning("worker.waiting_for_threads", running=len(threads), limit_s=limit)
            await asyncio.wait(threads, timeout=limit)
        for running in late:
            if running.sync:
                self.attempts.stop(running, Stop.ABANDON)
        await asyncio.gather(*(r.task for r in late if r.task is not None), return_exceptions=True)

    async def _release_leftovers(self) -> None:
        try:
            if leftovers := self.attempts.released:
                released = await self.leases.release(leftovers)
                self.log.info("worker.released", leases=released)
            await self.presence.leave()
        except Exception as exc:
            leases = len(self.attempts.released)
            self.log.error("worker.release_failed", error=repr(exc), leases=leases)

    # -- loops -----------------------------------------------------------------------------

    async def _lease_new(self) -> float:
        if self._adopt_due:
            await self._adopt()
        attempts = self.attempts
        if attempts.free() <= 0:
            attempts.slot_freed.clear()
            if attempts.free() <= 0 and not self._stopping.is_set():
                await attempts.slot_freed.wait()
            return 0.0
        async with self._lease_lock:
            free = attempts.free()  # the reclaim loop may have taken the last slot meanwhile
            if free <= 0:
                return 0.0
            asked = time.monotonic()
            try:
                entries = await self.leases.read(self.queues, free, READ_BLOCK_MS)
                if entries:
                    attempts.spawn(await self.leases.start(entries))
                    return 0.0
            except Exception:
                self._adopt_due = True  # start may have run without its reply arriving
                raise
        # an empty answer long before the block ran out: a server that ignores BLOCK (the
        # embedded fakeredis of `tide dev`) must not make this loop spin
        return 0.05 if time.monotonic() - asked < READ_BLOCK_MS / 10_000 else 0.0

    async def _adopt(self) -> None:
        """Run the attempts this worker began without hearing so (a lost reply)."""
        self._adopt_due = False  # best effort: if this fails too, the lease runs out and the
        # reclaim loop hands the entries back as this worker's own
        async with self._lease_lock:
            limit = 2 * self.settings.worker_concurrency + 100
            adopted = [
                lease
                for lease in await self.leases.adopt(self.queues, limit)
                if not self.renewal.holds(lease)
            ]
            self.attempts.spawn(adopted)
        if adopted:
            self.log.warning("lease.adopted", jobs=[lease.job_id for lease in adopted])

    async def _reclaim(self) -> None:
        try:
            await self.reclaimer.step()
        except Exception:
            self._adopt_due = True  # claim may have run without its reply arriving
            self.attempts.slot_freed.set()
            raise

    async def _move_due(self) -> float:
        moved, wait_ms = await self.leases.move_due()
        if moved:
            self.log.debug("delayed.moved", jobs=moved)
            return 0.0 if moved >= 1000 else 0.01
        return MOVER_MAX_SLEEP_S if wait_ms < 0 else min(MOVER_MAX_SLEEP_S, wait_ms / 1000)

    async def _heartbeat(self) -> None:
        beat = await self.renewal.beat()
        for lease in beat.lost:
            self.attempts.stop_lease(lease, Stop.LOST)
        for lease in beat.cancel_requested:
            self.attempts.stop_lease(lease, Stop.CANCEL)
        await self.presence.announce(busy=len(self.attempts))

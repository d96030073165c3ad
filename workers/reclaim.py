"""Reclaim: take over entries idle for a whole lease (their worker died or released them), by
XAUTOCLAIM following its cursor; and, once a minute, prune the consumers of workers that are gone
and forget queues that are empty and idle."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import structlog

from app.core.leases import Lease, LeaseClient
from workers.presence import Counters
from workers.settings import WorkerSettings

PRUNE_EVERY_S = 60.0


class Reclaimer:
    """One sweep over every queue per :meth:`step`.

    ``take`` hands claimed leases to the worker, which runs those it does not run yet; ``free``
    says how many more it can take. Both are called under ``lock``, the worker's lease lock.
    """

    def __init__(
        self,
        leases: LeaseClient,
        settings: WorkerSettings,
        counters: Counters,
        log: structlog.typing.FilteringBoundLogger,
        lock: asyncio.Lock,
        free: Callable[[], int],
        take: Callable[[list[Lease]], None],
        forget_idle_queues: Callable[[], Awaitable[list[str]]],
    ) -> None:
        self._client = leases
        self._settings = settings
        self._counters = counters
        self._log = log
        self._lock = lock
        self._free = free
        self._take = take
        self._forget_idle_queues = forget_idle_queues
        self._last_prune = 0.0

    async def step(self) -> None:
        for queue in self._settings.queue_list:
            if not await self._sweep(queue):
                return
        if time.monotonic() - self._last_prune > PRUNE_EVERY_S:
            self._last_prune = time.monotonic()
            idle_ms = int(self._settings.lease_timeout_s * 10_000)
            for queue in self._settings.queue_list:
                await self._client.prune_consumers(queue, idle_ms)
            if forgotten := await self._forget_idle_queues():
                self._log.info("queues.forgotten", queues=forgotten)

    async def _sweep(self, queue: str) -> bool:
        """Follow the cursor to its end; False when the slots ran out first."""
        cursor = "0-0"
        while True:
            async with self._lock:
                if self._free() <= 0:
                    return False
                claimed = await self._client.claim(queue, self._free(), cursor)
                self._take(claimed.own + claimed.leases)
            if claimed.leases:
                self._log.info(
                    "lease.reclaimed", queue=queue, jobs=[x.job_id for x in claimed.leases]
                )
            if claimed.deleted:
                self._counters.deleted_entries += len(claimed.deleted)
                self._log.error(
                    "lease.entries_deleted",
                    queue=queue,
                    entries=claimed.deleted,
                    note="deleted from the stream while pending; their jobs were not run",
                )
            cursor = claimed.cursor
            if cursor == "0-0":
                return True

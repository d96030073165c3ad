"""The finish batcher: outcomes of ended attempts, recorded in batches by finish.lua.

Everything that ends while one batch is being sent goes into the next. A batch stays queued until
Redis has answered for it, so an error of any kind delays outcomes but never drops them.
"""

from __future__ import annotations

import asyncio

import structlog

from app.core.leases import LeaseClient, Outcome, Result
from workers.presence import Counters
from workers.renewal import LeaseRenewal


class FinishBatcher:
    """Collects results; :meth:`step` records what has gathered; :meth:`close` ends it.

    A lease stays tracked by ``renewal`` (extended, and known as this worker's) until its outcome
    is recorded: the attempt has ended, but the job is not done before Redis says so.
    """

    def __init__(
        self,
        leases: LeaseClient,
        renewal: LeaseRenewal,
        counters: Counters,
        log: structlog.typing.FilteringBoundLogger,
        job_events: bool = True,
    ) -> None:
        self._client = leases
        self._renewal = renewal
        self._counters = counters
        self._log = log
        self._job_events = job_events
        self._queued: list[Result] = []
        self._wake = asyncio.Event()
        self._closing = False
        self.finished = asyncio.Event()
        """Set once closed with nothing left to record."""

    def __len__(self) -> int:
        return len(self._queued)

    def add(self, result: Result) -> None:
        self._queued.append(result)
        self._wake.set()

    def close(self) -> None:
        """No more results will come: record what is queued, then finish."""
        self._closing = True
        self._wake.set()

    async def step(self) -> float:
        """Wait for results (or close), then record one batch. Raises with the batch kept."""
        while not self._queued and not self._closing:
            self._wake.clear()
            await self._wake.wait()
        if not self._queued:
            self.finished.set()
            return 0.0
        batch = list(self._queued)
        recorded = await self._client.finish(batch)
        del self._queued[: len(batch)]
        self._report(batch, recorded)
        return 0.0

    def _report(self, batch: list[Result], recorded: list[bool]) -> None:
        for result, ok in zip(batch, recorded, strict=True):
            lease = result.lease
            self._renewal.untrack(lease)
            if not ok:
                self._counters.lost += 1
                self._log.warning("lease.lost", discarded=result.outcome.value, **lease.describe())
            elif result.outcome is Outcome.ERROR:
                self._counters.failed += 1
                self._log.warning(
                    "job.attempt_failed",
                    type=lease.type,
                    max_attempts=lease.max_attempts,
                    error=result.data,
                    **lease.describe(),
                )
            elif result.outcome is Outcome.OK and self._job_events:
                self._log.info("job.succeeded", type=lease.type, **lease.describe())
        self._counters.processed += len(batch)

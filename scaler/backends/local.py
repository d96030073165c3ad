"""The ``local`` backend: ``tide worker`` processes on this machine (``tide dev``, one-box setups).

Each worker is its own :class:`WorkerFleet` of one, so any one can be stopped alone: scaling down
sends the newest a SIGTERM and lets it drain in the background (its jobs finish, or are handed
back when the grace runs out), never blocking the poll loop. The fleet restarts a worker that
crashed, with backoff; one that gave up (bad configuration, no start) is replaced at the next poll.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import structlog

from app.process.fleet import WorkerFleet, worker_command
from scaler.backends import BackendError
from scaler.settings import ScalerSettings

log = structlog.get_logger("tide.scaler")


class LocalBackend:
    name = "local"

    def __init__(
        self,
        settings: ScalerSettings,
        env: Mapping[str, str],
        hurry: asyncio.Event | None = None,
    ) -> None:
        self.command = worker_command(
            settings.local_worker_concurrency, settings.local_worker_queues
        )
        if settings.local_worker_tasks:
            self.command += ["--tasks", settings.local_worker_tasks]
        # the workers use the scaler's Redis and key prefix, whatever the inherited env says
        self.env = {**env, "REDIS_URL": settings.redis_url, "KEY_PREFIX": settings.key_prefix}
        self.hurry = hurry
        self.workers: list[WorkerFleet] = []
        self._draining: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Nothing to start: workers come with the first :meth:`scale`."""

    async def current(self) -> int | None:
        return len(self.workers)

    async def scale(self, workers: int) -> None:
        for fleet in [f for f in self.workers if f.failed.is_set()]:
            log.error("local.worker_failed", reason=fleet.failure, note="starting a new one")
            self.workers.remove(fleet)
            self._drain(fleet)
        while len(self.workers) < workers:
            self.workers.append(await self._spawn())
        while len(self.workers) > workers:
            self._drain(self.workers.pop())

    async def _spawn(self) -> WorkerFleet:
        fleet = WorkerFleet(1, self.command, self.env)
        try:
            await fleet.start()
        except OSError as exc:  # no interpreter, no processes left: the next poll tries again
            raise BackendError(f"could not start {' '.join(self.command)}: {exc}") from exc
        return fleet

    def _drain(self, fleet: WorkerFleet) -> None:
        task = asyncio.create_task(fleet.stop(self.hurry))
        self._draining.add(task)
        task.add_done_callback(self._draining.discard)

    async def close(self) -> None:
        """Drain every worker (a second signal hurries them)."""
        await self.scale(0)
        await asyncio.gather(*self._draining)

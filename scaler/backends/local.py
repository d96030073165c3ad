"""The ``local`` backend: ``tide worker`` processes on this machine (``tide dev``, one-box setups).

Each worker is its own :class:`WorkerFleet` of one, so any one can be stopped alone: scaling down
sends the newest a SIGTERM and lets it drain in the background (its jobs finish, or are handed
back when the grace runs out), never blocking the poll loop. A supervisor restarts a worker that
exited while it should run.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from contextlib import suppress

import structlog

from app.process.fleet import WorkerFleet, worker_command
from scaler.backends import BackendError
from scaler.settings import ScalerSettings

log = structlog.get_logger("tide.scaler")

SUPERVISE_INTERVAL_S = 1.0
"""How often exited workers are looked for; also the least time between two restarts."""


class LocalBackend:
    name = "local"

    def __init__(
        self,
        settings: ScalerSettings,
        env: Mapping[str, str],
        hurry: asyncio.Event | None = None,
        supervise_interval_s: float = SUPERVISE_INTERVAL_S,
    ) -> None:
        self.command = worker_command(
            settings.local_worker_concurrency, settings.local_worker_queues
        )
        if settings.local_worker_tasks:
            self.command += ["--tasks", settings.local_worker_tasks]
        # the workers use the scaler's Redis and key prefix, whatever the inherited env says
        self.env = {**env, "REDIS_URL": settings.redis_url, "KEY_PREFIX": settings.key_prefix}
        self.hurry = hurry
        self.supervise_interval_s = supervise_interval_s
        self.workers: list[WorkerFleet] = []
        self.restarts = 0
        self._draining: set[asyncio.Task[None]] = set()
        self._supervisor: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._supervisor = asyncio.create_task(self._supervise())

    async def current(self) -> int | None:
        return len(self.workers)

    async def scale(self, workers: int) -> None:
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

    async def _supervise(self) -> None:
        while True:
            await asyncio.sleep(self.supervise_interval_s)
            for index, fleet in enumerate(self.workers):
                if fleet.exited():
                    await fleet.stop()  # nothing left to stop: reaps its watcher
                    log.warning("local.worker_restarting", exited=fleet.exited())
                    try:
                        self.workers[index] = await self._spawn()
                    except BackendError as exc:
                        log.error("local.restart_failed", error=str(exc))
                        continue
                    self.restarts += 1

    async def close(self) -> None:
        """Stop supervising and drain every worker (a second signal hurries them)."""
        if self._supervisor is not None:
            self._supervisor.cancel()
            with suppress(asyncio.CancelledError):
                await self._supervisor
        await self.scale(0)
        await asyncio.gather(*self._draining)

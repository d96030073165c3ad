"""The ``local`` backend: ``tide worker`` processes on this machine (``tide dev``, one-box setups).

Each worker is its own :class:`WorkerFleet` of one, so any one can be stopped alone: scaling down
sends the newest a SIGTERM and lets it drain in the background (its jobs finish, or are handed
back when the grace runs out), never blocking the poll loop. Each worker ends with the process
that runs this backend, even one killed with SIGKILL (the fleet's ``die_with_parent``). The fleet
restarts a worker that crashed, with backoff; one that gave up (bad configuration, no start) no
longer counts as running, so the next poll replaces it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from pathlib import Path

import structlog

from app.process.fleet import STOP_TIMEOUT_S, WorkerFleet, worker_command
from scaler.backends import BackendError
from scaler.settings import ScalerSettings

log = structlog.get_logger("tide.scaler")


class LocalBackend:
    """``hurry``: set by a second stop signal, it cuts the drains short. ``output``: a file for
    the workers' logs. ``on_worker_failed``: called with the reason when a worker gives up
    (``tide dev`` then stops rather than start it again and again)."""

    name = "local"

    def __init__(
        self,
        settings: ScalerSettings,
        env: Mapping[str, str],
        hurry: asyncio.Event | None = None,
        *,
        stop_timeout_s: float = STOP_TIMEOUT_S,
        output: Path | None = None,
        on_worker_failed: Callable[[str], None] | None = None,
    ) -> None:
        self.command = worker_command(
            settings.local_worker_concurrency,
            settings.local_worker_queues,
            settings.local_worker_tasks or None,
        )
        # the workers use the scaler's Redis and key prefix, whatever the inherited env says
        self.env = {**env, "REDIS_URL": settings.redis_url, "KEY_PREFIX": settings.key_prefix}
        self.hurry = hurry
        self.stop_timeout_s = stop_timeout_s
        self.output = output
        self.on_worker_failed = on_worker_failed
        self.workers: list[WorkerFleet] = []
        self._draining: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Nothing to start: workers come with the first :meth:`scale`."""

    async def current(self) -> int | None:
        self._reap()
        return len(self.workers)

    def alive(self) -> int:
        """Worker processes running now (a restarting one is not)."""
        return sum(fleet.alive() for fleet in self.workers)

    async def scale(self, workers: int) -> None:
        self._reap()
        while len(self.workers) < workers:
            self.workers.append(await self._spawn())
        while len(self.workers) > workers:
            self._drain(self.workers.pop())

    def _reap(self) -> None:
        """Forget the workers that gave up: they run nothing and will not restart."""
        for fleet in [f for f in self.workers if f.failed.is_set()]:
            reason = fleet.failure or "a worker gave up"
            log.error("local.worker_failed", reason=reason, note="the next scale starts another")
            self.workers.remove(fleet)
            self._drain(fleet)
            if self.on_worker_failed is not None:
                self.on_worker_failed(reason)

    async def _spawn(self) -> WorkerFleet:
        fleet = WorkerFleet(
            1, self.command, self.env, stop_timeout_s=self.stop_timeout_s, output=self.output
        )
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

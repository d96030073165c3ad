"""``tide dev``'s autoscaled workers: the scaler with the ``local`` backend, in this process.

In this process rather than ``python -m scaler`` beside it: the workers are then ``tide dev``'s own
children and end with it, even on ``kill -9``, exactly as the fixed fleet's do (a scaler process in
between would have to pass that on); ``tide dev`` reads the desired count for its flow line and
hears at once of a worker that cannot start; and a small machine runs one process fewer. The
policy, the leader lock, the decision log and the HTTP endpoints are the standalone scaler's own.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import structlog
from aiohttp import web

from app.core.queue import Queue
from app.process.http import serve
from app.process.startup import ConfigError
from scaler.backends import BackendMisconfigured
from scaler.backends.local import LocalBackend
from scaler.http import create_app
from scaler.service import Scaler, new_record
from scaler.settings import ScalerSettings

log = structlog.get_logger("tide.dev")


class DevScaler:
    """The scaler, its HTTP server and its local workers, started and stopped together.

    :attr:`failed` is set, with :attr:`failure` saying why, when a worker gives up (bad
    configuration, or it cannot start) or the poll loop ends on its own: ``tide dev`` then stops
    rather than start a broken worker again and again.
    """

    def __init__(
        self,
        settings: ScalerSettings,
        queue: Queue,
        hurry: asyncio.Event,
        *,
        stop_timeout_s: float,
        output: Path | None,
    ) -> None:
        self.settings = settings
        self.backend = LocalBackend(
            settings,
            os.environ,
            hurry,
            stop_timeout_s=stop_timeout_s,
            output=output,
            on_worker_failed=self._fail,
        )
        self.scaler = Scaler(queue, new_record(queue, settings), self.backend, settings)
        self.failed = asyncio.Event()
        self.failure: str | None = None
        self.url = ""
        self._stop = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Serve ``/health`` and ``/decisions`` and start polling; raises :class:`ConfigError`
        if the backend refuses its settings."""
        try:
            await self.backend.start()
        except BackendMisconfigured as exc:
            raise ConfigError(f"the scaler's backend cannot run: {exc}") from None
        settings = self.settings
        self._runner = await serve(
            create_app(self.scaler), settings.host, settings.port, settings.shutdown_grace_s
        )
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"
        self._task = asyncio.create_task(self._run(), name="dev-scaler")

    async def _run(self) -> None:
        try:
            await self.scaler.run(self._stop)
        except Exception as exc:
            log.exception("dev.scaler_crashed")
            self._fail(f"the scaler stopped: {exc!r}")

    def _fail(self, reason: str) -> None:
        if self.failure is None:
            self.failure = reason
        self.failed.set()

    def counts(self) -> tuple[int, int]:
        """(workers running, workers the scaler wants), for the flow line."""
        return self.backend.alive(), self.scaler.snapshot.workers

    def describe(self, concurrency: int) -> list[str]:
        """The banner's lines: the bounds, and where to watch the scaler decide."""
        bounds = f"{self.settings.min_workers} to {self.settings.max_workers}"
        return [
            f"Workers:  {bounds} x {concurrency} jobs, as the scaler decides",
            f"Scaler:   {self.url}/health  (decisions: {self.url}/decisions)",
        ]

    async def stop(self) -> None:
        """Stop deciding, give the lead up, then drain the workers (a second signal hurries)."""
        self._stop.set()
        if self._task is not None:
            await self._task
        if self._runner is not None:
            await self._runner.cleanup()
        await self.backend.close()

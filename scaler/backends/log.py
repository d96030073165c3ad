"""The ``log`` backend: decide and log only. It cannot tell how many workers run, so the
service counts the last decision as current."""

from __future__ import annotations

import structlog

log = structlog.get_logger("tide.scaler")


class LogBackend:
    name = "log"

    async def start(self) -> None:
        log.info("scaler.log_backend", note="decisions are logged, nothing is scaled")

    async def current(self) -> int | None:
        return None

    async def scale(self, workers: int) -> None:
        log.info("scaler.would_scale", workers=workers)

    async def close(self) -> None:
        return None

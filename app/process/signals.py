"""SIGINT/SIGTERM/SIGHUP as asyncio events: the first asks for a graceful stop, a second for a
fast one. SIGHUP is what a closed terminal sends: it stops a process the same way as SIGTERM."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from types import TracebackType

import structlog

log = structlog.get_logger("tide")

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class StopSignals:
    """Installs handlers on the running loop for the duration of a ``with`` block.

    ``stop`` is set by the first signal; ``hurry`` by any later one, for callers that can cut a
    drain short (the first Ctrl-C drains, the second does not wait). ``on_stop`` and ``on_hurry``
    are called then too, for callers that react at once rather than wait on the events.
    """

    def __init__(
        self,
        on_stop: Callable[[], None] | None = None,
        on_hurry: Callable[[], None] | None = None,
    ) -> None:
        self.stop = asyncio.Event()
        self.hurry = asyncio.Event()
        self._on_stop, self._on_hurry = on_stop, on_hurry
        self.received = 0
        self._loop: asyncio.AbstractEventLoop | None = None

    def _on_signal(self, sig: signal.Signals) -> None:
        self.received += 1
        if self.received == 1:
            log.info("shutdown.requested", signal=sig.name)
            self.stop.set()
            if self._on_stop:
                self._on_stop()
        else:
            log.warning("shutdown.hurried", signal=sig.name)
            self.hurry.set()
            if self._on_hurry:
                self._on_hurry()

    def __enter__(self) -> StopSignals:
        self._loop = asyncio.get_running_loop()
        for sig in STOP_SIGNALS:
            self._loop.add_signal_handler(sig, self._on_signal, sig)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._loop is not None and not self._loop.is_closed():
            for sig in STOP_SIGNALS:
                self._loop.remove_signal_handler(sig)

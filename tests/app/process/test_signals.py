"""Stop signals: SIGINT, SIGTERM and SIGHUP (a closed terminal) all ask for a graceful stop; a
second signal asks to hurry."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest

from app.process.signals import StopSignals


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
async def test_each_stop_signal_asks_for_a_graceful_stop(sig: signal.Signals) -> None:
    stopped: list[str] = []
    with StopSignals(on_stop=lambda: stopped.append("stop")) as signals:
        os.kill(os.getpid(), sig)
        await asyncio.wait_for(signals.stop.wait(), 5)
        assert not signals.hurry.is_set()
        os.kill(os.getpid(), signal.SIGTERM)
        await asyncio.wait_for(signals.hurry.wait(), 5)
    assert stopped == ["stop"]

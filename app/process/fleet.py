"""A few local worker processes (``python -m workers``), started and stopped together.

Stopping follows the workers' contract (DESIGN §3): one SIGTERM and a wait while they drain; a
second SIGTERM when the user hurries (the worker then exits at once and the lease timeout
recovers its jobs); SIGKILL only for a worker that outlives the timeout.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from asyncio.subprocess import Process
from collections.abc import Mapping, Sequence
from contextlib import suppress
from typing import Any

import structlog

log = structlog.get_logger("tide.fleet")

STOP_TIMEOUT_S = 40.0
"""The worker's default drain (``SHUTDOWN_GRACE_S``, 30 s) plus time to release and deregister."""
HURRY_TIMEOUT_S = 5.0
"""How long a worker told twice gets before it is killed."""


def worker_command(concurrency: int, queues: str) -> list[str]:
    """``python -m workers ...`` with this interpreter, so the fleet runs in the same venv."""
    return [sys.executable, "-m", "workers", "--concurrency", str(concurrency), "--queues", queues]


class WorkerFleet:
    """``count`` copies of ``command``, each in its own process group.

    Own group: a Ctrl-C at the terminal reaches only our process, which then sends exactly one
    SIGTERM; were the workers in the terminal's group, they would see SIGINT *and* our SIGTERM,
    and a second signal means "exit now, do not drain".
    """

    def __init__(
        self,
        count: int,
        command: Sequence[str],
        env: Mapping[str, str],
        stop_timeout_s: float = STOP_TIMEOUT_S,
    ) -> None:
        self.count = count
        self.command = list(command)
        self.env = dict(env)
        self.stop_timeout_s = stop_timeout_s
        self.procs: list[Process] = []
        self._watchers: list[asyncio.Task[None]] = []
        self._stopping = False

    async def start(self) -> None:
        for index in range(self.count):
            # a new session is a new process group (uvloop has no ``process_group=``)
            proc = await asyncio.create_subprocess_exec(
                *self.command, env=self.env, start_new_session=True
            )
            self.procs.append(proc)
            self._watchers.append(asyncio.create_task(self._watch(index, proc)))
            log.info("fleet.worker_started", index=index, pid=proc.pid)

    async def _watch(self, index: int, proc: Process) -> None:
        code = await proc.wait()
        if not self._stopping:
            log.error("fleet.worker_exited", index=index, pid=proc.pid, code=code)

    def exited(self) -> list[int]:
        """Pids of workers that have exited (while they should be running, a failure)."""
        return [p.pid for p in self.procs if p.returncode is not None]

    def _alive(self) -> list[Process]:
        return [p for p in self.procs if p.returncode is None]

    def _send(self, sig: signal.Signals) -> None:
        for proc in self._alive():
            with suppress(ProcessLookupError):
                proc.send_signal(sig)

    async def stop(self, hurry: asyncio.Event | None = None) -> None:
        """Stop every worker and wait until none is left; returns within the stop timeout
        (plus a few seconds for killed processes to be reaped)."""
        self._stopping = True
        alive = self._alive()
        if alive:
            log.info("fleet.stopping", pids=[p.pid for p in alive])
            self._send(signal.SIGTERM)
            exited: asyncio.Future[Any] = asyncio.ensure_future(
                asyncio.gather(*(p.wait() for p in alive))
            )
            hurried: asyncio.Future[Any] = asyncio.ensure_future((hurry or asyncio.Event()).wait())
            try:
                await asyncio.wait(
                    [exited, hurried],
                    timeout=self.stop_timeout_s,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                if not exited.done() and hurried.done():
                    self._send(signal.SIGTERM)  # the second signal: exit without draining
                    await asyncio.wait({exited}, timeout=HURRY_TIMEOUT_S)
                if not exited.done():
                    log.warning("fleet.killing", pids=[p.pid for p in self._alive()])
                    self._send(signal.SIGKILL)
                    await exited
            finally:
                hurried.cancel()
        for watcher in self._watchers:
            watcher.cancel()
        await asyncio.gather(*self._watchers, return_exceptions=True)
        codes = {str(p.pid): p.returncode for p in self.procs}
        if codes:
            log.info("fleet.stopped", exit_codes=codes)

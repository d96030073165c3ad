"""A few local worker processes (``python -m workers``), started, restarted and stopped together.

Stopping follows the workers' contract (DESIGN §3): one SIGTERM and a wait while they drain; a
second SIGTERM when the user hurries (the worker then exits at once and the lease timeout
recovers its jobs); SIGKILL only for a worker that outlives the timeout.

A worker that exits on its own is started again after a backoff. A fleet that cannot run at all
gives up and says why (:attr:`WorkerFleet.failed`): a worker exited with code 2 (bad
configuration), or exited soon after starting several times in a row.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from asyncio.subprocess import Process
from collections.abc import Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from app.process.children import die_with_parent
from app.process.startup import EXIT_CONFIG

log = structlog.get_logger("tide.fleet")

STOP_TIMEOUT_S = 40.0
"""The worker's default drain (``SHUTDOWN_GRACE_S``, 30 s) plus time to release and deregister."""
HURRY_TIMEOUT_S = 5.0
"""How long a worker told twice gets before it is killed."""


def worker_command(concurrency: int, queues: str, tasks: str | None = None) -> list[str]:
    """``python -P -m workers ...`` with this interpreter, so the fleet runs in the same venv.

    ``-P``: the working directory is not put first on ``sys.path``, so a project package named
    ``app`` or ``workers`` cannot replace Tide's own; the worker adds the directory itself, after
    checking for such a clash, to import ``tasks``.
    """
    command = [sys.executable, "-P", "-m", "workers", "--concurrency", str(concurrency)]
    command += ["--queues", queues]
    return command + (["--tasks", tasks] if tasks else [])


@dataclass(frozen=True, slots=True)
class RestartPolicy:
    """When a worker that exited is started again, and when the fleet gives up."""

    first_delay_s: float = 1.0
    max_delay_s: float = 30.0
    quick_exit_s: float = 5.0
    """A worker that exits sooner than this after its start did not really start."""
    max_quick_exits: int = 3
    """Quick exits in a row (per worker) after which the fleet gives up."""


class WorkerFleet:
    """``count`` copies of ``command``, each in its own process group, each ending with us.

    Own group: a Ctrl-C at the terminal reaches only our process, which then sends exactly one
    SIGTERM; were the workers in the terminal's group, they would see SIGINT *and* our SIGTERM,
    and a second signal means "exit now, do not drain". Ending with us: a ``kill -9`` of this
    process still stops them (:func:`~app.process.children.die_with_parent`).

    ``output``: a file that receives the workers' stdout and stderr (appended), instead of ours.
    ``restart=False``: any exit is a failure (a benchmark must not hide a crash).
    """

    def __init__(
        self,
        count: int,
        command: Sequence[str],
        env: Mapping[str, str],
        stop_timeout_s: float = STOP_TIMEOUT_S,
        *,
        restart: bool = True,
        policy: RestartPolicy = RestartPolicy(),
        output: Path | None = None,
    ) -> None:
        self.count = count
        self.command = list(command)
        self.env = dict(env)
        self.stop_timeout_s = stop_timeout_s
        self.restart = restart
        self.policy = policy
        self.output = output
        self.procs: list[Process] = []
        """The current process of each slot (a restart replaces its slot's entry)."""
        self.failed = asyncio.Event()
        self.failure: str | None = None
        """Why the fleet gave up, once :attr:`failed` is set."""
        self._watchers: list[asyncio.Task[None]] = []
        self._spawning = asyncio.Lock()
        self._stopping = False
        self._stop_requested = asyncio.Event()

    async def start(self) -> None:
        for index in range(self.count):
            self.procs.append(await self._spawn(index))
            self._watchers.append(asyncio.create_task(self._watch(index)))

    async def _spawn(self, index: int) -> Process:
        # a new session is a new process group (uvloop has no ``process_group=``)
        if self.output is None:
            proc = await self._exec(None)
        else:
            with self.output.open("ab") as out:
                proc = await self._exec(out)
        log.info("fleet.worker_started", index=index, pid=proc.pid)
        return proc

    async def _exec(self, out: Any) -> Process:
        return await asyncio.create_subprocess_exec(
            *self.command,
            env=self.env,
            start_new_session=True,
            preexec_fn=die_with_parent(),
            stdout=out,
            stderr=out,
        )

    async def _watch(self, index: int) -> None:
        """Wait for the slot's worker to exit; start it again, or give up."""
        loop = asyncio.get_running_loop()
        delay, quick_exits = self.policy.first_delay_s, 0
        while True:
            proc, started = self.procs[index], loop.time()
            code = await proc.wait()
            if self._stopping:
                return
            ran_s = round(loop.time() - started, 2)
            log.error("fleet.worker_exited", index=index, pid=proc.pid, code=code, ran_s=ran_s)
            quick_exits = quick_exits + 1 if ran_s < self.policy.quick_exit_s else 0
            if quick_exits == 0:
                delay = self.policy.first_delay_s
            reason = self._give_up_reason(code, quick_exits)
            if reason is not None:
                self._give_up(reason)
                return
            log.warning("fleet.restarting", index=index, in_s=delay)
            with suppress(TimeoutError):
                await asyncio.wait_for(self._stop_requested.wait(), delay)
            delay = min(self.policy.max_delay_s, delay * 2)
            async with self._spawning:
                if self._stopping:
                    return
                self.procs[index] = await self._spawn(index)

    def _give_up_reason(self, code: int, quick_exits: int) -> str | None:
        if code == EXIT_CONFIG:
            return f"a worker exited with code {code}: its configuration is bad"
        if not self.restart:
            return f"a worker exited with code {code}"
        if quick_exits >= self.policy.max_quick_exits:
            return (
                f"workers cannot start: one exited within {self.policy.quick_exit_s:g} s "
                f"of starting {quick_exits} times in a row (last exit code {code})"
            )
        return None

    def _give_up(self, reason: str) -> None:
        last = _last_line(self.output) if self.output is not None else None
        if last:
            reason += f"; last line of {self.output}: {last}"
        if self.failure is None:
            self.failure = reason
            log.error("fleet.failed", reason=reason)
        self.failed.set()

    def alive(self) -> int:
        """How many workers are running now."""
        return len(self._alive())

    def _alive(self) -> list[Process]:
        return [p for p in self.procs if p.returncode is None]

    def _send(self, sig: signal.Signals) -> None:
        for proc in self._alive():
            with suppress(ProcessLookupError):
                proc.send_signal(sig)

    async def stop(self, hurry: asyncio.Event | None = None) -> None:
        """Stop every worker and wait until none is left; returns within the stop timeout
        (plus a few seconds for killed processes to be reaped)."""
        async with self._spawning:  # no restart starts once this holds
            self._stopping = True
        self._stop_requested.set()
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


def _last_line(path: Path, tail_bytes: int = 4096) -> str:
    """The last non-empty line of a log file (what a worker said before it exited)."""
    try:
        with path.open("rb") as file:
            file.seek(0, 2)
            file.seek(max(0, file.tell() - tail_bytes))
            lines = file.read().decode(errors="replace").splitlines()
    except OSError:
        return ""
    return next((line.strip() for line in reversed(lines) if line.strip()), "")

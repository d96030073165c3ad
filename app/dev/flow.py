"""The line ``tide dev`` prints every few seconds: how fast jobs finish and what is waiting.

Per-attempt warnings belong in the workers' logs; a person watching ``tide dev`` wants the flow:
succeeded and failed per second (counted from the events stream), waiting, running, scheduled,
and the workers up against the workers wanted: the scaler's desired count (``--workers N``: N).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass

import structlog
from redis.exceptions import RedisError

from app.core.events import read_events
from app.core.models import JobStatus
from app.core.queue import Queue

log = structlog.get_logger("tide.dev")

EVERY_S = 5.0
READ_COUNT = 1000


@dataclass(frozen=True, slots=True)
class Flow:
    seconds: float
    succeeded: int
    failed: int
    waiting: int
    running: int
    scheduled: int
    workers: int
    workers_wanted: int

    @property
    def idle(self) -> bool:
        return not (self.succeeded or self.failed or self.waiting or self.running)

    def line(self) -> str:
        per_s = max(self.seconds, 1e-9)
        return (
            f"{self.succeeded / per_s:.1f} succeeded/s  {self.failed / per_s:.1f} failed/s  |  "
            f"waiting {self.waiting}  running {self.running}  scheduled {self.scheduled}  |  "
            f"workers {self.workers}/{self.workers_wanted}"
        )


class FlowMeter:
    """Counts jobs that finished since the last reading, from the events stream."""

    def __init__(self, queue: Queue, queues: Sequence[str]) -> None:
        self.queue = queue
        self.queues = list(queues)
        self._after = "0-0"
        self._since = time.monotonic()

    async def begin(self) -> None:
        """Count from now on (a shared Redis's history is not this run's flow)."""
        seconds, micros = await self.queue.redis.time()
        self._after = f"{seconds * 1000 + micros // 1000}-0"
        self._since = time.monotonic()

    async def read(self, workers: int, workers_wanted: int) -> Flow:
        succeeded = failed = 0
        while events := await read_events(
            self.queue.redis, self.queue.keys, self._after, READ_COUNT
        ):
            self._after = events[-1].entry_id
            succeeded += sum(e.status == JobStatus.SUCCEEDED for e in events)
            failed += sum(e.status == JobStatus.FAILED for e in events)
        stats = await self.queue.stats(self.queues)
        now = time.monotonic()
        seconds, self._since = now - self._since, now
        return Flow(
            seconds=seconds,
            succeeded=succeeded,
            failed=failed,
            waiting=sum(s.waiting for s in stats),
            running=sum(s.running for s in stats),
            scheduled=sum(s.scheduled for s in stats),
            workers=workers,
            workers_wanted=workers_wanted,
        )


async def show_flow(
    meter: FlowMeter,
    workers: Callable[[], tuple[int, int]],
    stop: asyncio.Event,
    out: Callable[[str], None],
    every_s: float = EVERY_S,
) -> None:
    """Call ``out`` with a flow line every ``every_s`` until ``stop``; one idle line, then
    silence until something happens again. ``workers()`` is (running, wanted)."""
    await meter.begin()
    was_idle = False
    while not stop.is_set():
        with suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every_s)
        if stop.is_set():
            return
        try:
            flow = await meter.read(*workers())
        except RedisError as exc:
            log.warning("dev.flow_unavailable", error=str(exc))
            continue
        if not (flow.idle and was_idle):
            out(flow.line())
        was_idle = flow.idle

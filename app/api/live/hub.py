"""One events reader per API process, fanned out to its subscribers (DESIGN §5).

The reader follows ``P:events`` with ``XREAD BLOCK`` and hands each change to the subscribers
that may see it, found through indexes (by tenant, by job), so a change costs a dict lookup per
interested subscriber, not a scan of all of them. A change's frame is encoded once, whoever
receives it. Each subscriber has a bounded queue: one that falls behind is dropped, never
allowed to grow memory. The reader starts with the first subscriber, so an API nobody watches
reads nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson
import structlog
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from app.core.events import (
    WHOLE,
    JobEvent,
    Position,
    lost_after,
    newest_entry,
    oldest_entry,
    parse_entry,
)
from app.core.keys import Keys

log = structlog.get_logger("tide.api")

READ_COUNT = 100
"""Entries per ``XREAD``: a burst is read in few round trips."""
RETRY_S = 1.0
"""Pause after a failed read, so a Redis outage is not a busy loop."""
READY_TIMEOUT_S = 5.0
"""How long a new subscriber waits for a reader that cannot reach Redis."""


def job_of(event: JobEvent) -> dict[str, str]:
    """What a frame says of the job: what the change itself carries. More of the record would
    cost a read per change, which 10,000 changes/s cannot afford; a client reads the job."""
    return {
        "id": event.job_id,
        "status": event.status,
        "queue": event.queue,
        "tenant": event.tenant,
    }


def event_frame(event: JobEvent) -> str:
    return orjson.dumps({"op": "event", "event_id": event.event_id, "job": job_of(event)}).decode()


Delivery = tuple[JobEvent, str]
"""A change and its encoded frame."""


@dataclass(eq=False)
class Subscriber:
    """One socket's or one long poll's view: its tenant (None: an admin, sees all), the jobs it
    follows (None: all), and its bounded queue. ``on_overflow`` runs once, when it falls behind."""

    tenant: str | None
    capacity: int
    on_overflow: Callable[[], None]
    jobs: frozenset[str] | None = None
    queue: asyncio.Queue[Any] = field(init=False)
    dropped: bool = False

    def __post_init__(self) -> None:
        self.queue = asyncio.Queue(self.capacity)

    def may_see(self, event: JobEvent) -> bool:
        return (self.tenant is None or self.tenant == event.tenant) and (
            self.jobs is None or event.job_id in self.jobs
        )

    def offer(self, item: Any) -> bool:
        """Queue ``item``; False (and the subscriber dropped) when its queue is full."""
        if self.dropped:
            return False
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            self.dropped = True
            self.on_overflow()
            return False
        return True


class Hub:
    """The process's subscribers and the one reader that feeds them."""

    def __init__(self, redis: Redis, keys: Keys, block_ms: int) -> None:
        self.redis = redis
        self.keys = keys
        self.block_ms = block_ms
        self.cursor = "0-0"
        """The newest entry the reader has handed out: where "from now on" starts."""
        self.ready = asyncio.Event()
        """Set once the reader knows its cursor: a subscriber added after sees every change
        appended after it."""
        self._all: dict[str | None, set[Subscriber]] = {}
        self._by_job: dict[str, set[Subscriber]] = {}
        self._reader: asyncio.Task[None] | None = None

    async def wait_ready(self) -> None:
        """Returns once the reader knows where it stands; a Redis ``ConnectionError`` (a 503, an
        error frame) if it cannot get there within ``READY_TIMEOUT_S``."""
        try:
            await asyncio.wait_for(self.ready.wait(), READY_TIMEOUT_S)
        except TimeoutError:
            raise RedisConnectionError("the events reader cannot reach Redis") from None

    def subscribe(self, sub: Subscriber, jobs: Iterable[str] | None) -> None:
        """Add ``sub`` following ``jobs`` (None: all it may see), replacing what it followed."""
        self.unsubscribe(sub)
        sub.jobs = None if jobs is None else frozenset(jobs)
        if sub.jobs is None:
            self._all.setdefault(sub.tenant, set()).add(sub)
        else:
            for job_id in sub.jobs:
                self._by_job.setdefault(job_id, set()).add(sub)
        if self._reader is None:
            self._reader = asyncio.get_running_loop().create_task(self._read())

    def unsubscribe(self, sub: Subscriber) -> None:
        _discard(self._all, sub.tenant, sub)
        for job_id in sub.jobs or ():
            _discard(self._by_job, job_id, sub)

    def publish(self, events: list[JobEvent]) -> None:
        """Hand each change to every subscriber that may see it; drop those that overflow."""
        for event in events:
            targets = [*self._all.get(event.tenant, ()), *self._all.get(None, ())]
            targets += [s for s in self._by_job.get(event.job_id, ()) if s.may_see(event)]
            if not targets:
                continue
            delivery = (event, event_frame(event))
            for sub in targets:
                if not sub.offer(delivery):
                    self.unsubscribe(sub)

    def broadcast(self, frame: str, subs: Iterable[Subscriber]) -> None:
        for sub in list(subs):
            if not sub.offer(frame):
                self.unsubscribe(sub)

    def subscribers(self) -> set[Subscriber]:
        found: set[Subscriber] = set()
        for group in (*self._all.values(), *self._by_job.values()):
            found |= group
        return found

    async def _read(self) -> None:
        failed = False
        while True:
            try:
                if not self.ready.is_set():
                    self.cursor = await newest_entry(self.redis, self.keys)
                    self.ready.set()
                if failed:
                    await self._check_gap()
                    failed = False
                reply: Any = await self.redis.xread(
                    {self.keys.events: self.cursor}, count=READ_COUNT, block=self.block_ms
                )
            except RedisError as exc:
                log.warning("api.events_read_failed", error=str(exc), retry_in_s=RETRY_S)
                failed = True
                await asyncio.sleep(RETRY_S)
                continue
            for _stream, entries in reply or []:
                for entry_id, fields in entries:
                    self.publish(parse_entry(entry_id, fields))
                    self.cursor = entry_id
                    await asyncio.sleep(0)  # senders drain between entries: only a client
                    # whose socket is backed up falls behind, not one that met a burst

    def position(self) -> Position:
        """Where "from now on" starts: after the newest entry handed out."""
        return (*_entry(self.cursor), WHOLE)

    async def _check_gap(self) -> None:
        """After a failed read: if the capped stream dropped changes meanwhile, every
        subscriber is told (``gap``) rather than silently missing them."""
        if lost_after(self.position(), await oldest_entry(self.redis, self.keys)):
            log.warning("api.events_gap", after=self.cursor)
            gap = orjson.dumps({"op": "gap", "after": self.cursor}).decode()
            self.broadcast(gap, self.subscribers())

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader


def _entry(entry_id: str) -> tuple[int, int]:
    ms, seq = entry_id.split("-")
    return int(ms), int(seq)


def _discard(index: dict[Any, set[Subscriber]], key: Any, sub: Subscriber) -> None:
    group = index.get(key)
    if group is not None:
        group.discard(sub)
        if not group:
            del index[key]

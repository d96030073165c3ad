"""One events reader per API process, fanned out to its subscribers (DESIGN §5).

The reader follows ``P:events`` with ``XREAD BLOCK`` and hands each change to the subscribers
that may see it, found through indexes (by tenant, by job), so a change costs a dict lookup per
interested subscriber, not a scan of all of them. A change's frame is encoded once, whoever
receives it; subscribers that asked for batches get one ``events`` frame per read instead,
encoded once per audience (a tenant's subscribers, or the admins'), so a thousand sockets cost
a few sends each per ``batch_s``, not one per change. Each subscriber's queue is bounded in
changes: one that falls behind is dropped, never allowed to grow memory. The reader starts
with the first subscriber, so an API nobody watches reads nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import structlog
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from app.api.live.frames import Batch, event_frame, frame
from app.core.events import (
    WHOLE,
    JobEvent,
    Position,
    follows,
    newest_entry,
    parse_entry,
    running_count,
)
from app.core.keys import Keys

log = structlog.get_logger("tide.api")

READ_COUNT = 100
"""Entries per ``XREAD``: a burst is read in few round trips."""
RETRY_S = 1.0
"""Pause after a failed read, so a Redis outage is not a busy loop."""
READY_TIMEOUT_S = 5.0
"""How long a new subscriber waits for a reader that cannot reach Redis."""
BATCH_MAX = 1000
"""Changes per ``events`` frame at most: a huge burst is a few frames of bounded size."""


Delivery = tuple[JobEvent, bytes]
"""A change and its encoded frame."""


def weight(item: Any) -> int:
    """What an item counts against a subscriber's bound: its changes (a frame of its own: 1)."""
    return len(item.events) if isinstance(item, Batch) else 1


@dataclass(eq=False)
class Subscriber:
    """One socket's or one long poll's view: its tenant (None: an admin, sees all), the jobs it
    follows (None: all), whether it takes batches, and its queue, bounded by ``capacity``
    changes waiting. ``on_overflow`` runs once, when it falls behind."""

    tenant: str | None
    capacity: int
    on_overflow: Callable[[], None]
    batch: bool = False
    jobs: frozenset[str] | None = None
    write_now: Callable[[Batch], bool] | None = None
    """Writes a batch straight to the socket if nothing is ahead of it (True), so a thousand
    sockets cost a thousand writes a flush, not a thousand task wake-ups as well."""
    queue: asyncio.Queue[Any] = field(init=False, default_factory=asyncio.Queue)
    queued: int = 0
    """Changes waiting in ``queue``."""
    dropped: bool = False

    def may_see(self, event: JobEvent) -> bool:
        return (self.tenant is None or self.tenant == event.tenant) and (
            self.jobs is None or event.job_id in self.jobs
        )

    def offer(self, item: Any) -> bool:
        """Queue ``item``; False (and the subscriber dropped) when it would pass the bound. An
        empty queue takes any item: a batch larger than the bound is not a slow client."""
        if self.dropped:
            return False
        if not self.queued and isinstance(item, Batch) and self.write_now and self.write_now(item):
            return True
        size = weight(item)
        if self.queued and self.queued + size > self.capacity:
            self.dropped = True
            self.on_overflow()
            return False
        self.queued += size
        self.queue.put_nowait(item)
        return True

    async def take(self) -> Any:
        return self._taken(await self.queue.get())

    def take_nowait(self) -> Any:
        """The next item; ``asyncio.QueueEmpty`` if none waits."""
        return self._taken(self.queue.get_nowait())

    def _taken(self, item: Any) -> Any:
        self.queued -= weight(item)
        return item


class Hub:
    """The process's subscribers and the one reader that feeds them."""

    def __init__(self, redis: Redis, keys: Keys, block_ms: int, batch_s: float = 0.0) -> None:
        self.redis = redis
        self.keys = keys
        self.block_ms = block_ms
        self.batch_s = batch_s
        """While batched subscribers listen, the reader pauses this long after handing out a
        read, so a busy stream makes one ``events`` frame per audience per pause, not one per
        entry: a socket's sends a second stay bounded whatever the rate."""
        self.cursor = "0-0"
        """The newest entry the reader has handed out: where "from now on" starts."""
        self.count: int | None = None
        """The cursor entry's running count: the next entry's must follow on from it."""
        self.ready = asyncio.Event()
        """Set once the reader knows its cursor: a subscriber added after sees every change
        appended after it."""
        self._all: dict[str | None, set[Subscriber]] = {}
        self._batched: dict[str | None, set[Subscriber]] = {}
        """Subscribers of all they may see, by tenant: one frame each change, or batches."""
        self._by_job: dict[str, set[Subscriber]] = {}
        self._pending: dict[str | None, list[JobEvent]] = {}
        """Changes for the batched audiences (a tenant's, None: all) until the next flush."""
        self._pending_jobs: dict[Subscriber, list[JobEvent]] = {}
        """The same for batched subscribers following some jobs: a batch of their own."""
        self._reader: asyncio.Task[None] | None = None

    async def wait_ready(self) -> None:
        """Returns once the reader knows where it stands; a Redis ``ConnectionError`` (a 503, an
        error frame) if it cannot get there within ``READY_TIMEOUT_S``. Once ready it returns
        without yielding, so a subscribe queues its replay before any change can reach it."""
        if self.ready.is_set():
            return
        try:
            await asyncio.wait_for(self.ready.wait(), READY_TIMEOUT_S)
        except TimeoutError:
            raise RedisConnectionError("the events reader cannot reach Redis") from None

    def subscribe(self, sub: Subscriber, jobs: Iterable[str] | None, batch: bool = False) -> None:
        """Add ``sub`` following ``jobs`` (None: all it may see), in batches or not, replacing
        what it followed."""
        self.unsubscribe(sub)
        sub.batch = batch
        sub.jobs = None if jobs is None else frozenset(jobs)
        if sub.jobs is None:
            (self._batched if sub.batch else self._all).setdefault(sub.tenant, set()).add(sub)
        else:
            for job_id in sub.jobs:
                self._by_job.setdefault(job_id, set()).add(sub)
        if self._reader is None:
            self._reader = asyncio.get_running_loop().create_task(self._read())

    def unsubscribe(self, sub: Subscriber) -> None:
        _discard(self._batched if sub.batch else self._all, sub.tenant, sub)
        for job_id in sub.jobs or ():
            _discard(self._by_job, job_id, sub)
        self._pending_jobs.pop(sub, None)

    def publish(self, events: list[JobEvent]) -> None:
        """Hand each change to every per-change subscriber that may see it, and keep it for the
        batched ones until ``flush``; drop those that overflow."""
        for event in events:
            for audience in (event.tenant, None):
                if audience in self._batched:
                    self._pending.setdefault(audience, []).append(event)
            targets = [*self._all.get(event.tenant, ()), *self._all.get(None, ())]
            for sub in self._by_job.get(event.job_id, ()):
                if not sub.may_see(event):
                    continue
                if sub.batch:
                    self._pending_jobs.setdefault(sub, []).append(event)
                else:
                    targets.append(sub)
            if targets:
                self._offer((event, event_frame(event)), targets)

    def flush(self) -> None:
        """What the batched subscribers were kept since the last flush, as ``events`` frames
        encoded once per audience, at most ``BATCH_MAX`` changes each."""
        pending, self._pending = self._pending, {}
        for audience, events in pending.items():
            for batch in _batches(events):
                self._offer(batch, self._batched.get(audience, ()))
        pending_jobs, self._pending_jobs = self._pending_jobs, {}
        for sub, events in pending_jobs.items():
            for batch in _batches(events):
                self._offer(batch, (sub,))

    def broadcast(self, frame: bytes, subs: Iterable[Subscriber]) -> None:
        self._offer(frame, subs)

    def _offer(self, item: Any, subs: Iterable[Subscriber]) -> None:
        for sub in list(subs):
            if not sub.offer(item):
                self.unsubscribe(sub)

    def subscribers(self) -> set[Subscriber]:
        found: set[Subscriber] = set()
        for group in (*self._all.values(), *self._batched.values(), *self._by_job.values()):
            found |= group
        return found

    async def _read(self) -> None:
        while True:
            try:
                if not self.ready.is_set():
                    self.cursor, self.count = await newest_entry(self.redis, self.keys)
                    self.ready.set()
                reply: Any = await self.redis.xread(
                    {self.keys.events: self.cursor}, count=READ_COUNT, block=self.block_ms
                )
            except RedisError as exc:
                log.warning("api.events_read_failed", error=str(exc), retry_in_s=RETRY_S)
                await asyncio.sleep(RETRY_S)
                continue
            read = 0
            for _stream, entries in reply or []:
                for entry_id, fields in entries:
                    if not follows(fields, self.count):
                        self._gap()
                    self.publish(parse_entry(entry_id, fields))
                    self.cursor, self.count = entry_id, running_count(fields)
                    await asyncio.sleep(0)  # senders drain between entries: only a client
                    # whose socket is backed up falls behind, not one that met a burst
                read += len(entries)
            self.flush()
            if self._batched and 0 < read < READ_COUNT:
                await asyncio.sleep(self.batch_s)  # what comes meanwhile: one frame, not many

    def position(self) -> Position:
        """Where "from now on" starts: after the newest entry handed out."""
        return (*_entry(self.cursor), WHOLE)

    def _gap(self) -> None:
        """The capped stream dropped changes after the cursor (Redis was out of reach, or the
        reader fell behind): every subscriber is told (``gap``), not left silently missing
        them, and can resume from what it saw or reload."""
        log.warning("api.events_gap", after=self.cursor)
        self.flush()  # what came before the gap goes out before it
        self.broadcast(frame("gap", after=self.cursor), self.subscribers())

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader


def _batches(events: list[JobEvent]) -> Iterator[Batch]:
    for start in range(0, len(events), BATCH_MAX):
        yield Batch.of(events[start : start + BATCH_MAX])


def _entry(entry_id: str) -> tuple[int, int]:
    ms, seq = entry_id.split("-")
    return int(ms), int(seq)


def _discard(index: dict[Any, set[Subscriber]], key: Any, sub: Subscriber) -> None:
    group = index.get(key)
    if group is not None:
        group.discard(sub)
        if not group:
            del index[key]

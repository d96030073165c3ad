"""The worker side of the queue: lease entries, start, extend, finish and release attempts.

A lease is an entry in this consumer's pending list plus the job's attempt number at start: the
fencing token. Every call that acts on a lease is a Lua script that checks both, in batches, so a
worker that lost its lease can neither extend it nor record a result.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum, StrEnum
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from app.core.keys import GROUP, Keys
from app.core.scripts import Script, Scripts, pack
from app.core.settings import CoreSettings

BATCH = 500
"""Leases per script call."""


@dataclass(frozen=True, slots=True)
class Lease:
    """One running attempt, as handed to the worker by start or claim."""

    entry: str
    job_id: str
    queue: str
    token: str
    type: str
    payload: str
    timeout_s: float
    max_attempts: int

    @property
    def attempt(self) -> int:
        return int(self.token)

    def fence(self) -> list[str]:
        return [self.queue, self.entry, self.job_id, self.token]


class Outcome(StrEnum):
    OK = "ok"
    ERROR = "error"
    CANCELLED = "cancelled"


class LeaseState(IntEnum):
    LOST = 0
    HELD = 1
    CANCEL_REQUESTED = 2


@dataclass(frozen=True, slots=True)
class Result:
    """How an attempt ended: ``data`` is the result or error as JSON text."""

    lease: Lease
    outcome: Outcome
    data: str
    retry_delay_ms: int = -1


@dataclass(frozen=True, slots=True)
class Claimed:
    cursor: str
    leases: list[Lease]
    deleted: list[str]


def _lease(row: list[str]) -> Lease:
    entry, job_id, queue, token, type_, payload, timeout_s, max_attempts = row
    return Lease(entry, job_id, queue, token, type_, payload, float(timeout_s), int(max_attempts))


def _batches(items: Sequence[Any]) -> list[Sequence[Any]]:
    return [items[i : i + BATCH] for i in range(0, len(items), BATCH)]


class LeaseClient:
    """Lease operations for one worker (one consumer of the ``workers`` group)."""

    def __init__(self, redis: Redis, settings: CoreSettings, consumer: str) -> None:
        self.redis = redis
        self.consumer = consumer
        self.keys = Keys(settings.key_prefix)
        self.scripts = Scripts(redis, self.keys, settings)
        self.lease_ms = int(settings.lease_timeout_s * 1000)

    async def read(
        self, queues: Sequence[str], free: int, block_ms: int
    ) -> list[tuple[str, str, str]]:
        """Lease at most ``free`` new entries, first queue first; block when all are empty.

        Returns (queue, entry id, job id) triples, now in this consumer's pending list.
        """
        got: list[tuple[str, str, str]] = []
        if free <= 0:
            return got
        if len(queues) > 1:
            for name in queues:
                if len(got) >= free:
                    break
                got += await self._xreadgroup([name], free - len(got), None)
            if got:
                return got
        # Block on as many queues as there are free slots, so the read can never overshoot.
        watched = list(queues[:free])
        return await self._xreadgroup(watched, free // len(watched), block_ms)

    async def _xreadgroup(
        self, queues: Sequence[str], count: int, block_ms: int | None
    ) -> list[tuple[str, str, str]]:
        streams: dict[Any, Any] = {self.keys.queue(name): ">" for name in queues}
        reply: Any = await self.redis.xreadgroup(
            GROUP, self.consumer, streams, count=count, block=block_ms
        )
        prefix = len(self.keys.queue_prefix)
        return [
            (stream[prefix:], eid, fields["j"])
            for stream, entries in reply or []
            for eid, fields in entries
        ]

    async def start(self, entries: Sequence[tuple[str, str, str]]) -> list[Lease]:
        """Begin attempts on freshly read entries (one script call per batch)."""
        leases: list[Lease] = []
        for batch in _batches(entries):
            rows = await self.scripts(Script.START, [self.consumer, pack(batch)])
            leases += [_lease(row) for row in rows]
        return leases

    async def claim(self, queue: str, count: int, cursor: str = "0-0") -> Claimed:
        """Take over up to ``count`` entries idle for a whole lease, and start them."""
        args = [self.consumer, queue, self.lease_ms, cursor, count]
        cursor, rows, deleted = await self.scripts(Script.CLAIM, args)
        return Claimed(cursor, [_lease(row) for row in rows], list(deleted))

    async def extend(self, leases: Sequence[Lease]) -> list[LeaseState]:
        """Extend leases still held; say which were lost and which were asked to cancel."""
        states: list[LeaseState] = []
        for batch in _batches(leases):
            args = [self.consumer, pack(lease.fence() for lease in batch)]
            states += [LeaseState(s) for s in await self.scripts(Script.EXTEND, args)]
        return states

    async def finish(self, results: Sequence[Result]) -> list[bool]:
        """Record outcomes, fenced; False where the lease was lost and the outcome discarded."""
        recorded: list[bool] = []
        for batch in _batches(results):
            rows = ((*r.lease.fence(), r.outcome.value, r.data, r.retry_delay_ms) for r in batch)
            replies = await self.scripts(Script.FINISH, [self.consumer, pack(rows)])
            recorded += [bool(ok) for ok in replies]
        return recorded

    async def release(self, leases: Sequence[Lease]) -> int:
        """Hand leases back so that another worker's next reclaim takes them at once."""
        released = 0
        for batch in _batches(leases):
            args = [self.consumer, self.lease_ms, pack(lease.fence() for lease in batch)]
            released += int(await self.scripts(Script.RELEASE, args))
        return released

    async def move_due(self, limit: int = 1000) -> tuple[int, int]:
        """Move due delayed jobs into their streams: (moved, ms until the next is due or -1)."""
        moved, wait_ms = await self.scripts(Script.MOVE_DUE, [limit])
        return int(moved), int(wait_ms)

    async def register(self, info: str, stale_ms: int) -> int:
        """Refresh this worker's registry entry (``info`` JSON; '' removes it)."""
        return int(await self.scripts(Script.REGISTER, [self.consumer, info, stale_ms]))

    async def prune_consumers(self, queue: str, min_idle_ms: int) -> int:
        return int(await self.scripts(Script.PRUNE_CONSUMERS, [queue, min_idle_ms]))

    async def ensure_group(self, queue: str) -> None:
        try:
            await self.redis.xgroup_create(self.keys.queue(queue), GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

"""The worker side of the queue: lease entries, start, extend, finish and release attempts.

A lease is an entry in this consumer's pending list plus the job's attempt number at start: the
fencing token. Every call that acts on a lease is a Lua script that checks both, in batches, so a
worker that lost its lease can neither extend it nor record a result.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import IntEnum, StrEnum
from typing import Any, TypeVar

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from app.core.frozen import frozen
from app.core.keys import GROUP, Keys
from app.core.scripts import Script, Scripts, pack
from app.core.settings import CoreSettings

BATCH = 500
"""Leases per script call."""

N = TypeVar("N", int, float)


@frozen
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
    tenant: str = ""

    @property
    def attempt(self) -> int:
        return int(self.token)

    def fence(self) -> list[str]:
        return [self.queue, self.entry, self.job_id, self.token]

    def describe(self) -> dict[str, str | int]:
        """The fields that name this attempt in log lines."""
        return {
            "job_id": self.job_id,
            "queue": self.queue,
            "tenant": self.tenant,
            "attempt": self.attempt,
        }


class Outcome(StrEnum):
    OK = "ok"
    ERROR = "error"
    CANCELLED = "cancelled"


class LeaseState(IntEnum):
    LOST = 0
    HELD = 1
    CANCEL_REQUESTED = 2


@frozen
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
    own: list[Lease]


def _lease(row: list[str | None], settings: CoreSettings) -> Lease:
    """A lease from a script's row. A damaged job record must not stop a worker: a field that
    is missing or not a number reads as the default, and the attempt fails on its own terms."""
    entry, job_id, queue, token, type_, payload, timeout_s, max_attempts, tenant = (
        x or "" for x in [*row, None][:9]
    )
    return Lease(
        entry,
        job_id,
        queue,
        token,
        type_,
        payload,
        _number(float, timeout_s, settings.default_timeout_s),
        _number(int, max_attempts, settings.default_max_attempts),
        tenant,
    )


def _number(kind: Callable[[str], N], text: str, default: N) -> N:
    try:
        return kind(text)
    except ValueError:
        return default


def _batches(items: Sequence[Any]) -> list[Sequence[Any]]:
    return [items[i : i + BATCH] for i in range(0, len(items), BATCH)]


class LeaseClient:
    """Lease operations for one worker (one consumer of the ``workers`` group)."""

    def __init__(self, redis: Redis, settings: CoreSettings, consumer: str) -> None:
        self.redis = redis
        self.consumer = consumer
        self.settings = settings
        self.keys = Keys(settings.key_prefix)
        self.scripts = Scripts(redis, self.keys, settings)
        self.lease_ms = int(settings.lease_timeout_s * 1000)

    async def read(
        self, queues: Sequence[str], free: int, block_ms: int
    ) -> list[tuple[str, str, str]]:
        """Lease at most ``free`` new entries, first queue first; block when all are empty.

        Returns (queue, entry id, job id) triples, now in this consumer's pending list.
        """
        if free <= 0 or not queues:
            return []
        if len(queues) == 1:
            return await self._xreadgroup(queues, free, block_ms)
        got = await self._read_in_order(queues, free)
        if got:
            return got
        if free >= len(queues):
            # COUNT applies per stream: free // len(queues) each can never overshoot
            return await self._xreadgroup(queues, free // len(queues), block_ms)
        # Fewer slots than queues: a group read on all of them could overshoot, one on a few
        # would not see the others. Wait on all without leasing, then lease in order.
        await self._wait_for_new(queues, block_ms)
        return await self._read_in_order(queues, free)

    async def _read_in_order(self, queues: Sequence[str], free: int) -> list[tuple[str, str, str]]:
        got: list[tuple[str, str, str]] = []
        for name in queues:
            if len(got) >= free:
                break
            got += await self._xreadgroup([name], free - len(got), None)
        return got

    async def _wait_for_new(self, queues: Sequence[str], block_ms: int) -> None:
        """Block until an entry not yet delivered to the group is in any of ``queues``."""
        pipe = self.redis.pipeline(transaction=False)
        for name in queues:
            pipe.xinfo_groups(self.keys.queue(name))
        last: dict[Any, Any] = {}
        for name, groups in zip(queues, await pipe.execute(), strict=True):
            ids = [g["last-delivered-id"] for g in groups if g["name"] == GROUP]
            if not ids:
                raise ResponseError(f"NOGROUP no group {GROUP} on queue {name}")
            last[self.keys.queue(name)] = ids[0]
        await self.redis.xread(last, count=1, block=block_ms)

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
            leases += [_lease(row, self.settings) for row in rows]
        return leases

    async def claim(self, queue: str, count: int, cursor: str = "0-0") -> Claimed:
        """Take over up to ``count`` entries idle for a whole lease, and start them; this
        consumer's own idle leases come back in ``own``, unchanged."""
        args = [self.consumer, queue, self.lease_ms, cursor, count]
        cursor, rows, deleted, own = await self.scripts(Script.CLAIM, args)
        return Claimed(
            cursor,
            [_lease(row, self.settings) for row in rows],
            list(deleted),
            [_lease(r, self.settings) for r in own],
        )

    async def adopt(self, queues: Sequence[str], limit: int) -> list[Lease]:
        """The leases this consumer holds by the job records, up to ``limit`` per queue: after
        a start or claim whose reply was lost, the attempts it began without knowing."""
        if not queues:
            return []
        rows = await self.scripts(Script.ADOPT, [self.consumer, limit, pack([queues])])
        return [_lease(row, self.settings) for row in rows]

    async def extend(self, leases: Sequence[Lease]) -> list[LeaseState]:
        """Extend leases still held; say which were lost and which were asked to cancel."""
        states: list[LeaseState] = []
        for batch in _batches(leases):
            args = [self.consumer, pack(lease.fence() for lease in batch)]
            states += [LeaseState(s) for s in await self.scripts(Script.EXTEND, args)]
        return states

    async def finish(self, results: Sequence[Result]) -> list[bool]:
        """Record outcomes, fenced; False where the lease was lost and the outcome discarded.

        Sending a batch again after a lost reply is safe: an outcome this very attempt already
        recorded answers True again (finish.lua replies 2)."""
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

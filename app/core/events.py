"""Job status changes as they appear on the events stream (``P:events``).

Each script call that changes statuses appends ONE entry holding all its changes (see
``done.lua`` in ``app/core/lua/include/``): per-job entries cost a third of a worker's throughput.
A change's event id is its entry's id plus its index in the entry (``1700000000000-0:3``), so a
reader that stopped in the middle of a large batch resumes exactly where it stopped; a bare
entry id means "after that whole entry". The stream keeps the newest ``EVENTS_MAX_CHANGES``
changes in whole entries, however large the batches.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from app.core.keys import Keys

EVENT_ID_PATTERN = r"^\d+-\d+(:\d+)?$"
WHOLE = 2**62
"""The index of a position after every change of its entry."""

Position = tuple[int, int, int]
"""An event id as a sortable (milliseconds, sequence, index)."""


@dataclass(frozen=True, slots=True)
class JobEvent:
    entry_id: str
    index: int
    job_id: str
    status: str
    queue: str
    tenant: str

    @property
    def event_id(self) -> str:
        return f"{self.entry_id}:{self.index}"

    @property
    def position(self) -> Position:
        ms, seq = self.entry_id.split("-")
        return int(ms), int(seq), self.index


def parse_position(event_id: str) -> Position:
    """``ms-seq`` (after the whole entry) or ``ms-seq:index``; ValueError for anything else."""
    if not re.match(EVENT_ID_PATTERN, event_id):
        raise ValueError(f"not an event id: {event_id!r}")
    entry, _, index = event_id.partition(":")
    ms, seq = entry.split("-")
    return int(ms), int(seq), int(index) if index else WHOLE


def format_position(position: Position) -> str:
    ms, seq, index = position
    return f"{ms}-{seq}" if index == WHOLE else f"{ms}-{seq}:{index}"


def parse_entry(entry_id: str, fields: dict[str, str]) -> list[JobEvent]:
    """The status changes one events-stream entry holds, in the order they happened."""
    values = fields["changes"].split("\n")
    return [JobEvent(entry_id, i // 4, *values[i : i + 4]) for i in range(0, len(values), 4)]


async def read_events(
    redis: Redis, keys: Keys, after: str = "0-0", count: int = 100, block_ms: int | None = None
) -> list[JobEvent]:
    """Changes recorded after entry ``after`` (``$`` for only new ones); ``count`` entries."""
    reply: Any = await redis.xread({keys.events: after}, count=count, block=block_ms)
    return [
        event
        for _stream, entries in reply or []
        for entry_id, fields in entries
        for event in parse_entry(entry_id, fields)
    ]


async def read_after(
    redis: Redis, keys: Keys, after: Position, count: int
) -> tuple[list[JobEvent], bool]:
    """Changes after ``after``, from at most ``count`` entries (the first may be ``after``'s
    own, resumed mid-way), and whether the stream may hold more."""
    ms, seq, _ = after
    entries: Any = await redis.xrange(keys.events, min=f"{ms}-{seq}", max="+", count=count)
    events = [e for eid, fields in entries for e in parse_entry(eid, fields) if e.position > after]
    return events, len(entries) == count


async def oldest_entry(redis: Redis, keys: Keys) -> Position | None:
    """The position before the oldest change the capped stream still holds (None: empty)."""
    entries: Any = await redis.xrange(keys.events, count=1)
    if not entries:
        return None
    ms, seq = entries[0][0].split("-")
    return int(ms), int(seq), -1


async def newest_entry(redis: Redis, keys: Keys) -> tuple[str, int | None]:
    """The id of the newest entry (``0-0`` for an empty stream: where "from now on" starts) and
    its ``running_count``."""
    entries: Any = await redis.xrevrange(keys.events, count=1)
    if not entries:
        return "0-0", 0
    entry_id, fields = entries[0]
    return str(entry_id), running_count(fields)


def running_count(fields: dict[str, str]) -> int | None:
    """Changes appended to the stream up to this entry's (``c``), None for an entry without."""
    count = fields.get("c")
    return None if count is None else int(count)


def follows(fields: dict[str, str], count: int | None) -> bool:
    """Whether an entry comes right after the one whose running count was ``count``: False
    when the capped stream dropped entries in between (or the stream started anew), which a
    reader that fell behind, or lost Redis for a while, must report as a gap."""
    mine = running_count(fields)
    return count is None or mine is None or mine - int(fields["n"]) == count


def lost_after(after: Position, oldest: Position | None) -> bool:
    """Whether the stream may have dropped changes that came after ``after`` (a gap): the
    oldest change it holds is newer than ``after``. ``0-0`` asks for all it holds: no gap."""
    return oldest is not None and after[:2] != (0, 0) and after[:2] < oldest[:2]

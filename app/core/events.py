"""Job status changes as they appear on the events stream (``P:events``).

Each script call that changes statuses appends ONE entry holding all its changes (see
``done.lua`` in ``app/core/lua/include/``): per-job entries cost a third of a worker's throughput.
An event's id is its entry's id, so "replay after id X" never splits a batch. The stream keeps
the newest ``EVENTS_MAX_CHANGES`` changes in whole entries, however large the batches.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from app.core.keys import Keys


@dataclass(frozen=True, slots=True)
class JobEvent:
    event_id: str
    job_id: str
    status: str
    queue: str
    tenant: str


def parse_entry(entry_id: str, fields: dict[str, str]) -> list[JobEvent]:
    """The status changes one events-stream entry holds, in the order they happened."""
    values = fields["changes"].split("\n")
    return [JobEvent(entry_id, *values[i : i + 4]) for i in range(0, len(values), 4)]


async def read_events(
    redis: Redis, keys: Keys, after: str = "0-0", count: int = 100, block_ms: int | None = None
) -> list[JobEvent]:
    """Changes recorded after ``after`` (an entry id; ``$`` for only new ones)."""
    reply: Any = await redis.xread({keys.events: after}, count=count, block=block_ms)
    return [
        event
        for _stream, entries in reply or []
        for entry_id, fields in entries
        for event in parse_entry(entry_id, fields)
    ]

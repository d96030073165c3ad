"""The dead-letter list of the whole deployment (``P:dead:<queue>``), newest first, as one tenant
(or an admin) may see it: what the dashboard shows next to its retry button.

Entries carry no tenant, so whose a letter is comes from its job's record; a letter whose record
has expired (``RESULT_TTL_S``) can no longer be placed, and only an admin sees it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from app.core.models import Job
from app.core.queue import Queue

LOOK_AT_MAX = 500
"""Letters read per call at most, whatever ``count`` and the number of queues: a tenant whose
letters are rare among the others' may get a short list, never a slow call."""


@dataclass(frozen=True, slots=True)
class DeadLetter:
    entry: str
    """Its id in the queue's dead-letter stream: when it was written."""
    queue: str
    job_id: str
    error: Any
    attempts: int
    job: Job | None
    """The job's record now (it may have been retried since); None once it has expired."""


def _order(entry_id: str) -> tuple[int, int]:
    ms, seq = entry_id.split("-")
    return int(ms), int(seq)


async def newest_dead_letters(queue: Queue, tenant: str, count: int) -> list[DeadLetter]:
    """The newest ``count`` letters over every known queue that ``tenant`` ('' = any) may see,
    newest first, in two round trips after the queue names."""
    names = await queue.queue_names()
    per_queue = max(1, min(count, LOOK_AT_MAX // max(1, len(names))))
    async with queue.redis.pipeline(transaction=False) as pipe:
        for name in names:
            pipe.xrevrange(queue.keys.dead(name), count=per_queue)
        replies = await pipe.execute()
    entries = [(eid, name, f) for name, rows in zip(names, replies, strict=True) for eid, f in rows]
    entries.sort(key=lambda e: _order(e[0]), reverse=True)
    async with queue.redis.pipeline(transaction=False) as pipe:
        for _, _, fields in entries:
            pipe.hgetall(queue.keys.job(fields["job"]))
        records = await pipe.execute()
    found = []
    for (eid, name, fields), record in zip(entries, records, strict=True):
        job = Job.from_hash(record) if record else None
        if tenant and (job is None or job.tenant != tenant):
            continue
        error = orjson.loads(fields["error"])
        found.append(DeadLetter(eid, name, fields["job"], error, int(fields["attempts"]), job))
        if len(found) == count:
            break
    return found

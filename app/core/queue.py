"""The client side of the queue: submit jobs, read them, cancel them, read queue depth.

Every state change is one Lua script (``app/lua``); a batch of submissions is one script call.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from redis.asyncio import Redis
from uuid_utils import uuid7

from app.core.errors import InvalidRequest, JobConflict
from app.core.keys import Keys
from app.core.models import Job, JobSpec, JobStatus
from app.core.scripts import Script, Scripts, pack
from app.core.settings import CoreSettings

SUBMIT_CHUNK = 500
"""Jobs per submit script call: big enough to amortise the round trip, small enough that one
call never holds Redis for long."""
SUBMIT_IN_FLIGHT = 4


@dataclass(frozen=True, slots=True)
class QueueStats:
    queue: str
    waiting: int
    running: int
    scheduled: int
    dead: int
    oldest_waiting_age_s: float | None


class Queue:
    """Submits, reads and cancels jobs. One per process; safe to share between tasks."""

    def __init__(self, redis: Redis, settings: CoreSettings) -> None:
        self.redis = redis
        self.settings = settings
        self.keys = Keys(settings.key_prefix)
        self.scripts = Scripts(redis, self.keys, settings)

    async def submit(self, spec: JobSpec) -> Job:
        return (await self.submit_many([spec]))[0]

    async def submit_many(self, specs: Sequence[JobSpec]) -> list[Job]:
        """Create the jobs, pending or scheduled, one script call per chunk of 500.

        A few chunks are in flight at once, so the next is encoded while Redis runs the last.
        Each chunk is atomic; a batch larger than one chunk is not.
        """
        chunks = [specs[i : i + SUBMIT_CHUNK] for i in range(0, len(specs), SUBMIT_CHUNK)]
        in_flight = asyncio.Semaphore(SUBMIT_IN_FLIGHT)

        async def submit_chunk(chunk: Sequence[JobSpec]) -> list[Job]:
            async with in_flight:
                rows = [self._submit_args(spec) for spec in chunk]
                replies = await self.scripts(Script.SUBMIT, [pack(rows)])
            return [_submitted(*row) for row in zip(chunk, rows, replies, strict=True)]

        results = await asyncio.gather(*(submit_chunk(chunk) for chunk in chunks))
        return [job for chunk_jobs in results for job in chunk_jobs]

    def _submit_args(self, spec: JobSpec) -> list[Any]:
        for name in (spec.type, spec.queue, spec.tenant, spec.id or ""):
            if not name.isprintable():
                raise InvalidRequest(f"names must be printable text, got {name!r}")
        run_at_ms = spec.run_at.timestamp() * 1000 if spec.run_at else 0
        return [
            spec.id or str(uuid7()),
            spec.tenant,
            spec.queue,
            spec.type,
            orjson.dumps(spec.payload).decode(),
            spec.max_attempts or self.settings.default_max_attempts,
            spec.timeout_s or self.settings.default_timeout_s,
            int(spec.delay_s * 1000),
            run_at_ms,
        ]

    async def get(self, job_id: str) -> Job | None:
        fields: Any = await self.redis.hgetall(self.keys.job(job_id))
        return Job.from_hash(fields) if fields else None

    async def cancel(self, job_id: str, tenant: str = "") -> str:
        """Cancel a job. Returns ``not_found``, ``cancelled``, ``cancelling`` (a running job,
        stopped at its worker's next heartbeat) or the terminal status it already had."""
        result: str = await self.scripts(Script.CANCEL, [job_id, tenant])
        return result

    async def queue_names(self) -> list[str]:
        names: Any = await self.redis.smembers(self.keys.queues)
        return sorted(names)

    async def stats(self, queues: Sequence[str] | None = None) -> list[QueueStats]:
        """Depth figures per queue (all known queues by default), in one round trip."""
        names = list(queues) if queues is not None else await self.queue_names()
        if not names:
            return []
        rows = await self.scripts(Script.STATS, names)
        return [
            QueueStats(
                queue=name,
                waiting=int(waiting),
                running=int(running),
                scheduled=int(scheduled),
                dead=int(dead),
                oldest_waiting_age_s=None if int(age) < 0 else int(age) / 1000,
            )
            for name, (waiting, running, scheduled, dead, age) in zip(names, rows, strict=True)
        ]

    async def dead_letters(self, queue: str, count: int = 50) -> list[dict[str, Any]]:
        """The newest dead-letter entries of a queue."""
        entries: Any = await self.redis.xrevrange(self.keys.dead(queue), count=count)
        return [
            {
                "entry": eid,
                "job": f["job"],
                "error": orjson.loads(f["error"]),
                "attempts": int(f["attempts"]),
            }
            for eid, f in entries
        ]


def _submitted(spec: JobSpec, row: list[Any], reply: list[str]) -> Job:
    if reply[0] == "exists":
        raise JobConflict(f"job id {row[0]} is already taken")
    return Job(
        id=row[0],
        tenant=spec.tenant,
        queue=spec.queue,
        type=spec.type,
        payload=spec.payload,
        status=JobStatus(reply[0]),
        attempts=0,
        max_attempts=row[5],
        timeout_s=row[6],
        created_at=reply[1],
        run_at=reply[2] or None,
    )

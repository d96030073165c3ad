"""The client side of the queue: submit jobs, read them, cancel them, read queue depth, forget
idle queues.

Every state change is one Lua script (``app/core/lua``); a batch of submissions is one script
call. Script refusals become errors through ``app.core.errors.raise_refusal``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import orjson
from redis.asyncio import Redis
from uuid_utils import uuid7

from app.core.errors import InvalidRequest, raise_refusal
from app.core.keys import Keys
from app.core.models import Job, JobSpec, JobStatus, checked, encode_payload
from app.core.scripts import Script, Scripts, pack
from app.core.settings import CoreSettings

SUBMIT_CHUNK = 500
"""Jobs per submit script call: big enough to amortise the round trip, small enough that one
call never holds Redis for long."""
SUBMIT_IN_FLIGHT = 4
FORGET_SCAN = 100
"""Queue names one forget script call looks at: a flood of names never holds Redis for long."""


@dataclass(frozen=True, slots=True)
class QueueStats:
    queue: str
    waiting: int
    running: int
    scheduled: int
    dead: int
    oldest_waiting_age_s: float | None
    finished_per_min: float = 0.0
    """Jobs that ended (succeeded, failed or cancelled) over the last minute: a sliding-window
    estimate from per-minute counters, not a scan of the events stream (see ``stats.lua``)."""


class CancelOutcome(StrEnum):
    CANCELLED = "cancelled"
    CANCELLING = "cancelling"
    """Running: flagged, and stopped by its worker at the next heartbeat."""


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

        Every spec is checked and encoded first, so a bad one (:class:`InvalidRequest`) stores
        nothing. A few chunks are in flight at once. Each chunk is atomic: a taken id
        (:class:`JobConflict`) stores none of its chunk; a batch larger than one chunk is not.
        """
        batch = len(specs) > 1
        rows = [
            self._submit_args(spec, f"job {i}: " if batch else "") for i, spec in enumerate(specs)
        ]
        in_flight = asyncio.Semaphore(SUBMIT_IN_FLIGHT)

        async def submit_chunk(start: int) -> list[Job]:
            chunk = rows[start : start + SUBMIT_CHUNK]
            async with in_flight:
                replies = await self.scripts(Script.SUBMIT, [pack(chunk)])
            raise_refusal(replies)
            payloads = [spec.payload for spec in specs[start : start + SUBMIT_CHUNK]]
            return [_submitted(*job) for job in zip(chunk, payloads, replies, strict=True)]

        results = await asyncio.gather(
            *(submit_chunk(start) for start in range(0, len(rows), SUBMIT_CHUNK))
        )
        return [job for chunk_jobs in results for job in chunk_jobs]

    def _submit_args(self, spec: JobSpec, label: str) -> list[Any]:
        """The record submit.lua stores; ``label`` names the spec in a batch's error."""
        try:
            spec = checked(spec)
            payload = encode_payload(spec.payload)
        except InvalidRequest as exc:
            raise InvalidRequest(f"{label}{exc}") from None
        settings = self.settings
        return [
            spec.id or str(uuid7()),
            spec.tenant,
            spec.queue,
            spec.type,
            payload,
            settings.default_max_attempts if spec.max_attempts is None else spec.max_attempts,
            settings.default_timeout_s if spec.timeout_s is None else spec.timeout_s,
            int(spec.delay_s * 1000),
            "" if spec.run_at is None else spec.run_at.timestamp() * 1000,
        ]

    async def get(self, job_id: str) -> Job | None:
        fields: Any = await self.redis.hgetall(self.keys.job(job_id))
        return Job.from_hash(fields) if fields else None

    async def cancel(self, job_id: str, tenant: str = "") -> CancelOutcome:
        """Cancel a job of ``tenant`` ('' = any): a waiting one at once, a running one at its
        worker's next heartbeat. :class:`JobNotFound` for an unknown id or another tenant's job,
        :class:`JobConflict` for a job that has already ended."""
        reply = await self.scripts(Script.CANCEL, [job_id, tenant])
        raise_refusal(reply)
        return CancelOutcome(reply)

    async def queue_names(self) -> list[str]:
        names: Any = await self.redis.smembers(self.keys.queues)
        return sorted(names)

    async def forget_idle_queues(self, idle_s: float | None = None) -> list[str]:
        """Forget the queues that are empty, served by no live worker, and had nothing enqueued
        or delivered for ``idle_s`` (default ``QUEUE_IDLE_FORGET_S``): their names leave
        :meth:`queue_names` and their empty streams go; dead letters stay. Returns the names.
        Safe to run from every process at once; meant to run every minute or so."""
        idle_ms = int((self.settings.queue_idle_forget_s if idle_s is None else idle_s) * 1000)
        cursor, forgotten = "0", []
        while True:
            args = [cursor, FORGET_SCAN, idle_ms]
            cursor, names = await self.scripts(Script.FORGET_QUEUES, args)
            forgotten += names
            if cursor == "0":
                return forgotten

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
                finished_per_min=float(finished),
            )
            for name, (waiting, running, scheduled, dead, age, finished) in zip(
                names, rows, strict=True
            )
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


def _submitted(row: list[Any], payload: Any, reply: list[str]) -> Job:
    job_id, tenant, queue, type_, _, max_attempts, timeout_s = row[:7]
    return Job(
        id=job_id,
        tenant=tenant,
        queue=queue,
        type=type_,
        payload=payload,
        status=JobStatus(reply[0]),
        attempts=0,
        max_attempts=max_attempts,
        timeout_s=timeout_s,
        created_at=reply[1],
        run_at=reply[2] or None,
    )

"""The client side of the queue: submit jobs, read them, cancel them, read queue depth, forget
idle queues.

Every state change is one Lua script (``app/core/lua``); a batch of submissions is one script
call. Script refusals become errors through ``app.core.errors.raise_refusal``.
"""

from __future__ import annotations

import asyncio
import base64
import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import orjson
from redis.asyncio import Redis
from uuid_utils import uuid7

from app.core.errors import InvalidRequest, JobConflict, TideError, raise_refusal, refusal
from app.core.keys import Keys
from app.core.models import Job, JobSpec, checked, encode_payload, status_of
from app.core.scripts import Script, Scripts, pack
from app.core.settings import CoreSettings
from app.core.tenants import UNLIMITED, Admitted, Limits, Quota, SubmitRequest, fingerprint

SUBMIT_CHUNK = 500
"""Jobs per submit script call: big enough to amortise the round trip, small enough that one
call never holds Redis for long."""
SUBMIT_IN_FLIGHT = 4
FORGET_SCAN = 100
"""Queue names one forget script call looks at: a flood of names never holds Redis for long."""


LIST_LOOK_AT = 1000
"""Index entries one listing call looks at: a filter that matches little never holds Redis."""


@dataclass(frozen=True, slots=True)
class JobPage:
    jobs: list[Job]
    cursor: str | None


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
        self._submit_args = [settings.idempotency_ttl_s, -settings.list_index_max - 1]

    async def submit(self, spec: JobSpec) -> Job:
        """Create one job: one script call, nothing else on the way (the hot path, so without
        the request and verdict objects that :meth:`admit` builds)."""
        row = self._submit_row(spec, "")
        head = _request_head(spec.tenant, UNLIMITED, bool(spec.id), 1)
        (reply,) = await self.scripts(Script.SUBMIT, [*self._submit_args, pack([head, row])])
        raise_refusal(reply)
        item = reply[4][0]
        if item[4] == 1:  # an idempotency key's replay: its original job
            return (await self._read([item[0]]))[0]
        return _submitted(spec, row, item)

    async def submit_many(self, specs: Sequence[JobSpec]) -> list[Job]:
        """Create the jobs, pending or scheduled, one script call per chunk of 500.

        Every spec is checked and encoded first, so a bad one (:class:`InvalidRequest`) stores
        nothing. A few chunks are in flight at once. Each chunk is atomic: a taken id
        (:class:`JobConflict`) stores none of its chunk; a batch larger than one chunk is not.
        """
        if len(specs) <= SUBMIT_CHUNK:
            return (await self.admit(SubmitRequest(specs))).jobs
        rows = [self._submit_row(spec, f"job {i}: ") for i, spec in enumerate(specs)]
        in_flight = asyncio.Semaphore(SUBMIT_IN_FLIGHT)

        async def submit_chunk(start: int) -> list[Job]:
            request = SubmitRequest(specs[start : start + SUBMIT_CHUNK])
            async with in_flight:
                (admitted,) = await self._admit([(request, rows[start : start + SUBMIT_CHUNK])])
            if isinstance(admitted, TideError):
                raise admitted
            return admitted.jobs

        chunks = range(0, len(rows), SUBMIT_CHUNK)
        results = await asyncio.gather(*(submit_chunk(start) for start in chunks))
        return [job for chunk_jobs in results for job in chunk_jobs]

    async def admit(self, request: SubmitRequest) -> Admitted:
        """Admit one request against its tenant's limits and idempotency keys, all or nothing:
        :class:`RateLimited`, :class:`TooManyActive`, :class:`IdempotencyMismatch` or
        :class:`JobConflict` store nothing."""
        (admitted,) = await self._admit([(request, self._request_rows(request))])
        if isinstance(admitted, TideError):
            raise admitted
        return admitted

    async def admit_many(self, requests: Sequence[SubmitRequest]) -> list[Admitted | TideError]:
        """Admit independent requests in ONE script call, each with its own verdict: what a
        refused one would have raised (an invalid spec too) is its entry."""
        results: list[Admitted | TideError | None] = []
        batch = []
        for request in requests:
            try:
                rows = self._request_rows(request)
            except InvalidRequest as exc:
                results.append(exc)
            else:
                results.append(None)
                batch.append((request, rows))
        admitted = iter(await self._admit(batch) if batch else [])
        return [result or next(admitted) for result in results]

    def _request_rows(self, request: SubmitRequest) -> list[list[Any]]:
        specs = request.specs
        if len(specs) == 1:  # the API's single submit: one job is one tenant's
            return [self._submit_row(specs[0], "")]
        if request.limits != UNLIMITED and len({spec.tenant for spec in specs}) > 1:
            raise InvalidRequest("a request with limits carries the jobs of one tenant")
        return [self._submit_row(spec, f"job {i}: ") for i, spec in enumerate(specs)]

    async def _admit(
        self, batch: Sequence[tuple[SubmitRequest, list[list[Any]]]]
    ) -> list[Admitted | TideError]:
        packed: list[list[Any]] = []
        for request, rows in batch:
            tenant = request.specs[0].tenant if request.specs else "public"
            check_ids = any(spec.id for spec in request.specs)
            packed.append(_request_head(tenant, request.limits, check_ids, len(rows)))
            packed.extend(rows)
        replies = await self.scripts(Script.SUBMIT, [*self._submit_args, pack(packed)])
        results: list[Admitted | TideError] = []
        for (request, rows), reply in zip(batch, replies, strict=True):
            error = refusal(reply)
            results.append(error or await self._admitted(request, rows, reply))
        return results

    async def _admitted(
        self, request: SubmitRequest, rows: list[list[Any]], reply: list[Any]
    ) -> Admitted:
        _, rpm, remaining, reset_ms, items = reply
        jobs: list[Job | None] = [
            None if item[4] == 1 else _submitted(spec, row, item)
            for spec, row, item in zip(request.specs, rows, items, strict=True)
        ]
        replayed = [job is None for job in jobs]
        if any(replayed):
            originals = await self._read([item[0] for item in items if item[4] == 1])
            found = iter(originals)
            jobs = [job or next(found) for job in jobs]
        quota = None if rpm == "" else Quota(int(rpm), int(remaining), math.ceil(reset_ms / 1000))
        return Admitted([job for job in jobs if job is not None], replayed, quota)

    async def _read(self, job_ids: Sequence[str]) -> list[Job]:
        """The records of jobs an idempotency key names. One whose record has expired since (its
        result outlived ``RESULT_TTL_S``, the key not yet) is a :class:`JobConflict`: the key
        cannot create another, and the original is gone."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for job_id in job_ids:
                pipe.hgetall(self.keys.job(job_id))
            rows = await pipe.execute()
        for job_id, fields in zip(job_ids, rows, strict=True):
            if not fields:
                raise JobConflict(
                    f"the job {job_id} this idempotency key created has expired; use a new key"
                )
        return [Job.from_hash(fields) for fields in rows]

    def _submit_row(self, spec: JobSpec, label: str) -> list[Any]:
        """The record submit.lua stores; ``label`` names the spec in a batch's error."""
        try:
            spec = checked(spec)
            payload = encode_payload(spec.payload)
        except InvalidRequest as exc:
            raise InvalidRequest(f"{label}{exc}") from None
        settings = self.settings
        key = spec.idempotency_key
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
            key or "",
            fingerprint(spec) if key else "",
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

    async def retry(self, job_id: str, tenant: str = "", max_active: int | None = None) -> None:
        """Run a failed or cancelled job of ``tenant`` ('' = any) again from its first attempt.
        It takes an active slot again: :class:`TooManyActive` over ``max_active``;
        :class:`JobNotFound` as for :meth:`cancel`; :class:`JobConflict` for any other status."""
        limit = "" if max_active is None else max_active
        raise_refusal(await self.scripts(Script.RETRY, [job_id, tenant, limit]))

    async def list_jobs(
        self,
        tenant: str,
        *,
        status: str | None = None,
        queue: str | None = None,
        type: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> JobPage:
        """A page of ``tenant``'s recent jobs, newest first, and the cursor of the next page
        (``None`` at the end). A page may be short when few jobs match: follow the cursor.
        :class:`InvalidRequest` for a cursor this method did not hand out."""
        after, score = _decode_cursor(cursor) if cursor else ("", "")
        args = [tenant, after, score, limit, LIST_LOOK_AT, status or "", queue or "", type or ""]
        ids, last, last_score = await self.scripts(Script.LIST_JOBS, args)
        async with self.redis.pipeline(transaction=False) as pipe:
            for job_id in ids:
                pipe.hgetall(self.keys.job(job_id))
            rows = await pipe.execute()
        jobs = [Job.from_hash(fields) for fields in rows if fields]
        return JobPage(jobs, _encode_cursor(last, last_score) if last else None)

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


def _request_head(tenant: str, limits: Limits, check_ids: bool, jobs: int) -> list[Any]:
    """What submit.lua reads before a request's records: whose limits, which, and how many."""
    rpm = "" if limits.rpm is None else limits.rpm
    max_active = "" if limits.max_active is None else limits.max_active
    return [tenant, rpm, max_active, 1 if check_ids else 0, jobs]


def _submitted(spec: JobSpec, row: list[Any], item: list[Any]) -> Job:
    job_id, status, created_at, run_at, _ = item
    return Job(
        id=job_id,
        tenant=spec.tenant,
        queue=spec.queue,
        type=spec.type,
        payload=spec.payload,
        status=status_of(status),
        attempts=0,
        max_attempts=row[5],
        timeout_s=row[6],
        created_at=created_at,
        run_at=run_at or None,
        idempotency_key=spec.idempotency_key,
    )


def _encode_cursor(job_id: str, score: str) -> str:
    return base64.urlsafe_b64encode(f"{score}|{job_id}".encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[str, str]:
    """(job id, index score) of a cursor from :func:`_encode_cursor`."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        score, job_id = text.split("|", 1)
        finite = math.isfinite(float(score))
    except ValueError:  # binascii.Error and UnicodeDecodeError are ValueErrors too
        raise InvalidRequest(f"cursor {cursor[:80]!r} is not one this API handed out") from None
    if not finite or not job_id or not job_id.isprintable():
        raise InvalidRequest(f"cursor {cursor[:80]!r} is not one this API handed out")
    return job_id, score

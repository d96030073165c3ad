"""A Python client of Tide's HTTP API: async, one keep-alive session, retries that are safe.

A 429 (after its ``Retry-After``), a 5xx and a dropped or refused connection are retried with
capped, jittered backoff. Every submission carries an ``Idempotency-Key`` (one is made per
logical submit when the caller gives none) and its retries send the *same* key, so a retry
after a lost answer returns the original job instead of creating a second one.

Imports only aiohttp, orjson, pydantic and the standard library (plus the answer models of
:mod:`app.wire`): no Redis, nothing of the server. Errors::

    ClientError
    ├── ApiError          a 4xx answer: .status, .code, .message, .details
    │   ├── BadRequest        400, 413, 422: the request itself is wrong
    │   ├── Unauthorized      401
    │   ├── NotFound          404
    │   ├── Conflict          409
    │   └── RateLimited       429, once the retries ran out
    ├── Unavailable       5xx or no connection, once the retries ran out
    └── WaitTimeout       wait() gave up before the job ended
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from importlib.metadata import version
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import quote

import aiohttp
import orjson
from pydantic import BaseModel, ValidationError

from app.core.models import TERMINAL
from app.wire import BatchResult, ErrorBody, Job

__all__ = [
    "ApiError",
    "BadRequest",
    "ClientError",
    "Conflict",
    "JobRequest",
    "NotFound",
    "RateLimited",
    "TideClient",
    "Unauthorized",
    "Unavailable",
    "WaitTimeout",
]

BATCH_MAX = 1000
"""The server's default ``BATCH_MAX``; pass ``batch_max`` when the server's is lower."""
RETRY_AFTER_MAX_S = 60.0
"""Longest ``Retry-After`` honoured as is; a longer one is waited this long, then retried."""

M = TypeVar("M", bound=BaseModel)


class ClientError(Exception):
    """Base of every error this client raises."""


class ApiError(ClientError):
    """The API refused the request (4xx) with ``{"error": {"code", "message", "details"}}``."""

    def __init__(self, status: int, code: str, message: str, details: Any = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details = details


class BadRequest(ApiError):
    """400, 413 or 422: retrying the same request cannot succeed."""


class Unauthorized(ApiError):
    pass


class NotFound(ApiError):
    pass


class Conflict(ApiError):
    pass


class RateLimited(ApiError):
    """Over a tenant limit, still after the retries; ``code`` names the limit."""


class Unavailable(ClientError):
    """The API answered 5xx, or could not be reached, on every attempt."""


class WaitTimeout(ClientError, TimeoutError):
    """The job had not ended when ``wait`` gave up; ``job`` is how it was last seen."""

    def __init__(self, job: Job, timeout_s: float) -> None:
        super().__init__(f"job {job.id} still {job.status} after {timeout_s} s")
        self.job = job


ERRORS_BY_STATUS: dict[int, type[ApiError]] = {
    400: BadRequest,
    401: Unauthorized,
    404: NotFound,
    409: Conflict,
    413: BadRequest,
    422: BadRequest,
    429: RateLimited,
}


@dataclass(frozen=True, slots=True)
class JobRequest:
    """One job to submit; ``None`` leaves a field to the server's default."""

    type: str
    payload: Any = None
    queue: str | None = None
    max_attempts: int | None = None
    timeout_s: float | None = None
    delay_s: float | None = None
    run_at: datetime | None = None
    idempotency_key: str | None = None

    def body(self) -> dict[str, Any]:
        """The submit body, without the key (a header for one job, a field in a batch)."""
        fields = {
            "type": self.type,
            "payload": self.payload,
            "queue": self.queue,
            "max_attempts": self.max_attempts,
            "timeout_s": self.timeout_s,
            "delay_s": self.delay_s,
            "run_at": None if self.run_at is None else self.run_at.isoformat(),
        }
        return {k: v for k, v in fields.items() if v is not None or k == "payload"}


def new_idempotency_key() -> str:
    return str(uuid.uuid4())


class TideClient:
    """Talks to one Tide API. Use as ``async with TideClient(url, api_key) as tide: ...``.

    ``retries``: attempts after the first, for 429, 5xx and connection failures.
    ``backoff_s``: the first wait; it doubles up to ``backoff_max_s``, with jitter.
    ``session``: an aiohttp session to use instead of the client's own (the caller closes it).
    """

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        timeout_s: float = 30.0,
        retries: int = 5,
        backoff_s: float = 0.2,
        backoff_max_s: float = 10.0,
        batch_max: int = BATCH_MAX,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.retries = retries
        self.backoff_s = backoff_s
        self.backoff_max_s = backoff_max_s
        self.batch_max = batch_max
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._headers = {"User-Agent": f"tide-client/{version('tide')}"}
        if api_key is not None:
            self._headers["X-API-Key"] = api_key
        self._session = session
        self._owns_session = session is None

    async def __aenter__(self) -> TideClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def session(self) -> aiohttp.ClientSession:
        """One keep-alive session for every request, made on first use."""
        if self._session is None:
            self._session = aiohttp.ClientSession(headers=self._headers, timeout=self._timeout)
        return self._session

    # -- jobs ---------------------------------------------------------------------------------

    async def submit(
        self,
        type: str,
        payload: Any = None,
        *,
        queue: str | None = None,
        max_attempts: int | None = None,
        timeout_s: float | None = None,
        delay_s: float | None = None,
        run_at: datetime | None = None,
        idempotency_key: str | None = None,
    ) -> Job:
        """Submit one job; the job as created (or as first created, on a replay)."""
        request = JobRequest(
            type, payload, queue, max_attempts, timeout_s, delay_s, run_at, idempotency_key
        )
        key = request.idempotency_key or new_idempotency_key()
        headers = {"Idempotency-Key": key}
        return await self._call("POST", "/v1/jobs", Job, request.body(), headers)

    async def submit_many(self, requests: Sequence[JobRequest]) -> list[Job]:
        """Submit jobs in batches of ``batch_max``, one after another; the jobs in order.

        Each item carries its own idempotency key (made when absent), kept across retries. A
        batch is admitted whole or not at all; if one fails, the batches before it stay
        submitted: give your own keys to make calling again safe."""
        jobs: list[Job] = []
        for start in range(0, len(requests), self.batch_max):
            chunk = requests[start : start + self.batch_max]
            items = [
                {**r.body(), "idempotency_key": r.idempotency_key or new_idempotency_key()}
                for r in chunk
            ]
            result = await self._call("POST", "/v1/jobs/batch", BatchResult, {"jobs": items})
            jobs += [item.job for item in result.results]
        return jobs

    async def get(self, job_id: str) -> Job:
        return await self._call("GET", f"/v1/jobs/{quote(job_id, safe='')}", Job)

    async def cancel(self, job_id: str) -> Job:
        """Cancel the job: a waiting one ends at once, a running one at its next heartbeat.
        :class:`Conflict` when it has already ended."""
        return await self._call("POST", f"/v1/jobs/{quote(job_id, safe='')}/cancel", Job)

    async def retry(self, job_id: str) -> Job:
        """Run a ``failed`` or ``cancelled`` job again; :class:`Conflict` otherwise."""
        return await self._call("POST", f"/v1/jobs/{quote(job_id, safe='')}/retry", Job)

    async def wait(self, job_id: str, timeout_s: float = 60.0, poll_max_s: float = 1.0) -> Job:
        """The job once it has ended (succeeded, failed or cancelled). Polls from every 50 ms
        up to every ``poll_max_s``; :class:`WaitTimeout` after ``timeout_s``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        interval = 0.05
        while True:
            job = await self.get(job_id)
            if job.status in TERMINAL:
                return job
            left = deadline - loop.time()
            if left <= 0:
                raise WaitTimeout(job, timeout_s)
            await asyncio.sleep(min(interval, left))
            interval = min(interval * 2, poll_max_s)

    # -- transport ----------------------------------------------------------------------------

    async def _call(
        self,
        method: str,
        path: str,
        answer: type[M],
        body: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> M:
        """Send the request, retrying what may be retried, and parse the answer as ``answer``."""
        data = None if body is None else orjson.dumps(body)
        send_headers = dict(headers or {})
        if data is not None:
            send_headers["Content-Type"] = "application/json"
        url = self.base_url + path
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            try:
                async with self.session.request(
                    method, url, data=data, headers=send_headers
                ) as response:
                    raw = await response.read()
                    status = response.status
                    retry_after = _retry_after(response.headers.get("Retry-After"))
            except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, TimeoutError) as exc:
                if last:
                    raise Unavailable(f"{method} {url}: {exc!r}") from exc
                await asyncio.sleep(self._backoff(attempt))
                continue
            if status < 400:
                return _parse(answer, raw, status)
            if (status == 429 or status >= 500) and not last:
                await asyncio.sleep(self._backoff(attempt) if retry_after is None else retry_after)
                continue
            if status >= 500:
                raise Unavailable(f"{method} {url}: {status} {_error(status, raw)}")
            raise _error(status, raw)
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _backoff(self, attempt: int) -> float:
        """Exponential, capped, with jitter so that many clients do not retry in step."""
        ceiling = min(self.backoff_max_s, self.backoff_s * 2**attempt)
        return random.uniform(ceiling / 2, ceiling)


def _retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header given in seconds (what Tide sends), capped."""
    try:
        return None if value is None else min(max(float(value), 0.0), RETRY_AFTER_MAX_S)
    except ValueError:
        return None


def _parse(answer: type[M], raw: bytes, status: int) -> M:
    try:
        return answer.model_validate_json(raw)
    except ValidationError as exc:
        raise ClientError(f"unexpected {status} answer: {exc}") from None


def _error(status: int, raw: bytes) -> ApiError:
    """The typed error of a 4xx (or 5xx) answer; a body not in the error shape keeps its text."""
    cls = ERRORS_BY_STATUS.get(status, ApiError)
    try:
        error = ErrorBody.model_validate_json(raw).error
    except ValidationError:
        text = raw.decode(errors="replace")[:200]
        return cls(status, f"http_{status}", text or "no body")
    return cls(status, error.code, error.message, error.details)

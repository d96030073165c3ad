"""The two middlewares every request passes: one log line, and one error shape.

Handlers raise; nothing else turns an exception into a response. The mapping:

- :class:`~app.api.responses.ApiError` → its own status and code
- aiohttp's HTTP errors (unknown route, wrong method, body too large) → their status
- :mod:`app.core.errors` → 404 / 409 / 422 / 429 (see ``TIDE_ERROR_STATUS``); a 429 says when
  to come back (``Retry-After``, ``RateLimit-*``)
- Redis unreachable, or refusing writes (out of memory, read-only replica, ``MISCONF``, busy
  with a script, loading its data) → 503 ``redis_unavailable`` with ``Retry-After``, like an
  outage, and a warning without a traceback
- anything else → 500 ``internal_error``, logged with its traceback, never shown to the client
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from http import HTTPStatus

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler
from redis.exceptions import BusyLoadingError, OutOfMemoryError, ReadOnlyError, ResponseError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from app.api.limits import limit_headers
from app.api.metrics import HTTP_METRICS
from app.api.responses import ApiError, error_response
from app.core.errors import InvalidRequest, JobConflict, JobNotFound, OverLimit, TideError
from app.process.logging import emits

log = structlog.get_logger("tide.api")

TIDE_ERROR_STATUS: dict[type[TideError], int] = {
    JobNotFound: 404,
    JobConflict: 409,
    InvalidRequest: 422,
    OverLimit: 429,
}
"""HTTP status of each :mod:`app.core.errors` class a handler may raise (subclasses included)."""

REFUSING_CLASSES = (OutOfMemoryError, ReadOnlyError, BusyLoadingError)
REFUSING_PREFIXES = ("OOM", "MISCONF", "READONLY", "BUSY", "LOADING", "NOREPLICAS", "MASTERDOWN")
"""Replies of a Redis that is up but refuses to write for now: what the client can only wait out.
redis-py maps some to classes; the rest (and any inside a script's error) arrive as text."""
UNAVAILABLE_RETRY_AFTER_S = {"unreachable": 1, "refusing": 5}
"""A dropped connection is often back in a second; a full memory or a failover takes longer."""

_QUIET_PATHS = frozenset({"/health"})
"""Polled by load balancers every few seconds: logged at debug, not info."""


def _snake(phrase: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", phrase.lower()).strip("_")


def _from_http_exception(request: web.Request, exc: web.HTTPException) -> web.Response:
    status = exc.status
    headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
    if status == 404:
        return error_response(404, "not_found", f"no route for {request.method} {request.path}")
    if status == 405:
        message = f"{request.method} is not allowed on {request.path}"
        return error_response(405, "method_not_allowed", message, headers=headers)
    if status == 413:
        message = f"request body is larger than {request.client_max_size} bytes"
        return error_response(413, "payload_too_large", message)
    try:
        code = _snake(HTTPStatus(status).phrase)
    except ValueError:
        code = "http_error"
    return error_response(status, code, exc.reason, headers=headers)


def refusing_writes(exc: ResponseError) -> bool:
    """True for an error reply that means "Redis is up but will not write now"."""
    return isinstance(exc, REFUSING_CLASSES) or str(exc).lstrip("-").startswith(REFUSING_PREFIXES)


def _unavailable(request: web.Request, why: str, exc: Exception) -> web.Response:
    log.warning(
        "api.redis_unavailable", method=request.method, path=request.path, why=why, error=str(exc)
    )
    what = "is not reachable" if why == "unreachable" else "is refusing writes"
    return error_response(
        503,
        "redis_unavailable",
        f"the job store (Redis) {what}; try again shortly",
        headers={"Retry-After": str(UNAVAILABLE_RETRY_AFTER_S[why])},
    )


def _internal_error(request: web.Request, event: str) -> web.Response:
    """A 500 that shows the client nothing; the traceback goes to the log (call in ``except``)."""
    log.exception(event, method=request.method, path=request.path)
    return error_response(500, "internal_error", "internal server error")


def _tide_status(exc: TideError) -> int | None:
    for cls, status in TIDE_ERROR_STATUS.items():
        if isinstance(exc, cls):
            return status
    return None


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turns every failure into ``{"error": {...}}`` with the right status."""
    try:
        return await handler(request)
    except ApiError as exc:
        response = error_response(exc.status, exc.code, exc.message, exc.details, exc.headers)
        if exc.close:
            response.force_close()
        return response
    except web.HTTPException as exc:
        if exc.status < 400:  # redirects and the like are answers, not errors
            raise
        return _from_http_exception(request, exc)
    except TideError as exc:
        status = _tide_status(exc)
        if isinstance(exc, OverLimit):
            details = {
                "limit": exc.limit,
                "remaining": exc.remaining,
                "retry_after_s": exc.retry_after_s,
            }
            return error_response(429, exc.code, str(exc), details, limit_headers(exc))
        if status is not None:
            return error_response(status, exc.code, str(exc) or exc.code)
        return _internal_error(request, "api.unmapped_error")
    except (RedisConnectionError, RedisTimeoutError) as exc:
        return _unavailable(request, "unreachable", exc)
    except ResponseError as exc:
        if refusing_writes(exc):
            return _unavailable(request, "refusing", exc)
        return _internal_error(request, "api.unhandled_error")
    except Exception:
        return _internal_error(request, "api.unhandled_error")


@web.middleware
async def log_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """One structured line per request, and this replica's HTTP metrics, after the error
    middleware has settled the status."""
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    except asyncio.CancelledError:
        status = 499  # the client went away before the answer
        raise
    finally:
        seconds = time.perf_counter() - started
        if (http := request.app.get(HTTP_METRICS)) is not None:
            http.observe(request, status, seconds)
        level = logging.DEBUG if request.path in _QUIET_PATHS else logging.INFO
        if emits(level):
            ms = round(seconds * 1000, 2)
            log.log(
                level, "api.request", method=request.method, path=request.path, status=status, ms=ms
            )

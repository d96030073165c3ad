"""Reads a request body as JSON and validates it, raising the API's 400/413/422 errors.

A body the client broke (a ``Content-Encoding`` it does not have, a connection dropped half-way)
is the client's doing: a 400 ``invalid_body`` and an info line, never a 500 with a traceback.
Integers JSON allows but orjson cannot keep exact (beyond 64 bits, which it silently turns into
floats) are refused with a 422 ``integer_out_of_range`` rather than stored rounded.
"""

from __future__ import annotations

import json
import re
from contextlib import suppress
from typing import Any, TypeVar

import orjson
import structlog
from aiohttp import web
from pydantic import BaseModel, ValidationError

from app.api.responses import ApiError

log = structlog.get_logger("tide.api")

M = TypeVar("M", bound=BaseModel)

INT_MIN, INT_MAX = -(2**63), 2**64 - 1
"""The integers orjson reads exactly (signed and unsigned 64-bit)."""
_LONG_DIGITS = re.compile(rb"\d{19}")
"""Every integer outside the range has at least 19 digits; most bodies have no such run, so the
exact re-check (the slow stdlib parser) runs only for the few that do."""


async def read_json(request: web.Request) -> Any:
    """The parsed body. Over ``client_max_size`` aiohttp raises 413 while reading."""
    raw = await _read(request)
    if not raw.strip():
        raise ApiError(400, "invalid_json", "the request body is empty; send a JSON object")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        _check_integers(raw)  # orjson refuses an integer too large even for a float
        raise ApiError(400, "invalid_json", f"the request body is not valid JSON: {exc}") from None
    _check_integers(raw)
    return data


def _check_integers(raw: bytes) -> None:
    """Raise ``integer_out_of_range`` for an integer orjson cannot keep exactly."""
    if _LONG_DIGITS.search(raw):
        with suppress(ValueError):  # not JSON at all: the caller says so
            json.loads(raw, parse_int=_exact_int)


async def _read(request: web.Request) -> bytes:
    try:
        return await request.read()
    except (web.RequestPayloadError, ConnectionResetError) as exc:
        reason = str(exc).replace("\n", " ").strip()
        log.info("api.body_unreadable", method=request.method, path=request.path, reason=reason)
        request.content.feed_eof()  # nothing more can be read: aiohttp must not try to
        raise ApiError(
            400, "invalid_body", f"the request body could not be read: {reason}", close=True
        ) from None


def _exact_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:  # more digits than Python converts: far out of range anyway
        value = INT_MAX + 1
    if not INT_MIN <= value <= INT_MAX:
        shown = text if len(text) <= 40 else f"{text[:20]}...({len(text)} digits)"
        raise ApiError(
            422,
            "integer_out_of_range",
            f"the integer {shown} cannot be kept exactly; integers must be between "
            f"{INT_MIN} and {INT_MAX} (send larger ones as strings)",
        )
    return value


def validation_details(exc: ValidationError) -> Any:
    """Pydantic's error list made JSON-safe, without echoing the (possibly large) input."""
    return orjson.loads(exc.json(include_url=False, include_input=False))


async def parse_body(request: web.Request, model: type[M]) -> M:
    """The body validated as ``model``; a 422 ``validation_error`` lists each field's problem."""
    return validated(model, await read_json(request))


def validated(model: type[M], data: Any, what: str = "the request body") -> M:
    """``data`` validated as ``model``, or a 422 ``validation_error`` naming each problem."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ApiError(
            422, "validation_error", f"{what} is invalid; see details", validation_details(exc)
        ) from None

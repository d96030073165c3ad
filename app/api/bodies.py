"""Reads a request body as JSON and validates it, raising the API's 400/413/422 errors."""

from __future__ import annotations

from typing import Any, TypeVar

import orjson
from aiohttp import web
from pydantic import BaseModel, ValidationError

from app.api.responses import ApiError

M = TypeVar("M", bound=BaseModel)


async def read_json(request: web.Request) -> Any:
    """The parsed body. Over ``client_max_size`` aiohttp raises 413 while reading."""
    raw = await request.read()
    if not raw.strip():
        raise ApiError(400, "invalid_json", "the request body is empty; send a JSON object")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, "invalid_json", f"the request body is not valid JSON: {exc}") from None


def validation_details(exc: ValidationError) -> Any:
    """Pydantic's error list made JSON-safe, without echoing the (possibly large) input."""
    return orjson.loads(exc.json(include_url=False, include_input=False))


async def parse_body(request: web.Request, model: type[M]) -> M:
    """The body validated as ``model``; a 422 ``validation_error`` lists each field's problem."""
    data = await read_json(request)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ApiError(
            422,
            "validation_error",
            "the request body is invalid; see details",
            validation_details(exc),
        ) from None

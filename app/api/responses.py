"""The one error shape every endpoint answers with."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from app.process.http import json_response


class ApiError(Exception):
    """An error that already knows its HTTP status and JSON code; the middleware renders it.

    ``close``: end the connection after the answer (the rest of the request cannot be read).
    """

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: Any = None,
        headers: Mapping[str, str] | None = None,
        *,
        close: bool = False,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.headers = dict(headers or {})
        self.close = close


def error_response(
    status: int,
    code: str,
    message: str,
    details: Any = None,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    """``{"error": {"code", "message", "details"}}`` with ``status``."""
    body = {"error": {"code": code, "message": message, "details": details}}
    return json_response(body, status=status, headers=headers)

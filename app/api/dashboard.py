"""``GET /``: the dashboard (DESIGN §6): one HTML page, one JS module and one stylesheet from
``static/``, no build step, nothing from another origin (the Content-Security-Policy says so).

Each file answers with an ``ETag`` of its content and ``Cache-Control: no-cache``: a browser
keeps its copy and asks again each time, so after an upgrade no one runs a stale script
against a newer API, and an unchanged file costs a ``304``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache
from importlib import resources

from aiohttp import web

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
ASSETS = {
    "/": ("dashboard.html", "text/html"),
    "/static/dashboard.js": ("dashboard.js", "text/javascript"),
    "/static/dashboard.css": ("dashboard.css", "text/css"),
}
"""Path -> (file in ``static/``, content type)."""


@dataclass(frozen=True, slots=True)
class Asset:
    body: bytes
    content_type: str
    etag: str


@cache
def asset(path: str) -> Asset:
    name, content_type = ASSETS[path]
    body = resources.files("app.api").joinpath("static", name).read_bytes()
    return Asset(body, content_type, f'"{hashlib.sha256(body).hexdigest()[:16]}"')


async def serve_asset(request: web.Request) -> web.Response:
    found = asset(request.path)
    headers = {
        "ETag": found.etag,
        "Cache-Control": "no-cache",
        "Content-Security-Policy": CSP,
        "X-Content-Type-Options": "nosniff",
    }
    if found.etag in request.headers.get("If-None-Match", ""):
        return web.Response(status=304, headers=headers)
    return web.Response(
        body=found.body, content_type=found.content_type, charset="utf-8", headers=headers
    )


def add_routes(app: web.Application) -> None:
    for path, (name, _) in ASSETS.items():
        app.router.add_get(path, serve_asset, name=name.replace(".", "_"))

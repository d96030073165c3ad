"""``GET /docs``: one self-contained page that renders ``/openapi.json`` in the browser.

No build step and nothing from another origin: the page's own script fetches the document from
this server, and its Content-Security-Policy forbids loading anything from elsewhere.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

from aiohttp import web

CSP = (
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'"
)


@cache
def page() -> str:
    return resources.files("app.api").joinpath("static", "docs.html").read_text()


async def docs(request: web.Request) -> web.Response:
    return web.Response(
        text=page(), content_type="text/html", headers={"Content-Security-Policy": CSP}
    )


def add_routes(app: web.Application) -> None:
    app.router.add_get("/docs", docs, name="docs")

"""HTTP helpers shared by the processes that serve HTTP (the API, and the scaler's small server)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from aiohttp import web


def json_response(
    data: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    """A response whose body is encoded with orjson (fast, and ISO 8601 for datetimes)."""
    return web.Response(
        body=orjson.dumps(data), status=status, headers=headers, content_type="application/json"
    )


async def serve(
    app: web.Application, host: str, port: int, shutdown_timeout_s: float
) -> web.AppRunner:
    """Start serving ``app``; the caller awaits ``runner.cleanup()`` to stop.

    ``port`` 0 picks a free port: read it back from ``runner.addresses``. Signals are the
    process's own business (:mod:`app.process.signals`), so aiohttp installs none.
    """
    runner = web.AppRunner(
        app, access_log=None, shutdown_timeout=shutdown_timeout_s, handle_signals=False
    )
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except BaseException:
        await runner.cleanup()
        raise
    return runner

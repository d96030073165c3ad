"""Live updates (DESIGN §5): one events reader per process (``hub``), the WebSocket (``ws``),
the long poll (``poll``) and the stats frame (``stats``)."""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import AsyncIterator

from aiohttp import WSCloseCode, web

from app.api.live import poll, ws
from app.api.live.hub import Hub
from app.api.live.state import HUB, SOCKETS
from app.api.live.stats import send_stats
from app.api.state import QUEUE, SETTINGS

BLOCK_MS_MAX = 5000


def block_ms(socket_timeout_s: float) -> int:
    """How long the reader's ``XREAD`` blocks: well under the Redis client's socket timeout,
    which would otherwise end a quiet read as an error."""
    return min(BLOCK_MS_MAX, int(socket_timeout_s * 1000 / 2))


def setup(app: web.Application) -> None:
    """Routes, and the hub's life: after the queue exists, until the app stops."""
    app.router.add_get("/v1/events", poll.poll_events, name="poll_events")
    app.router.add_post("/v1/ws/ticket", ws.ws_ticket, name="ws_ticket")
    app.router.add_get("/v1/ws", ws.websocket, name="websocket")
    app[SOCKETS] = weakref.WeakKeyDictionary()
    app.cleanup_ctx.append(_run_hub)
    app.on_shutdown.append(_close_sockets)


async def _run_hub(app: web.Application) -> AsyncIterator[None]:
    queue = app[QUEUE]
    timeout_s, batch_s = queue.settings.redis_socket_timeout_s, app[SETTINGS].live_batch_s
    hub = Hub(queue.redis, queue.keys, block_ms(timeout_s), batch_s)
    app[HUB] = hub
    stats = asyncio.get_running_loop().create_task(send_stats(queue, hub, app[SOCKETS].values))
    yield
    stats.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await stats
    await hub.close()


async def _close_sockets(app: web.Application) -> None:
    """Every open socket is told the server goes away (1001), at once, not one by one."""
    sockets: list[web.WebSocketResponse] = list(app[SOCKETS].keys())
    await asyncio.gather(
        *(ws.close_within(s, WSCloseCode.GOING_AWAY, b"server shutdown") for s in sockets)
    )

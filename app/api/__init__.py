"""The HTTP API: ``create_app(settings)`` builds the aiohttp application, ``start`` serves it."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from app.api import docs, health, jobs, metrics, openapi, queues
from app.api.middleware import error_middleware, log_middleware
from app.api.settings import ApiSettings
from app.api.state import QUEUE, SETTINGS
from app.core.queue import Queue
from app.process.http import serve

__all__ = ["QUEUE", "SETTINGS", "create_app", "start"]


def create_app(settings: ApiSettings, queue: Queue | None = None) -> web.Application:
    """The API application. Without ``queue`` it connects to ``settings.redis_url`` on startup
    and closes that client on cleanup; a given ``queue`` is the caller's to close."""
    app = web.Application(
        middlewares=[log_middleware, error_middleware],
        client_max_size=settings.max_body_bytes,
    )
    app[SETTINGS] = settings
    if queue is not None:
        app[QUEUE] = queue
    else:
        app.cleanup_ctx.append(_own_queue)
    health.add_routes(app)
    jobs.add_routes(app)
    queues.add_routes(app)
    openapi.add_routes(app)
    docs.add_routes(app)
    metrics.setup(app)
    return app


async def _own_queue(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    redis = settings.connect_redis()
    app[QUEUE] = Queue(redis, settings)
    yield
    await redis.aclose()


async def start(app: web.Application, host: str, port: int) -> web.AppRunner:
    """Serve ``app`` with its settings' shutdown grace; the caller awaits ``runner.cleanup()``."""
    return await serve(app, host, port, app[SETTINGS].shutdown_grace_s)

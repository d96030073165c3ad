"""The HTTP API: ``create_app(settings)`` builds the aiohttp application, ``start`` serves it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import structlog
from aiohttp import web
from redis.exceptions import RedisError

from app.api import (
    dashboard,
    dead_letters,
    docs,
    fleet,
    health,
    jobs,
    live,
    metrics,
    openapi,
    queues,
    tenants,
)
from app.api.auth import AUTHENTICATOR, Authenticator, auth_middleware
from app.api.group_commit import GroupCommit
from app.api.middleware import error_middleware, log_middleware
from app.api.settings import ApiSettings
from app.api.state import GROUP_COMMIT, QUEUE, SETTINGS
from app.core.apikeys import ApiKeyStore
from app.core.queue import Queue
from app.process.http import serve

__all__ = ["QUEUE", "SETTINGS", "create_app", "start"]

log = structlog.get_logger("tide.api")


def create_app(settings: ApiSettings, queue: Queue | None = None) -> web.Application:
    """The API application. Without ``queue`` it connects to ``settings.redis_url`` on startup
    and closes that client on cleanup; a given ``queue`` is the caller's to close."""
    app = web.Application(
        middlewares=[log_middleware, error_middleware, auth_middleware],
        client_max_size=settings.max_body_bytes,
    )
    app[SETTINGS] = settings
    if queue is not None:
        _use_queue(app, queue)
    else:
        app.cleanup_ctx.append(_own_queue)
    health.add_routes(app)
    jobs.add_routes(app)
    queues.add_routes(app)
    dead_letters.add_routes(app)
    fleet.add_routes(app)
    tenants.add_routes(app)
    dashboard.add_routes(app)
    openapi.add_routes(app)
    docs.add_routes(app)
    metrics.setup(app)
    live.setup(app)
    return app


def _use_queue(app: web.Application, queue: Queue) -> None:
    app[QUEUE] = queue
    app[GROUP_COMMIT] = GroupCommit(queue)
    app[AUTHENTICATOR] = Authenticator(app[SETTINGS], ApiKeyStore(queue.redis, queue.settings))


async def _own_queue(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    redis = settings.connect_redis()
    _use_queue(app, Queue(redis, settings))
    yield
    await redis.aclose()


async def _warn_if_auth_off(app: web.Application) -> None:
    try:
        await app[AUTHENTICATOR].warn_if_off()
    except RedisError as exc:  # Redis down at start: /health says so; requests answer 503
        log.warning("api.auth_unknown", reason="Redis did not answer", error=str(exc))


async def start(app: web.Application, host: str, port: int) -> web.AppRunner:
    """Serve ``app`` with its settings' shutdown grace; the caller awaits ``runner.cleanup()``.
    Once it listens, an API open to anyone (no key configured) says so."""
    runner = await serve(app, host, port, app[SETTINGS].shutdown_grace_s)
    await _warn_if_auth_off(app)
    return runner

"""``tide dev``: a whole local Tide in one command: Redis, the API and worker processes.

Redis is chosen as DESIGN §8 says: ``REDIS_URL`` if set, else a private ``redis-server`` on a free
port, else an in-process fakeredis server (with a loud warning). Ctrl-C stops everything in the
reverse order it started, so workers drain while Redis and the API are still there.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

import structlog

from app.api import create_app, start
from app.api.settings import ApiSettings
from app.core.queue import Queue
from app.core.redis_client import connect
from app.dev.demo import run_demo
from app.dev.fake_redis import EmbeddedRedis, FakeRedisUnavailable
from app.dev.redis_server import RedisServer, RedisServerUnavailable
from app.process import loop
from app.process.fleet import STOP_TIMEOUT_S, WorkerFleet, worker_command
from app.process.logging import configure_logging
from app.process.signals import StopSignals

log = structlog.get_logger("tide.dev")

HOST = "127.0.0.1"
"""``tide dev`` is for the machine it runs on; it never listens on other interfaces."""

FAKE_REDIS_WARNING = (
    "NO REAL REDIS: using an embedded fakeredis server. It is slow, keeps nothing after exit and "
    "may not support every command Tide uses. Install redis-server or set REDIS_URL."
)


@dataclass(frozen=True, slots=True)
class DevOptions:
    workers: int = 2
    concurrency: int = 4
    queues: str = "default"
    port: int | None = None
    demo: bool = False


def run_dev(options: DevOptions) -> int:
    """Run until SIGINT/SIGTERM; 0 after a clean stop, 1 if something could not start."""
    settings = ApiSettings()
    configure_logging(settings.log_level)
    return loop.run(_dev(options, settings))


async def _dev(options: DevOptions, settings: ApiSettings) -> int:
    with StopSignals() as signals:
        # LIFO: demo, workers, API, clients, Redis: each stops while what it needs still runs
        async with AsyncExitStack() as stack:
            try:
                url, origin = await stack.enter_async_context(_redis(settings))
            except RedisServerUnavailable as exc:
                log.error("dev.no_redis", error=str(exc))
                return 1
            settings = settings.model_copy(update={"redis_url": url})
            redis = connect(url)
            stack.push_async_callback(redis.aclose)
            try:
                await asyncio.wait_for(redis.ping(), 5)
            except Exception as exc:
                log.error("dev.redis_not_answering", url=url, error=repr(exc))
                return 1

            port = settings.port if options.port is None else options.port
            try:
                runner = await start(create_app(settings), HOST, port)
            except OSError as exc:
                log.error("dev.listen_failed", host=HOST, port=port, error=str(exc))
                return 1
            stack.push_async_callback(runner.cleanup)
            port = runner.addresses[0][1]

            env = {**os.environ, "REDIS_URL": url, "KEY_PREFIX": settings.key_prefix}
            command = worker_command(options.concurrency, options.queues)
            # SHUTDOWN_GRACE_S is the workers' drain too when set: never kill them mid-drain
            stop_timeout = max(STOP_TIMEOUT_S, settings.shutdown_grace_s + 10)
            fleet = WorkerFleet(options.workers, command, env, stop_timeout_s=stop_timeout)
            stack.push_async_callback(fleet.stop, signals.hurry)
            await fleet.start()

            if options.demo:
                demo_stop = asyncio.Event()
                queue_name = options.queues.split(",")[0]
                demo = asyncio.create_task(
                    run_demo(Queue(redis, settings), demo_stop, queue_name=queue_name)
                )
                stack.push_async_callback(_stop_task, demo, demo_stop)

            print(_banner(options, url, origin, port), flush=True)
            await signals.stop.wait()
    log.info("dev.stopped")
    return 0


async def _stop_task(task: asyncio.Task[None], stop: asyncio.Event) -> None:
    stop.set()
    try:
        await asyncio.wait_for(task, 5)
    except TimeoutError:
        log.warning("dev.demo_stuck")
    except Exception:
        log.exception("dev.demo_failed")


@asynccontextmanager
async def _redis(settings: ApiSettings) -> AsyncIterator[tuple[str, str]]:
    """Yields (url, where it came from); stops whatever it started."""
    if "redis_url" in settings.model_fields_set and settings.redis_url:
        yield settings.redis_url, "REDIS_URL"
        return
    try:
        server = RedisServer(own_process_group=True)
    except RedisServerUnavailable as exc:
        log.info("dev.no_redis_server", error=str(exc))
    else:
        try:
            await asyncio.to_thread(server.start)
        except RedisServerUnavailable as exc:
            log.warning("dev.redis_server_failed", error=str(exc))
            shutil.rmtree(server.dir, ignore_errors=True)
        else:
            try:
                yield server.url, "private redis-server"
            finally:
                await asyncio.to_thread(server.__exit__, None, None, None)
            return
    async with _fake_redis() as url:
        yield url, "embedded fakeredis"


@asynccontextmanager
async def _fake_redis() -> AsyncIterator[str]:
    """fakeredis's TCP server in a thread of this process: the last resort."""
    try:
        server = EmbeddedRedis(HOST).start()
    except FakeRedisUnavailable as exc:
        raise RedisServerUnavailable(
            "no Redis: set REDIS_URL, put redis-server on PATH, or install the dev extra"
        ) from exc
    log.warning("dev.fake_redis", warning=FAKE_REDIS_WARNING)
    try:
        yield server.url
    finally:
        await asyncio.to_thread(server.stop)


def _banner(options: DevOptions, url: str, origin: str, port: int) -> str:
    base = f"http://{HOST}:{port}"
    example = (
        f"curl -sS -X POST {base}/v1/jobs -H 'Content-Type: application/json' "
        """-d '{"type": "echo", "payload": {"hello": "world"}}'"""
    )
    lines = [
        "",
        "Tide dev is running",
        f"  API:      {base}  (health: {base}/health)",
        f"  Redis:    {url}  ({origin})",
        f"  Workers:  {options.workers} x {options.concurrency} jobs, queues {options.queues}",
        f"  Demo:     {'on' if options.demo else 'off (--demo keeps jobs flowing)'}",
        "",
        "Submit a job, then read it back with the id from the answer:",
        f"  {example}",
        f"  curl -sS {base}/v1/jobs/<id>",
        "",
        "Ctrl-C stops everything.",
    ]
    if origin == "embedded fakeredis":
        lines.insert(1, f"!!! {FAKE_REDIS_WARNING}")
    return "\n".join(lines)

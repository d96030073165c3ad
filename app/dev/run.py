"""``tide dev``: a whole local Tide in one command: Redis, the API and worker processes.

Redis is chosen as DESIGN §8 says: ``REDIS_URL`` if set, else a private ``redis-server`` on a free
port, else an in-process fakeredis server (with a loud warning). The workers are grown and shrunk
by the scaler with its ``local`` backend (``app.dev.autoscale``), between ``--min-workers`` and
``--max-workers``; ``--workers N`` runs a fixed fleet of N instead, with no scaler. Ctrl-C,
SIGTERM or a closed terminal stops everything in the reverse order it started, so workers drain
while Redis and the API are still there; a ``kill -9`` still takes the workers and the
redis-server along.

What the terminal shows: the banner, then a flow line every few seconds (``app.dev.flow``). With
``--demo`` the workers' logs go to a file named in the banner: the demo fails some jobs on
purpose, and their per-attempt warnings would drown the flow. Without it the workers run your
tasks, and their logs are what you are here to see, so they stay in the terminal.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import sys
import tempfile
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import structlog

from app.api import create_app, start
from app.api.settings import ADMIN_TENANT, ApiSettings
from app.core.apikeys import SECRET_PREFIX
from app.core.errors import InvalidRequest
from app.core.queue import Queue
from app.dev.autoscale import DevScaler
from app.dev.crew import Crew, FixedCrew
from app.dev.demo import run_demo
from app.dev.fake_redis import EmbeddedRedis, FakeRedisUnavailable
from app.dev.flow import FlowMeter, show_flow
from app.dev.redis_server import RedisServer, RedisServerUnavailable
from app.dev.scaler_settings import scaler_settings
from app.process import loop
from app.process.fleet import STOP_TIMEOUT_S, WorkerFleet, worker_command
from app.process.logging import configure_logging
from app.process.signals import StopSignals
from app.process.startup import ConfigError, built_from, exit_config, load_settings
from scaler.settings import ScalerSettings
from workers.loader import check_no_clash
from workers.main import settings_from
from workers.settings import WorkerSettings

log = structlog.get_logger("tide.dev")

HOST = "127.0.0.1"
"""``tide dev`` is for the machine it runs on; it never listens on other interfaces."""

FAKE_REDIS_WARNING = (
    "NO REAL REDIS: using an embedded fakeredis server. It is slow, keeps nothing after exit and "
    "may not support every command Tide uses. Install redis-server or set REDIS_URL."
)


PROG = "tide dev"


def with_admin_key(settings: ApiSettings) -> tuple[ApiSettings, str]:
    """The API's settings with one more admin key, made for this run and printed in the banner:
    the dashboard opened with it sees every tenant, the demo's included (a request without a
    key acts for tenant ``public``, which sees only its own jobs)."""
    secret = SECRET_PREFIX + secrets.token_urlsafe(24)
    keys = ",".join(filter(None, [settings.admin_api_keys, f"{ADMIN_TENANT}:{secret}"]))
    return settings.model_copy(update={"admin_api_keys": keys}), secret


@dataclass(frozen=True, slots=True)
class DevOptions:
    """The flags; those left ``None`` come from the environment (as for ``tide worker``)."""

    workers: int | None = None
    """A fixed fleet of this many workers; None: the scaler decides, within the bounds below."""
    min_workers: int | None = None
    max_workers: int | None = None
    concurrency: int | None = None
    queues: str | None = None
    tasks: str | None = None
    port: int | None = None
    demo: bool = False


def run_dev(options: DevOptions) -> int:
    """Run until SIGINT/SIGTERM/SIGHUP: 0 after a clean stop, 2 for bad configuration, 1 if
    something could not start or the workers cannot run."""
    try:
        settings = load_settings(ApiSettings)
        workers = settings_from(options.tasks, options.queues, options.concurrency)
        scaling = None
        if options.workers is None:
            scaling = scaler_settings(workers, options.min_workers, options.max_workers)
        configure_logging(settings.log_level)
        if workers.tasks_module:
            check_no_clash(Path.cwd())
        return loop.run(_dev(options, settings, workers, scaling))
    except (ConfigError, InvalidRequest) as exc:  # InvalidRequest: a setting the core refuses
        return exit_config(PROG, exc)


async def _dev(
    options: DevOptions,
    settings: ApiSettings,
    workers: WorkerSettings,
    scaling: ScalerSettings | None,
) -> int:
    with StopSignals() as signals:
        # LIFO: demo, workers, API, clients, Redis: each stops while what it needs still runs
        async with AsyncExitStack() as stack:
            try:
                url, origin = await stack.enter_async_context(_redis(settings))
            except RedisServerUnavailable as exc:
                log.error("dev.no_redis", error=str(exc))
                return 1
            settings, admin_key = with_admin_key(settings.model_copy(update={"redis_url": url}))
            redis = built_from("REDIS_URL", url, settings.connect_redis)
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
                raise ConfigError(
                    f"cannot listen on {HOST}:{port}: {exc.strerror or exc}"
                ) from None
            stack.push_async_callback(runner.cleanup)
            port = runner.addresses[0][1]

            queue = Queue(redis, settings)
            output = _worker_log() if options.demo else None
            # the workers' drain (their SHUTDOWN_GRACE_S) comes first: never kill them mid-drain
            stop_timeout = max(STOP_TIMEOUT_S, workers.shutdown_grace_s + 10)
            crew: Crew
            if scaling is None:
                env = {**os.environ, "REDIS_URL": url, "KEY_PREFIX": settings.key_prefix}
                command = worker_command(
                    workers.worker_concurrency, workers.queues, workers.tasks_module
                )
                fleet = WorkerFleet(
                    options.workers or 0, command, env, stop_timeout_s=stop_timeout, output=output
                )
                stack.push_async_callback(fleet.stop, signals.hurry)
                await fleet.start()
                crew = FixedCrew(fleet)
            else:
                scaling = scaling.model_copy(update={"redis_url": url})
                crew = DevScaler(
                    scaling, queue, signals.hurry, stop_timeout_s=stop_timeout, output=output
                )
                stack.push_async_callback(crew.stop)
                await crew.start()

            background = asyncio.Event()
            if options.demo:
                demo = run_demo(queue, background, queue_name=workers.queue_list[0])
                stack.push_async_callback(_stop_task, asyncio.create_task(demo), background)
            meter = FlowMeter(queue, workers.queue_list)
            flow = show_flow(meter, crew.counts, background, _say)
            stack.push_async_callback(_stop_task, asyncio.create_task(flow), background)

            banner = _banner(options, workers, crew, url, origin, port, output, admin_key)
            print(banner, flush=True)
            await _first(signals.stop, crew.failed)
            if crew.failure is not None:
                print(f"{PROG}: {crew.failure}; stopping", file=sys.stderr, flush=True)
                return 1
    log.info("dev.stopped")
    return 0


async def _first(*events: asyncio.Event) -> None:
    """Return once any of ``events`` is set."""
    waits = [asyncio.create_task(event.wait()) for event in events]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()


def _say(line: str) -> None:
    print(line, flush=True)


def _worker_log() -> Path:
    """A file for the workers' logs, kept after exit so it can be read afterwards."""
    return Path(tempfile.mkdtemp(prefix="tide-dev-")) / "workers.log"


async def _stop_task(task: asyncio.Task[None], stop: asyncio.Event) -> None:
    stop.set()
    try:
        await asyncio.wait_for(task, 5)
    except TimeoutError:
        log.warning("dev.task_stuck", task=task.get_name())
    except Exception:
        log.exception("dev.task_failed", task=task.get_name())


@asynccontextmanager
async def _redis(settings: ApiSettings) -> AsyncIterator[tuple[str, str]]:
    """Yields (url, where it came from); stops whatever it started."""
    if "redis_url" in settings.model_fields_set and settings.redis_url:
        yield settings.redis_url, "REDIS_URL"
        return
    try:
        server = RedisServer(own_process_group=True, die_with_parent=True)
    except RedisServerUnavailable as exc:
        log.info("dev.no_redis_server", error=str(exc))
    else:
        try:
            # in this (the main) thread: the server's "die with parent" is tied to the thread
            # that starts it; nothing else runs yet, so blocking for its start costs nothing
            server.start()
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


def _banner(
    options: DevOptions,
    workers: WorkerSettings,
    crew: Crew,
    url: str,
    origin: str,
    port: int,
    output: Path | None,
    admin_key: str,
) -> str:
    base = f"http://{HOST}:{port}"
    auth = f"-H 'X-API-Key: {admin_key}'"
    example = (
        f"curl -sS -X POST {base}/v1/jobs {auth} -H 'Content-Type: application/json' "
        """-d '{"type": "echo", "payload": {"hello": "world"}}'"""
    )
    lines = [
        "",
        "Tide dev is running",
        f"  Dashboard: {base}/  (open it with the admin key)",
        f"  Admin key: {admin_key}  (made for this run; send it as X-API-Key)",
        f"  API:      {base}  (health: {base}/health, docs: {base}/docs)",
        f"  Redis:    {url}  ({origin})",
        *(f"  {line}" for line in crew.describe(workers.worker_concurrency)),
        f"  Queues:   {workers.queues}",
        f"  Tasks:    {workers.tasks_module or '(built-in only; --tasks)'}",
        f"  Logs:     {f'workers in {output}' if output else 'workers below'}",
        f"  Demo:     {'on' if options.demo else 'off (--demo keeps jobs flowing)'}",
        "",
        "Submit a job, then read it back with the id from the answer:",
        f"  {example}",
        f"  curl -sS {auth} {base}/v1/jobs/<id>",
        "",
        "A line every few seconds shows the flow. Ctrl-C stops everything.",
    ]
    if origin == "embedded fakeredis":
        lines.insert(1, f"!!! {FAKE_REDIS_WARNING}")
    return "\n".join(lines)

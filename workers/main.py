"""``tide worker``: run a worker process until SIGTERM/SIGINT/SIGHUP, then drain and exit 0.

A second signal exits at once; the lease timeout then hands the unfinished jobs to other workers.
Bad configuration (a setting, a flag, a tasks module that does not import) is one line on stderr
and exit code 2, which tells a supervisor not to restart it.
"""

from __future__ import annotations

import argparse
import importlib
import os
from pathlib import Path

import structlog

from app.core.errors import InvalidRequest
from app.process import loop
from app.process.logging import configure_logging
from app.process.signals import StopSignals
from app.process.startup import (
    ConfigError,
    built_from,
    exit_config,
    load_settings,
    positive_int,
)
from workers.loader import import_tasks
from workers.settings import WorkerSettings
from workers.tasks import registry
from workers.worker import ThreadsOutlivedShutdown, Worker

log = structlog.get_logger("tide.worker")

PROG = "tide worker"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    defaults = WorkerSettings.model_fields
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Run jobs from Tide's queues until stopped. Flags override the environment "
        "variables named in brackets, which override the defaults.",
    )
    parser.add_argument(
        "--tasks",
        metavar="MODULE",
        help="import path of your module that registers tasks, found in the current directory "
        "first, e.g. myapp.tasks [TASKS_MODULE; default: only the built-in tasks]",
    )
    parser.add_argument(
        "--queues",
        help="comma-separated queues, leased first to last "
        f"[QUEUES; default: {defaults['queues'].default}]",
    )
    parser.add_argument(
        "--concurrency",
        type=positive_int,
        metavar="N",
        help="jobs run at once "
        f"[WORKER_CONCURRENCY; default: {defaults['worker_concurrency'].default}]",
    )
    return parser.parse_args(argv)


def settings_from(
    tasks: str | None = None, queues: str | None = None, concurrency: int | None = None
) -> WorkerSettings:
    """The environment's settings with the flags that were given on top; a ConfigError names
    what is wrong. ``tide dev`` builds its workers' settings here too."""
    flags = {"tasks_module": tasks, "queues": queues, "worker_concurrency": concurrency}
    settings = load_settings(
        WorkerSettings, **{key: value for key, value in flags.items() if value is not None}
    )
    if not settings.queue_list:
        raise ConfigError(f"QUEUES={settings.queues!r}: names no queue (e.g. 'default')")
    return settings


def load_tasks(module: str | None, directory: Path) -> None:
    """Import the built-in tasks and the user's module; their decorators fill the registry."""
    importlib.import_module("workers.builtin")
    if module:
        import_tasks(module, directory)


def build_worker(settings: WorkerSettings) -> Worker:
    """The worker and its client; a URL they refuse is a ConfigError."""
    redis = built_from("REDIS_URL", settings.redis_url, settings.connect_redis)
    return Worker(redis, settings, registry)


async def serve(worker: Worker) -> None:
    def exit_now() -> None:
        log.warning("worker.killed", note="second signal: exiting now; leases will time out")
        os._exit(1)

    try:
        with StopSignals(on_stop=worker.request_stop, on_hurry=exit_now):
            await worker.run()
    finally:
        await worker.redis.aclose()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        settings = settings_from(args.tasks, args.queues, args.concurrency)
        configure_logging(settings.log_level)
        load_tasks(settings.tasks_module, Path.cwd())
        worker = build_worker(settings)
    except (ConfigError, InvalidRequest) as exc:  # InvalidRequest: a setting the core refuses
        return exit_config(PROG, exc)
    try:
        loop.run(serve(worker))
    except ThreadsOutlivedShutdown as exc:
        # Their leases were kept, not released: they expire and another worker runs the jobs.
        log.error("worker.threads_outlived_shutdown", error=str(exc))
        return 1
    except Exception:
        # Leases of what was running time out and other workers take the jobs over.
        log.exception("worker.crashed")
        return 1
    return 0

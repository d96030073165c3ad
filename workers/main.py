"""``tide worker``: run a worker process until SIGTERM/SIGINT, then drain and exit 0.

A second signal exits at once; the lease timeout then hands the unfinished jobs to other workers.
"""

from __future__ import annotations

import argparse
import importlib
import os
from typing import Any

import structlog

from app.core.redis_client import connect
from app.process import loop
from app.process.logging import configure_logging
from app.process.signals import StopSignals
from workers.settings import WorkerSettings
from workers.tasks import registry
from workers.worker import Worker

log = structlog.get_logger("tide.worker")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="tide worker", description="Run jobs from Tide's queues until stopped."
    )
    parser.add_argument(
        "--tasks", help="import path of a module that registers tasks (TASKS_MODULE)"
    )
    parser.add_argument("--queues", help="comma-separated queues, leased first to last (QUEUES)")
    parser.add_argument("--concurrency", type=int, help="jobs run at once (WORKER_CONCURRENCY)")
    return parser.parse_args(argv)


def settings_from(args: argparse.Namespace) -> WorkerSettings:
    overrides: dict[str, Any] = {
        key: value
        for key, value in {
            "tasks_module": args.tasks,
            "queues": args.queues,
            "worker_concurrency": args.concurrency,
        }.items()
        if value is not None
    }
    return WorkerSettings(**overrides)


def load_tasks(module: str | None) -> None:
    """Import the built-in tasks and the user's module; their decorators fill the registry."""
    importlib.import_module("workers.builtin")
    if module:
        importlib.import_module(module)


async def serve(settings: WorkerSettings) -> None:
    redis = connect(settings.redis_url)
    worker = Worker(redis, settings, registry)

    def exit_now() -> None:
        log.warning("worker.killed", note="second signal: exiting now; leases will time out")
        os._exit(1)

    try:
        with StopSignals(on_stop=worker.request_stop, on_hurry=exit_now):
            await worker.run()
    finally:
        await redis.aclose()


def main(argv: list[str] | None = None) -> int:
    settings = settings_from(parse_args(argv))
    configure_logging(settings.log_level)
    load_tasks(settings.tasks_module)
    try:
        loop.run(serve(settings))
    except Exception:
        # Leases of what was running time out and other workers take the jobs over.
        log.exception("worker.crashed")
        return 1
    return 0

"""The ``tide`` command: one entry point for every process kind.

Each subcommand imports what it runs only when chosen: ``tide worker`` must not load the HTTP
layer (DESIGN §1), ``app`` never imports ``workers`` at module level, and ``--help`` stays quick.
``worker`` and ``bench`` get their arguments untouched and parse them themselves.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence

import structlog

from app.process.startup import non_negative_int, positive_int

log = structlog.get_logger("tide")

DELEGATED: dict[str, tuple[str, str]] = {
    "api": ("app.api.main", "serve the HTTP API (settings from the environment)"),
    "worker": ("workers.main", "run workers that lease and execute jobs (--tasks, --queues, ...)"),
    "bench": ("app.dev.bench", "measure submit and processing throughput against a Redis"),
    "scaler": ("scaler.main", "grow and shrink the worker fleet from queue depth (SCALER_BACKEND)"),
    "keys": ("app.api.keys_command", "create, list and revoke API keys (create prints a secret)"),
}
"""Subcommands whose module parses its own arguments: name -> (module with main(argv), help)."""


def build_parser() -> argparse.ArgumentParser:
    from app.api.settings import ApiSettings
    from app.dev.scaler_settings import DevScalerSettings
    from workers.settings import WorkerSettings

    worker, api = WorkerSettings.model_fields, ApiSettings.model_fields
    scaler = DevScalerSettings.model_fields
    parser = argparse.ArgumentParser(
        prog="tide",
        description="Tide: an asyncio job system on Redis Streams.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    for name, (_, summary) in DELEGATED.items():
        commands.add_parser(name, help=summary, add_help=False)

    dev = commands.add_parser(
        "dev",
        help="run Redis, the API, the scaler and workers locally in one command",
        description=(
            "Run a whole local Tide: Redis (REDIS_URL if set, else a private redis-server, "
            "else an embedded fake), the API, and worker processes that the scaler grows and "
            "shrinks with the queue's depth (or a fixed number with --workers). Flags override "
            "the environment variables named in brackets, which override the defaults. The "
            "scaler's other settings (POLL_INTERVAL_MS, SCALE_UP_COOLDOWN_MS, "
            "SCALE_DOWN_COOLDOWN_MS, SCALE_STEPS) come from the environment, with quicker "
            "defaults than tide scaler's. Ctrl-C stops everything."
        ),
    )
    dev.add_argument(
        "--workers",
        type=non_negative_int,
        metavar="N",
        help="a fixed fleet of N worker processes and no scaler (0: the API alone)",
    )
    dev.add_argument(
        "--min-workers",
        type=non_negative_int,
        metavar="N",
        help=f"fewest workers the scaler runs [MIN_WORKERS; default: "
        f"{scaler['min_workers'].default}]",
    )
    dev.add_argument(
        "--max-workers",
        type=positive_int,
        metavar="N",
        help=f"most workers the scaler runs [MAX_WORKERS; default: "
        f"{scaler['max_workers'].default}]",
    )
    dev.add_argument(
        "--tasks",
        metavar="MODULE",
        help="your module that registers tasks, e.g. myapp.tasks, found in the current "
        "directory first [TASKS_MODULE; default: only the built-in tasks]",
    )
    dev.add_argument(
        "--concurrency",
        type=positive_int,
        metavar="N",
        help="jobs per worker "
        f"[WORKER_CONCURRENCY; default: {worker['worker_concurrency'].default}]",
    )
    dev.add_argument(
        "--queues",
        help="queues the workers serve, first to last "
        f"[QUEUES; default: {worker['queues'].default}]",
    )
    dev.add_argument(
        "--port", type=non_negative_int, help=f"API port [PORT; default: {api['port'].default}]"
    )
    dev.add_argument(
        "--demo",
        action="store_true",
        help="keep demo jobs flowing, with waves that grow the fleet now and then",
    )
    return parser


def _delegate(name: str, argv: list[str]) -> int:
    module_name, _ = DELEGATED[name]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        # only "the command itself is missing" is ours to explain; a broken import inside it is not
        if exc.name is None or not module_name.startswith(exc.name):
            raise
        print(f"tide {name}: {module_name} is not installed or not written yet", file=sys.stderr)
        return 2
    entry: Callable[[list[str]], int | None] = module.main
    return int(entry(argv) or 0)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``tide`` command line; returns the exit status."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list and args_list[0] in DELEGATED:
        return _delegate(args_list[0], args_list[1:])

    parser = build_parser()
    args = parser.parse_args(args_list)
    if args.command == "dev":
        from app.dev.run import DevOptions, run_dev

        if args.workers is not None and (args.min_workers, args.max_workers) != (None, None):
            parser.error("--workers (a fixed fleet) goes without --min-workers/--max-workers")
        options = DevOptions(
            workers=args.workers,
            min_workers=args.min_workers,
            max_workers=args.max_workers,
            concurrency=args.concurrency,
            queues=args.queues,
            tasks=args.tasks,
            port=args.port,
            demo=args.demo,
        )
        return run_dev(options)
    raise AssertionError(f"unhandled command {args.command}")  # argparse enforces the choices

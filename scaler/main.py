"""``tide scaler`` (also ``python -m scaler``): run the autoscaler until SIGTERM/SIGINT.

Bad settings end the process at once with one line and exit code 2; so does a backend whose
start-up self-check finds a bad token or id.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

import structlog
from pydantic import ValidationError

from app.core.queue import Queue
from app.process import loop
from app.process.http import serve
from app.process.logging import configure_logging
from app.process.signals import StopSignals
from scaler.backends import Backend, BackendMisconfigured
from scaler.http import create_app
from scaler.service import Scaler, new_record
from scaler.settings import ScalerSettings, settings_error

log = structlog.get_logger("tide.scaler")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="tide scaler",
        description=(
            "Grow and shrink the worker fleet from the queue's depth. Settings come from the "
            "environment (REDIS_URL, SCALER_BACKEND, MIN_WORKERS, MAX_WORKERS, SCALE_STEPS, ...). "
            "`tide scaler simulate --help`: replay the policy against arrivals."
        ),
    )
    parser.add_argument("--port", type=int, help="port to listen on (default: PORT or 8080)")
    return parser.parse_args(argv)


def make_backend(settings: ScalerSettings, hurry: asyncio.Event) -> Backend:
    """The backend ``SCALER_BACKEND`` names, imported only when chosen."""
    if settings.scaler_backend == "railway":
        from scaler.backends.railway import RailwayBackend

        return RailwayBackend(settings)
    if settings.scaler_backend == "local":
        from scaler.backends.local import LocalBackend

        return LocalBackend(settings, os.environ, hurry)
    from scaler.backends.log import LogBackend

    return LogBackend()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["simulate"]:
        from scaler.simulate import main as simulate

        return simulate(argv[1:])
    args = parse_args(argv)
    try:
        settings = ScalerSettings(**({"port": args.port} if args.port is not None else {}))
    except ValidationError as exc:
        print(f"tide scaler: {settings_error(exc)}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level)
    try:
        return loop.run(run(settings))
    except Exception:
        log.exception("scaler.crashed")  # a standby takes over once the lock runs out
        return 1


async def run(settings: ScalerSettings) -> int:
    redis = settings.connect_redis()
    queue = Queue(redis, settings)
    record = new_record(queue, settings)
    try:
        with StopSignals() as signals:
            backend = make_backend(settings, signals.hurry)
            try:
                await backend.start()
            except BackendMisconfigured as exc:
                log.error("scaler.backend_misconfigured", backend=backend.name, error=str(exc))
                await backend.close()
                return 2
            scaler = Scaler(queue, record, backend, settings)
            try:
                runner = await serve(
                    create_app(scaler), settings.host, settings.port, settings.shutdown_grace_s
                )
                host, port = runner.addresses[0][:2]
                log.info(
                    "scaler.listening",
                    host=host,
                    port=port,
                    backend=backend.name,
                    owner=record.owner,
                )
                try:
                    await scaler.run(signals.stop)
                finally:
                    await runner.cleanup()
            finally:
                await backend.close()
    finally:
        await redis.aclose()
    log.info("scaler.stopped")
    return 0

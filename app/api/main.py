"""``tide api``: serve the HTTP API until SIGTERM/SIGINT, then stop gracefully."""

from __future__ import annotations

import argparse

import structlog

from app.api import create_app, start
from app.api.settings import ApiSettings
from app.process import loop
from app.process.logging import configure_logging
from app.process.signals import StopSignals

log = structlog.get_logger("tide.api")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="tide api",
        description=(
            "Serve the HTTP API. Settings come from the environment (REDIS_URL, PORT, ...); "
            "SIGTERM or SIGINT stops it gracefully."
        ),
    )
    parser.add_argument("--host", help="interface to bind (default: HOST or 0.0.0.0)")
    parser.add_argument("--port", type=int, help="port to listen on (default: PORT or 8000)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    overrides = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    settings = ApiSettings(**overrides)
    configure_logging(settings.log_level)
    return loop.run(serve(settings))


async def serve(settings: ApiSettings) -> int:
    with StopSignals() as signals:
        runner = await start(create_app(settings), settings.host, settings.port)
        host, port = runner.addresses[0][:2]
        log.info("api.listening", host=host, port=port)
        try:
            await signals.stop.wait()
        finally:
            await runner.cleanup()
    log.info("api.stopped")
    return 0

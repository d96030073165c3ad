"""``tide api``: serve the HTTP API until SIGTERM/SIGINT/SIGHUP, then stop gracefully.

Bad configuration (a setting, a port already in use) is one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse

import structlog

from app.api import create_app, start
from app.api.settings import ApiSettings
from app.core.errors import InvalidRequest
from app.core.queue import Queue
from app.process import loop
from app.process.logging import configure_logging
from app.process.signals import StopSignals
from app.process.startup import ConfigError, built_from, exit_config, load_settings

log = structlog.get_logger("tide.api")

PROG = "tide api"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=(
            "Serve the HTTP API. Settings come from the environment (REDIS_URL, PORT, ...); "
            "SIGTERM or SIGINT stops it gracefully."
        ),
    )
    defaults = ApiSettings.model_fields
    parser.add_argument(
        "--host", help=f"interface to bind [HOST; default: {defaults['host'].default}]"
    )
    parser.add_argument(
        "--port", type=int, help=f"port to listen on [PORT; default: {defaults['port'].default}]"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    overrides = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    try:
        settings = load_settings(ApiSettings, **overrides)
        configure_logging(settings.log_level)
        return loop.run(serve(settings))
    except (ConfigError, InvalidRequest) as exc:  # InvalidRequest: a setting the core refuses
        return exit_config(PROG, exc)


async def serve(settings: ApiSettings) -> int:
    redis = built_from("REDIS_URL", settings.redis_url, settings.connect_redis)
    try:
        with StopSignals() as signals:
            app = create_app(settings, Queue(redis, settings))
            try:
                runner = await start(app, settings.host, settings.port)
            except OSError as exc:
                where = f"{settings.host}:{settings.port}"
                raise ConfigError(f"cannot listen on {where}: {exc.strerror or exc}") from None
            host, port = runner.addresses[0][:2]
            log.info("api.listening", host=host, port=port)
            try:
                await signals.stop.wait()
            finally:
                await runner.cleanup()
    finally:
        await redis.aclose()
    log.info("api.stopped")
    return 0

"""Log setup shared by every Tide process: structlog, one JSON object per line on stderr.

A person at a terminal gets the console renderer instead; machines (Railway, compose, CI) get JSON.
Records from the standard library (aiohttp, asyncio, redis) go through the same renderer, so a
process never mixes two formats.
"""

from __future__ import annotations

import functools
import logging
import sys
from typing import Any, TextIO

import orjson
import structlog
from structlog.typing import Processor

from app.process.startup import ConfigError

LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}
"""The levels ``LOG_LEVEL`` takes (any case): the four a person picks between."""


def _level(name: str) -> int:
    """The numeric level for a name such as ``info`` or ``DEBUG``; a typo is a ConfigError."""
    try:
        return LEVELS[name.strip().lower()]
    except KeyError:
        choices = ", ".join(LEVELS)
        raise ConfigError(f"LOG_LEVEL={name!r}: choose one of {choices}") from None


def _dumps(obj: Any, **_: Any) -> str:
    # a stray object (an exception, a Path) or a non-str key must not cost the log line
    return orjson.dumps(obj, default=str, option=orjson.OPT_NON_STR_KEYS).decode()


class _StderrLogger:
    """Writes to whatever ``sys.stderr`` is at call time (so a redirect after setup still works)."""

    def msg(self, message: str) -> None:
        stream: TextIO = sys.stderr
        stream.write(message + "\n")
        stream.flush()

    log = debug = info = warning = warn = error = critical = exception = fatal = msg


def _stderr_logger(*_: Any) -> _StderrLogger:
    return _StderrLogger()


def emits(level: int) -> bool:
    """Whether structlog, as configured now, writes a line at ``level``. A module's logger is a
    proxy that builds a bound logger at every call, even for a line it then drops: this reads
    the configured class instead, for a hot path whose line is usually filtered out (the API's
    line per request costs a twentieth of a submit's CPU at ``LOG_LEVEL=warning`` otherwise)."""
    return level >= _lowest_level(structlog.get_config()["wrapper_class"])


@functools.cache
def _lowest_level(wrapper: Any) -> int:
    """The lowest level a class from ``make_filtering_bound_logger`` writes. Any other class
    (an application's own structlog setup) gets NOTSET: its logger decides for itself."""
    try:
        return int(wrapper.get_effective_level(None))  # that class's method ignores its self
    except Exception:
        return logging.NOTSET


def configure_logging(level: str = "info", *, json: bool | None = None) -> None:
    """Route structlog and the standard library to stderr at ``level``.

    ``json`` defaults to "stderr is not a TTY". Safe to call more than once (the last call wins).
    """
    numeric = _level(level)
    if json is None:
        json = not sys.stderr.isatty()
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
    ]
    renderer: Processor
    if json:
        # structured tracebacks, but never local variables: they hold payloads and secrets
        transformer = structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
        shared.append(structlog.processors.ExceptionRenderer(transformer))
        renderer = structlog.processors.JSONRenderer(serializer=_dumps)
    else:
        renderer = structlog.dev.ConsoleRenderer()

    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=_stderr_logger,
        cache_logger_on_first_use=False,
    )

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    logging.basicConfig(handlers=[handler], level=numeric, force=True)
    # aiohttp's access log would duplicate the API's own request line
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)

"""Bad configuration at a process's edge: one line on stderr and exit code 2, never a traceback.

Every ``main()`` builds its settings with :func:`load_settings` and catches :class:`ConfigError`
with :func:`exit_config`, so ``LOG_LEVEL=verbose`` reads the same in every command.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

EXIT_CONFIG = 2
"""The exit code of "this configuration cannot run" (as argparse's usage errors), so a
supervisor (``tide dev``, the local scaler) stops restarting at once."""

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")


class ConfigError(ValueError):
    """A setting, flag or environment this process cannot run with; the message says which."""


def positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    return _at_least(text, 1)


def non_negative_int(text: str) -> int:
    """An argparse type: a whole number of at least 0."""
    return _at_least(text, 0)


def _at_least(text: str, low: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"must be at least {low}, got {value}")
    return value


def load_settings(cls: type[M], **overrides: Any) -> M:
    """``cls`` from the environment and ``overrides`` (flags); a bad value is a ConfigError
    naming the environment variable, its value and what is wrong with it."""
    try:
        return cls(**overrides)
    except ValidationError as exc:
        raise ConfigError(describe(exc)) from None


def built_from(name: str, value: str, build: Callable[[str], T]) -> T:
    """``build(value)``; a ValueError (``REDIS_URL=foo`` to a client) is a ConfigError."""
    try:
        return build(value)
    except ValueError as exc:
        raise ConfigError(f"{name}={value!r}: {exc}") from None


def describe(exc: ValidationError) -> str:
    """``NAME=value: problem`` for each bad setting, on one line."""
    problems = []
    for error in exc.errors(include_url=False):
        name = "_".join(str(part) for part in error["loc"]).upper() or "settings"
        value = error.get("input")
        shown = f"={value!r}" if isinstance(value, str | int | float) else ""
        problems.append(f"{name}{shown}: {error['msg']}")
    return "; ".join(problems)


def exit_config(prog: str, exc: Exception) -> int:
    """Print ``prog: message`` on stderr and return :data:`EXIT_CONFIG`."""
    print(f"{prog}: {exc}", file=sys.stderr, flush=True)
    return EXIT_CONFIG

"""Imports the user's tasks module from the directory the command runs in, as Celery, RQ and arq do.

A module that cannot be imported, or a project package named like one of Tide's own (a FastAPI
project's ``app/``), is a :class:`~app.process.startup.ConfigError`: one line naming the problem
and the fix, not a traceback from deep inside the import system.
"""

from __future__ import annotations

import importlib
import sys
import traceback
from pathlib import Path

from app.process.startup import ConfigError

TIDE_PACKAGES = ("app", "workers", "scaler", "tide")
"""Tide's top-level packages: a user package of the same name hides Tide or is hidden by it."""
TIDE_ROOT = Path(__file__).resolve().parents[1]


def clashing_package(directory: Path) -> str | None:
    """The first of Tide's package names that ``directory`` holds as Python code of its own."""
    if directory.resolve() == TIDE_ROOT:
        return None  # Tide's own checkout
    for name in TIDE_PACKAGES:
        package = directory / name
        if (directory / f"{name}.py").is_file() or (package.is_dir() and any(package.glob("*.py"))):
            return name
    return None


def check_no_clash(directory: Path) -> None:
    """A ConfigError when ``directory`` has a package named like one of Tide's."""
    name = clashing_package(directory)
    if name is not None:
        raise ConfigError(
            f"{directory / name} has the name of Tide's own {name!r} package, so one would hide "
            f"the other; rename yours (task packages need a name of their own, e.g. "
            f"'myproject_tasks')"
        )


def import_tasks(module: str, directory: Path) -> None:
    """Import ``module`` (its ``@task`` decorators fill the registry), finding it in
    ``directory`` first and then in the installed packages."""
    check_no_clash(directory)
    if str(directory) not in sys.path:
        sys.path.insert(0, str(directory))
    try:
        importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name is None or not (module == exc.name or module.startswith(f"{exc.name}.")):
            raise ConfigError(_failure(module, exc, directory)) from None
        hint = " (give a module path such as 'myapp.tasks', not a file name)"
        raise ConfigError(
            f"no tasks module {module!r} in {directory} or the installed packages"
            f"{hint if module.endswith('.py') else ''}"
        ) from None
    except Exception as exc:
        raise ConfigError(_failure(module, exc, directory)) from None


def _failure(module: str, exc: Exception, directory: Path) -> str:
    where = _where(exc, directory)
    return f"cannot import tasks module {module!r}: {type(exc).__name__}: {exc}{where}"


def _where(exc: Exception, directory: Path) -> str:
    """`` (at file:line)`` of the user's code that failed: the innermost frame under
    ``directory``, else the innermost frame (a SyntaxError names its own place)."""
    if isinstance(exc, SyntaxError) and exc.filename:
        return ""  # its message already says the file and line
    frames = traceback.extract_tb(exc.__traceback__)
    mine = [f for f in frames if Path(f.filename).resolve().is_relative_to(directory.resolve())]
    if not (mine or frames):
        return ""
    frame = (mine or frames)[-1]
    path = Path(frame.filename)
    shown = path.relative_to(directory) if path.is_relative_to(directory) else path
    return f" (at {shown}:{frame.lineno})"

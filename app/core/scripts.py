"""Loads Tide's Lua scripts and calls them with the head every script expects.

Scripts live in ``app/core/lua/`` as one file per command; ``--!include NAME`` pastes a shared
piece from ``lua/include/`` (each at most once per script, its own includes first), so nothing is
copied between files. Each is registered once per client and runs as one ``EVALSHA``: atomic and
one round trip. ``include/head.lua`` describes the KEYS/ARGV head.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from enum import StrEnum
from functools import cache
from importlib import resources
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from app.core.keys import Keys
from app.core.settings import CoreSettings

_INCLUDE = re.compile(r"^--!include (\w+)$", re.MULTILINE)


class Script(StrEnum):
    SUBMIT = "submit"
    START = "start"
    CLAIM = "claim"
    ADOPT = "adopt"
    EXTEND = "extend"
    FINISH = "finish"
    RELEASE = "release"
    CANCEL = "cancel"
    RETRY = "retry"
    LIST_JOBS = "list_jobs"
    APIKEY_CREATE = "apikey_create"
    APIKEY_REVOKE = "apikey_revoke"
    MOVE_DUE = "move_due"
    STATS = "stats"
    REGISTER = "register"
    PRUNE_CONSUMERS = "prune_consumers"
    FORGET_QUEUES = "forget_queues"


@cache
def source(name: str) -> str:
    """The script's text with its includes resolved, each pasted once."""
    return resolve(resources.files("app.core.lua").joinpath(f"{name}.lua").read_text())


def resolve(text: str) -> str:
    """``text`` with its ``--!include`` lines replaced by the include files, each pasted once."""
    return _resolve(text, set())


def _resolve(text: str, pasted: set[str]) -> str:
    def paste(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in pasted:
            return ""
        pasted.add(name)
        include = resources.files("app.core.lua").joinpath("include", f"{name}.lua").read_text()
        return _resolve(include, pasted)

    return _INCLUDE.sub(paste, text)


def pack(rows: Iterable[Iterable[object]]) -> str:
    """A batch of records as the one argument the scripts split on newlines (see head.lua)."""
    return "\n".join([str(value) for row in rows for value in row])


class Scripts:
    """Every script registered on one client, called with the shared KEYS/ARGV head."""

    def __init__(self, redis: Redis, keys: Keys, settings: CoreSettings) -> None:
        head = [settings.events_max_changes, settings.dead_maxlen, settings.result_ttl_s]
        # sent with every call: encoded once here rather than by the client at each call
        self._keys = [keys.prefix.encode()]
        self._head = [str(value).encode() for value in head]
        self._scripts = {name: redis.register_script(source(name)) for name in Script}

    async def __call__(self, script: Script, args: list[Any], pipe: Pipeline | None = None) -> Any:
        """Run ``script`` with ``args`` after the head; queued on ``pipe`` when one is given."""
        return await self._scripts[script](keys=self._keys, args=[*self._head, *args], client=pipe)

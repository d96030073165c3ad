"""Loads Tide's Lua scripts and calls them with the head every script expects.

Scripts live in ``app/core/lua/`` as one file per command; ``--!include NAME`` pastes a shared
piece from ``lua/include/`` (each at most once per script, its own includes first), so nothing is
copied between files. Only the top-level definitions of an include that the script reaches are
pasted: Redis runs a script's whole text on every call, so each unused helper would cost every
call its closure. Each is registered once per client and runs as one ``EVALSHA``: atomic and one
round trip. ``include/head.lua`` describes the KEYS/ARGV head.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from enum import StrEnum
from functools import cache
from importlib import resources
from typing import Any, NamedTuple

import orjson
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import NoScriptError

from app.core.keys import Keys
from app.core.redis_client import Lane
from app.core.settings import CoreSettings

_INCLUDE = re.compile(r"^--!include (\w+)$", re.MULTILINE)
_NAME = re.compile(r"[A-Za-z_]\w*")
_DEFINES = re.compile(r"^local (?:function (\w+)|([\w, ]+?)\s*(?:=|$))")


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
    """``text`` with its ``--!include`` lines replaced by what it uses of the include files."""
    first = _INCLUDE.search(text)
    if first is None:
        return text
    # the includes go where the first include line was: after the script's header
    header, pieces = text[: first.start()], list[Piece]()
    body = _resolve(text[first.start() :], set(), pieces)
    used = _names(header + body)
    kept = [False] * len(pieces)
    grown = True
    while grown:  # a kept definition may reach others: keep going until nothing is added
        grown = False
        for i, piece in enumerate(pieces):
            if not kept[i] and (not piece.names or not piece.names.isdisjoint(used)):
                kept[i] = grown = True
                used |= _names(piece.text)
    pasted = "".join(piece.text for piece, keep in zip(pieces, kept, strict=True) if keep)
    return header + pasted + body


class Piece(NamedTuple):
    """A top-level stretch of an include file: one ``local`` definition with the comments before
    it, and the names it defines (none for the file's heading, which is always kept)."""

    text: str
    names: frozenset[str]


def _names(lua: str) -> set[str]:
    """The words of ``lua``'s code, comments left out (a comment naming a helper keeps none)."""
    return {name for line in lua.splitlines() for name in _NAME.findall(_code(line))}


def _code(line: str) -> str:
    """``line`` without its comment: from the first ``--`` outside a string literal."""
    start = 0
    while (at := line.find("--", start)) >= 0:
        before = line[:at]
        if before.count("'") % 2 == 0 and before.count('"') % 2 == 0:
            return before
        start = at + 2
    return line


def _resolve(text: str, pasted: set[str], pieces: list[Piece]) -> str:
    """``text`` without its include lines; the includes' pieces are appended to ``pieces``."""

    def paste(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in pasted:
            pasted.add(name)
            include = resources.files("app.core.lua").joinpath("include", f"{name}.lua")
            pieces.extend(_pieces(_resolve(include.read_text(), pasted, pieces)))
        return ""

    return _INCLUDE.sub(paste, text)


def _pieces(text: str) -> list[Piece]:
    """``text`` cut before each top-level ``local`` (with the comment lines just above it). The
    include files keep every top-level statement a ``local`` at column 0 and indent the rest."""
    pieces: list[Piece] = []
    current: list[str] = []
    names: frozenset[str] = frozenset()
    waiting: list[str] = []  # blank and comment lines: they go with the next definition
    for line in text.splitlines(keepends=True):
        defines = _DEFINES.match(line)
        if defines:
            if current:
                pieces.append(Piece("".join(current), names))
            current, waiting = [*waiting, line], []
            found = defines.group(1) or defines.group(2)
            names = frozenset(name.strip() for name in found.split(","))
        elif not line.strip() or line.startswith("--"):
            waiting.append(line)
        else:
            current += [*waiting, line]
            waiting = []
    pieces.append(Piece("".join(current + waiting), names))
    return pieces


def pack(rows: Iterable[Iterable[object]]) -> bytes:
    """A batch of records as the one argument the scripts' ``records`` reads: a JSON array of
    every field as a string (see head.lua)."""
    return orjson.dumps([str(value) for row in rows for value in row])


class Scripts:
    """Every script registered on one client, called with the shared KEYS/ARGV head."""

    def __init__(self, redis: Redis, keys: Keys, settings: CoreSettings) -> None:
        head = [settings.events_max_changes, settings.dead_maxlen, settings.result_ttl_s]
        # sent with every call: encoded once here rather than by the client at each call
        self._keys = [keys.prefix.encode()]
        self._head = [str(value).encode() for value in head]
        self._scripts = {name: redis.register_script(source(name)) for name in Script}
        self._lane = Lane(redis)

    async def __call__(self, script: Script, args: list[Any], pipe: Pipeline | None = None) -> Any:
        """Run ``script`` with ``args`` after the head; queued on ``pipe`` when one is given.
        A call while no other is in flight takes the lane (an awaited single submit, say)."""
        registered = self._scripts[script]
        if pipe is None and not self._lane.busy:
            try:
                return await self._lane.call(
                    "EVALSHA", registered.sha, 1, *self._keys, *self._head, *args
                )
            except NoScriptError:  # not run: the server lost its scripts (a restart)
                pass
        return await registered(keys=self._keys, args=[*self._head, *args], client=pipe)

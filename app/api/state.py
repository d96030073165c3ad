"""Typed keys for what the API application holds (aiohttp ``web.AppKey``)."""

from __future__ import annotations

from aiohttp import web

from app.api.group_commit import GroupCommit
from app.api.settings import ApiSettings
from app.core.queue import Queue

SETTINGS = web.AppKey("settings", ApiSettings)
QUEUE = web.AppKey("queue", Queue)
GROUP_COMMIT = web.AppKey("group_commit", GroupCommit)

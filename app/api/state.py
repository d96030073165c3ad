"""Typed keys for what the API application holds (aiohttp ``web.AppKey``)."""

from __future__ import annotations

from aiohttp import web

from app.queue import Queue
from app.settings import ApiSettings

SETTINGS = web.AppKey("settings", ApiSettings)
QUEUE = web.AppKey("queue", Queue)

"""Typed keys for what live updates keep in the application."""

from __future__ import annotations

import weakref

from aiohttp import web

from app.api.live.hub import Hub, Subscriber

HUB = web.AppKey("live_hub", Hub)
SOCKETS: web.AppKey[weakref.WeakKeyDictionary[web.WebSocketResponse, Subscriber]] = web.AppKey(
    "live_sockets"
)
"""Open sockets (closed on shutdown) and their subscribers (sent the stats frames)."""

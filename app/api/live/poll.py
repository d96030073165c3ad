"""``GET /v1/events``: the long-poll fallback for clients that cannot hold a socket.

It answers at once with what the stream holds after ``after``; otherwise it waits on the
process's one reader (not an ``XREAD BLOCK`` of its own, so ``timeout_s`` is not bound by the
Redis socket timeout and a thousand pollers cost one connection).
"""

from __future__ import annotations

import asyncio
import contextlib

from aiohttp import web

from app.api.auth import principal_of
from app.api.bodies import validated
from app.api.contract import EventsQuery
from app.api.live.frames import change
from app.api.live.hub import Delivery, Subscriber
from app.api.live.state import HUB
from app.api.state import QUEUE, SETTINGS
from app.core.events import (
    JobEvent,
    Position,
    format_position,
    lost_after,
    oldest_entry,
    parse_position,
    read_after,
)
from app.process.http import json_response

PAGE_ENTRIES = 100
"""Entries read per page of history."""
EVENTS_MAX = 1000
"""Changes per answer at most: the cursor can stop mid-entry, so a huge batch takes several."""
PAGES_MAX = 10
"""Pages of other tenants' changes skipped before answering with none (and a new cursor)."""


def _page(events: list[JobEvent], last: Position, gap: bool) -> web.Response:
    body = {
        "events": [change(e) for e in events],
        "last_event_id": format_position(last),
        "gap": gap,
    }
    return json_response(body)


async def poll_events(request: web.Request) -> web.Response:
    query = validated(EventsQuery, dict(request.query), "the query")
    who = principal_of(request)
    queue, hub = request.app[QUEUE], request.app[HUB]
    timeout_s = min(query.timeout_s, request.app[SETTINGS].long_poll_max_s)
    sub = Subscriber(None if who.admin else who.tenant, PAGE_ENTRIES, lambda: None)
    hub.subscribe(sub, None)  # before reading the history: nothing falls between the two
    try:
        await hub.wait_ready()
        after = parse_position(query.after) if query.after else hub.position()
        gap = lost_after(after, await oldest_entry(queue.redis, queue.keys))
        for _ in range(PAGES_MAX):
            events, more = await read_after(queue.redis, queue.keys, after, PAGE_ENTRIES)
            if events:
                after = events[-1].position
            if visible := [e for e in events if sub.may_see(e)]:
                if len(visible) > EVENTS_MAX:
                    visible = visible[:EVENTS_MAX]
                    after = visible[-1].position
                return _page(visible, after, gap)
            if not more:
                break
        else:
            return _page([], after, gap)
        live = (await _wait(sub, after, timeout_s))[:EVENTS_MAX]
        return _page(live, live[-1].position if live else after, gap)
    finally:
        hub.unsubscribe(sub)


async def _wait(sub: Subscriber, after: Position, timeout_s: float) -> list[JobEvent]:
    """Changes after ``after`` the reader hands ``sub`` within ``timeout_s``: the first, and
    whatever came with it."""
    found: list[JobEvent] = []
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout_s):
            while not found:
                found += _newer(await sub.take(), after)
    while not sub.queue.empty():
        found += _newer(sub.take_nowait(), after)
    return found


def _newer(item: Delivery | bytes, after: Position) -> list[JobEvent]:
    """The change an item brings, if new; a ``gap`` broadcast (bytes) is in the page's own
    ``gap`` check already."""
    if isinstance(item, bytes):
        return []
    event, _frame = item
    return [event] if event.position > after else []

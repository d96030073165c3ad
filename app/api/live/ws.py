"""``GET /v1/ws`` and ``POST /v1/ws/ticket``: live updates over a WebSocket (DESIGN §5).

One sender task per socket writes everything the socket receives, in order: replays, events,
stats, errors. The hub feeds it through the socket's bounded queue; a socket that falls behind
is closed with ``TOO_SLOW`` and can resume with ``after``. A subscribe with ``"batch": true``
gets ``events`` frames (several changes each, replays too) instead of one ``event`` per change.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, Literal

import orjson
import structlog
from aiohttp import WSCloseCode, WSMsgType, web
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from redis.exceptions import RedisError

from app.api.auth import AUTHENTICATOR, Principal, principal_of
from app.api.live.frames import Batch, event_frame, events_frame, frame
from app.api.live.hub import Subscriber
from app.api.live.state import HUB, SOCKETS
from app.api.responses import ApiError
from app.api.state import QUEUE, SETTINGS
from app.core import tickets
from app.core.events import (
    EVENT_ID_PATTERN,
    Position,
    format_position,
    lost_after,
    oldest_entry,
    parse_position,
    read_after,
)
from app.process.http import json_response

log = structlog.get_logger("tide.api")

TOO_SLOW = 4008
"""Close code of a socket whose client fell more than ``LIVE_QUEUE_MAX`` changes behind."""
CUT_TIMEOUT_S = 1.0
REPLAY_PAGE = 100
MAX_FRAME_BYTES = 1 << 20
MAX_JOBS = 10_000
WRITE_BUFFER_MAX = 1 << 16
"""Bytes a socket's transport may hold unsent before batches queue for its sender instead."""


class Subscribe(BaseModel):
    """``{"op": "subscribe", "jobs": [ids] | "all", "after"?, "batch"?}``. ``batch``: changes
    come as ``{"op": "events", "events": [{"event_id", "job"}, ...]}``, in order, several a
    frame, which a client following a busy deployment can keep up with."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    op: Literal["subscribe"]
    jobs: list[str] | Literal["all"] = Field(max_length=MAX_JOBS)
    after: str | None = Field(default=None, pattern=EVENT_ID_PATTERN)
    batch: bool = False


class Replay:
    """Queued by a subscribe with ``after``: the sender replays the stream before going on."""

    def __init__(self, after: Position) -> None:
        self.after = after


async def close_within(ws: web.WebSocketResponse, code: int, message: bytes) -> None:
    """Close with ``code``; a peer that reads nothing cannot hold the close up: after
    ``CUT_TIMEOUT_S`` the transport is closed anyway."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(ws.close(code=code, message=message, drain=False), CUT_TIMEOUT_S)


class Session:
    """One socket: its subscription, its queue and the task that writes to it."""

    def __init__(self, request: web.Request, ws: web.WebSocketResponse, who: Principal) -> None:
        self.ws = ws
        self.queue = request.app[QUEUE]
        self.hub = request.app[HUB]
        self.sub = Subscriber(
            None if who.admin else who.tenant,
            request.app[SETTINGS].live_queue_max,
            self._too_slow,
        )
        self.sent: Position = (0, 0, -1)
        """The newest change sent: live ones up to it were already sent by a replay."""
        self._closing: asyncio.Task[Any] | None = None
        self._transport = request.transport
        self._busy = False
        """The sender is writing an item: a batch must queue up behind it."""
        self.sub.write_now = self._write_now

    def _write_now(self, batch: Batch) -> bool:
        """The batch written at once if the sender is idle, the socket open and not backed up,
        and a replay sent none of it; else (False) it queues for the sender, which waits for
        the socket to drain and so lets the bound on the queue catch a slow client."""
        transport = self._transport
        if (
            self._busy
            or transport is None
            or transport.is_closing()
            or transport.get_write_buffer_size() > WRITE_BUFFER_MAX
            or batch.events[0].position <= self.sent
        ):
            return False
        transport.write(batch.wire)
        self.sent = batch.events[-1].position
        return True

    def _too_slow(self) -> None:
        if self._closing is None:
            log.warning("api.ws_too_slow", queued=self.sub.capacity, close_code=TOO_SLOW)
            self._closing = asyncio.get_running_loop().create_task(self._cut())

    async def _cut(self) -> None:
        await close_within(self.ws, TOO_SLOW, b"too slow: resume with after")

    def send(self, item: bytes | Replay) -> None:
        self.sub.offer(item)

    def error(self, code: str, message: str) -> None:
        self.send(frame("error", code=code, message=message))

    async def receive(self, data: str) -> None:
        try:
            request = Subscribe.model_validate(orjson.loads(data))
        except orjson.JSONDecodeError:
            self.error("invalid_json", "frames are JSON objects")
            return
        except ValidationError as exc:
            self.error("invalid_frame", _first_error(exc))
            return
        jobs = None if request.jobs == "all" else request.jobs
        self.hub.subscribe(self.sub, jobs, request.batch)
        try:
            await self.hub.wait_ready()
        except RedisError as exc:
            self.hub.unsubscribe(self.sub)
            self.error("redis_unavailable", f"{exc}; subscribe again shortly")
            return
        if request.after is not None:
            self.send(Replay(parse_position(request.after)))
        self.send(frame("subscribed", jobs=request.jobs, after=request.after))

    async def run_sender(self) -> None:
        """Writes what the queue holds; if writing fails (the peer went away, Redis failed
        during a replay), closes the socket so the client reconnects and resumes."""
        try:
            await self._send_all()
        except Exception as exc:
            log.info("api.ws_send_failed", error=repr(exc))
            await self.ws.close(code=WSCloseCode.INTERNAL_ERROR, message=b"resume with after")

    async def _send_all(self) -> None:
        while True:
            self._busy = False
            item = await self.sub.take()
            self._busy = True
            if isinstance(item, Replay):
                await self._replay(item.after)
            elif isinstance(item, bytes):
                await self._send(item)
            elif isinstance(item, Batch):
                await self._send_batch(item)
            else:
                event, data = item
                if event.position > self.sent:
                    self.sent = event.position
                    await self._send(data)

    async def _send_batch(self, batch: Batch) -> None:
        """The batch as encoded for its audience, unless a replay already sent part of it."""
        if batch.events[-1].position <= self.sent:
            return
        if batch.events[0].position > self.sent:
            data = batch.frame
        else:
            data = events_frame([e for e in batch.events if e.position > self.sent])
        self.sent = batch.events[-1].position
        await self._send(data)

    async def _send(self, data: bytes) -> None:
        await self.ws.send_frame(data, WSMsgType.TEXT)

    async def _replay(self, after: Position) -> None:
        """What the stream holds after ``after``; first a ``gap`` frame if it lost some."""
        oldest = await oldest_entry(self.queue.redis, self.queue.keys)
        if lost_after(after, oldest):
            await self._send(frame("gap", after=format_position(after)))
        more = True
        while more:
            events, more = await read_after(self.queue.redis, self.queue.keys, after, REPLAY_PAGE)
            if events:
                after = events[-1].position
            visible = [e for e in events if self.sub.may_see(e)]
            if self.sub.batch and visible:
                await self._send(events_frame(visible))
            else:
                for event in visible:
                    await self._send(event_frame(event))
        self.sent = max(self.sent, after)

    async def close(self) -> None:
        self.hub.unsubscribe(self.sub)
        if self._closing is not None:
            with contextlib.suppress(Exception):
                await self._closing


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(p) for p in error["loc"]) or "frame"
    return f"{where}: {error['msg']}"


def _check_origin(request: web.Request) -> None:
    origin = request.headers.get("Origin")
    if origin is None:
        return
    own = f"{request.scheme}://{request.host}"
    allowed = request.app[SETTINGS].origins() or {own}
    if origin.rstrip("/") not in allowed:
        raise ApiError(403, "forbidden_origin", f"origin {origin!r} may not open this socket")


async def _principal(request: web.Request) -> Principal:
    ticket = request.query.get("ticket")
    if ticket is None:
        return principal_of(request)
    queue = request.app[QUEUE]
    holder = await tickets.redeem(queue.redis, queue.keys, ticket)
    if holder is None:
        raise ApiError(401, "unauthorized", "the ticket is unknown, expired or already used")
    defaults = request.app[AUTHENTICATOR].defaults
    return Principal(holder.tenant, holder.admin, defaults, holder.key_id)


async def websocket(request: web.Request) -> web.WebSocketResponse:
    _check_origin(request)
    who = await _principal(request)
    ws = web.WebSocketResponse(
        heartbeat=request.app[SETTINGS].ws_heartbeat_s,
        max_msg_size=MAX_FRAME_BYTES,
        compress=False,  # deflate runs per socket: it would undo encoding a frame once for all
    )
    await ws.prepare(request)
    session = Session(request, ws, who)
    request.app[SOCKETS][ws] = session.sub
    sender = asyncio.get_running_loop().create_task(session.run_sender())
    try:
        async for message in ws:
            if message.type is WSMsgType.TEXT:
                await session.receive(message.data)
            else:
                session.error("invalid_frame", "frames are JSON text")
    finally:
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await sender
        await session.close()
    return ws


async def ws_ticket(request: web.Request) -> web.Response:
    """A single-use ticket for ``?ticket=``, for a browser that cannot send ``X-API-Key``."""
    who = principal_of(request)
    queue = request.app[QUEUE]
    holder = tickets.TicketHolder(who.tenant, who.admin, who.key_id)
    ticket = await tickets.issue(queue.redis, queue.keys, holder)
    body = {"ticket": ticket, "expires_in_s": float(tickets.TICKET_TTL_S)}
    return json_response(body, status=201)

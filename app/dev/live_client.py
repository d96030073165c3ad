"""A WebSocket client reduced to what the live bench needs, cheap enough that a thousand of them
in one process do not become the bottleneck they measure.

No task per socket: frames are cut out of the bytes in ``data_received``. Every socket receives
the same frames, so each distinct frame is decoded once for all of them (``FrameCache``) and a
receipt is only the frame's job ids and the time it arrived.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import cast

import orjson

MASK = b"\x00\x00\x00\x00"
"""Clients must mask; a zero mask leaves the payload as is (the bench trusts its own server)."""

Receipt = tuple[tuple[str, ...], float]
"""The job ids one frame brought and when it arrived (``time.monotonic``)."""


KEY_BYTES = 96
"""A frame is known by its size and first bytes, which hold its first change's event id: no
copy or hash of the whole frame per socket."""


class FrameCache:
    """Job ids per distinct frame: decoded the first time any socket receives it."""

    def __init__(self) -> None:
        self._ids: dict[bytes, tuple[str, ...]] = {}
        self.ops: dict[bytes, str] = {}

    def ids(self, key: bytes, buffer: bytearray, start: int, end: int) -> tuple[str, ...]:
        """The ids of the frame at ``buffer[start:end]``, known by ``key``."""
        found = self._ids.get(key)
        if found is None:
            frame = orjson.loads(buffer[start:end])
            op = frame["op"]
            if op == "event":
                found = (frame["job"]["id"],)
            elif op == "events":
                found = tuple(e["job"]["id"] for e in frame["events"])
            else:
                found = ()
                self.ops[key] = op
            self._ids[key] = found
        return found


def client_frame(payload: bytes, opcode: int = 0x1) -> bytes:
    size = len(payload)
    if size < 126:
        head = bytes([0x80 | opcode, 0x80 | size])
    else:
        head = bytes([0x80 | opcode, 0x80 | 126]) + size.to_bytes(2, "big")
    return head + MASK + payload


class LiveSocket(asyncio.Protocol):
    """One subscriber: upgrades, subscribes, then logs a ``Receipt`` per frame with jobs."""

    def __init__(self, cache: FrameCache, receipts: list[Receipt]) -> None:
        self.cache = cache
        self.receipts = receipts
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.upgraded = False
        self.subscribed = asyncio.get_running_loop().create_future()
        self.closed_with: int | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # a stream transport, though uvloop's does not subclass asyncio.Transport
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        now = time.monotonic()
        self.buffer += data
        if not self.upgraded:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            if b" 101 " not in self.buffer[:end]:
                self._fail(RuntimeError(self.buffer[:end].decode(errors="replace")))
                return
            self.upgraded = True
            del self.buffer[: end + 4]
        self._frames(now)

    def _frames(self, now: float) -> None:
        buffer, at = self.buffer, 0
        while len(buffer) - at >= 2:
            opcode, size, start = buffer[at] & 0x0F, buffer[at + 1] & 0x7F, at + 2
            if size == 126:
                size, start = int.from_bytes(buffer[start : start + 2], "big"), start + 2
            elif size == 127:
                size, start = int.from_bytes(buffer[start : start + 8], "big"), start + 8
            if len(buffer) < start + size:
                break
            at = start + size
            if opcode == 0x1:
                key = size.to_bytes(4, "big") + buffer[start : start + min(size, KEY_BYTES)]
                self._frame(key, start, at, now)
            elif opcode == 0x9:  # ping: the server's heartbeat
                self._write(client_frame(bytes(buffer[start:at]), 0xA))
            elif opcode == 0x8:
                code = buffer[start : start + 2]
                self.closed_with = int.from_bytes(code, "big") if code else 1005
        del buffer[:at]

    def _frame(self, key: bytes, start: int, end: int, now: float) -> None:
        ids = self.cache.ids(key, self.buffer, start, end)
        if ids:
            self.receipts.append((ids, now))
        elif self.cache.ops.get(key) == "subscribed" and not self.subscribed.done():
            self.subscribed.set_result(None)

    def _write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def _fail(self, exc: Exception) -> None:
        if not self.subscribed.done():
            self.subscribed.set_exception(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(ConnectionError(f"closed ({self.closed_with}) before subscribing"))

    def subscribe(self, host: str, port: int, api_key: str, batch: bool) -> None:
        key = os.urandom(16).hex()[:22] + "=="
        self._write(
            f"GET /v1/ws HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"X-API-Key: {api_key}\r\n\r\n".encode()
        )
        frame = {"op": "subscribe", "jobs": "all", **({"batch": True} if batch else {})}
        self._write(client_frame(orjson.dumps(frame)))

    def close(self) -> None:
        self._write(client_frame(b"\x03\xe8", 0x8))
        if self.transport is not None:
            self.transport.close()


async def open_socket(
    host: str, port: int, api_key: str, batch: bool, cache: FrameCache, receipts: list[Receipt]
) -> LiveSocket:
    """A subscribed socket (``subscribed`` received): every later change reaches it."""
    _transport, socket = await asyncio.get_running_loop().create_connection(
        lambda: LiveSocket(cache, receipts), host, port
    )
    socket.subscribe(host, port, api_key, batch)
    await socket.subscribed
    return socket

"""A keep-alive HTTP/1.1 client reduced to what ``tide bench --http`` needs.

The bench's clients share the machine's 2 cores with the API they load. aiohttp's client spent
as much CPU per request as the API spent answering it (197 against 201 µs, measured), so the
figure measured the client. This one writes a request prepared once and cuts each answer out of
the bytes in ``data_received``: its status, and its body by ``Content-Length``, which every
answer of the API carries.
"""

from __future__ import annotations

import asyncio

_END = b"\r\n\r\n"
_LENGTH = b"\r\ncontent-length:"


def request(method: str, path: str, port: int, headers: dict[str, str], body: bytes = b"") -> bytes:
    """The bytes of one request, ready to be written again and again."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class Connection(asyncio.Protocol):
    """One keep-alive connection; one request at a time."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._transport: asyncio.WriteTransport | None = None
        self._answer: asyncio.Future[tuple[int, bytes]] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]  # a stream transport

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        end = self._buffer.find(_END)
        if end < 0 or self._answer is None or self._answer.done():
            return
        head = bytes(self._buffer[:end]).lower()
        at = head.find(_LENGTH)
        if at < 0:
            self._answer.set_exception(ConnectionError("an answer without Content-Length"))
            return
        stop = head.find(b"\r\n", at + 2)
        length = int(head[at + len(_LENGTH) : stop if stop >= 0 else len(head)])
        if len(self._buffer) < end + 4 + length:
            return
        body = bytes(self._buffer[end + 4 : end + 4 + length])
        del self._buffer[: end + 4 + length]
        self._answer.set_result((int(head[9:12]), body))

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        if self._answer is not None and not self._answer.done():
            self._answer.set_exception(ConnectionError(f"the server closed the connection: {exc}"))

    async def send(self, prepared: bytes) -> tuple[int, bytes]:
        """The status and body of the answer to ``prepared``."""
        if self._transport is None:
            raise ConnectionError("the connection is closed")
        self._answer = asyncio.get_running_loop().create_future()
        self._transport.write(prepared)
        return await self._answer

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


async def connect(port: int) -> Connection:
    _, connection = await asyncio.get_running_loop().create_connection(
        Connection, "127.0.0.1", port
    )
    return connection

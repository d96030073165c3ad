"""A TCP proxy in front of the private redis-server that can lose a reply on purpose.

``drop_reply_to(marker)`` arms it: the next request containing ``marker`` (e.g. the SHA of a
script, so "the next EVALSHA of finish.lua") reaches Redis and runs there, but its reply is thrown
away and the client's connection is cut, as when a network drops between the two. redis-py sends
one command per connection at a time, so the next bytes from the server are that reply.
``cut()`` makes Redis unreachable through it (connections closed, new ones refused) until
``restore()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncIterator

from app.core.scripts import source


def script_sha(name: str) -> bytes:
    """What identifies a script's EVALSHA on the wire."""
    return hashlib.sha1(source(name).encode()).hexdigest().encode()


class LossyProxy:
    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self._upstream = (upstream_host, upstream_port)
        self._marker: bytes | None = None
        self._server: asyncio.Server | None = None
        self._pumps: set[asyncio.Task[None]] = set()
        self.dropped = 0
        """Replies thrown away so far."""
        self.refusing = False

    @property
    def port(self) -> int:
        assert self._server is not None
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def drop_reply_to(self, marker: bytes) -> None:
        self._marker = marker

    def cut(self) -> None:
        """Every open connection is closed and new ones are refused until ``restore``."""
        self.refusing = True
        for pump in list(self._pumps):
            pump.cancel()

    def restore(self) -> None:
        self.refusing = False

    async def start(self) -> LossyProxy:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for pump in list(self._pumps):
            pump.cancel()
        await asyncio.gather(*self._pumps, return_exceptions=True)

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        if self.refusing:
            client_w.close()
            return
        server_r, server_w = await asyncio.open_connection(*self._upstream)
        cut = asyncio.Event()  # set when the request to lose the reply of has gone up
        up = asyncio.create_task(self._up(client_r, server_w, cut))
        down = asyncio.create_task(self._down(server_r, client_w, cut))
        self._pumps |= {up, down}
        await asyncio.wait([up, down], return_when=asyncio.FIRST_COMPLETED)
        for pump in (up, down):
            pump.cancel()
        for writer in (client_w, server_w):
            writer.close()
        self._pumps -= {up, down}

    async def _up(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, cut: asyncio.Event
    ) -> None:
        while data := await reader.read(65536):
            if self._marker is not None and self._marker in data:
                self._marker = None
                cut.set()
            writer.write(data)
            await writer.drain()

    async def _down(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, cut: asyncio.Event
    ) -> None:
        while data := await reader.read(65536):
            if cut.is_set():
                self.dropped += 1
                return  # the reply is lost and the connection with it
            writer.write(data)
            await writer.drain()


@contextlib.asynccontextmanager
async def lossy_proxy(host: str, port: int) -> AsyncIterator[LossyProxy]:
    proxy = await LossyProxy(host, port).start()
    try:
        yield proxy
    finally:
        await proxy.close()

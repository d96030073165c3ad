"""An embedded Redis for ``tide dev`` on machines without one: fakeredis's TCP server in a thread.

fakeredis's TCP handler (2.40) closes the connection after any error reply. Real Redis keeps it
open, and redis-py relies on that: a ``NOSCRIPT`` answer is followed by ``SCRIPT LOAD`` and a retry
on the same connection, so without the patch below no worker could ever run a Lua script.
"""

from __future__ import annotations

import threading
from typing import Any

import structlog
from redis.exceptions import ResponseError

log = structlog.get_logger("tide.dev")


class FakeRedisUnavailable(RuntimeError):
    """fakeredis is not installed (it comes with the ``dev`` extra)."""


def _patch_error_replies(server: Any) -> None:
    """Make ``server`` answer an error reply as a value (``-ERR ...``) instead of hanging up."""
    try:
        from fakeredis._clients._tcp_server import TCPFakeRequestHandler
    except ImportError:  # a fakeredis whose internals moved: run unpatched, scripts may fail
        log.warning("dev.fake_redis_unpatched")
        return

    class Handler(TCPFakeRequestHandler):
        def setup(self) -> None:
            super().setup()
            client = self.current_client
            read = client.read_response

            def read_response(**kwargs: Any) -> Any:
                try:
                    return read(**kwargs)
                except ResponseError as exc:
                    return exc

            client.read_response = read_response  # type: ignore[method-assign]

    server.RequestHandlerClass = Handler


class EmbeddedRedis:
    """Start with :meth:`start`, stop with :meth:`stop`; ``url`` is valid in between."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        try:
            from fakeredis import TcpFakeServer
        except ImportError as exc:
            raise FakeRedisUnavailable("fakeredis is not installed (the dev extra)") from exc
        self._server: Any = TcpFakeServer((host, 0))
        _patch_error_replies(self._server)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="fakeredis", daemon=True
        )
        self.host = host
        self.port: int = self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    def start(self) -> EmbeddedRedis:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close every client connection (blocks up to a few seconds)."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

"""The bench's lean HTTP client reads whole answers, however the bytes arrive."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from app.dev.http_load import connect, request


async def echo(req: web.Request) -> web.Response:
    body = await req.read()
    if req.path == "/close":
        assert req.transport is not None
        req.transport.close()
    return web.Response(status=201, body=body * int(req.query.get("times", "1")))


@pytest.fixture
async def server() -> AsyncIterator[TestServer]:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", echo)
    async with TestServer(app, host="127.0.0.1") as test_server:
        yield test_server


async def test_answers_come_back_whole_one_after_another_on_one_connection(
    server: TestServer,
) -> None:
    assert server.port is not None
    connection = await connect(server.port)
    try:
        big = request("POST", "/?times=20000", server.port, {"X-Any": "1"}, b"0123456789")
        small = request("POST", "/", server.port, {}, b"{}")
        for _ in range(3):  # a 200 KB answer arrives in many pieces; the next starts clean
            assert await connection.send(big) == (201, b"0123456789" * 20000)
            assert await connection.send(small) == (201, b"{}")
    finally:
        connection.close()


async def test_a_connection_the_server_closes_fails_the_request(server: TestServer) -> None:
    assert server.port is not None
    connection = await connect(server.port)
    with pytest.raises(ConnectionError):
        await connection.send(request("POST", "/close", server.port, {}, b"x"))
    with pytest.raises(ConnectionError):
        await connection.send(request("POST", "/", server.port, {}, b"x"))

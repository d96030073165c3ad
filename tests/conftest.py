"""Shared fixtures: a private redis-server for the whole run, fakeredis for the fast tier.

Integration tests start their own ``redis-server`` on a free port, never the one at 6379. When the
binary is missing they fail with a clear message under CI (``CI`` set) and skip otherwise.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator

import fakeredis
import pytest
from redis.asyncio import Redis

from app.core.redis_client import connect
from app.core.settings import CoreSettings
from app.dev.redis_server import RedisServer, RedisServerUnavailable


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    try:
        server = RedisServer().start()
    except RedisServerUnavailable as exc:
        message = f"integration tests need redis-server: {exc}"
        if os.environ.get("CI"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    yield server
    server.stop()


@pytest.fixture
async def real_redis(redis_server: RedisServer) -> AsyncIterator[Redis]:
    """A client of the private server, emptied before each test."""
    client = connect(redis_server.url)
    await client.flushall()
    yield client
    await client.aclose()


@pytest.fixture
async def fake_redis() -> AsyncIterator[Redis]:
    client = fakeredis.FakeAsyncRedis(decode_responses=True)
    yield client
    await client.aclose()


@pytest.fixture(params=["fakeredis", pytest.param("redis-server", marks=pytest.mark.redis)])
def any_redis(request: pytest.FixtureRequest) -> Redis:
    """Runs a test twice: on fakeredis and on a real redis-server."""
    name = "fake_redis" if request.param == "fakeredis" else "real_redis"
    client: Redis = request.getfixturevalue(name)
    return client


@pytest.fixture
def settings() -> CoreSettings:
    return CoreSettings(redis_url="redis://unused", lease_timeout_s=1.0, retry_backoff_s=0.05)

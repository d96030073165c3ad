"""Fixtures of the API tests: settings with a small body limit, and test clients that close."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from redis.asyncio import Redis

from app.api import create_app
from app.api.settings import ApiSettings
from app.core.queue import Queue
from app.core.redis_client import connect
from app.dev.redis_server import free_port
from tests.helpers import ACME, ADMIN, API_MAX_BODY, BOLT, ApiClient, MakeApiClient

Client = ApiClient


@pytest.fixture
def api_settings() -> ApiSettings:
    """Limits far above what a test submits, unless the test is about limits."""
    return ApiSettings(
        redis_url="redis://unused",
        max_body_bytes=API_MAX_BODY,
        health_timeout_s=0.5,
        tenant_rpm=100_000,
        tenant_max_active=100_000,
    )


@pytest.fixture
def keyed_settings(api_settings: ApiSettings) -> ApiSettings:
    """Auth on: keys for tenants acme and bolt and an admin, never cached between requests."""
    update = {"api_keys": f"acme:{ACME},bolt:{BOLT}", "admin_api_keys": ADMIN, "key_cache_s": 0}
    return api_settings.model_copy(update=update)


@pytest.fixture
async def make_client() -> AsyncIterator[MakeApiClient]:
    """Factory: a test client for an app (or for a test server made for it); every client is
    closed after the test."""
    clients: list[Client] = []

    async def make(app: web.Application | TestServer) -> Client:
        client: Client = TestClient(app if isinstance(app, TestServer) else TestServer(app))
        await client.start_server()
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


@pytest.fixture
async def client(
    any_redis: Redis,
    api_settings: ApiSettings,
    make_client: MakeApiClient,
) -> Client:
    return await make_client(create_app(api_settings, Queue(any_redis, api_settings)))


@pytest.fixture
async def down_queue(api_settings: ApiSettings) -> AsyncIterator[Queue]:
    """A queue whose Redis is a closed port: every command fails to connect."""
    redis = connect(f"redis://127.0.0.1:{free_port()}/0")
    yield Queue(redis, api_settings)
    await redis.aclose()

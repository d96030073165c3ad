"""Tenants through real processes: ``tide api`` with ``API_KEYS`` and a ``tide worker``."""

from __future__ import annotations

import asyncio
import sys
import time

import aiohttp
import pytest
from redis.asyncio import Redis

from app.dev.redis_server import RedisServer, free_port
from tests.e2e.conftest import Proc, SpawnWorker, process_env, stop
from tests.helpers import wait_healthy

pytestmark = pytest.mark.redis

ACME = {"X-API-Key": "acme-e2e-secret-0123456789"}


async def test_a_tenants_active_slots_come_back_as_a_worker_process_finishes_its_jobs(
    redis_server: RedisServer, real_redis: Redis, spawn_worker: SpawnWorker
) -> None:
    port = free_port()
    env = process_env(
        redis_server, port=port, api_keys=f"acme:{ACME['X-API-Key']}", tenant_max_active=2
    )
    api = Proc([sys.executable, "-m", "app", "api"], env)
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as session:
            await wait_healthy(base, api.popen, api.output)
            body = {"type": "echo", "payload": 1}
            async with session.post(f"{base}/v1/jobs", json=body) as response:
                assert response.status == 401
            for _ in range(2):
                async with session.post(f"{base}/v1/jobs", json=body, headers=ACME) as response:
                    assert response.status == 201
            async with session.post(f"{base}/v1/jobs", json=body, headers=ACME) as response:
                assert response.status == 429
                assert (await response.json())["error"]["code"] == "too_many_active"

            spawn_worker(concurrency=2)
            deadline = time.monotonic() + 15
            while True:
                async with session.post(f"{base}/v1/jobs", json=body, headers=ACME) as response:
                    if response.status == 201:
                        break
                assert time.monotonic() < deadline, "no slot came back"
                await asyncio.sleep(0.05)
            async with session.get(f"{base}/v1/jobs", headers=ACME) as response:
                listed = (await response.json())["jobs"]
        assert len(listed) == 3
        assert {job["tenant"] for job in listed} == {"acme"}
        assert stop(api) == 0
    finally:
        api.kill()

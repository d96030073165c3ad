"""The whole lifecycle through real processes: ``tide api`` and ``tide worker``."""

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


async def test_a_job_submitted_over_http_is_run_by_a_worker_process(
    redis_server: RedisServer, real_redis: Redis, spawn_worker: SpawnWorker
) -> None:
    port = free_port()
    api = Proc([sys.executable, "-m", "app", "api"], process_env(redis_server, port=port))
    base = f"http://127.0.0.1:{port}"
    try:
        spawn_worker(concurrency=2)
        async with aiohttp.ClientSession() as session:
            await wait_healthy(base, api.popen, api.output)
            body = {"type": "echo", "payload": {"hello": "world"}, "max_attempts": 2}
            async with session.post(f"{base}/v1/jobs", json=body) as response:
                assert response.status == 201
                submitted = await response.json()
                assert response.headers["Location"] == f"/v1/jobs/{submitted['id']}"
            deadline = time.monotonic() + 15
            while True:
                async with session.get(f"{base}{response.headers['Location']}") as got:
                    job = await got.json()
                if job["status"] == "succeeded" or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.05)
        assert job["status"] == "succeeded"
        assert job["result"] == {"hello": "world"}
        assert (job["attempts"], job["max_attempts"]) == (1, 2)
        assert job["worker"]
        assert job["created_at"] <= job["started_at"] <= job["finished_at"]
        assert job["finished_at"].endswith("Z")
        assert stop(api) == 0
    finally:
        api.kill()

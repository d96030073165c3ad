"""An in-process worker on the private redis-server, with a task registry of its own."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import pytest
from redis.asyncio import Redis

from app.core.queue import Queue
from app.core.redis_client import connect
from app.dev.redis_server import RedisServer
from workers.settings import WorkerSettings
from workers.tasks import TaskRegistry
from workers.worker import Worker

StartWorker = Callable[..., AbstractAsyncContextManager[Worker]]


@pytest.fixture
def wsettings(redis_server: RedisServer) -> WorkerSettings:
    return WorkerSettings(
        redis_url=redis_server.url,
        lease_timeout_s=1.0,
        reclaim_interval_s=0.2,
        retry_backoff_s=0.05,
        retry_backoff_max_s=0.2,
        shutdown_grace_s=2.0,
        worker_concurrency=5,
    )


@pytest.fixture
def tasks() -> TaskRegistry:
    return TaskRegistry()


@pytest.fixture
async def queue(real_redis: Redis, wsettings: WorkerSettings) -> Queue:
    return Queue(real_redis, wsettings)


@pytest.fixture
async def start_worker(
    wsettings: WorkerSettings, tasks: TaskRegistry
) -> AsyncIterator[StartWorker]:
    """Starts workers in this event loop; each stops (drains) when its block ends."""
    running: list[tuple[Worker, asyncio.Task[None], Redis]] = []

    @asynccontextmanager
    async def start(**overrides: object) -> AsyncIterator[Worker]:
        settings = wsettings.model_copy(update=overrides)
        redis = connect(settings.redis_url)
        worker = Worker(redis, settings, tasks)
        task = asyncio.create_task(worker.run())
        running.append((worker, task, redis))
        try:
            yield worker
        finally:
            worker.request_stop()
            await asyncio.wait_for(task, timeout=15)

    yield start
    for worker, task, redis in running:
        if not task.done():
            worker.request_stop()
            await asyncio.wait_for(task, timeout=15)
        await redis.aclose()

"""The live worker registry (``P:workers``, ``P:workers:seen``) as readers see it: who runs,
what it serves, how busy it is and how long since its last heartbeat (Redis clock)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from redis.asyncio import Redis

from app.core.keys import Keys


@dataclass(frozen=True, slots=True)
class LiveWorker:
    id: str
    heartbeat_age_s: float
    """Seconds since the worker last announced itself, on the Redis server's clock."""
    info: dict[str, Any]
    """What the worker announced (host, pid, queues, concurrency, busy, processed, ...)."""


async def live_workers(redis: Redis, keys: Keys) -> list[LiveWorker]:
    """Every registered worker, most recently seen first, in one round trip. A worker whose
    entry is half-written (seen but not described, or the reverse) is left out."""
    async with redis.pipeline(transaction=False) as pipe:
        pipe.time()
        pipe.zrevrange(keys.workers_seen, 0, -1, withscores=True)
        pipe.hgetall(keys.workers)
        (seconds, micros), seen, described = await pipe.execute()
    now_ms = int(seconds) * 1000 + int(micros) // 1000
    return [
        LiveWorker(worker_id, max(0.0, (now_ms - score) / 1000), orjson.loads(described[worker_id]))
        for worker_id, score in seen
        if worker_id in described
    ]

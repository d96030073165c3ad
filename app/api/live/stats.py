"""The ``stats`` frame: the deployment's figures, read once a second per process (not per
socket) while any WebSocket is open, encoded once and sent to every socket."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import Any

import orjson
import structlog
from redis.exceptions import RedisError

from app.api.live.hub import Hub, Subscriber
from app.core.keys import GLOBAL_LIMITER
from app.core.metrics import read_metrics
from app.core.queue import Queue
from app.core.scaler_state import recent_decisions

log = structlog.get_logger("tide.api")

INTERVAL_S = 1.0


async def stats_frame(queue: Queue) -> bytes:
    return orjson.dumps({"op": "stats", **await stats_figures(queue)})


async def stats_figures(queue: Queue) -> dict[str, Any]:
    """Depth summed over queues (and per queue), throughput, workers, the scaler's last
    decision (null until a scaler has decided). Also served as ``GET /v1/stats``, for a page
    that has fallen back to polling."""
    metrics = await read_metrics(queue, top_tenants=0)
    decisions = await recent_decisions(queue.redis, queue.keys, count=1)
    last: dict[str, Any] | None = decisions[0] if decisions else None
    rpm = metrics.limiters.get(GLOBAL_LIMITER)
    return {
        "waiting": sum(q.waiting for q in metrics.queues),
        "running": sum(q.running for q in metrics.queues),
        "scheduled": sum(q.scheduled for q in metrics.queues),
        "dead": sum(q.dead for q in metrics.queues),
        "finished_per_min": sum(q.finished_per_min for q in metrics.queues),
        "totals": metrics.totals,
        "workers": metrics.workers,
        "rpm": None if rpm is None else {"used": rpm.used, "limit": rpm.limit},
        "queues": [
            {
                "queue": q.queue,
                "waiting": q.waiting,
                "running": q.running,
                "scheduled": q.scheduled,
                "dead": q.dead,
                "finished_per_min": q.finished_per_min,
            }
            for q in metrics.queues
        ],
        "scaler": None
        if last is None
        else {
            "current": last.get("current"),
            "desired": last.get("desired"),
            "decision": last,
        },
    }


async def send_stats(queue: Queue, hub: Hub, sockets: Callable[[], Iterable[Subscriber]]) -> None:
    """Forever: once a second, one stats frame to every open socket (none: no read)."""
    while True:
        await asyncio.sleep(INTERVAL_S)
        subs = list(sockets())
        if not subs:
            continue
        try:
            frame = await stats_frame(queue)
        except RedisError as exc:
            log.warning("api.stats_failed", error=str(exc))
            continue
        hub.broadcast(frame, subs)

"""The worker's presence in the live-worker list (``register.lua``): who it is, what it serves,
how busy it is. Not the task table, which is :class:`workers.tasks.TaskRegistry`."""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass, field

import orjson

from app.core.leases import LeaseClient
from workers.settings import WorkerSettings


@dataclass
class Counters:
    """What the worker has done so far, published with its presence."""

    processed: int = 0
    failed: int = 0
    lost: int = 0
    deleted_entries: int = 0
    started_at: float = field(default_factory=time.time)


def new_worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{os.urandom(2).hex()}"


class Presence:
    """Announces this worker in the live-worker list and removes it when it leaves."""

    def __init__(self, leases: LeaseClient, settings: WorkerSettings, counters: Counters) -> None:
        self._client = leases
        self._settings = settings
        self._counters = counters

    @property
    def stale_ms(self) -> int:
        """Silence after which a worker counts as gone: three missed beats, at least 10 s."""
        return int(max(3 * self._settings.heartbeat_interval_s, 10.0) * 1000)

    async def announce(self, busy: int) -> None:
        c = self._counters
        info = {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "queues": self._settings.queue_list,
            "concurrency": self._settings.worker_concurrency,
            "busy": busy,
            "processed": c.processed,
            "failed": c.failed,
            "lost": c.lost,
            "deleted_entries": c.deleted_entries,
            "started_at": c.started_at,
            "last_seen": time.time(),
        }
        await self._client.register(orjson.dumps(info).decode(), self.stale_ms)

    async def leave(self) -> None:
        await self._client.register("", self.stale_ms)

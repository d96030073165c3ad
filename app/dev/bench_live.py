"""Live-update delivery under load: one ``tide api`` process, many WebSocket subscribers.

Not part of the test suite. ``python -m app.dev.bench_live [subscribers] [events/s] [seconds]``
starts a private ``redis-server`` and the API, opens the sockets (all subscribed to ``all``),
submits jobs at the given rate straight into the queue, and reports submit-to-receipt latency
percentiles over every delivery, the deliveries per second and the API's resident memory.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import secrets
import sys
import time

import aiohttp
import orjson

from app.core.models import JobSpec
from app.core.queue import Queue
from app.core.settings import CoreSettings
from app.dev.bench_http import _wait_healthy
from app.dev.redis_server import RedisServer, free_port

TICK_S = 0.05
"""Submissions are spread over the second in batches this far apart."""


@dataclasses.dataclass(frozen=True, slots=True)
class LiveFigures:
    subscribers: int
    events_per_s: int
    seconds: float
    deliveries: int
    expected: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    api_rss_mb_idle: float
    api_rss_mb_connected: float
    api_rss_mb_end: float


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


async def run_live(subscribers: int, rate: int, seconds: float) -> LiveFigures:
    redis_server = RedisServer().start()
    port, secret = free_port(), "bench-" + secrets.token_urlsafe(16)
    env = {
        **os.environ,
        "REDIS_URL": redis_server.url,
        "PORT": str(port),
        "HOST": "127.0.0.1",
        "LOG_LEVEL": "warning",
        "ADMIN_API_KEYS": secret,  # sees the jobs submitted below, of any tenant
    }
    api = await asyncio.create_subprocess_exec(sys.executable, "-m", "app", "api", env=env)
    settings = CoreSettings(redis_url=redis_server.url)
    redis = settings.connect_redis()
    submitted: dict[str, float] = {}
    received: list[tuple[str, float]] = []
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
            base = f"http://127.0.0.1:{port}"
            await _wait_healthy(session, base, api)
            idle = _rss_mb(api.pid)
            sockets = [
                await session.ws_connect(f"{base}/v1/ws", headers={"X-API-Key": secret})
                for _ in range(subscribers)
            ]
            for ws in sockets:
                await ws.send_str('{"op":"subscribe","jobs":"all"}')
            for ws in sockets:
                while (await ws.receive_json())["op"] != "subscribed":
                    pass
            connected = _rss_mb(api.pid)
            readers = [asyncio.create_task(_receive(ws, received)) for ws in sockets]
            await _submit(Queue(redis, settings), rate, seconds, submitted)
            await asyncio.sleep(1.0)  # the last deliveries
            end = _rss_mb(api.pid)
            for task in readers:
                task.cancel()
            for ws in sockets:
                await ws.close()
    finally:
        api.terminate()
        await api.wait()
        await redis.aclose()
        redis_server.stop()
    latencies = sorted((at - submitted[job]) * 1000 for job, at in received if job in submitted)

    def pct(p: float) -> float:
        return round(latencies[min(len(latencies) - 1, int(len(latencies) * p))], 1)

    return LiveFigures(
        subscribers=subscribers,
        events_per_s=rate,
        seconds=seconds,
        deliveries=len(latencies),
        expected=len(submitted) * subscribers,
        p50_ms=pct(0.5),
        p99_ms=pct(0.99),
        max_ms=round(latencies[-1], 1),
        api_rss_mb_idle=round(idle, 1),
        api_rss_mb_connected=round(connected, 1),
        api_rss_mb_end=round(end, 1),
    )


async def _submit(queue: Queue, rate: int, seconds: float, submitted: dict[str, float]) -> None:
    per_tick = max(1, round(rate * TICK_S))
    start = time.monotonic()
    ticks = int(seconds / TICK_S)
    for tick in range(ticks):
        await asyncio.sleep(max(0.0, start + tick * TICK_S - time.monotonic()))
        sent_at = time.monotonic()
        jobs = await queue.submit_many([JobSpec(type="noop", queue="bench-live")] * per_tick)
        for job in jobs:
            submitted[job.id] = sent_at


async def _receive(ws: aiohttp.ClientWebSocketResponse, received: list[tuple[str, float]]) -> None:
    """Each event's job and when it arrived (matched with its submission at the end: an event
    may arrive before its submit call has returned)."""
    async for message in ws:
        frame = orjson.loads(message.data)
        if frame["op"] == "event":
            received.append((frame["job"]["id"], time.monotonic()))


def main() -> None:
    args = [float(a) for a in sys.argv[1:4]]
    subscribers, rate, seconds = (args + [1000, 1000, 10][len(args) :])[:3]
    figures = asyncio.run(run_live(int(subscribers), int(rate), seconds))
    print(orjson.dumps(dataclasses.asdict(figures), option=orjson.OPT_INDENT_2).decode())


if __name__ == "__main__":
    main()

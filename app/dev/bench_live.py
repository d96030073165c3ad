"""Live-update delivery under load: one ``tide api`` process, many WebSocket subscribers.

Not part of the test suite. ``python -m app.dev.bench_live --help``. It starts a private
``redis-server`` and the API, opens the sockets (all subscribed to ``all`` with an admin key, so
each sees every change), submits jobs at a steady rate straight into the queue (small
``submit_many`` calls every ``--tick-ms``), and reports submit-to-receipt latency over every
delivery to every socket, deliveries per second, missing deliveries, the API's resident memory,
and the CPU each process used (the client's too: it must not be what limits the figures).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import secrets
import sys
import time
from collections import Counter

import aiohttp
import orjson

from app.core.models import JobSpec
from app.core.queue import Queue
from app.core.settings import CoreSettings
from app.dev.bench_http import _wait_healthy
from app.dev.live_client import FrameCache, LiveSocket, Receipt, open_socket
from app.dev.redis_server import RedisServer, free_port
from app.process import loop

DRAIN_S = 3.0
"""Waited after the last submission for its deliveries."""
STOP_S = 10.0
"""The API's grace to stop before it is killed."""
SAMPLE_S = 0.5
"""How often the API's memory is sampled for its peak."""


@dataclasses.dataclass(frozen=True, slots=True)
class LiveFigures:
    subscribers: int
    batch: bool
    events_per_s: int
    seconds: float
    submitted: int
    deliveries: int
    expected: int
    deliveries_per_s: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    api_rss_mb_idle: float
    api_rss_mb_connected: float
    api_rss_mb_peak: float
    cpu_s: dict[str, float]
    """CPU seconds over the load: the API, Redis and this client (submitter and sockets)."""


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def run_live(
    subscribers: int, rate: int, seconds: float, batch: bool, tick_s: float
) -> LiveFigures:
    redis_server = RedisServer().start()
    assert redis_server.proc is not None
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
    receipts: list[Receipt] = []
    cache = FrameCache()
    pids = {"api": api.pid, "redis": redis_server.proc.pid, "client": os.getpid()}
    try:
        async with aiohttp.ClientSession() as session:
            await _wait_healthy(session, f"http://127.0.0.1:{port}", api)
        idle = _rss_mb(api.pid)
        sockets: list[LiveSocket] = []
        for _ in range(subscribers):
            sockets.append(await open_socket("127.0.0.1", port, secret, batch, cache, receipts))
        connected = _rss_mb(api.pid)
        cpu_before = {name: _cpu_s(pid) for name, pid in pids.items()}
        peak = asyncio.get_running_loop().create_task(_peak_rss(api.pid))
        await _submit(Queue(redis, settings), rate, seconds, tick_s, submitted)
        await asyncio.sleep(DRAIN_S)
        cpu = {name: round(_cpu_s(pid) - cpu_before[name], 1) for name, pid in pids.items()}
        peak.cancel()
        peak_mb = max(connected, await peak)
        closed = [s.closed_with for s in sockets if s.closed_with is not None]
        for socket in sockets:
            socket.close()
    finally:
        api.terminate()
        try:
            await asyncio.wait_for(api.wait(), STOP_S)
        except TimeoutError:
            api.kill()
            await api.wait()
        await redis.aclose()
        redis_server.stop()
    if closed:
        raise RuntimeError(f"{len(closed)} sockets were closed by the server: {closed[:5]}")
    histogram, deliveries = _latencies(receipts, submitted)
    return LiveFigures(
        subscribers=subscribers,
        batch=batch,
        events_per_s=rate,
        seconds=seconds,
        submitted=len(submitted),
        deliveries=deliveries,
        expected=len(submitted) * subscribers,
        deliveries_per_s=round(deliveries / seconds),
        p50_ms=_percentile(histogram, deliveries, 0.5),
        p99_ms=_percentile(histogram, deliveries, 0.99),
        max_ms=max(histogram) / 10 if histogram else 0.0,
        api_rss_mb_idle=round(idle, 1),
        api_rss_mb_connected=round(connected, 1),
        api_rss_mb_peak=round(peak_mb, 1),
        cpu_s=cpu,
    )


async def _peak_rss(pid: int) -> float:
    """The highest RSS seen until cancelled (then returned)."""
    peak = 0.0
    try:
        while True:
            peak = max(peak, _rss_mb(pid))
            await asyncio.sleep(SAMPLE_S)
    except asyncio.CancelledError:
        return peak


def _latencies(receipts: list[Receipt], submitted: dict[str, float]) -> tuple[Counter[int], int]:
    """Latencies in tenths of a millisecond, counted; and how many deliveries were matched."""
    histogram: Counter[int] = Counter()
    for ids, at in receipts:
        for job_id in ids:
            sent = submitted.get(job_id)
            if sent is not None:
                histogram[int((at - sent) * 10_000)] += 1
    return histogram, sum(histogram.values())


def _percentile(histogram: Counter[int], total: int, p: float) -> float:
    rank, seen = int(total * p), 0
    for tenths in sorted(histogram):
        seen += histogram[tenths]
        if seen > rank:
            return tenths / 10
    return 0.0


async def _submit(
    queue: Queue, rate: int, seconds: float, tick_s: float, submitted: dict[str, float]
) -> None:
    """``rate`` jobs a second, in even ticks; the time each was sent (an event may arrive before
    its submit call has returned)."""
    per_tick = max(1, round(rate * tick_s))
    tick_s = per_tick / rate
    start = time.monotonic()
    for tick in range(int(seconds / tick_s)):
        await asyncio.sleep(max(0.0, start + tick * tick_s - time.monotonic()))
        sent_at = time.monotonic()
        jobs = await queue.submit_many([JobSpec(type="noop", queue="bench-live")] * per_tick)
        for job in jobs:
            submitted[job.id] = sent_at


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m app.dev.bench_live", description=__doc__)
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--rate", type=int, default=1000, help="events (jobs) per second")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--tick-ms", type=float, default=10.0, help="submission interval")
    parser.add_argument("--batch", action="store_true", help='subscribe with "batch": true')
    args = parser.parse_args(argv)
    figures = loop.run(  # uvloop, as the API runs: the client must not be what is measured
        run_live(args.subscribers, args.rate, args.seconds, args.batch, args.tick_ms / 1000)
    )
    print(orjson.dumps(dataclasses.asdict(figures)).decode())


if __name__ == "__main__":
    main()

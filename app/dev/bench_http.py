"""``tide bench --http``: the submit API under load, as a separate ``tide api`` process.

Single submits come from many concurrent keep-alive clients (the API coalesces them into group
commits); batches go to ``POST /v1/jobs/batch``. The jobs land on a queue no worker serves. The
clients are lean ones (``app.dev.http_load``): they share the cores with the API.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import os
import secrets
import sys
import time

import aiohttp
import orjson

from app.dev.http_load import Connection, connect, request
from app.dev.redis_server import free_port

QUEUE = "bench-http"
START_S = 30.0
UNLIMITED = str(10**9)
BATCHES_MIN = 100


class HttpBenchError(RuntimeError):
    """The API would not start, or refused the load."""


@dataclasses.dataclass(frozen=True, slots=True)
class HttpFigures:
    """Rates per second; request latencies in ms, measured by the clients."""

    clients: int
    single_jobs: int
    single_per_s: float
    single_p50_ms: float
    single_p99_ms: float
    batch_size: int
    batch_clients: int
    batch_jobs: int
    batch_per_s: float
    batch_p50_ms: float
    batch_p99_ms: float


async def run_http(
    redis_url: str, prefix: str, jobs: int, clients: int, batch_size: int
) -> HttpFigures:
    """Start ``tide api`` on a free port against ``redis_url``/``prefix``, load it, stop it."""
    port, secret = free_port(), "bench-" + secrets.token_urlsafe(16)
    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "KEY_PREFIX": prefix,
        "PORT": str(port),
        "HOST": "127.0.0.1",
        "LOG_LEVEL": "warning",
        "API_KEYS": f"bench:{secret}",
        "TENANT_RPM": UNLIMITED,
        "TENANT_MAX_ACTIVE": UNLIMITED,
        "BATCH_MAX": str(batch_size),
    }
    api = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "app", "api", env=env, stdin=asyncio.subprocess.DEVNULL
    )
    base = f"http://127.0.0.1:{port}"
    headers = {"X-API-Key": secret, "Content-Type": "application/json"}
    job = {"type": "noop", "queue": QUEUE}
    single = request("POST", "/v1/jobs", port, headers, orjson.dumps(job))
    many = orjson.dumps({"jobs": [job] * batch_size})
    batch = request("POST", "/v1/jobs/batch", port, headers, many)
    batch_clients = 4
    # enough batches for a p99 that is not simply the slowest of a handful
    batches = max(BATCHES_MIN, jobs // batch_size)
    try:
        async with aiohttp.ClientSession() as session:
            await _wait_healthy(session, base, api)
        connections: list[Connection] = []
        try:
            # connected first, untimed: the timed run measures submits, not TCP handshakes
            for _ in range(clients):
                connections.append(await connect(port))
            await _load(connections, single, clients)
            singles = await _load(connections, single, jobs)
            await _load(connections[:batch_clients], batch, batch_clients)  # warm, untimed
            batched = await _load(connections[:batch_clients], batch, batches)
        finally:
            for connection in connections:
                connection.close()
    finally:
        if api.returncode is None:
            api.terminate()
            await api.wait()
    return HttpFigures(
        clients=clients,
        single_jobs=jobs,
        single_per_s=round(jobs / singles.seconds, 1),
        single_p50_ms=singles.percentile(50),
        single_p99_ms=singles.percentile(99),
        batch_size=batch_size,
        batch_clients=batch_clients,
        batch_jobs=batches * batch_size,
        batch_per_s=round(batches * batch_size / batched.seconds, 1),
        batch_p50_ms=batched.percentile(50),
        batch_p99_ms=batched.percentile(99),
    )


@dataclasses.dataclass(frozen=True, slots=True)
class Run:
    seconds: float
    latencies_ms: list[float]

    def percentile(self, pct: float) -> float:
        ordered = sorted(self.latencies_ms)
        return round(ordered[max(1, math.ceil(pct / 100 * len(ordered))) - 1], 3)


async def _load(connections: list[Connection], prepared: bytes, requests: int) -> Run:
    """``requests`` sent over ``connections`` at once, each waiting for its answer (a 201)."""
    left = iter(range(requests))
    latencies: list[float] = []

    async def client(connection: Connection) -> None:
        for _ in left:
            started = time.perf_counter()
            status, answer = await connection.send(prepared)
            if status != 201:
                text = answer.decode(errors="replace")
                raise HttpBenchError(f"the API answered {status}: {text}")
            latencies.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(client(connection) for connection in connections))
    return Run(time.perf_counter() - started, latencies)


async def _wait_healthy(
    session: aiohttp.ClientSession, base: str, api: asyncio.subprocess.Process
) -> None:
    deadline = time.monotonic() + START_S
    while time.monotonic() < deadline:
        if api.returncode is not None:
            raise HttpBenchError(f"tide api exited with {api.returncode}")
        try:
            async with session.get(f"{base}/health") as response:
                if response.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.1)
    raise HttpBenchError(f"tide api did not answer within {START_S:.0f} s")

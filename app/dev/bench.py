"""``tide bench``: how fast Tide enqueues, processes and answers on this machine, and what a job
costs Redis. Hermetic by default (a private redis-server); ``--redis-url`` uses an existing one
under a throw-away key prefix, deleted afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import math
import os
import sys
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack, ExitStack
from typing import Any, NoReturn, TextIO

import orjson
import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError
from tqdm import tqdm

from app.core.models import JobSpec, JobStatus
from app.core.queue import Queue
from app.core.redis_client import Lane, connect
from app.core.settings import CoreSettings
from app.dev.bench_http import HttpBenchError, HttpFigures, run_http
from app.dev.redis_server import RedisServer, RedisServerUnavailable
from app.process import loop
from app.process.fleet import WorkerFleet, worker_command
from app.process.logging import configure_logging
from app.process.signals import STOP_SIGNALS
from app.process.startup import positive_int

log = structlog.get_logger("tide.bench")

QUEUE = "bench"
SINGLE_QUEUE = "bench-single"
"""Where the awaited single submits go: no worker serves it, so they measure the submit alone."""
POLL_S = 0.05
STALL_S = 60.0
"""No job finished for this long: something is broken, so fail rather than wait forever."""
WORKER_STOP_S = 15.0
READ_CHUNK = 1000
LATENCY_PACE_S = 0.005
FIELDS = ("status", "created_at", "started_at", "finished_at")


class BenchError(RuntimeError):
    """The bench could not complete: a worker died or the jobs stalled."""


@dataclasses.dataclass(frozen=True, slots=True)
class Options:
    jobs: int
    workers: int
    concurrency: int
    latency_jobs: int
    single_jobs: int
    http: bool
    clients: int
    batch_size: int
    redis_url: str | None
    json: bool


@dataclasses.dataclass(frozen=True, slots=True)
class Figures:
    """What ``--json`` prints. Rates are per second; times in ms on the Redis server's clock."""

    jobs: int
    workers: int
    concurrency: int
    latency_jobs: int
    enqueue_per_s: float
    process_per_s: float
    latency_p50_ms: float
    latency_p99_ms: float
    latency_max_ms: float
    single_submit_per_s: float
    ping_per_s: float
    """Awaited ``PING``s one after another on the same kind of connection: the round trip alone,
    the ceiling for single submits on this machine."""
    xadd_per_s: float
    """Awaited bare ``XADD``s through redis-py, one after another: a queue with no record, no
    event and no limits, the yardstick single submits were set against."""
    redis_us_per_single_submit: float
    script_us_per_single_submit: float
    """The submit script's own run time (``INFO commandstats``): steadier than the server's CPU on
    a busy machine. On a shared ``--redis-url`` other clients' scripts count too."""
    redis_bytes_per_job: float
    succeeded: int
    latency_succeeded: int
    stream_len_after: int
    redis_version: str
    redis: str
    key_prefix: str
    http: HttpFigures | None = None

    @property
    def ok(self) -> bool:
        all_ran = (self.succeeded, self.latency_succeeded) == (self.jobs, self.latency_jobs)
        return all_ran and self.stream_len_after == 0


def parse_args(argv: list[str] | None) -> Options:
    parser = argparse.ArgumentParser(
        prog="tide bench",
        description="Measure enqueue and processing throughput, latency and Redis memory per job "
        "with noop jobs. Starts a private redis-server unless --redis-url is given.",
    )
    parser.add_argument("--jobs", type=positive_int, default=20_000, help="jobs to process (20000)")
    parser.add_argument("--workers", type=positive_int, default=1, help="worker processes (1)")
    parser.add_argument(
        "--concurrency", type=positive_int, default=200, help="jobs per worker (200)"
    )
    parser.add_argument(
        "--latency-jobs", type=positive_int, default=300, help="jobs one by one (300)"
    )
    parser.add_argument(
        "--single-jobs",
        type=positive_int,
        default=5000,
        help="jobs submitted one awaited call after another (5000)",
    )
    parser.add_argument(
        "--http",
        action="store_true",
        help="also load a tide api process: single submits from --clients keep-alive clients, "
        "and the batch endpoint",
    )
    parser.add_argument(
        "--clients", type=positive_int, default=50, help="concurrent HTTP clients (50)"
    )
    parser.add_argument(
        "--batch-size", type=positive_int, default=1000, help="jobs per HTTP batch (1000)"
    )
    parser.add_argument("--redis-url", help="an existing Redis to use (REDIS_URL is ignored)")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    return Options(**vars(parser.parse_args(argv)))


def main(argv: list[str] | None = None) -> int:
    """Run the bench: 0 when every job succeeded and the queue stream ended empty, else 1."""
    options = parse_args(argv)
    configure_logging(CoreSettings().log_level)
    try:
        with ExitStack() as stack:
            url = options.redis_url
            if url is None:
                # own process group: a Ctrl-C must not stop Redis while the workers still drain
                url = stack.enter_context(RedisServer(own_process_group=True)).url
                log.info("private redis-server", url=url)
            figures = loop.run(_bench(options, url))
    except (BenchError, HttpBenchError, RedisServerUnavailable, RedisError, OSError) as exc:
        log.error("bench failed", error=str(exc))
        return 1
    except KeyboardInterrupt:  # before the loop's own handlers were in place
        figures = None
    if figures is None:
        return 130  # interrupted; everything it started has been stopped
    print(orjson.dumps(dataclasses.asdict(figures)).decode() if options.json else _table(figures))
    return 0 if figures.ok else 1


async def _bench(options: Options, url: str) -> Figures | None:
    """The phases, with the workers stopped and the keys deleted whatever happens.

    SIGINT, SIGTERM and SIGHUP cancel the run (then ``None``); later signals wait for the cleanup.
    """
    task = asyncio.current_task()
    assert task is not None
    interrupted = False

    def on_signal() -> None:
        nonlocal interrupted
        if not interrupted:
            interrupted = True
            log.warning("interrupted: cleaning up", within_s=WORKER_STOP_S)
            task.cancel()

    event_loop = asyncio.get_running_loop()
    for sig in STOP_SIGNALS:
        event_loop.add_signal_handler(sig, on_signal)
    try:
        async with AsyncExitStack() as stack:
            prefix = f"{{bench-{os.urandom(4).hex()}}}"
            redis = connect(url)
            stack.push_async_callback(redis.aclose)
            if options.redis_url:
                stack.push_async_callback(_delete_prefix, redis, prefix)
            env = {**os.environ, "REDIS_URL": url, "KEY_PREFIX": prefix, "LOG_LEVEL": "warning"}
            command = worker_command(options.concurrency, QUEUE)
            workers = WorkerFleet(
                options.workers, command, env, stop_timeout_s=WORKER_STOP_S, restart=False
            )
            stack.push_async_callback(workers.stop)
            queue = Queue(redis, CoreSettings(redis_url=url, key_prefix=prefix))
            figures = await _phases(options, queue, workers)
            await workers.stop()
            if options.http:
                log.info("http", clients=options.clients, batch_size=options.batch_size)
                http = await run_http(
                    url, prefix, options.single_jobs, options.clients, options.batch_size
                )
                figures = dataclasses.replace(figures, http=http)
            return figures
    except asyncio.CancelledError:
        if not interrupted:
            raise
        task.uncancel()
        return None
    finally:
        for sig in STOP_SIGNALS:
            event_loop.remove_signal_handler(sig)


async def _phases(options: Options, queue: Queue, workers: WorkerFleet) -> Figures:
    redis, n = queue.redis, options.jobs
    memory_before = (await _info(redis, "memory"))["used_memory"]
    specs = [JobSpec(type="noop", queue=QUEUE) for _ in range(n)]
    log.info("enqueue", jobs=n)
    started = time.perf_counter()
    jobs = await queue.submit_many(specs)
    enqueue_s = time.perf_counter() - started

    log.info("process", workers=options.workers, concurrency=options.concurrency)
    await workers.start()
    await _wait_done(queue, workers, n, progress=True)
    memory_after = (await _info(redis, "memory"))["used_memory"]
    rows = await _read_jobs(queue, [job.id for job in jobs])
    first_start = min((float(r[2]) for r in rows if r[2]), default=0.0)
    last_finish = max((float(r[3]) for r in rows if r[3]), default=0.0)

    log.info("latency", jobs=options.latency_jobs)
    ids = []
    for _ in range(options.latency_jobs):
        ids.append((await queue.submit(JobSpec(type="noop", queue=QUEUE))).id)
        await asyncio.sleep(LATENCY_PACE_S)
    await _wait_done(queue, workers, len(ids), progress=False)
    latency_rows = await _read_jobs(queue, ids)
    latencies = sorted(float(r[3]) - float(r[1]) for r in latency_rows if r[1] and r[3])
    if not latencies:
        raise BenchError("no latency job has a finish time")
    awaited = await _awaited_calls(queue, options.single_jobs)

    return Figures(
        jobs=n,
        workers=options.workers,
        concurrency=options.concurrency,
        latency_jobs=options.latency_jobs,
        enqueue_per_s=round(n / enqueue_s, 1),
        process_per_s=round(n / max(last_finish - first_start, 1.0) * 1000, 1),
        latency_p50_ms=round(_percentile(latencies, 50), 3),
        latency_p99_ms=round(_percentile(latencies, 99), 3),
        latency_max_ms=round(latencies[-1], 3),
        single_submit_per_s=awaited.submit_per_s,
        ping_per_s=awaited.ping_per_s,
        xadd_per_s=awaited.xadd_per_s,
        redis_us_per_single_submit=awaited.redis_us_per_submit,
        script_us_per_single_submit=awaited.script_us_per_submit,
        redis_bytes_per_job=round((memory_after - memory_before) / n, 1),
        succeeded=sum(r[0] == JobStatus.SUCCEEDED for r in rows),
        latency_succeeded=sum(r[0] == JobStatus.SUCCEEDED for r in latency_rows),
        stream_len_after=int(await redis.xlen(queue.keys.queue(QUEUE))),
        redis_version=str((await _info(redis, "server"))["redis_version"]),
        redis="external" if options.redis_url else "private redis-server",
        key_prefix=queue.keys.prefix,
    )


ROUNDS = 5
"""Single submits, PINGs and bare XADDs take turns in this many rounds: the machine's pace swings
within minutes, and taking turns lets a swing weigh on all three alike."""


@dataclasses.dataclass(frozen=True, slots=True)
class Awaited:
    """Calls awaited one after another, per second, and what each submit cost Redis."""

    submit_per_s: float
    ping_per_s: float
    xadd_per_s: float
    redis_us_per_submit: float
    script_us_per_submit: float


async def _awaited_calls(queue: Queue, n: int) -> Awaited:
    """About ``n`` of each, in :data:`ROUNDS` turns: single submits; PINGs over a lane, as a lone
    script call travels (the round trip alone); bare XADDs through redis-py's own client to a
    stream under the bench's prefix, deleted afterwards."""
    log.info("awaited calls", each=n, rounds=ROUNDS)
    lane = Lane(queue.redis)
    stream = queue.keys.queue("bench-bare-xadd")
    calls: dict[str, Callable[[], Awaitable[object]]] = {
        "submit": lambda: queue.submit(JobSpec(type="noop", queue=SINGLE_QUEUE)),
        "ping": lambda: lane.call("PING"),
        "xadd": lambda: queue.redis.xadd(stream, {"j": "x"}),
    }
    per_round = max(1, n // ROUNDS)
    seconds = dict.fromkeys(calls, 0.0)
    submit_costs = [0.0, 0.0, 0.0]  # Redis CPU s, script calls, µs in scripts
    for _ in range(ROUNDS):
        for name, call in calls.items():
            before = await _redis_costs(queue.redis) if name == "submit" else None
            started = time.perf_counter()
            for _ in range(per_round):
                await call()
            seconds[name] += time.perf_counter() - started
            if before is not None:
                spent = zip(submit_costs, await _redis_costs(queue.redis), before, strict=True)
                submit_costs = [total + end - start for total, end, start in spent]
    await queue.redis.delete(stream)
    done = per_round * ROUNDS
    cpu_s, script_calls, script_usec = submit_costs
    return Awaited(
        submit_per_s=round(done / seconds["submit"], 1),
        ping_per_s=round(done / seconds["ping"], 1),
        xadd_per_s=round(done / seconds["xadd"], 1),
        redis_us_per_submit=round(cpu_s / done * 1e6, 1),
        script_us_per_submit=round(script_usec / max(1, script_calls), 1),
    )


async def _redis_costs(redis: Redis) -> tuple[float, float, float]:
    """The server's CPU seconds so far, its ``EVALSHA`` calls and the µs it spent running them."""
    cpu = await _info(redis, "cpu")
    stats = (await _info(redis, "commandstats")).get("cmdstat_evalsha", {})
    cpu_s = float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])
    return cpu_s, float(stats.get("calls", 0)), float(stats.get("usec", 0))


class Progress:
    """A progress bar whose clock starts when the first job finishes, not when the workers are
    launched: their start-up (a second or more) would otherwise halve the rate it shows."""

    def __init__(self, total: int, enabled: bool, file: TextIO = sys.stderr) -> None:
        self.total, self.enabled, self.file = total, enabled, file
        self.bar: tqdm[NoReturn] | None = None

    def show(self, done: int) -> None:
        if done == 0:
            return
        if self.bar is None:
            # disable=None: no bar when the output is not a terminal (CI logs, tests)
            disable = None if self.enabled else True
            self.bar = tqdm(
                total=self.total, initial=done, unit="job", file=self.file, disable=disable
            )
        else:
            self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


async def _wait_done(queue: Queue, workers: WorkerFleet, total: int, progress: bool) -> None:
    """Poll until nothing in the queue is waiting, running or scheduled; fail, rather than
    hang, when a worker exits or nothing finishes for ``STALL_S``."""
    done, last_progress = 0, time.monotonic()
    bar = Progress(total, progress)
    try:
        while True:
            (stats,) = await queue.stats([QUEUE])
            left = stats.waiting + stats.running + stats.scheduled
            if total - left > done:
                done, last_progress = total - left, time.monotonic()
                bar.show(done)
            if left == 0:
                return
            if workers.failed.is_set():
                raise BenchError(f"worker processes exited early: {workers.failure}")
            if time.monotonic() - last_progress > STALL_S:
                raise BenchError(f"no job finished for {STALL_S:.0f} s; {left} left")
            await asyncio.sleep(POLL_S)
    finally:
        bar.close()


async def _read_jobs(queue: Queue, ids: list[str]) -> list[list[str | None]]:
    """``FIELDS`` of each job, pipelined in chunks."""
    rows: list[list[str | None]] = []
    for start in range(0, len(ids), READ_CHUNK):
        async with queue.redis.pipeline(transaction=False) as pipe:
            for job_id in ids[start : start + READ_CHUNK]:
                pipe.hmget(queue.keys.job(job_id), FIELDS)
            rows.extend(await pipe.execute())
    return rows


async def _info(redis: Redis, section: str) -> dict[str, Any]:
    info: dict[str, Any] = await redis.info(section)
    return info


def _percentile(ordered: list[float], pct: float) -> float:
    """Nearest rank: always a latency that was measured."""
    return ordered[max(1, math.ceil(pct / 100 * len(ordered))) - 1]


async def _delete_prefix(redis: Redis, prefix: str) -> None:
    """Leave a shared Redis as it was: every key under the bench's prefix goes."""
    batch: list[str] = []
    deleted = 0
    async for key in redis.scan_iter(match=f"{prefix}*", count=1000):
        batch.append(key)
        if len(batch) >= READ_CHUNK:
            deleted += await redis.unlink(*batch)
            batch = []
    if batch:
        deleted += await redis.unlink(*batch)
    log.info("bench keys deleted", prefix=prefix, keys=deleted)


def _table(f: Figures) -> str:
    rows = [
        ("jobs", f"{f.jobs} noop; {f.workers} worker(s) x {f.concurrency} concurrency"),
        ("enqueue", f"{f.enqueue_per_s:,.0f} jobs/s  (submit_many, no workers running)"),
        ("process", f"{f.process_per_s:,.0f} jobs/s  (first start to last finish)"),
        ("latency p50", f"{f.latency_p50_ms:.2f} ms  ({f.latency_jobs} jobs, one at a time)"),
        ("latency p99", f"{f.latency_p99_ms:.2f} ms"),
        ("latency max", f"{f.latency_max_ms:.2f} ms"),
        ("single submit", f"{f.single_submit_per_s:,.0f} jobs/s  (one awaited call after another)"),
        ("round trip", f"{f.ping_per_s:,.0f} PINGs/s  (the same way: the single submit's ceiling)"),
        ("bare XADD", f"{f.xadd_per_s:,.0f} /s  (redis-py, awaited: no record, event or limit)"),
        (
            "redis cpu",
            f"{f.redis_us_per_single_submit:.0f} µs per single submit  "
            f"({f.script_us_per_single_submit:.0f} µs in the script)",
        ),
        ("redis memory", f"{f.redis_bytes_per_job:,.0f} bytes per finished job"),
        ("succeeded", f"{f.succeeded} / {f.jobs}  (latency jobs: {f.latency_succeeded})"),
        ("stream after", f"{f.stream_len_after} entries"),
        ("result", "OK" if f.ok else "FAILED"),
    ]
    if (h := f.http) is not None:
        rows[-1:-1] = [
            (
                "http single",
                f"{h.single_per_s:,.0f} jobs/s  ({h.clients} keep-alive clients; "
                f"p50 {h.single_p50_ms:.1f} ms, p99 {h.single_p99_ms:.1f} ms)",
            ),
            (
                "http batch",
                f"{h.batch_per_s:,.0f} jobs/s  ({h.batch_size} per request, {h.batch_clients} "
                f"clients; p50 {h.batch_p50_ms:.1f} ms, p99 {h.batch_p99_ms:.1f} ms)",
            ),
        ]
    head = f"Tide bench: Redis {f.redis_version} ({f.redis}, key prefix {f.key_prefix})"
    return "\n".join([head, *(f"  {name:<14}{value}" for name, value in rows)])

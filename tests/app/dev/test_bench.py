"""``tide bench`` end to end on the session's redis-server: real worker processes, one JSON report,
and no key of its own left behind in a Redis it did not start."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time
from typing import Any

import pytest
from redis import Redis

from app.dev.bench import Progress
from app.dev.redis_server import RedisServer

FIGURES = (
    "enqueue_per_s",
    "single_submit_per_s",
    "ping_per_s",
    "xadd_per_s",
    "redis_us_per_single_submit",
    "script_us_per_single_submit",
    "process_per_s",
    "latency_p50_ms",
    "latency_p99_ms",
    "latency_max_ms",
    "redis_bytes_per_job",
)


def report_of(module: str, *args: str) -> dict[str, Any]:
    """Runs ``python -m module args`` to the end: it succeeds, and its whole stdout is one JSON
    object, the report."""
    proc = subprocess.run(
        [sys.executable, "-m", module, *args],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    report: dict[str, Any] = json.loads(proc.stdout)
    return report


@pytest.mark.redis
def test_bench_reports_and_cleans_up(redis_server: RedisServer) -> None:
    args = ["--jobs", "300", "--latency-jobs", "20", "--json", "--redis-url", redis_server.url]
    report = report_of("app", "bench", *args)
    assert (report["jobs"], report["workers"], report["concurrency"]) == (300, 1, 200)
    for name in FIGURES:
        assert isinstance(report[name], int | float), name
        assert report[name] > 0, name
    assert report["latency_p50_ms"] <= report["latency_p99_ms"] <= report["latency_max_ms"]
    assert report["succeeded"] == 300
    assert report["latency_succeeded"] == 20
    assert report["stream_len_after"] == 0
    assert report["redis_version"]
    assert report["key_prefix"].startswith("{bench-")

    with Redis.from_url(redis_server.url, decode_responses=True) as client:
        assert list(client.scan_iter(match=report["key_prefix"] + "*")) == []


@pytest.mark.redis
def test_bench_http_loads_an_api_process_with_single_submits_and_batches(
    redis_server: RedisServer,
) -> None:
    args = ["--jobs", "50", "--latency-jobs", "5", "--single-jobs", "200", "--json", "--http"]
    args += ["--clients", "8", "--batch-size", "20", "--redis-url", redis_server.url]
    http = report_of("app", "bench", *args)["http"]
    assert (http["clients"], http["single_jobs"], http["batch_size"]) == (8, 200, 20)
    assert http["batch_jobs"] >= 200
    for name in ("single_per_s", "batch_per_s", "single_p99_ms", "batch_p99_ms"):
        assert http[name] > 0, name
    assert http["single_p50_ms"] <= http["single_p99_ms"]


class Terminal(io.StringIO):
    """What the bar writes to, passing for a terminal (the bar stays off elsewhere)."""

    def isatty(self) -> bool:
        return True


def test_the_progress_clock_starts_when_the_first_job_finishes() -> None:
    """Worker start-up before the first finished job is not counted in the bar's rate."""
    out = Terminal()
    progress = Progress(total=100, enabled=True, file=out)
    progress.show(0)  # workers still starting: no bar, no clock
    time.sleep(0.3)
    progress.show(10)
    progress.show(60)
    assert progress.bar is not None
    assert progress.bar.n == 60
    assert progress.bar.format_dict["elapsed"] < 0.25
    progress.close()
    assert "60/100" in out.getvalue()


@pytest.mark.redis
@pytest.mark.usefixtures("redis_server")  # its skip (or CI failure) without redis-server
def test_bench_live_delivers_every_change_to_every_socket() -> None:
    """The live bench (its own redis-server and API): a small load, every delivery accounted."""
    args = ["--subscribers", "20", "--rate", "100", "--seconds", "1", "--batch"]
    report = report_of("app.dev.bench_live", *args)
    assert (report["subscribers"], report["batch"]) == (20, True)
    assert report["submitted"] == 100
    assert report["deliveries"] == report["expected"] == 20 * 100
    assert 0 < report["p50_ms"] <= report["p99_ms"] <= report["max_ms"]
    assert report["api_rss_mb_idle"] > 0

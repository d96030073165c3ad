"""The simulator: the service's policy against arrivals, its report, its trace reader and PNG."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from scaler.policy import PolicyConfig, parse_steps
from scaler.settings import DEFAULT_STEPS
from scaler.simulate import Model, pattern, read_trace, simulate

CONFIG = PolicyConfig(steps=parse_steps(DEFAULT_STEPS), min_workers=0, max_workers=5)


@pytest.mark.parametrize("name", ["burst", "sawtooth", "diurnal"])
def test_every_pattern_is_served_within_the_worker_limits(name: str) -> None:
    run = simulate(pattern(name, 1800), CONFIG, Model())
    report = run.report()
    assert report["unfinished"] == 0
    assert report["jobs"] == len(run.waits) > 0
    assert max(run.desired) <= 5
    assert report["worker_minutes"] > 0
    assert 0 <= report["wait_p50_s"] <= report["wait_p95_s"] <= report["wait_max_s"]
    assert run.desired[-1] == 0  # the calm after the run shrinks the fleet to nothing


def test_a_burst_scales_up_once_and_down_in_steps_not_a_flap() -> None:
    run = simulate([0.0] * 10 + [300.0] + [0.0] * 600, CONFIG, Model(drain_s=0))
    assert max(run.desired) == 5
    changes = [b for a, b in zip(run.desired, run.desired[1:], strict=False) if a != b]
    assert changes[0] == 5
    assert changes == sorted(changes, reverse=True)  # after the peak, only ever down


def test_a_slower_worker_start_makes_jobs_wait_longer() -> None:
    arrivals = pattern("burst", 1200)
    fast = simulate(arrivals, CONFIG, Model(startup_s=0)).report()
    slow = simulate(arrivals, CONFIG, Model(startup_s=60)).report()
    assert slow["wait_p95_s"] > fast["wait_p95_s"]


def test_a_trace_is_seconds_and_job_counts_with_an_optional_header(tmp_path: Path) -> None:
    trace = tmp_path / "trace.csv"
    trace.write_text("second,jobs\n0,2\n3,1\n3,4\n")
    assert read_trace(trace) == [2.0, 0.0, 0.0, 5.0]
    trace.write_text("0,2\n1,many\n")
    with pytest.raises(ValueError, match=r"trace\.csv:2: expected SECOND,JOBS"):
        read_trace(trace)


def test_the_command_prints_its_report_and_draws_a_png(tmp_path: Path) -> None:
    trace = tmp_path / "trace.csv"
    trace.write_text("second,jobs\n" + "".join(f"{t},{t % 7}\n" for t in range(0, 600, 5)))
    out = tmp_path / "plot.png"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "app",
            "scaler",
            "simulate",
            "--trace",
            str(trace),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    for name in ("worker_minutes", "scale_events", "wait_p50_s", "wait_p95_s", "wait_max_s"):
        assert f"{name}: " in proc.stdout
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_missing_trace_is_one_line_and_exit_2(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "scaler", "simulate", "--trace", str(tmp_path / "none.csv")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "none.csv" in proc.stderr

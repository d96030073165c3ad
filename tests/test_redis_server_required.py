"""Without ``redis-server`` on PATH, integration tests fail under CI and skip elsewhere."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
A_REAL_REDIS_TEST = "tests/workers/test_worker.py::test_jobs_run_once_and_record_their_results"


def run_without_redis_server(ci: bool) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["PATH"] = str(Path(sys.executable).parent)  # python, but no redis-server
    if ci:
        env["CI"] = "true"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rs", A_REAL_REDIS_TEST],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.skipif(
    (Path(sys.executable).parent / "redis-server").exists(), reason="redis-server beside python"
)
@pytest.mark.parametrize("ci", [True, False])
def test_missing_redis_server_fails_under_ci_and_skips_elsewhere(ci: bool) -> None:
    result = run_without_redis_server(ci)
    output = result.stdout + result.stderr
    assert "integration tests need redis-server" in output
    if ci:
        assert result.returncode == 1
        assert "1 error" in output
    else:
        assert result.returncode == 0
        assert "1 skipped" in output

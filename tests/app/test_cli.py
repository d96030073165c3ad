"""The ``tide`` command line, and ``tide dev`` run as a real process: it starts, answers, and
stops cleanly on SIGINT, leaving nothing running."""

from __future__ import annotations

import asyncio
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from app import cli
from app.dev.redis_server import RedisServer
from tests.helpers import START_TIMEOUT_S, DevProcess, dev_env, key


def test_help_lists_every_subcommand_with_a_description(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    for command in ("api", "worker", "dev", "bench"):
        assert re.search(rf"^\s+{command}\s+\w+", out, re.MULTILINE), out


def test_python_dash_m_app_is_the_same_command() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "app", "--help"], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    assert "dev" in done.stdout
    assert "worker" in done.stdout


def test_no_subcommand_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main([])
    assert exited.value.code == 2
    assert "usage: tide" in capsys.readouterr().err


def test_a_delegated_command_that_is_missing_says_so(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(cli.DELEGATED, "bench", ("app.no_such_module", "missing"))
    assert cli.main(["bench", "--anything"]) == 2
    assert "app.no_such_module" in capsys.readouterr().err


def test_delegated_commands_get_their_arguments_untouched(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[list[str]] = []
    module = type(sys)("tests_fake_worker_main")
    module.main = lambda argv: seen.append(argv) or 3  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "tests_fake_worker_main", module)
    monkeypatch.setitem(cli.DELEGATED, "worker", ("tests_fake_worker_main", "fake"))
    assert cli.main(["worker", "--tasks", "m", "--help"]) == 3
    assert seen == [["--tasks", "m", "--help"]]


# -- tide dev as a process ----------------------------------------------------------------------


@pytest.fixture
def dev(tmp_path: Path) -> Iterator[list[DevProcess]]:
    started: list[DevProcess] = []
    yield started
    for process in started:
        process.kill()


def port_is_closed(url: str) -> bool:
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return True
    return False


@pytest.mark.redis
async def test_dev_starts_answers_and_stops_cleanly_on_sigint(
    redis_server: RedisServer, tmp_path: Path, dev: list[DevProcess]
) -> None:
    process = DevProcess(tmp_path, ["--workers", "0"], dev_env(REDIS_URL=redis_server.url))
    dev.append(process)
    await process.wait_healthy()
    assert await process.interrupt() == 0, process.output()
    out = process.out_path.read_text()
    assert process.base in out
    assert "curl" in out
    assert "(REDIS_URL)" in out


@pytest.mark.redis
async def test_dev_starts_its_own_redis_server_and_stops_it(
    redis_server: RedisServer, tmp_path: Path, dev: list[DevProcess]
) -> None:
    """Without REDIS_URL, ``tide dev`` runs a private redis-server: gone after exit."""
    process = DevProcess(tmp_path, ["--workers", "0"], dev_env())
    dev.append(process)
    await process.wait_healthy()
    found = re.search(r"Redis:\s+(redis://\S+)\s+\(private redis-server\)", process.output())
    assert found, process.output()
    assert not port_is_closed(found[1])
    assert await process.interrupt() == 0, process.output()
    assert port_is_closed(found[1])


async def test_dev_falls_back_to_embedded_fakeredis_with_demo(
    tmp_path: Path, dev: list[DevProcess]
) -> None:
    """No REDIS_URL and no redis-server on PATH: the embedded server, loudly, still works."""
    env = dev_env(PATH=str(Path(sys.executable).parent))
    process = DevProcess(tmp_path, ["--workers", "0", "--demo"], env)
    dev.append(process)
    await process.wait_healthy()
    async with (
        aiohttp.ClientSession(headers=key(await process.admin_key())) as session,
        session.post(f"{process.base}/v1/jobs", json={"type": "echo"}) as response,
    ):
        assert response.status == 201
    assert await process.interrupt() == 0, process.output()
    assert "NO REAL REDIS" in process.output()


@pytest.mark.redis
async def test_dev_runs_jobs_on_its_workers_and_stops_them(
    redis_server: RedisServer, tmp_path: Path, dev: list[DevProcess]
) -> None:
    env = dev_env(REDIS_URL=redis_server.url, KEY_PREFIX="{tide-dev-test}")
    process = DevProcess(tmp_path, ["--workers", "1", "--concurrency", "2"], env)
    dev.append(process)
    await process.wait_healthy()
    async with aiohttp.ClientSession(headers=key(await process.admin_key())) as session:
        body = {"type": "echo", "payload": {"hi": 1}}
        async with session.post(f"{process.base}/v1/jobs", json=body) as response:
            job = await response.json()
        deadline = time.monotonic() + START_TIMEOUT_S
        while job["status"] != "succeeded" and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
            async with session.get(f"{process.base}/v1/jobs/{job['id']}") as response:
                job = await response.json()
    assert job["status"] == "succeeded", process.output()
    assert job["result"] == {"hi": 1}
    assert await process.interrupt() == 0, process.output()
    assert '"fleet.stopped"' in process.output()


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["worker", "--help"], ["[WORKER_CONCURRENCY; default: 5]", "[QUEUES; default: default]"]),
        (["api", "--help"], ["[PORT; default: 8000]", "[HOST; default: 0.0.0.0]"]),
        (
            ["dev", "--help"],
            [
                "[WORKER_CONCURRENCY; default: 5]",
                "[TASKS_MODULE;",
                "[MIN_WORKERS; default: 1]",
                "[MAX_WORKERS; default: 5]",
            ],
        ),
    ],
)
def test_help_shows_each_flags_setting_and_default(
    argv: list[str], expected: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(argv)
    assert exited.value.code == 0
    out = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    for text in expected:
        assert text in out


def test_dev_refuses_a_fixed_fleet_with_scaler_bounds(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["dev", "--workers", "2", "--max-workers", "4"])
    assert exited.value.code == 2
    assert "--workers (a fixed fleet) goes without --min-workers/--max-workers" in (
        capsys.readouterr().err
    )

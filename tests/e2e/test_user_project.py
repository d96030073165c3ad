"""What a new user does in the first ten minutes, with real processes run from their own project
directory (no PYTHONPATH): ``tide worker --tasks``, ``tide dev --tasks``, and the mistakes that
must end in one clear line and exit code 2."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest
from redis.asyncio import Redis

from app.core.models import JobSpec, JobStatus
from app.core.queue import Queue
from app.core.settings import CoreSettings
from app.dev.redis_server import RedisServer
from tests.helpers import TIDE, DevProcess, clean_env, dev_env, wait_terminal

pytestmark = pytest.mark.redis

USER_TASKS = """
from tide import Context, task


@task
async def greet(ctx: Context, payload: dict) -> str:
    return f"hello {payload['name']}"
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A user's project directory with its tasks in ``mytasks.py``."""
    root = tmp_path / "project"
    root.mkdir()
    (root / "mytasks.py").write_text(USER_TASKS)
    return root


def run_tide(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [TIDE, *args], cwd=cwd, env=clean_env(**env), capture_output=True, text=True, timeout=30
    )


def start_tide(
    args: list[str], cwd: Path, env: dict[str, str], log: Path
) -> subprocess.Popen[bytes]:
    with log.open("wb") as err:
        return subprocess.Popen(
            [TIDE, *args], cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=err
        )


def assert_one_line_exit_2(done: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    for needle in needles:
        assert needle in lines[0]


async def test_a_worker_run_from_the_project_directory_imports_its_tasks(
    project: Path, redis_server: RedisServer, real_redis: Redis, tmp_path: Path
) -> None:
    queue = Queue(real_redis, CoreSettings(redis_url=redis_server.url))
    job = await queue.submit(JobSpec(type="greet", payload={"name": "ada"}))
    env = clean_env(REDIS_URL=redis_server.url, SHUTDOWN_GRACE_S="1")
    log = tmp_path / "worker.err"
    worker = start_tide(["worker", "--tasks", "mytasks", "--concurrency", "2"], project, env, log)
    try:
        (done,) = await wait_terminal(queue, [job.id])
        assert done.status is JobStatus.SUCCEEDED, log.read_text()
        assert done.result == "hello ada"
    finally:
        worker.kill()
        worker.wait()


@pytest.mark.parametrize("clash", ["app", "workers", "tide"])
def test_a_project_package_named_like_tides_own_is_one_line(project: Path, clash: str) -> None:
    (project / clash).mkdir()
    (project / clash / "__init__.py").write_text("")
    done = run_tide(["worker", "--tasks", "mytasks"], project)
    assert_one_line_exit_2(done, f"{clash!r}", "rename")


@pytest.mark.parametrize(
    ("source", "needle"),
    [
        ("import not_installed_anywhere\n", "No module named 'not_installed_anywhere'"),
        ("x = (\n", "SyntaxError"),
        (USER_TASKS + "\n@task(name='greet')\nasync def again(ctx, payload): ...\n", "'greet'"),
    ],
    ids=["missing-import", "syntax-error", "registered-twice"],
)
def test_a_tasks_module_that_cannot_load_is_one_line(
    project: Path, source: str, needle: str
) -> None:
    (project / "broken.py").write_text(source)
    done = run_tide(["worker", "--tasks", "broken"], project)
    assert_one_line_exit_2(done, "broken", needle)


def test_a_tasks_module_that_does_not_exist_is_one_line(project: Path) -> None:
    done = run_tide(["worker", "--tasks", "nosuch"], project)
    assert_one_line_exit_2(done, "'nosuch'", str(project))


@pytest.mark.parametrize(
    ("args", "env", "needle"),
    [
        (["worker"], {"LOG_LEVEL": "verbose"}, "LOG_LEVEL='verbose'"),
        (["worker"], {"RESULT_TTL_S": "abc"}, "RESULT_TTL_S='abc'"),
        (["worker", "--queues", ","], {}, "QUEUES=','"),
        (["worker"], {"WORKER_CONCURRENCY": "0"}, "WORKER_CONCURRENCY"),
        (["api"], {"LOG_LEVEL": "verbose"}, "LOG_LEVEL='verbose'"),
        (["api"], {"PORT": "99999"}, "PORT='99999'"),
        (["dev"], {"LOG_LEVEL": "verbose"}, "LOG_LEVEL='verbose'"),
        (["dev", "--queues", " , "], {}, "QUEUES"),
        (["worker"], {"REDIS_URL": "no-scheme-host:1"}, "REDIS_URL='no-scheme-host:1'"),
        (["api"], {"REDIS_URL": "no-scheme-host:1"}, "REDIS_URL='no-scheme-host:1'"),
        (["dev"], {"REDIS_URL": "no-scheme-host:1"}, "REDIS_URL='no-scheme-host:1'"),
    ],
)
def test_bad_settings_are_one_line_and_exit_2(
    project: Path, args: list[str], env: dict[str, str], needle: str
) -> None:
    assert_one_line_exit_2(run_tide(args, project, **env), needle)


def test_a_bad_flag_is_a_usage_error_without_a_traceback(project: Path) -> None:
    done = run_tide(["worker", "--concurrency", "0"], project)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "--concurrency: must be at least 1" in done.stderr


@pytest.mark.parametrize("command", ["api", "dev"])
def test_a_port_in_use_is_one_line(project: Path, redis_server: RedisServer, command: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        args = [command, "--port", str(port)] + (
            ["--host", "127.0.0.1"] if command == "api" else []
        )
        done = run_tide(args, project, REDIS_URL=redis_server.url)
    assert_one_line_exit_2(done, f"127.0.0.1:{port}")


async def test_dev_runs_the_projects_tasks(
    project: Path, redis_server: RedisServer, real_redis: Redis, tmp_path: Path
) -> None:
    env = dev_env(REDIS_URL=redis_server.url, WORKER_CONCURRENCY="2")
    dev = DevProcess(tmp_path, ["--workers", "1", "--tasks", "mytasks"], env, cwd=project)
    try:
        await dev.wait_healthy()
        assert "1 x 2 jobs" in dev.output()
        queue = Queue(real_redis, CoreSettings(redis_url=redis_server.url))
        job = await queue.submit(JobSpec(type="greet", payload={"name": "dev"}))
        (done,) = await wait_terminal(queue, [job.id])
        assert done.result == "hello dev", dev.output()
        assert await dev.interrupt() == 0, dev.output()
    finally:
        dev.kill()

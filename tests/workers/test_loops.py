"""The one outage policy every worker loop runs under (no Redis needed)."""

from __future__ import annotations

import asyncio

import pytest
import structlog
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from structlog.testing import capture_logs

from workers.loops import Backoff, LoopRunner


def test_backoff_doubles_from_a_tenth_of_a_second_up_to_five() -> None:
    backoff = Backoff()
    assert [backoff.next() for _ in range(8)] == [0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0]
    backoff.reset()
    assert backoff.next() == 0.1


@pytest.mark.parametrize(
    ("error", "event", "level"),
    [
        (RedisConnectionError("gone"), "redis.unreachable", "warning"),
        (ResponseError("OOM command not allowed"), "worker.loop_error", "error"),
        (
            ResponseError("READONLY You can't write against a read only replica"),
            "worker.loop_error",
            "error",
        ),
        (KeyError("a bug"), "worker.loop_error", "error"),
    ],
)
async def test_a_failing_step_is_logged_waited_out_and_the_loop_goes_on(
    error: Exception, event: str, level: str
) -> None:
    calls = 0
    until = asyncio.Event()

    async def step() -> float:
        nonlocal calls
        calls += 1
        if calls <= 2:
            raise error
        until.set()
        return 0.0

    async def no_groups() -> None:
        raise AssertionError("not a missing group")

    with capture_logs() as logs:
        await asyncio.wait_for(
            LoopRunner(structlog.get_logger("test"), no_groups).loop("test", step, 0.0, until), 5
        )
    assert calls == 3
    failures = [(e["event"], e["log_level"], e["retry_in_s"]) for e in logs]
    assert failures == [(event, level, 0.1), (event, level, 0.2)]


async def test_a_missing_group_is_recreated_and_the_step_runs_again_at_once() -> None:
    recreated = 0
    calls = 0
    until = asyncio.Event()

    async def step() -> None:
        nonlocal calls
        calls += 1
        if recreated == 0:
            raise ResponseError("NOGROUP No such key or consumer group")
        until.set()

    async def recreate() -> None:
        nonlocal recreated
        recreated += 1

    with capture_logs() as logs:
        await asyncio.wait_for(
            LoopRunner(structlog.get_logger("test"), recreate).loop("test", step, 60.0, until), 5
        )
    assert (recreated, calls) == (1, 2)
    assert [e["event"] for e in logs] == ["redis.group_missing"]


async def test_until_ok_stops_retrying_when_asked_to_stop() -> None:
    stop = asyncio.Event()

    async def step() -> None:
        stop.set()
        raise RedisConnectionError("gone")

    async def no_groups() -> None:
        return None

    runner = LoopRunner(structlog.get_logger("test"), no_groups)
    assert await asyncio.wait_for(runner.until_ok("setup", step, stop), 5) is False

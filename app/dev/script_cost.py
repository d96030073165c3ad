"""``python -m app.dev.script_cost``: the instructions Redis runs per single submit, per job of a
batch, and per request of an API group commit, counted by valgrind's callgrind on a private
redis-server.

Timings on a shared or virtual machine swing by half within minutes; an instruction count does
not, so a change to a script, or to what the client sends it, is compared by this count. Each
figure is all the server's work for the calls, reading the requests and writing the replies
included, counted from after a warm-up to the last reply (``callgrind_control``).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import orjson
from redis.asyncio import Redis

from app.core.models import JobSpec
from app.core.queue import Queue
from app.core.redis_client import connect
from app.core.settings import CoreSettings
from app.core.tenants import Limits, SubmitRequest
from app.dev.redis_server import RedisServer
from app.process.startup import positive_int

QUEUE = "script-cost"
WARM_UP = 100
"""Single submits before counting: the scripts are loaded and the server's tables have grown."""
DUMP_WAIT_S = 30.0
TENANT = "script-cost"
LIMITS = Limits(rpm=10**9, max_active=10**9)
"""Limits that admit everything but are still checked, as every API request's are."""


class ScriptCostError(RuntimeError):
    """valgrind is missing, or callgrind wrote no count."""


@dataclasses.dataclass(frozen=True, slots=True)
class Costs:
    """Instructions the server ran, per awaited single submit, per job of a batch, and per
    request of a group commit (one job each, the tenant's limits checked against a full minute)."""

    single_submit: int
    batch_job: int
    batch_size: int
    grouped_request: int
    group_size: int


async def measure(singles: int, batches: int, batch_size: int, group_size: int) -> Costs:
    valgrind = shutil.which("valgrind")
    control = shutil.which("callgrind_control")
    if valgrind is None or control is None:
        raise ScriptCostError("valgrind was not found on PATH (Debian: apt-get install valgrind)")
    with tempfile.TemporaryDirectory(prefix="tide-callgrind-") as out:
        wrapper = [valgrind, "--tool=callgrind", f"--callgrind-out-file={out}/cg.%p"]
        with RedisServer(wrapper=wrapper) as server:
            assert server.proc is not None
            counter = _Counter(control, server.proc.pid, Path(out))
            redis = connect(server.url, socket_timeout_s=60.0)
            queue = Queue(redis, CoreSettings())
            spec = JobSpec(type="noop", queue=QUEUE)
            tenant_spec = JobSpec(type="noop", queue=QUEUE, tenant=TENANT)
            try:
                for _ in range(WARM_UP):
                    await queue.submit(spec)

                async def single() -> object:
                    return await queue.submit(spec)

                async def batch() -> object:
                    return await queue.submit_many([spec] * batch_size)

                grouped = [SubmitRequest([tenant_spec], LIMITS)] * group_size

                async def group() -> object:
                    return await queue.admit_many(grouped)

                single_total = await counter.count(single, singles)
                batch_total = await counter.count(batch, batches)
                await _fill_minute(redis, queue.keys.tenant_rpm(TENANT))
                group_total = await counter.count(group, batches)
            finally:
                await redis.aclose()
    return Costs(
        single_submit=round(single_total / singles),
        batch_job=round(batch_total / (batches * batch_size)),
        batch_size=batch_size,
        grouped_request=round(group_total / (batches * group_size)),
        group_size=group_size,
    )


async def _fill_minute(redis: Redis, key: str) -> None:
    """A submission in each second of the tenant's rolling minute, as under steady load."""
    seconds, _ = await redis.time()
    await redis.hset(key, mapping={str(seconds - ago): 1 for ago in range(60)})


class _Counter:
    """Zeroes the server's count, runs the calls, and reads the count back from a dump."""

    def __init__(self, control: str, pid: int, out: Path) -> None:
        self.control, self.pid, self.out = control, pid, out
        self.dumps = 0

    async def count(self, call: Callable[[], Awaitable[object]], times: int) -> int:
        await self._control("-z")
        for _ in range(times):
            await call()
        await self._control("-d")
        self.dumps += 1
        return await self._read(self.out / f"cg.{self.pid}.{self.dumps}")

    async def _control(self, option: str) -> None:
        proc = await asyncio.create_subprocess_exec(
            self.control,
            option,
            str(self.pid),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        if await proc.wait() != 0:
            raise ScriptCostError(f"callgrind_control {option} failed ({proc.returncode})")

    async def _read(self, dump: Path) -> int:
        deadline = time.monotonic() + DUMP_WAIT_S
        while time.monotonic() < deadline:
            total = await asyncio.to_thread(_total, dump)
            if total is not None:
                return total
            await asyncio.sleep(0.1)
        raise ScriptCostError(f"callgrind wrote no count to {dump}")


def _total(dump: Path) -> int | None:
    """The dump's total, once callgrind has written it whole (it is the last line)."""
    if dump.exists():
        for line in dump.read_text().splitlines():
            if line.startswith("totals:"):
                return int(line.split()[1])
    return None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m app.dev.script_cost", description=__doc__)
    parser.add_argument("--singles", type=positive_int, default=1000, help="single submits (1000)")
    parser.add_argument("--batches", type=positive_int, default=20, help="submit_many calls (20)")
    parser.add_argument("--batch-size", type=positive_int, default=100, help="jobs a batch (100)")
    parser.add_argument("--group-size", type=positive_int, default=20, help="requests a group (20)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    try:
        costs = asyncio.run(measure(args.singles, args.batches, args.batch_size, args.group_size))
    except ScriptCostError as exc:
        sys.exit(f"script_cost: {exc}")
    if args.json:
        print(orjson.dumps(dataclasses.asdict(costs)).decode())
    else:
        print(f"single submit  {costs.single_submit:,} instructions")
        print(f"batch job      {costs.batch_job:,} instructions ({costs.batch_size} a batch)")
        print(
            f"group request  {costs.grouped_request:,} instructions"
            f" ({costs.group_size} a group commit, the tenant's limits checked)"
        )


if __name__ == "__main__":
    main()

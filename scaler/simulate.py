"""``tide scaler simulate``: the scaler's own policy replayed against an arrival trace.

A second-by-second model: jobs arrive (a CSV trace or a built-in pattern), ready workers run
``concurrency`` jobs of ``job_s`` seconds each, a new worker needs ``startup_s`` before it takes
work, a removed one finishes what it runs. Every poll interval the same :func:`decide` the
service calls picks the worker count. The report says what that costs (worker-minutes) and what
it buys (queue waits); the plot shows depth, desired and ready workers over time.
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from scaler.policy import PolicyConfig, PolicyState, Signals, decide
from scaler.settings import ScalerSettings, settings_error

PATTERNS = ("burst", "sawtooth", "diurnal")


def pattern(name: str, duration_s: int) -> list[float]:
    """Arrivals per second of a built-in pattern (deterministic, so runs compare)."""
    rates: list[float] = []
    for t in range(duration_s):
        if name == "burst":  # a trickle, and two bursts of 300 jobs
            rate = 0.05 + (300.0 if t in (60, duration_s // 2) else 0.0)
        elif name == "sawtooth":  # ramps from 0 to 2 jobs/s over five minutes, then drops
            rate = 2.0 * (t % 300) / 300
        else:  # diurnal: a day compressed into the run, quiet nights and a busy afternoon
            rate = 0.05 + 1.5 * (1 - math.cos(2 * math.pi * t / duration_s)) / 2
        rates.append(rate)
    return rates


def read_trace(path: Path) -> list[float]:
    """A CSV of ``second,jobs`` rows (a header row is allowed) as arrivals per second."""
    counts: dict[int, float] = {}
    with path.open(newline="") as file:
        for line, row in enumerate(csv.reader(file), 1):
            if not row or row[0].strip().startswith("#"):
                continue
            try:
                second, jobs = int(float(row[0])), float(row[1]) if len(row) > 1 else 1.0
            except ValueError:
                if line == 1:
                    continue  # a header
                raise ValueError(f"{path}:{line}: expected SECOND,JOBS, got {row}") from None
            if second < 0 or jobs < 0:
                raise ValueError(f"{path}:{line}: seconds and jobs must be >= 0")
            counts[second] = counts.get(second, 0.0) + jobs
    if not counts:
        raise ValueError(f"{path}: no arrivals")
    return [counts.get(t, 0.0) for t in range(max(counts) + 1)]


@dataclass(frozen=True, slots=True)
class Model:
    concurrency: int = 4
    job_s: float = 5.0
    startup_s: float = 20.0
    poll_s: float = 10.0
    drain_s: float = 600.0
    """After the trace ends, how long the run goes on so the queue can empty."""


@dataclass
class _Worker:
    ready_at: float
    busy_until: list[float] = field(default_factory=list)


@dataclass
class Run:
    times: list[int] = field(default_factory=list)
    depth: list[int] = field(default_factory=list)
    desired: list[int] = field(default_factory=list)
    ready: list[int] = field(default_factory=list)
    waits: list[float] = field(default_factory=list)
    worker_seconds: float = 0.0
    scale_events: int = 0
    unfinished: int = 0

    def report(self) -> dict[str, float | int]:
        waits = sorted(self.waits)
        return {
            "jobs": len(waits) + self.unfinished,
            "unfinished": self.unfinished,
            "worker_minutes": round(self.worker_seconds / 60, 1),
            "scale_events": self.scale_events,
            "wait_p50_s": _percentile(waits, 50),
            "wait_p95_s": _percentile(waits, 95),
            "wait_max_s": waits[-1] if waits else 0.0,
        }


def _percentile(ordered: list[float], q: int) -> float:
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1)]


def simulate(arrivals: list[float], config: PolicyConfig, model: Model) -> Run:
    """Run the policy against ``arrivals`` (jobs per second) and record what happens."""
    run, state = Run(), PolicyState()
    queue: deque[float] = deque()
    workers: list[_Worker] = []
    draining: list[_Worker] = []
    carried = 0.0
    next_poll = 0.0
    for t in range(len(arrivals) + int(model.drain_s)):
        carried += arrivals[t] if t < len(arrivals) else 0.0
        while carried >= 1:
            queue.append(float(t))
            carried -= 1
        for worker in workers + draining:
            worker.busy_until = [end for end in worker.busy_until if end > t]
        draining = [w for w in draining if w.busy_until]
        for worker in workers:
            while worker.ready_at <= t and queue and len(worker.busy_until) < model.concurrency:
                run.waits.append(t - queue.popleft())
                worker.busy_until.append(t + model.job_s)
        running = sum(len(w.busy_until) for w in workers + draining)
        if t >= next_poll:
            next_poll += model.poll_s
            signals = Signals(waiting=len(queue), running=running, current=len(workers))
            decision, state = decide(signals, state, config, t * 1000)
            if decision.desired != len(workers):
                run.scale_events += 1
            while len(workers) < decision.desired:
                workers.append(_Worker(ready_at=t + model.startup_s))
            while len(workers) > decision.desired:
                draining.append(workers.pop())
            run.desired.append(decision.desired)
        else:
            run.desired.append(run.desired[-1])
        run.worker_seconds += len(workers) + len(draining)
        run.times.append(t)
        run.depth.append(len(queue) + running)
        run.ready.append(sum(1 for w in workers if w.ready_at <= t))
    run.unfinished = len(queue)
    return run


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="tide scaler simulate",
        description=(
            "Replay the scaling policy (SCALE_STEPS, MIN_WORKERS, MAX_WORKERS and the cooldowns "
            "from the environment) against arrivals; report cost and queue waits."
        ),
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--trace", type=Path, help="CSV of SECOND,JOBS rows")
    source.add_argument("--pattern", choices=PATTERNS, default="burst", help="built-in arrivals")
    parser.add_argument("--duration", type=int, default=3600, help="pattern length, s (3600)")
    parser.add_argument("--concurrency", type=int, default=4, help="jobs per worker (4)")
    parser.add_argument("--job-s", type=float, default=5.0, help="seconds per job (5)")
    parser.add_argument("--startup-s", type=float, default=20.0, help="worker start-up, s (20)")
    parser.add_argument("--out", type=Path, help="write a PNG of depth and workers over time")
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    try:
        settings = ScalerSettings()
    except ValidationError as exc:
        print(f"tide scaler simulate: {settings_error(exc)}", file=sys.stderr)
        return 2
    if min(args.concurrency, args.job_s, args.duration) <= 0 or args.startup_s < 0:
        print("tide scaler simulate: concurrency, job-s and duration must be > 0", file=sys.stderr)
        return 2
    try:
        arrivals = read_trace(args.trace) if args.trace else pattern(args.pattern, args.duration)
    except (OSError, ValueError) as exc:
        print(f"tide scaler simulate: {exc}", file=sys.stderr)
        return 2
    model = Model(
        concurrency=args.concurrency,
        job_s=args.job_s,
        startup_s=args.startup_s,
        poll_s=settings.poll_interval_ms / 1000,
    )
    run = simulate(arrivals, settings.policy, model)
    for name, value in run.report().items():
        print(f"{name:>15}: {value}")
    if args.out:
        try:
            from scaler.plot import draw
        except ImportError:
            print("tide scaler simulate: --out needs matplotlib (pip install 'tide[plot]')")
            return 2
        draw(run, args.out, title=str(args.trace or args.pattern))
        print(f"{'plot':>15}: {args.out}")
    return 0

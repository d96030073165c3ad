"""The scaling policy: a pure function from what the scaler sees to how many workers to run.

No I/O and no clock reads (DESIGN §7): the service, the local supervisor, the tests and the
simulator all call :func:`decide` with the time they choose, so a decision is reproducible.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum


@dataclass(frozen=True, slots=True)
class Step:
    """From ``depth`` jobs on (up to the next step), run ``workers`` workers."""

    depth: int
    workers: int


def parse_steps(text: str) -> tuple[Step, ...]:
    """``"0:0,1:1,11:2"`` as steps; raises ``ValueError`` saying what is wrong.

    Depths must start at 0 and rise strictly; workers must never fall as depth rises (a deeper
    queue with fewer workers would be a typo, not a policy).
    """
    steps: list[Step] = []
    for item in text.split(","):
        depth_text, sep, workers_text = item.strip().partition(":")
        try:
            if not sep:
                raise ValueError
            step = Step(int(depth_text), int(workers_text))
        except ValueError:
            raise ValueError(f"{item.strip()!r} is not DEPTH:WORKERS (e.g. 11:2)") from None
        if step.depth < 0 or step.workers < 0:
            raise ValueError(f"{item.strip()!r}: depth and workers must be >= 0")
        if steps and step.depth <= steps[-1].depth:
            raise ValueError(f"depths must rise strictly, {step.depth} follows {steps[-1].depth}")
        if steps and step.workers < steps[-1].workers:
            raise ValueError(f"workers must not fall as depth rises ({item.strip()!r})")
        steps.append(step)
    if steps[0].depth != 0:
        raise ValueError("the first step must start at depth 0 (e.g. 0:0)")
    return tuple(steps)


@dataclass(frozen=True, slots=True)
class PolicyConfig:
    steps: tuple[Step, ...]
    min_workers: int = 0
    max_workers: int = 5
    up_cooldown_ms: int = 30_000
    down_cooldown_ms: int = 120_000


@dataclass(frozen=True, slots=True)
class Signals:
    """What the scaler saw at one poll, summed over the watched queues."""

    waiting: int
    running: int
    due_delayed: int = 0
    """Due jobs still in the delayed set: workers' movers bring them in, so with no worker
    running nobody would, and they count as waiting."""
    current: int = 0
    """Workers the backend runs (or, for one that cannot tell, the last decision)."""
    rpm_used: int | None = None
    """The global limiter's requests in the last minute; None while there is no limiter data."""
    rpm_limit: int | None = None

    @property
    def depth(self) -> int:
        return self.waiting + self.running + self.due_delayed

    @property
    def rpm_saturated(self) -> bool:
        if self.rpm_used is None or not self.rpm_limit:
            return False
        return self.rpm_used >= self.rpm_limit


@dataclass(frozen=True, slots=True)
class PolicyState:
    """What the policy remembers between polls (kept in Redis by the service)."""

    last_change_ms: int | None = None
    """When the worker count last changed; the up-cooldown counts from here."""
    since_ms: int | None = None
    """When the policy first ran: a down-scale waits for a full window of history."""
    window: tuple[tuple[int, int], ...] = field(default=())
    """(time ms, target) seen over the down-cooldown window, each kept only while every later
    target is smaller: the first entry is the window's highest target, and the tuple stays short."""

    def to_dict(self) -> dict[str, object]:
        return {
            "last_change_ms": self.last_change_ms,
            "since_ms": self.since_ms,
            "window": [list(entry) for entry in self.window],
        }

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> PolicyState:
        window = data.get("window") or []
        assert isinstance(window, list)
        last, since = data.get("last_change_ms"), data.get("since_ms")
        return cls(
            last_change_ms=int(last) if isinstance(last, int | float) else None,
            since_ms=int(since) if isinstance(since, int | float) else None,
            window=tuple((int(at), int(target)) for at, target in window),
        )


class Action(StrEnum):
    UP = "up"
    DOWN = "down"
    HOLD = "hold"


@dataclass(frozen=True, slots=True)
class Decision:
    current: int
    desired: int
    target: int
    """What the step table (clamped) asks for right now, before cooldowns."""
    depth: int
    action: Action
    reason: str

    def to_dict(self) -> dict[str, object]:
        return {
            "current": self.current,
            "desired": self.desired,
            "target": self.target,
            "depth": self.depth,
            "action": self.action.value,
            "reason": self.reason,
        }


def step_for(steps: tuple[Step, ...], depth: int) -> tuple[Step, Step | None]:
    """The step that ``depth`` falls in, and the next one up (None for the last)."""
    index = max(i for i, step in enumerate(steps) if step.depth <= depth)
    return steps[index], steps[index + 1] if index + 1 < len(steps) else None


def _step_words(step: Step, following: Step | None) -> str:
    if following is None:
        return f"step {step.depth}+"
    if following.depth - 1 == step.depth:
        return f"step {step.depth}"
    return f"step {step.depth}\u2013{following.depth - 1}"  # an en dash


def _target(signals: Signals, config: PolicyConfig) -> tuple[int, str]:
    """The clamped target for this poll and the words that explain it."""
    step, following = step_for(config.steps, signals.depth)
    words = f"depth {signals.depth} → {_step_words(step, following)} → {step.workers} workers"
    target = min(max(step.workers, config.min_workers), config.max_workers)
    if target != step.workers:
        words += f" → clamped to {target} (MIN_WORKERS {config.min_workers}, "
        words += f"MAX_WORKERS {config.max_workers})"
    if target == 0 and signals.running > 0:
        target = 1
        words += f" → 1 ({signals.running} running: never zero while jobs run)"
    return target, words


def _seconds(ms: int) -> str:
    return f"{ms / 1000:g} s"


def decide(
    signals: Signals, state: PolicyState, config: PolicyConfig, now_ms: int
) -> tuple[Decision, PolicyState]:
    """The decision for this poll and the state to remember for the next.

    Up: at once when the up-cooldown since the last change has passed, unless the global RPM
    limiter is saturated. Down: only to the highest target of the down-cooldown window, and only
    once that much history exists, so a depth wobbling across a step boundary never flaps.
    """
    target, words = _target(signals, config)
    since = state.since_ms if state.since_ms is not None else now_ms
    horizon = now_ms - config.down_cooldown_ms
    kept = [(at, t) for at, t in state.window if at > horizon and t > target]
    window = (*kept, (now_ms, target))
    ceiling = window[0][1]
    current = signals.current
    state = replace(state, since_ms=since, window=window)

    def hold(why: str) -> tuple[Decision, PolicyState]:
        decision = Decision(current, current, target, signals.depth, Action.HOLD, why)
        return decision, state

    def change(to: int, why: str) -> tuple[Decision, PolicyState]:
        action = Action.UP if to > current else Action.DOWN
        decision = Decision(current, to, target, signals.depth, action, why)
        return decision, replace(state, last_change_ms=now_ms)

    if target > current:
        if signals.rpm_saturated:
            return hold(
                f"{words}; global RPM limiter saturated ({signals.rpm_used}/{signals.rpm_limit} "
                f"rpm): more workers cannot go faster, holding {current}"
            )
        if state.last_change_ms is not None:
            left = state.last_change_ms + config.up_cooldown_ms - now_ms
            if left > 0:
                return hold(f"{words}; up-cooldown {_seconds(left)} left, holding {current}")
        return change(target, f"{words}; up-cooldown passed")
    if ceiling < current:
        history = now_ms - since
        if history < config.down_cooldown_ms:
            left = config.down_cooldown_ms - history
            return hold(
                f"{words}; down-cooldown {_seconds(left)} of history left, holding {current}"
            )
        if ceiling > target:
            return change(
                ceiling,
                f"{words}; highest target over the last {_seconds(config.down_cooldown_ms)} "
                f"is {ceiling}",
            )
        return change(target, f"{words}; down-cooldown passed")
    if ceiling > target:
        return hold(
            f"{words}; highest target over the last {_seconds(config.down_cooldown_ms)} is "
            f"{ceiling}, holding {current}"
        )
    return hold(f"{words}; holding {current}")

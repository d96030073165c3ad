"""The scaling policy, table-driven: step boundaries, clamps, both cooldowns, the stabilization
window, never zero while jobs run, and the global RPM limiter."""

from __future__ import annotations

import itertools

import pytest

from scaler.policy import (
    Action,
    PolicyConfig,
    PolicyState,
    Signals,
    Step,
    decide,
    parse_steps,
)
from scaler.settings import DEFAULT_STEPS

STEPS = parse_steps(DEFAULT_STEPS)
CONFIG = PolicyConfig(steps=STEPS, min_workers=0, max_workers=5)
LONG_AGO = PolicyState(last_change_ms=0, since_ms=0)
NOW = 1_000_000


@pytest.mark.parametrize(
    ("depth", "workers"),
    [
        (0, 0), (1, 1), (10, 1), (11, 2), (30, 2), (31, 3),
        (60, 3), (61, 4), (100, 4), (101, 5), (10_000, 5),
    ],
)  # fmt: skip
def test_every_step_boundary_maps_depth_to_its_workers(depth: int, workers: int) -> None:
    decision, _ = decide(Signals(waiting=depth, running=0), LONG_AGO, CONFIG, NOW)
    assert decision.target == workers
    assert decision.desired == workers


def test_the_reason_names_the_depth_the_step_and_the_cooldown() -> None:
    decision, _ = decide(Signals(waiting=40, running=5, current=1), LONG_AGO, CONFIG, NOW)
    assert decision.reason == "depth 45 → step 31\u201360 → 3 workers; up-cooldown passed"
    assert decision.action is Action.UP


def test_depth_counts_waiting_running_and_due_delayed_jobs() -> None:
    signals = Signals(waiting=5, running=4, due_delayed=2)
    decision, _ = decide(signals, LONG_AGO, CONFIG, NOW)
    assert (decision.depth, decision.target) == (11, 2)


@pytest.mark.parametrize(
    ("min_workers", "max_workers", "depth", "expected"),
    [(2, 5, 0, 2), (2, 5, 5, 2), (0, 3, 500, 3), (1, 1, 0, 1), (1, 1, 500, 1), (4, 4, 20, 4)],
)
def test_targets_are_clamped_to_min_and_max_workers(
    min_workers: int, max_workers: int, depth: int, expected: int
) -> None:
    config = PolicyConfig(steps=STEPS, min_workers=min_workers, max_workers=max_workers)
    decision, _ = decide(Signals(waiting=depth, running=0), LONG_AGO, config, NOW)
    assert decision.target == expected


@pytest.mark.parametrize(
    ("since_change_ms", "action", "desired"),
    [(0, Action.HOLD, 1), (29_999, Action.HOLD, 1), (30_000, Action.UP, 3), (90_000, Action.UP, 3)],
)
def test_scale_up_waits_for_the_up_cooldown_since_the_last_change(
    since_change_ms: int, action: Action, desired: int
) -> None:
    state = PolicyState(last_change_ms=NOW - since_change_ms, since_ms=0)
    decision, new_state = decide(Signals(waiting=45, running=0, current=1), state, CONFIG, NOW)
    assert (decision.action, decision.desired) == (action, desired)
    if action is Action.HOLD:
        assert "up-cooldown" in decision.reason
        assert new_state.last_change_ms == state.last_change_ms
    else:
        assert new_state.last_change_ms == NOW


def test_a_first_scale_up_needs_no_cooldown() -> None:
    decision, _ = decide(Signals(waiting=1, running=0, current=0), PolicyState(), CONFIG, NOW)
    assert (decision.action, decision.desired) == (Action.UP, 1)


def run(
    depths: list[int], config: PolicyConfig = CONFIG, step_ms: int = 10_000, current: int = 0
) -> list[int]:
    """Poll every ``step_ms`` over ``depths``, applying each decision; the counts run."""
    state, counts = PolicyState(), []
    for i, depth in enumerate(depths):
        decision, state = decide(
            Signals(waiting=depth, running=0, current=current), state, config, i * step_ms
        )
        current = decision.desired
        counts.append(current)
    return counts


def test_scale_down_waits_for_the_down_cooldown_window() -> None:
    # up to 3 at once, then the queue empties: down only when 120 s show nothing higher than 1
    counts = run([45] + [5] * 14)
    assert counts[0] == 3
    assert counts[1:12] == [3] * 11
    assert counts[12:] == [1, 1, 1]


def test_scale_down_goes_to_the_highest_target_of_the_window() -> None:
    config = PolicyConfig(steps=STEPS, up_cooldown_ms=0, down_cooldown_ms=30_000)
    # target 5 until 30 s, 2 at 40 s, then 1: at 60 s the window (30, 60] holds 2 at most
    counts = run([200, 200, 200, 200, 20, 5, 5, 5, 5, 5], config)
    assert counts == [5, 5, 5, 5, 5, 5, 2, 1, 1, 1]


def test_a_fresh_scaler_waits_a_full_window_before_scaling_down() -> None:
    decision, _ = decide(Signals(waiting=0, running=0, current=4), PolicyState(), CONFIG, NOW)
    assert (decision.action, decision.desired) == (Action.HOLD, 4)
    assert "down-cooldown" in decision.reason


def test_a_depth_wobbling_across_a_step_boundary_never_flaps() -> None:
    # sawtooth across the 30/31 boundary every poll, for an hour
    counts = run([31 if i % 2 else 30 for i in range(360)])
    # 2 at once, 3 when the up-cooldown allows it, and never down again
    assert counts[:3] == [2, 2, 2]
    assert counts[3:] == [3] * 357


def test_a_slow_sawtooth_changes_a_bounded_number_of_times() -> None:
    # 0 → 120 → 0 over 20 polls (200 s), for an hour: at most one up and one down per tooth
    tooth = [*range(0, 120, 12), *range(120, 0, -12)]
    counts = run(tooth * 18)
    changes = sum(1 for a, b in itertools.pairwise(counts) if a != b)
    assert changes <= 2 * 18 * 2
    downs = sum(1 for a, b in itertools.pairwise(counts) if b < a)
    assert downs <= 18


@pytest.mark.parametrize(("running", "desired"), [(1, 1), (7, 1), (0, 0)])
def test_never_scales_to_zero_while_jobs_run(running: int, desired: int) -> None:
    steps = (Step(0, 0), Step(50, 1))
    config = PolicyConfig(steps=steps)
    decision, _ = decide(Signals(waiting=0, running=running, current=1), LONG_AGO, config, NOW)
    assert decision.desired == desired
    if running:
        assert "never zero while jobs run" in decision.reason


def test_no_scale_up_while_the_global_rpm_limiter_is_saturated() -> None:
    signals = Signals(waiting=80, running=0, current=2, rpm_used=60, rpm_limit=60)
    decision, _ = decide(signals, LONG_AGO, CONFIG, NOW)
    assert (decision.action, decision.desired) == (Action.HOLD, 2)
    assert "global RPM limiter saturated (60/60 rpm)" in decision.reason


@pytest.mark.parametrize(("rpm_used", "rpm_limit"), [(None, 60), (59, 60), (1000, None), (1000, 0)])
def test_an_unsaturated_or_absent_limiter_lets_the_scaler_grow(
    rpm_used: int | None, rpm_limit: int | None
) -> None:
    signals = Signals(waiting=80, running=0, current=2, rpm_used=rpm_used, rpm_limit=rpm_limit)
    decision, _ = decide(signals, LONG_AGO, CONFIG, NOW)
    assert (decision.action, decision.desired) == (Action.UP, 4)


def test_a_saturated_limiter_still_lets_the_fleet_shrink() -> None:
    signals = Signals(waiting=0, running=0, current=3, rpm_used=60, rpm_limit=60)
    decision, _ = decide(signals, LONG_AGO, CONFIG, NOW)
    assert (decision.action, decision.desired) == (Action.DOWN, 0)


def test_the_state_survives_a_round_trip_through_a_dict() -> None:
    _, state = decide(Signals(waiting=45, running=0), PolicyState(), CONFIG, NOW)
    assert PolicyState.from_dict(state.to_dict()) == state


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0:0,1", "'1' is not DEPTH:WORKERS"),
        ("0:0,x:1", "'x:1' is not DEPTH:WORKERS"),
        ("1:1,5:2", "the first step must start at depth 0"),
        ("0:0,5:2,5:3", "depths must rise strictly"),
        ("0:0,5:3,9:2", "workers must not fall"),
        ("0:0,-1:2", "must be >= 0"),
        ("", "'' is not DEPTH:WORKERS"),
    ],
)
def test_a_malformed_step_table_is_refused_with_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_steps(text)

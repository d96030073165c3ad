"""Scaler settings: the design's env names and defaults; bad settings refused in one line."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from scaler.policy import Step
from scaler.settings import ScalerSettings, settings_error

RAILWAY_IDS = {
    "SCALER_BACKEND": "railway",
    "RAILWAY_API_TOKEN": "t",
    "RAILWAY_ENVIRONMENT_ID": "env",
    "RAILWAY_WORKER_SERVICE_ID": "svc-worker",
}


def settings_from(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> ScalerSettings:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return ScalerSettings()


def test_defaults_follow_the_design(monkeypatch: pytest.MonkeyPatch) -> None:
    s = settings_from(monkeypatch, {})
    assert (s.port, s.min_workers, s.max_workers, s.global_rpm_limit) == (8080, 0, 5, 60)
    assert (s.poll_interval_ms, s.scale_up_cooldown_ms, s.scale_down_cooldown_ms) == (
        10_000,
        30_000,
        120_000,
    )
    assert s.steps[-1] == Step(101, 5)
    assert s.watched is None
    assert s.railway_api_url == "https://backboard.railway.com/graphql/v2"


def test_watch_queues_is_a_comma_separated_list(monkeypatch: pytest.MonkeyPatch) -> None:
    assert settings_from(monkeypatch, {"WATCH_QUEUES": "a, b,,"}).watched == ["a", "b"]


def test_the_railway_backend_keeps_one_worker_unless_zero_is_opted_into(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert settings_from(monkeypatch, RAILWAY_IDS).policy.min_workers == 1
    opted = settings_from(monkeypatch, {**RAILWAY_IDS, "RAILWAY_SCALE_TO_ZERO": "true"})
    assert opted.policy.min_workers == 0


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SCALE_STEPS": "0:0,5"}, "SCALE_STEPS: '5' is not DEPTH:WORKERS (e.g. 11:2)"),
        ({"MIN_WORKERS": "4", "MAX_WORKERS": "2"}, "MIN_WORKERS (4) is above MAX_WORKERS (2)"),
        (
            {"SCALER_BACKEND": "railway"},
            "the railway backend needs RAILWAY_API_TOKEN, RAILWAY_ENVIRONMENT_ID, "
            "RAILWAY_WORKER_SERVICE_ID",
        ),
        (
            {**RAILWAY_IDS, "RAILWAY_SERVICE_ID": "svc-worker"},
            "RAILWAY_WORKER_SERVICE_ID is this scaler's own service",
        ),
        ({"SCALER_BACKEND": "k8s"}, "SCALER_BACKEND: Input should be 'railway', 'local' or 'log'"),
    ],
)
def test_bad_settings_are_refused_in_one_line_that_names_them(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], message: str
) -> None:
    with pytest.raises(ValidationError) as info:
        settings_from(monkeypatch, env)
    line = settings_error(info.value)
    assert "\n" not in line
    assert message in line

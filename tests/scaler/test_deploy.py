"""The deployment files keep the promises the scaler relies on: the scaler owns the worker's
replica count, and every platform waits out the worker's drain before it kills."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from workers.settings import WorkerSettings

ROOT = Path(__file__).resolve().parents[2]
DRAIN_S = WorkerSettings().shutdown_grace_s


def railway_deploy(service: str) -> dict[str, Any]:
    """The ``deploy`` section of a service's Railway config-as-code file."""
    config = json.loads((ROOT / "deploy" / "railway" / f"{service}.json").read_text())
    deploy: dict[str, Any] = config["deploy"]
    return deploy


def test_the_railway_worker_config_leaves_the_replica_count_to_the_scaler() -> None:
    deploy = railway_deploy("worker")
    assert "numReplicas" not in deploy
    assert "multiRegionConfig" not in deploy
    assert deploy["drainingSeconds"] >= DRAIN_S
    assert deploy["startCommand"] == "tide worker"


def test_every_railway_service_runs_its_own_command() -> None:
    commands = {name: railway_deploy(name)["startCommand"] for name in ("api", "worker", "scaler")}
    assert commands == {"api": "tide api", "worker": "tide worker", "scaler": "tide scaler"}


def test_compose_waits_out_the_workers_drain_and_for_a_healthy_redis() -> None:
    text = (ROOT / "compose.yaml").read_text()
    (grace,) = re.findall(r"worker:\n(?:    .*\n|\n)*?    stop_grace_period: (\d+)s", text)
    assert int(grace) >= DRAIN_S
    assert "condition: service_healthy" in text
    assert '"--appendonly", "yes"' in text


def test_the_keda_example_waits_out_the_drain_too() -> None:
    text = (ROOT / "deploy" / "keda" / "scaledobject.yaml").read_text()
    (grace,) = re.findall(r"terminationGracePeriodSeconds: (\d+)", text)
    assert int(grace) >= DRAIN_S
    assert "type: redis-streams" in text
    assert 'lagCount: "10"' in text

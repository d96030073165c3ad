"""``@frozen`` value classes: read-only to the type checker, hashed by their fields at run time."""

from __future__ import annotations

from pathlib import Path

import pytest
from mypy import api as mypy_api

from app.core.frozen import frozen
from app.core.models import Job, JobStatus


@frozen
class Point:
    x: int
    label: object = None


def test_equal_values_hash_alike_and_share_a_set() -> None:
    assert Point(1) == Point(1)
    assert hash(Point(1)) == hash(Point(1))
    assert {Point(1), Point(1), Point(2)} == {Point(1), Point(2)}


def test_a_value_holding_something_unhashable_is_unhashable_as_a_frozen_dataclass_is() -> None:
    with pytest.raises(TypeError):
        hash(Point(1, label={"a": 1}))


def test_a_job_hashes_by_its_fields() -> None:
    def job() -> Job:
        return Job("j1", "t", "q", "noop", None, JobStatus.PENDING, 0, 3, 30.0, "1700000000000.0")

    assert hash(job()) == hash(job())
    assert {job(), job()} == {job()}


def test_mypy_refuses_an_assignment_to_a_field(tmp_path: Path) -> None:
    """The guarantee that replaced the run-time one: checked code cannot reassign a field."""
    snippet = tmp_path / "snippet.py"
    snippet.write_text(
        "from app.core.frozen import frozen\n\n"
        "@frozen\n"
        "class Point:\n"
        "    x: int\n\n"
        "p = Point(1)\n"
        "p.x = 2\n"
    )
    stdout, _, status = mypy_api.run(["--no-incremental", "--follow-imports=silent", str(snippet)])
    assert status == 1, stdout
    assert 'Property "x" defined in "Point" is read-only' in stdout

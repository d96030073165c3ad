"""Task registration: mistakes in a task module surface as one clear TaskDefinitionError."""

from __future__ import annotations

from typing import Any

import pytest

from workers.tasks import Context, TaskDefinitionError, TaskRegistry


def test_a_name_registered_twice_names_both_functions() -> None:
    tasks = TaskRegistry()

    @tasks.task(name="resize")
    async def first(ctx: Context, payload: Any) -> None: ...

    async def second(ctx: Context, payload: Any) -> None: ...

    with pytest.raises(TaskDefinitionError) as raised:
        tasks.task(name="resize")(second)
    assert str(raised.value) == (
        "task name 'resize' is registered twice: by "
        f"{__name__}.test_a_name_registered_twice_names_both_functions.<locals>.first and by "
        f"{__name__}.test_a_name_registered_twice_names_both_functions.<locals>.second; "
        "give one of them another name (@task(name=...))"
    )
    assert isinstance(raised.value, ValueError)


def test_registering_the_same_function_again_is_harmless() -> None:
    tasks = TaskRegistry()

    async def resize(ctx: Context, payload: Any) -> None: ...

    tasks.task(resize)
    tasks.task(resize)
    assert list(tasks) == ["resize"]


def test_a_function_without_a_payload_parameter_is_refused() -> None:
    def lonely(ctx: Context) -> None: ...

    with pytest.raises(TaskDefinitionError, match=r"lonely must take \(ctx, payload\)"):
        TaskRegistry().task(lonely)  # type: ignore[arg-type]

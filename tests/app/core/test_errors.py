"""The one table that turns script refusals into Tide's errors."""

from __future__ import annotations

from importlib import resources

import pytest

from app.core.errors import (
    REPLY_ERRORS,
    InvalidRequest,
    JobConflict,
    JobNotFound,
    TideError,
    raise_refusal,
)


def script_sources() -> str:
    folder = resources.files("app.core.lua")
    files = [*folder.iterdir(), *folder.joinpath("include").iterdir()]
    return "\n".join(f.read_text() for f in files if f.name.endswith(".lua"))


def test_every_refusal_word_is_a_tide_error_that_some_script_answers() -> None:
    sources = script_sources()
    for word, (error, _message) in REPLY_ERRORS.items():
        assert issubclass(error, TideError)
        assert f"{{'{word}'," in sources, f"no script refuses with {word!r}: a stale row"


@pytest.mark.parametrize(
    ("reply", "error", "message"),
    [
        (["exists", "j1"], JobConflict, "job id j1 is already taken"),
        (["not_found", "j2"], JobNotFound, "no job with id 'j2'"),
        (["finished", "j3", "failed"], JobConflict, "job j3 has already ended: failed"),
    ],
)
def test_a_refusal_raises_its_error_with_the_details_filled_in(
    reply: list[str], error: type[TideError], message: str
) -> None:
    with pytest.raises(error) as raised:
        raise_refusal(reply)
    assert str(raised.value) == message
    assert not isinstance(raised.value, InvalidRequest)


@pytest.mark.parametrize(
    "reply",
    ["cancelled", "not_found", 1, [], [["pending", "1.000", ""]], ["pending", "1.000", ""], None],
)
def test_any_other_reply_passes(reply: object) -> None:
    raise_refusal(reply)

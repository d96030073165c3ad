"""Log setup: one JSON object per line on stderr, at the level asked for, stdlib included."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import orjson
import pytest
import structlog

from app.process.logging import configure_logging, emits
from app.process.startup import ConfigError


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """configure_logging changes process-wide state: put it back for the next test."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    access_level = logging.getLogger("aiohttp.access").level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    logging.getLogger("aiohttp.access").setLevel(access_level)
    structlog.reset_defaults()


def lines(err: str) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in err.splitlines() if line]


def test_json_lines_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("info", json=True)
    log = structlog.get_logger("t")
    log.info("hello", n=1, where={2: "non-str key"})
    log.debug("hidden")
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("failed")
    captured = capsys.readouterr()
    assert captured.out == ""
    first, second = lines(captured.err)
    assert first["event"] == "hello"
    assert first["level"] == "info"
    assert first["n"] == 1
    assert str(first["timestamp"]).endswith("Z")
    assert second["level"] == "error"
    assert "boom" in str(second["exception"])
    assert "locals" not in str(second["exception"])


def test_stdlib_records_use_the_same_format(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("warning", json=True)
    logging.getLogger("some.library").warning("careful %s", "now")
    logging.getLogger("some.library").info("hidden")
    (line,) = lines(capsys.readouterr().err)
    assert line["event"] == "careful now"
    assert line["logger"] == "some.library"
    assert line["level"] == "warning"


def test_debug_level_and_case_insensitive_names(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("DEBUG", json=True)
    structlog.get_logger().debug("shown")
    assert [line["event"] for line in lines(capsys.readouterr().err)] == ["shown"]


@pytest.mark.parametrize("name", ["verbose", "critical", "notset", ""])
def test_a_level_other_than_the_four_is_a_config_error(name: str) -> None:
    with pytest.raises(ConfigError, match=r"LOG_LEVEL=.*debug, info, warning, error"):
        configure_logging(name)


def test_emits_says_whether_a_level_is_written_as_configured_now() -> None:
    assert emits(logging.DEBUG)  # structlog's defaults filter nothing
    configure_logging("warning", json=True)
    assert (emits(logging.INFO), emits(logging.WARNING), emits(logging.ERROR)) == (
        False,
        True,
        True,
    )
    configure_logging("debug", json=True)
    assert emits(logging.DEBUG)
    # an application's own setup with another logger class: its loggers decide, nothing breaks
    structlog.configure(wrapper_class=structlog.stdlib.BoundLogger)
    assert emits(logging.DEBUG)

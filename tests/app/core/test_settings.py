"""CoreSettings refuses what would only fail later, in one clear message."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from redis.crc import key_slot

from app.core.keys import Keys
from app.core.settings import CoreSettings, hash_tag


@pytest.mark.parametrize("prefix", ["tide", "{}tide", "app-{x", "}tide{", "tide}", "{"])
def test_a_key_prefix_without_a_usable_hash_tag_is_refused(prefix: str) -> None:
    with pytest.raises(ValidationError) as raised:
        CoreSettings(key_prefix=prefix)
    (error,) = raised.value.errors()
    assert error["loc"] == ("key_prefix",)
    assert f"KEY_PREFIX {prefix!r} needs a Redis Cluster hash tag" in error["msg"]


@pytest.mark.parametrize(
    ("prefix", "tag"), [("{tide}", "tide"), ("app-{prod}", "prod"), ("{a}{b}", "a"), ("{{x}", "{x")]
)
def test_a_prefix_with_a_hash_tag_puts_every_key_in_the_tags_slot(prefix: str, tag: str) -> None:
    assert CoreSettings(key_prefix=prefix).key_prefix == prefix
    assert hash_tag(prefix) == tag
    keys = Keys(prefix)
    names = [keys.job("j}{x"), keys.queue("q"), keys.dead("q"), keys.events, keys.delayed]
    assert {key_slot(name.encode()) for name in names} == {key_slot(tag.encode())}


def test_the_key_prefix_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEY_PREFIX", "tide")
    with pytest.raises(ValidationError, match="needs a Redis Cluster hash tag"):
        CoreSettings()


def test_the_socket_timeout_stays_above_the_workers_blocking_read() -> None:
    assert CoreSettings().redis_socket_timeout_s == 10.0
    assert CoreSettings().redis_connect_timeout_s == 5.0
    with pytest.raises(ValidationError, match="redis_socket_timeout_s"):
        CoreSettings(redis_socket_timeout_s=1)

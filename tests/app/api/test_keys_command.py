"""``tide keys create|list|revoke`` against a real redis-server, as an operator runs it."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest
from redis import Redis

from app.api.keys_command import main
from app.core.apikeys import digest
from app.core.keys import Keys
from app.dev.redis_server import RedisServer
from tests.helpers import TIDE, clean_env


@pytest.fixture
def redis(redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[Redis]:
    """The private server, emptied, and named by REDIS_URL as an operator's shell would."""
    monkeypatch.setenv("REDIS_URL", redis_server.url)
    monkeypatch.delenv("KEY_PREFIX", raising=False)
    client = Redis.from_url(redis_server.url, decode_responses=True)
    client.flushall()
    yield client
    client.close()


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_create_prints_the_secret_once_and_stores_only_its_digest(
    capsys: pytest.CaptureFixture[str], redis: Redis
) -> None:
    code, out, err = run(capsys, "create", "--tenant", "acme", "--rpm", "7", "--admin")
    assert code == 0
    secret = out.strip()
    assert secret.startswith("tide_")
    assert "tenant=acme" in err
    assert "admin" in err
    stored = {key: redis.hgetall(key) for key in redis.keys("*")}
    assert secret not in str(stored)
    record = stored[Keys().api_key(digest(secret))]
    assert (record["tenant"], record["admin"], record["rpm"], record["max_active"]) == (
        "acme",
        "1",
        "7",
        "",
    )


@pytest.mark.usefixtures("redis")
def test_list_shows_keys_without_secrets_and_revoke_forgets_one(
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, first, _ = run(capsys, "create", "--tenant", "acme")
    run(capsys, "create", "--tenant", "bolt", "--max-active", "2")
    code, listing, _ = run(capsys, "list")
    assert code == 0
    lines = listing.splitlines()
    assert [line.split()[1] for line in lines] == ["tenant=acme", "tenant=bolt"]
    assert "max_active=2" in lines[1]
    assert first.strip() not in listing
    acme_id = lines[0].split()[0]
    assert run(capsys, "revoke", acme_id)[0] == 0
    assert [line.split()[1] for line in run(capsys, "list")[1].splitlines()] == ["tenant=bolt"]
    code, _, err = run(capsys, "revoke", acme_id)
    assert code == 1
    assert "no key" in err


def test_a_bad_tenant_name_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["create", "--tenant", "a:b"])
    assert exited.value.code == 2
    assert "tenant" in capsys.readouterr().err


def test_tide_keys_is_a_subcommand(redis_server: RedisServer) -> None:
    done = subprocess.run(
        [TIDE, "keys", "list"],
        env=clean_env(REDIS_URL=f"{redis_server.url[:-1]}9"),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr

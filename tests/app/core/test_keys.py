"""The key schema (every key under one hash-tagged prefix) and the Lua script loader."""

from __future__ import annotations

import re
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.crc import key_slot

from app.core.keys import GROUP, Keys
from app.core.leases import LeaseClient, Outcome, Result
from app.core.models import JobSpec
from app.core.queue import Queue
from app.core.scripts import Script, pack, resolve, source
from app.core.settings import CoreSettings
from tests.app.conftest import take


def every_key(keys: Keys) -> list[str]:
    return [
        keys.job("01J0000000000000000000000A"),
        keys.queue("default"),
        keys.dead("default"),
        keys.delayed,
        keys.scheduled_counts,
        keys.events,
        keys.workers,
        keys.workers_seen,
        keys.queues,
        keys.job_prefix,
        keys.queue_prefix,
        keys.dead_prefix,
    ]


@pytest.mark.parametrize("prefix", ["{tide}", "{acme-prod}", "{x}"])
def test_every_key_shares_the_prefix_and_its_hash_slot(prefix: str) -> None:
    keys = Keys(prefix)
    names = every_key(keys)
    assert all(name.startswith(prefix + ":") for name in names)
    assert {key_slot(name.encode()) for name in names} == {key_slot(prefix.encode())}
    assert len(set(names)) == len(names)


def test_default_prefix_is_the_tide_hash_tag() -> None:
    assert Keys().prefix == "{tide}"
    assert Keys().queue("q") == "{tide}:q:q"
    assert Keys().job("abc") == "{tide}:job:abc"
    assert Keys().dead("q") == "{tide}:dead:q"
    assert GROUP == "workers"


def test_data_keys_are_their_prefix_plus_the_name() -> None:
    keys = Keys("{p}")
    assert keys.job("id1") == keys.job_prefix + "id1"
    assert keys.queue("mail") == keys.queue_prefix + "mail"
    assert keys.dead("mail") == keys.dead_prefix + "mail"
    assert keys.queue("mail") != keys.dead("mail")


@pytest.mark.parametrize("script", list(Script))
def test_each_script_loads_with_its_header_and_includes_resolved(script: Script) -> None:
    text = source(script.value)
    assert text.startswith(f"-- {script.value}.lua:")
    assert not re.search(r"^--!include", text, re.MULTILINE)
    assert text.count("local FIRST = 4") == 1  # head pasted in, once
    assert re.search(r"\bARGV\[FIRST\]", text)


def test_an_include_that_several_includes_share_is_pasted_once() -> None:
    text = source(Script.FINISH.value)  # fence and transitions both include head
    assert text.count("local function holds_lease") == 1
    assert text.count("local function done") == 1
    assert text.count("local function now_ms") == 1


def test_a_script_gets_only_the_include_definitions_it_reaches() -> None:
    text = resolve("--!include transitions\nreturn enqueue('id', 'q', 't')")
    # reached: enqueue, and through it emit and the key names they use
    assert "local function enqueue" in text
    assert "local function emit" in text
    assert "local QUEUE = " in text
    # not reached, though in the same files (with the comments that introduce them)
    for unused in ("start_job", "terminate", "as_map", "records", "rpm_window", "add_finished"):
        assert f"local function {unused}(" not in text
    assert "DURATION_BUCKETS" not in text
    for name in ("JOB", "DEAD"):  # key names too: each costs every call that defines it
        assert f"local {name} = " not in text
    assert "-- a flat {name, value, name, value, ...} reply" not in text  # as_map's comment


def test_a_name_only_a_comment_mentions_pulls_in_nothing() -> None:
    text = resolve("--!include head\nreturn FIRST -- not fmt, not records")
    assert "local FIRST = 4" in text
    assert "local function fmt" not in text
    assert "local function records" not in text


async def test_the_scripts_build_the_key_names_of_the_key_schema(any_redis: Redis) -> None:
    """The scripts get only the prefix: the names they build must be the ones Python reads."""
    keys = Keys("{acme}")
    names = "DELAYED, EVENTS, SCHEDULED, QUEUES, WORKERS, SEEN, METRICS, JOB, QUEUE, DEAD, TENANT"
    more = "GROUP, EVENTS_COUNT, EVENTS_MARKS, TENANT_GAUGES, TENANT .. 't:dead'"
    lua = resolve(f"--!include done\nreturn {{{names}, {more}}}")
    built = await any_redis.eval(lua, 1, keys.prefix, "1", "2", "3")  # type: ignore[misc]
    assert built == [
        keys.delayed,
        keys.events,
        keys.scheduled_counts,
        keys.queues,
        keys.workers,
        keys.workers_seen,
        keys.metrics,
        keys.job_prefix,
        keys.queue_prefix,
        keys.dead_prefix,
        keys.tenant_prefix,
        GROUP,
        keys.events_count,
        keys.events_marks,
        keys.tenant_gauges,
        keys.tenant_dead("t"),
    ]


def test_pack_lists_every_field_as_a_string_in_one_json_array() -> None:
    assert pack([["a", 1], ["b", -1.5]]) == b'["a","1","b","-1.5"]'
    assert pack([]) == b"[]"


async def test_records_reads_back_every_field_as_pack_wrote_it(any_redis: Redis) -> None:
    fields = ["", "a\nb", '{"x": [1, "é"]}', "1", "-0.5", "\u0000", "tab\there"]
    lua = resolve("--!include head\nreturn records(ARGV[FIRST])")
    unpacked = await any_redis.eval(lua, 1, "{t}", "1", "2", "3", pack([fields]))  # type: ignore[misc]
    assert unpacked == fields


async def test_a_whole_lifecycle_writes_only_keys_under_the_prefix(
    any_redis: Redis, settings: CoreSettings
) -> None:
    custom = settings.model_copy(update={"key_prefix": "{other}", "lease_timeout_s": 0.2})
    queue = Queue(any_redis, custom)
    worker = LeaseClient(any_redis, custom, "w1")
    await queue.submit_many(
        [
            JobSpec(type="a", queue="q1"),
            JobSpec(type="b", queue="q1", max_attempts=1),
            JobSpec(type="c", queue="q2", delay_s=60),
        ]
    )
    ok, bad = await take(worker, queues=["q1"])
    await worker.finish([Result(ok, Outcome.OK, "1"), Result(bad, Outcome.ERROR, '"x"')])
    await worker.register('{"host":"h"}', 10_000)
    await queue.stats()
    names: Any = await any_redis.keys("*")
    assert names
    assert all(name.startswith("{other}:") for name in names), names
    assert "{other}:dead:q1" in names
    assert "{other}:delayed" in names

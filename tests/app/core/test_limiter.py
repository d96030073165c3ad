"""The rate limiters (GCRA in limiter_take.lua), on fakeredis and a real redis-server."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis

from app.core.errors import InvalidRequest
from app.core.keys import GLOBAL_LIMITER, Keys
from app.core.limiter import Limiter
from app.core.rates import Rate, parse_limits
from app.core.settings import CoreSettings

KEYS = Keys()


def limiter(redis: Redis, **rates: Rate) -> Limiter:
    return Limiter(redis, KEYS, rates)


def test_limits_parse_per_second_minute_and_hour_with_an_optional_burst() -> None:
    assert parse_limits(" openai:60/m, stripe:100/s+20 ,batch:5/h,") == {
        "openai": Rate(60, 60.0),
        "stripe": Rate(100, 1.0, 20),
        "batch": Rate(5, 3600.0),
    }
    assert parse_limits("") == {}


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("openai:60", "name:count/unit"),
        ("openai:60/d", "name:count/unit"),
        ("open ai:60/m", "name:count/unit"),
        ("openai:0/m", "at least 1"),
        ("a:1/s,a:2/s", "twice"),
        ("global:10/m", "GLOBAL_RPM_LIMIT"),
    ],
)
def test_a_bad_limits_item_is_refused_by_name(text: str, says: str) -> None:
    with pytest.raises(InvalidRequest, match=says):
        parse_limits(text)


def test_settings_list_the_global_limiter_unless_it_is_zero() -> None:
    settings = CoreSettings(global_rpm_limit=30, global_rpm_burst=2, limits="openai:1/s")
    assert settings.rates == {"openai": Rate(1, 1.0), GLOBAL_LIMITER: Rate(30, 60.0, 2)}
    assert CoreSettings(global_rpm_limit=0).rates == {}
    with pytest.raises(ValueError, match="LIMITS item"):
        CoreSettings(limits="nonsense")


async def test_a_burst_goes_at_once_then_turns_come_one_interval_apart(any_redis: Redis) -> None:
    lim = limiter(any_redis, api=Rate(10, 10.0, burst=2))  # one turn a second
    turns = [await lim.take("api", horizon_s=60) for _ in range(5)]
    assert all(t.granted for t in turns)
    assert [t.wait_s for t in turns[:3]] == [0, 0, 0]
    assert turns[3].wait_s == pytest.approx(1.0, abs=0.1)
    assert turns[4].wait_s == pytest.approx(2.0, abs=0.1)


async def test_a_turn_beyond_the_horizon_is_not_reserved(any_redis: Redis) -> None:
    lim = limiter(any_redis, api=Rate(1, 10.0))  # one turn per 10 s
    assert (await lim.take("api", horizon_s=1)).granted
    later = await lim.take("api", horizon_s=1)
    assert not later.granted
    assert later.wait_s == pytest.approx(9.0, abs=0.1)
    again = await lim.take("api", horizon_s=1)  # the refusal reserved nothing
    assert again.wait_s == pytest.approx(later.wait_s, abs=0.1)


async def test_no_period_holds_more_turns_than_the_limit_plus_the_burst(any_redis: Redis) -> None:
    rate = Rate(20, 1.0, burst=3)
    lim = limiter(any_redis, api=rate)
    for _ in range(100):
        assert (await lim.take("api", horizon_s=60)).granted
    starts = await any_redis.zrange(KEYS.limiter_starts("api"), 0, -1, withscores=True)
    times = sorted(score for _, score in starts)
    assert len(times) == 100
    period_ms = rate.period_s * 1000
    busiest = max(sum(1 for t in times if s <= t < s + period_ms) for s in times)
    assert busiest == rate.count + rate.burst


async def test_usage_counts_turns_whose_time_has_come_over_the_last_period(
    any_redis: Redis,
) -> None:
    lim = limiter(any_redis, api=Rate(2, 0.4))  # a turn every 200 ms
    assert (await lim.usage("api")).used == 0
    for _ in range(4):
        await lim.take("api", horizon_s=60)
    usage = await lim.usage("api")
    assert usage.limit == 2
    assert usage.used == 1  # the other three are reserved for later
    await asyncio.sleep(0.45)
    assert (await lim.usage("api")).used == 2  # turns at 200 and 400 ms; the first left


async def test_limiters_keep_their_own_turns(any_redis: Redis) -> None:
    lim = limiter(any_redis, openai=Rate(1, 60.0), **{GLOBAL_LIMITER: Rate(1, 60.0)})
    assert (await lim.take("openai", horizon_s=1)).granted
    assert (await lim.take(GLOBAL_LIMITER, horizon_s=1)).granted
    assert not (await lim.take("openai", horizon_s=1)).granted
    assert await any_redis.exists(KEYS.limiter(GLOBAL_LIMITER)) == 1
    assert KEYS.limiter(GLOBAL_LIMITER) == "{tide}:rpm"


async def test_an_idle_limiters_keys_expire(any_redis: Redis) -> None:
    lim = limiter(any_redis, api=Rate(10, 1.0))
    await lim.take("api", horizon_s=1)
    for key in (KEYS.limiter("api"), KEYS.limiter_starts("api")):
        assert 0 < await any_redis.pttl(key) <= 1100

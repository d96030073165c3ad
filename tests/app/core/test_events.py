"""The events stream (``P:events``): one entry per script call, bounded by the number of changes
it holds, not by entries, and trimmed in whole entries so that a replay never splits a batch."""

from __future__ import annotations

from typing import Any

import pytest
from redis.asyncio import Redis

from app.core.events import read_events
from app.core.models import JobSpec
from app.core.queue import SUBMIT_CHUNK, Queue
from app.core.settings import CoreSettings
from tests.app.conftest import changes

MAX_CHANGES = 2000


@pytest.fixture
def capped(any_redis: Redis, fast: CoreSettings) -> Queue:
    return Queue(any_redis, fast.model_copy(update={"events_max_changes": MAX_CHANGES}))


async def entries(redis: Redis, queue: Queue) -> list[dict[str, str]]:
    rows: Any = await redis.xrange(queue.keys.events)
    return [fields for _id, fields in rows]


async def test_many_large_batches_keep_only_the_newest_changes_in_whole_entries(
    any_redis: Redis, capped: Queue
) -> None:
    batches = 30
    submitted = []
    for _ in range(batches):  # one after another, so the stream's order is known
        submitted += await capped.submit_many([JobSpec(type="n") for _ in range(SUBMIT_CHUNK)])

    kept = await entries(any_redis, capped)
    assert 1 <= len(kept) < batches
    assert all(int(e["n"]) == SUBMIT_CHUNK for e in kept)  # whole batches only
    events = await changes(any_redis, capped)
    assert MAX_CHANGES <= len(events) < MAX_CHANGES + SUBMIT_CHUNK
    # the newest changes are the ones kept, in order
    assert [e.job_id for e in events] == [j.id for j in submitted[-len(events) :]]
    # a replay after an entry id starts at the next whole entry
    first = events[0].entry_id
    replay = await read_events(any_redis, capped.keys, after=first, count=1000)
    assert len(replay) == len(events) - SUBMIT_CHUNK
    assert {e.entry_id for e in replay}.isdisjoint({first})


async def test_many_small_entries_are_capped_by_changes_too(
    any_redis: Redis, fast: CoreSettings
) -> None:
    queue = Queue(any_redis, fast.model_copy(update={"events_max_changes": 100}))
    for _ in range(250):
        await queue.submit(JobSpec(type="n"))
    assert await any_redis.xlen(queue.keys.events) == 100


@pytest.mark.redis
async def test_the_streams_memory_stays_bounded_whatever_the_batch_size(
    real_redis: Redis, fast: CoreSettings
) -> None:
    queue = Queue(real_redis, fast.model_copy(update={"events_max_changes": 5000}))
    await queue.submit_many([JobSpec(type="n") for _ in range(40 * SUBMIT_CHUNK)])
    after_batches: int = await real_redis.memory_usage(queue.keys.events) or 0
    assert len(await changes(real_redis, queue)) < 5000 + SUBMIT_CHUNK
    # about 60 bytes a change: bounded by the cap, not by the 20,000 jobs submitted
    assert after_batches < (5000 + SUBMIT_CHUNK) * 120


async def test_a_lowered_cap_shrinks_the_stream_at_the_old_caps_marks(
    any_redis: Redis, fast: CoreSettings
) -> None:
    """Marks were set every 15 changes (a 64th of 1000), the last at change 240: the first call
    under the new cap cuts at the newest mark it may, the next cuts come as the count passes the
    later marks (240, then 251, the first under the new cap), and from then on the small cap
    (a mark at every change) holds exactly."""
    roomy = Queue(any_redis, fast.model_copy(update={"events_max_changes": 1000}))
    for _ in range(250):
        await roomy.submit(JobSpec(type="n"))
    tight = Queue(any_redis, fast.model_copy(update={"events_max_changes": 20}))
    lengths = []
    for _ in range(22):
        await tight.submit(JobSpec(type="n"))
        lengths.append(await any_redis.xlen(tight.keys.events))
    assert lengths == [*range(26, 35), 20, *range(21, 31), 20, 20]


async def test_the_cut_marks_stay_few(any_redis: Redis, fast: CoreSettings) -> None:
    queue = Queue(any_redis, fast.model_copy(update={"events_max_changes": 640}))
    for _ in range(2000):
        await queue.submit(JobSpec(type="n"))
    assert 640 <= await any_redis.xlen(queue.keys.events) <= 650
    assert await any_redis.llen(queue.keys.events_marks) <= 65


async def test_each_entry_counts_every_change_so_far(any_redis: Redis, capped: Queue) -> None:
    await capped.submit(JobSpec(type="n"))
    await capped.submit_many([JobSpec(type="n") for _ in range(3)])
    await capped.submit(JobSpec(type="n"))
    kept = await entries(any_redis, capped)
    assert [(e["n"], e["c"]) for e in kept] == [("1", "1"), ("3", "4"), ("1", "5")]


async def test_a_stream_without_its_counter_goes_on_counting_from_its_newest_entry(
    any_redis: Redis, fast: CoreSettings
) -> None:
    """A stream written before the counter existed (or whose counter was lost) is still trimmed
    to the newest changes: its entries are never mistaken for newer ones."""
    queue = Queue(any_redis, fast.model_copy(update={"events_max_changes": 10}))
    for _ in range(8):
        await queue.submit(JobSpec(type="n"))
    await any_redis.delete(queue.keys.events_count)
    for _ in range(5):
        await queue.submit(JobSpec(type="n"))
    kept = await entries(any_redis, queue)
    assert [e["c"] for e in kept] == [str(c) for c in range(4, 14)]


async def test_a_deleted_stream_is_capped_again_whether_its_counter_survived_or_not(
    any_redis: Redis, fast: CoreSettings
) -> None:
    """Marks left behind point at entries that are gone: cutting there is harmless, and the new
    entries are still kept to the cap."""
    queue = Queue(any_redis, fast.model_copy(update={"events_max_changes": 10}))
    for _ in range(20):
        await queue.submit(JobSpec(type="n"))
    await any_redis.delete(queue.keys.events)
    for _ in range(15):
        await queue.submit(JobSpec(type="n"))
    assert [e["c"] for e in await entries(any_redis, queue)] == [str(c) for c in range(26, 36)]
    await any_redis.delete(queue.keys.events, queue.keys.events_count)
    for _ in range(12):
        await queue.submit(JobSpec(type="n"))
    assert [e["c"] for e in await entries(any_redis, queue)] == [str(c) for c in range(3, 13)]

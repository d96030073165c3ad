"""Live updates over the WebSocket and the long poll (DESIGN §5), on a real redis-server with
the real API application, jobs submitted through it and finished through worker leases."""

from __future__ import annotations

import asyncio
import hashlib
import socket
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import WSMsgType
from aiohttp.test_utils import TestServer, get_port_socket
from redis.asyncio import Redis
from structlog.testing import capture_logs

from app.api import create_app
from app.api.live.ws import TOO_SLOW
from app.api.settings import ApiSettings
from app.core.leases import LeaseClient, Outcome, Result
from app.core.models import JobSpec
from app.core.queue import Queue
from app.core.redis_client import connect
from app.dev.redis_server import RedisServer
from tests.helpers import ACME, ADMIN, BOLT, ApiClient, MakeApiClient, assert_error, key
from tests.proxy import lossy_proxy

pytestmark = pytest.mark.redis

Frame = dict[str, Any]
WS = aiohttp.ClientWebSocketResponse


@pytest.fixture
def queue(real_redis: Redis, keyed_settings: ApiSettings) -> Queue:
    return Queue(real_redis, keyed_settings)


@pytest.fixture
async def api(queue: Queue, keyed_settings: ApiSettings, make_client: MakeApiClient) -> ApiClient:
    return await make_client(create_app(keyed_settings, queue))


async def submit(api: ApiClient, secret: str = ACME, **body: Any) -> str:
    response = await api.post("/v1/jobs", json={"type": "t", **body}, headers=key(secret))
    assert response.status == 201, await response.text()
    job_id: str = (await response.json())["id"]
    return job_id


async def run_one(queue: Queue, outcome: Outcome = Outcome.OK) -> str:
    """A worker leases the oldest waiting job and finishes it; its id."""
    worker = LeaseClient(queue.redis, queue.settings, "w1")
    await worker.ensure_group("default")
    (lease,) = await worker.start(await worker.read(["default"], 1, 10))
    assert await worker.finish([Result(lease, outcome, "1")]) == [True]
    return lease.job_id


async def frames_until(
    ws: WS, done: Callable[[list[Frame]], bool], timeout_s: float = 10.0
) -> list[Frame]:
    """Frames other than ``stats``, read until ``done`` holds for them."""
    frames: list[Frame] = []
    async with asyncio.timeout(timeout_s):
        while not done(frames):
            message = await ws.receive()
            assert message.type is WSMsgType.TEXT, message
            frame = message.json()
            if frame["op"] != "stats":
                frames.append(frame)
    return frames


def has(op: str) -> Callable[[list[Frame]], bool]:
    return lambda frames: any(f["op"] == op for f in frames)


def has_changes(frames: list[Frame]) -> bool:
    return bool(carried(frames))


def carried(frames: list[Frame]) -> list[Frame]:
    """The changes ``event`` frames (one each) and ``events`` frames (several) carry, in order."""
    return [c for f in frames for c in {"event": [f], "events": f.get("events")}.get(f["op"], [])]


def changes(frames: list[Frame]) -> list[tuple[str, str]]:
    return [(c["job"]["id"], c["job"]["status"]) for c in carried(frames)]


def event_ids(frames: list[Frame]) -> list[str]:
    return [c["event_id"] for c in carried(frames)]


async def subscribe(
    ws: WS, jobs: list[str] | str = "all", after: str | None = None, batch: bool = False
) -> list[Frame]:
    """Subscribes and waits for the ack, after which every change reaches the socket; the
    frames up to the ack (what ``after`` replayed)."""
    frame: Frame = {"op": "subscribe", "jobs": jobs}
    if after is not None:
        frame["after"] = after
    if batch:
        frame["batch"] = True
    await ws.send_json(frame)
    return await frames_until(ws, has("subscribed"))


async def ticket(api: ApiClient, secret: str = ACME) -> str:
    response = await api.post("/v1/ws/ticket", headers=key(secret))
    assert response.status == 201
    body = await response.json()
    assert body["expires_in_s"] == 60
    value: str = body["ticket"]
    return value


async def refused(api: ApiClient, path: str, status: int, **kwargs: Any) -> None:
    with pytest.raises(aiohttp.WSServerHandshakeError) as caught:
        await api.ws_connect(path, **kwargs)
    assert caught.value.status == status


# -- auth and origin ----------------------------------------------------------------------------


async def test_a_ticket_opens_one_socket_for_its_tenant(api: ApiClient) -> None:
    value = await ticket(api)
    ws = await api.ws_connect(f"/v1/ws?ticket={value}")
    await subscribe(ws)
    job_id = await submit(api)
    frames = await frames_until(ws, has("event"))
    assert frames[-1]["job"] == {"id": job_id, "status": "pending", "queue": "default",
                                 "tenant": "acme"}  # fmt: skip
    await ws.close()
    await refused(api, f"/v1/ws?ticket={value}", 401)  # used once: never again


async def test_an_unknown_or_expired_ticket_or_no_key_is_refused(
    api: ApiClient, queue: Queue
) -> None:
    await refused(api, "/v1/ws?ticket=made-up", 401)
    await refused(api, "/v1/ws", 401)
    value = await ticket(api)
    stored = queue.keys.ws_ticket(hashlib.sha256(value.encode()).hexdigest())
    assert 0 < await queue.redis.ttl(stored) <= 60
    await queue.redis.pexpire(stored, 1)
    await asyncio.sleep(0.05)  # Redis expires it on the next access after 1 ms
    await refused(api, f"/v1/ws?ticket={value}", 401)


async def test_a_page_of_a_foreign_origin_is_refused_and_the_apis_own_is_not(
    api: ApiClient,
) -> None:
    await refused(api, "/v1/ws", 403, headers={**key(ACME), "Origin": "https://evil.example"})
    own = str(api.make_url("")).rstrip("/")
    ws = await api.ws_connect("/v1/ws", headers={**key(ACME), "Origin": own})
    await subscribe(ws)
    await ws.close()


async def test_allowed_origins_lists_the_pages_that_may_connect(
    queue: Queue, keyed_settings: ApiSettings, make_client: MakeApiClient
) -> None:
    settings = keyed_settings.model_copy(update={"allowed_origins": "https://dash.example/"})
    api = await make_client(create_app(settings, queue))
    ws = await api.ws_connect("/v1/ws", headers={**key(ACME), "Origin": "https://dash.example"})
    await ws.close()
    own = str(api.make_url("")).rstrip("/")
    await refused(api, "/v1/ws", 403, headers={**key(ACME), "Origin": own})


# -- what a socket receives ---------------------------------------------------------------------


async def test_a_tenant_never_receives_another_tenants_changes_and_an_admin_sees_all(
    api: ApiClient, queue: Queue
) -> None:
    sockets = {}
    for name, secret in (("acme", ACME), ("bolt", BOLT), ("admin", ADMIN)):
        sockets[name] = await api.ws_connect("/v1/ws", headers=key(secret))
        await subscribe(sockets[name])
    acme_job = await submit(api, ACME)
    bolt_job = await submit(api, BOLT)
    assert await run_one(queue) == acme_job
    want_admin = [(acme_job, "pending"), (bolt_job, "pending"), (acme_job, "running"),
                  (acme_job, "succeeded")]  # fmt: skip
    admin = await frames_until(sockets["admin"], lambda f: len(changes(f)) == 4)
    assert changes(admin) == want_admin
    # bolt's own change came after acme's three: had any of them reached bolt, it came first
    bolt = await frames_until(sockets["bolt"], has("event"))
    assert changes(bolt) == [(bolt_job, "pending")]
    acme = await frames_until(sockets["acme"], lambda f: len(changes(f)) == 3)
    assert {job for job, _ in changes(acme)} == {acme_job}
    await submit(api, BOLT)
    marker = await submit(api, ACME)
    acme = await frames_until(sockets["acme"], has("event"))
    assert changes(acme) == [(marker, "pending")]


@pytest.mark.parametrize("batch", [False, True])
async def test_a_socket_following_some_jobs_receives_only_theirs(
    api: ApiClient, batch: bool
) -> None:
    followed = await submit(api)
    ws = await api.ws_connect("/v1/ws", headers=key(ACME))
    await subscribe(ws, [followed], batch=batch)
    await submit(api)
    await api.post(f"/v1/jobs/{followed}/cancel", headers=key(ACME))
    frames = await frames_until(ws, has_changes)
    assert changes(frames) == [(followed, "cancelled")]


async def test_resuming_after_the_last_event_seen_loses_nothing(
    api: ApiClient, queue: Queue
) -> None:
    ws = await api.ws_connect("/v1/ws", headers=key(ACME))
    await subscribe(ws)
    first = await submit(api)
    seen = await frames_until(ws, has("event"))
    await ws.close()

    second = await submit(api)  # while disconnected
    assert await run_one(queue) == first
    third = await submit(api)

    ws = await api.ws_connect("/v1/ws", headers=key(ACME))
    replay = await subscribe(ws, after=seen[-1]["event_id"])
    fourth = await submit(api)
    assert changes(replay) == [(second, "pending"), (first, "running"), (first, "succeeded"),
                               (third, "pending")]  # fmt: skip
    frames = await frames_until(ws, has("event"))
    assert changes(frames) == [(fourth, "pending")]  # live after the replay, once


async def test_resuming_in_the_middle_of_a_batch_gets_the_rest_of_it(
    api: ApiClient, queue: Queue
) -> None:
    ws = await api.ws_connect("/v1/ws", headers=key(ACME))
    await subscribe(ws)
    jobs = await queue.submit_many([JobSpec(type="t", tenant="acme") for _ in range(5)])
    frames = await frames_until(ws, lambda f: len(changes(f)) == 5)
    assert len({f["event_id"].split(":")[0] for f in frames}) == 1  # one entry holds all five
    await ws.close()
    ws = await api.ws_connect("/v1/ws", headers=key(ACME))
    replay = await subscribe(ws, after=frames[1]["event_id"])
    assert changes(replay) == [(j.id, "pending") for j in jobs[2:]]


async def test_batched_sockets_get_every_change_once_in_order_and_others_a_frame_each(
    api: ApiClient, queue: Queue
) -> None:
    plain = await api.ws_connect("/v1/ws", headers=key(ACME))
    await subscribe(plain)
    ws = await api.ws_connect("/v1/ws", headers=key(ACME))
    await subscribe(ws, batch=True)
    jobs = await queue.submit_many([JobSpec(type="t", tenant="acme") for _ in range(5)])
    single = await submit(api)
    want = [(j.id, "pending") for j in jobs] + [(single, "pending")]
    batched = await frames_until(ws, lambda f: len(changes(f)) == 6)
    assert changes(batched) == want
    assert {f["op"] for f in batched} == {"events"}
    assert len(batched) < 6  # the five of one entry came in one frame
    per_change = await frames_until(plain, lambda f: len(changes(f)) == 6)
    assert (changes(per_change), len(per_change)) == (want, 6)
    assert event_ids(per_change) == event_ids(batched)
    await ws.close()

    missed = await submit(api)  # while disconnected
    assert await run_one(queue) == jobs[0].id
    ws = await api.ws_connect("/v1/ws", headers=key(ACME))
    replay = await subscribe(ws, after=event_ids(batched)[2], batch=True)  # mid-entry
    assert {f["op"] for f in replay} == {"events", "subscribed"}
    assert changes(replay) == [*want[3:], (missed, "pending"), (jobs[0].id, "running"),
                               (jobs[0].id, "succeeded")]  # fmt: skip
    last = await submit(api)
    assert changes(await frames_until(ws, has_changes)) == [(last, "pending")]  # once


async def test_resuming_after_changes_the_stream_no_longer_holds_says_gap_first(
    real_redis: Redis, keyed_settings: ApiSettings, make_client: MakeApiClient
) -> None:
    settings = keyed_settings.model_copy(update={"events_max_changes": 10})
    queue = Queue(real_redis, settings)
    api = await make_client(create_app(settings, queue))
    first = await submit(api)
    ws = await api.ws_connect("/v1/ws", headers=key(ACME))
    await subscribe(ws, [first])
    await api.post(f"/v1/jobs/{first}/cancel", headers=key(ACME))
    (seen,) = await frames_until(ws, has("event"))
    await ws.close()
    for _ in range(30):  # one entry each: the stream drops the oldest
        await submit(api)
    ws = await api.ws_connect("/v1/ws", headers=key(ACME))
    frames = await subscribe(ws, after=seen["event_id"])
    assert frames[0] == {"op": "gap", "after": seen["event_id"]}
    assert 0 < len(changes(frames)) < 30  # what it still holds, then live


async def test_bad_frames_get_an_error_frame_and_the_socket_stays_open(api: ApiClient) -> None:
    ws = await api.ws_connect("/v1/ws", headers=key(ACME))
    bad: list[Callable[[], Any]] = [
        lambda: ws.send_str("not json"),
        lambda: ws.send_json({"op": "unsubscribe"}),
        lambda: ws.send_json({"op": "subscribe", "jobs": 7}),
        lambda: ws.send_json({"op": "subscribe", "jobs": "all", "after": "yesterday"}),
        lambda: ws.send_bytes(b"\x00"),
    ]
    for send in bad:
        await send()
        (error,) = await frames_until(ws, has("error"))
        assert error["code"] in {"invalid_json", "invalid_frame"}
        assert error["message"]
    await subscribe(ws)
    job_id = await submit(api)
    assert changes(await frames_until(ws, has("event"))) == [(job_id, "pending")]


async def test_a_socket_receives_the_deployments_figures_every_second(
    api: ApiClient,
) -> None:
    await submit(api)
    ws = await api.ws_connect("/v1/ws", headers=key(ACME))
    async with asyncio.timeout(5):
        while (frame := await ws.receive_json())["op"] != "stats":
            pass
    assert frame["waiting"] == 1
    assert {"running", "scheduled", "dead", "finished_per_min", "workers", "scaler"} <= set(frame)
    assert frame["rpm"] == {"used": 0, "limit": 60}


# -- a client too slow to keep up ---------------------------------------------------------------


BURST = 40
"""Changes per submission: one events entry (and one batch), under the sockets' queue bound of
50 changes."""


class RawSocket:
    """A WebSocket client that reads nothing until told to, with a tiny receive buffer: the
    server's writes back up, as with a client on a bad network or a frozen tab."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, api: ApiClient, secret: str, batch: bool = False) -> RawSocket:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        url = api.make_url("/v1/ws")
        await asyncio.get_running_loop().sock_connect(sock, (url.host, url.port))
        reader, writer = await asyncio.open_connection(sock=sock)
        writer.write(
            f"GET /v1/ws HTTP/1.1\r\nHost: {url.host}:{url.port}\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            f"Sec-WebSocket-Version: 13\r\nX-API-Key: {secret}\r\n\r\n".encode()
        )
        assert b" 101 " in await reader.readuntil(b"\r\n\r\n")
        text = orjson.dumps({"op": "subscribe", "jobs": "all", "batch": batch})
        mask = b"\x01\x02\x03\x04"
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(text))
        writer.write(bytes([0x81, 0x80 | len(text)]) + mask + masked)
        return cls(reader, writer)

    async def close_code(self) -> int | None:
        """Reads every frame up to the end; the close frame's code."""
        code = None
        while True:
            try:
                head = await self.reader.readexactly(2)
            except (asyncio.IncompleteReadError, ConnectionError):
                return code
            size = head[1] & 0x7F
            if size == 126:
                size = int.from_bytes(await self.reader.readexactly(2))
            elif size == 127:
                size = int.from_bytes(await self.reader.readexactly(8))
            body = await self.reader.readexactly(size)
            if head[0] & 0x0F == 0x8:
                code = int.from_bytes(body[:2])


def small_send_buffer(host: str, port: int, family: socket.AddressFamily) -> socket.socket:
    """The test server's listening socket, whose accepted sockets inherit a send buffer the
    kernel does not grow: a client that reads nothing backs the server up after a few kB, not
    the megabytes of an autotuned loopback buffer (which a slow box took a minute to fill)."""
    sock = get_port_socket(host, port, family)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    return sock


@pytest.mark.parametrize("batch", [False, True])
async def test_a_client_too_slow_to_keep_up_is_cut_off_while_others_keep_receiving(
    queue: Queue, keyed_settings: ApiSettings, make_client: MakeApiClient, batch: bool
) -> None:
    # no pause between reads: the slow client's backlog grows as fast in batches as in frames
    settings = keyed_settings.model_copy(update={"live_queue_max": 50, "live_batch_s": 0})
    server = TestServer(create_app(settings, queue), socket_factory=small_send_buffer)
    api = await make_client(server)
    fast = await api.ws_connect("/v1/ws", headers=key(ACME))
    await subscribe(fast, batch=batch)
    slow = await RawSocket.open(api, ACME, batch)
    await asyncio.sleep(0.2)  # its subscribe frame reaches the server
    sent: list[str] = []
    received: list[tuple[str, str]] = []
    deadline = time.monotonic() + 30
    try:
        with capture_logs() as logs:
            while not _cut(logs) and time.monotonic() < deadline:
                burst = [JobSpec(type="t", tenant="acme") for _ in range(BURST)]
                sent += [j.id for j in await queue.submit_many(burst)]
                received += changes(await frames_until(fast, lambda f: len(changes(f)) == BURST))
        assert [job for job, _ in received] == sent  # the fast one got every change, in order
        assert await slow.close_code() == TOO_SLOW
    finally:
        slow.writer.close()


def _cut(logs: list[dict[str, Any]]) -> bool:
    """Whether the server cut a socket off (the close frame waits behind what the slow client
    has not read)."""
    return any(entry["event"] == "api.ws_too_slow" for entry in logs)


# -- long poll ----------------------------------------------------------------------------------


async def test_a_long_poll_answers_at_once_when_changes_wait(api: ApiClient, queue: Queue) -> None:
    response = await api.get("/v1/events?timeout_s=0", headers=key(ACME))
    start = (await response.json())["last_event_id"]
    acme_job = await submit(api)
    await submit(api, BOLT)
    started = time.monotonic()
    response = await api.get(f"/v1/events?after={start}&timeout_s=30", headers=key(ACME))
    assert response.status == 200
    page = await response.json()
    assert time.monotonic() - started < 5
    assert [(e["job"]["id"], e["job"]["status"]) for e in page["events"]] == [(acme_job, "pending")]
    assert page["gap"] is False
    # the cursor is past bolt's change too: the next poll has nothing
    response = await api.get(
        f"/v1/events?after={page['last_event_id']}&timeout_s=0", headers=key(ACME)
    )
    assert (await response.json())["events"] == []


async def test_a_long_poll_waits_up_to_its_timeout_when_nothing_happens(api: ApiClient) -> None:
    started = time.monotonic()
    response = await api.get("/v1/events?timeout_s=1", headers=key(ACME))
    waited = time.monotonic() - started
    page = await response.json()
    assert (page["events"], page["gap"]) == ([], False)
    assert 0.9 <= waited < 10
    # and a change while it waits ends the wait, with the change
    poll = asyncio.ensure_future(
        api.get(f"/v1/events?after={page['last_event_id']}&timeout_s=30", headers=key(ACME))
    )
    await asyncio.sleep(0.3)
    job_id = await submit(api)
    page = await (await asyncio.wait_for(poll, 10)).json()
    assert [e["job"]["id"] for e in page["events"]] == [job_id]


async def test_a_long_poll_skips_other_tenants_changes(api: ApiClient) -> None:
    response = await api.get("/v1/events?timeout_s=0", headers=key(BOLT))
    start = (await response.json())["last_event_id"]
    await submit(api, ACME)
    response = await api.get(f"/v1/events?after={start}&timeout_s=0.5", headers=key(BOLT))
    page = await response.json()
    assert page["events"] == []
    assert page["last_event_id"] != start  # past acme's change: the next poll skips it


async def test_a_long_poll_with_a_bad_cursor_or_timeout_is_a_422(api: ApiClient) -> None:
    for query in ("after=yesterday", "timeout_s=31", "timeout_s=-1", "other=1"):
        response = await api.get(f"/v1/events?{query}", headers=key(ACME))
        await assert_error(response, 422, "validation_error")


# -- failures and shutdown ----------------------------------------------------------------------


async def test_a_subscribe_while_redis_is_unreachable_gets_an_error_frame_not_a_hang(
    down_queue: Queue, keyed_settings: ApiSettings, make_client: MakeApiClient
) -> None:
    api = await make_client(create_app(keyed_settings, down_queue))
    ws = await api.ws_connect("/v1/ws", headers=key(ACME))
    await ws.send_json({"op": "subscribe", "jobs": "all"})
    (error,) = await frames_until(ws, has("error"), timeout_s=15)
    assert error["code"] == "redis_unavailable"
    assert not ws.closed


async def test_a_reader_that_lost_redis_while_the_stream_dropped_changes_says_gap(
    real_redis: Redis,
    redis_server: RedisServer,
    keyed_settings: ApiSettings,
    make_client: MakeApiClient,
) -> None:
    settings = keyed_settings.model_copy(update={"events_max_changes": 10})
    queue = Queue(real_redis, settings)
    async with lossy_proxy("127.0.0.1", redis_server.port) as proxy:
        proxied = connect(proxy.url)
        api = await make_client(create_app(settings, Queue(proxied, settings)))
        sockets = [await api.ws_connect("/v1/ws", headers=key(ACME)) for _ in range(2)]
        for ws, batch in zip(sockets, (False, True), strict=True):
            await subscribe(ws, batch=batch)
        await submit(api)
        seen = [event_ids(await frames_until(ws, has_changes)) for ws in sockets]
        proxy.cut()  # the reader's read fails, and its retries, until restored
        for _ in range(30):  # one entry each: the capped stream drops the oldest
            await queue.submit_many([JobSpec(type="t", tenant="acme")])
        proxy.restore()
        for ws, (event_id,) in zip(sockets, seen, strict=True):
            frames = await frames_until(ws, has_changes, timeout_s=15)
            assert frames[0] == {"op": "gap", "after": event_id.split(":")[0]}
            assert 0 < len(changes(frames[1:])) < 30  # then what the stream still holds
        await api.close()
        await proxied.aclose()


async def test_shutting_the_api_down_closes_its_sockets_as_going_away(api: ApiClient) -> None:
    ws = await api.ws_connect("/v1/ws", headers=key(ACME))
    await subscribe(ws)
    closing = asyncio.ensure_future(api.server.close())
    async with asyncio.timeout(10):
        while (message := await ws.receive()).type is WSMsgType.TEXT:
            pass
    assert (message.type, message.data) == (WSMsgType.CLOSE, 1001)
    await closing


async def test_a_long_poll_answers_a_huge_batch_in_pages_that_resume_mid_batch(
    api: ApiClient, queue: Queue
) -> None:
    response = await api.get("/v1/events?timeout_s=0", headers=key(ACME))
    cursor = (await response.json())["last_event_id"]
    jobs = await queue.submit_many([JobSpec(type="t", tenant="acme") for _ in range(1500)])
    seen: list[str] = []
    for _ in range(2):
        response = await api.get(f"/v1/events?after={cursor}&timeout_s=0", headers=key(ACME))
        page = await response.json()
        seen += [e["job"]["id"] for e in page["events"]]
        cursor = page["last_event_id"]
    assert len(page["events"]) == 500  # the first answer held 1000
    assert sorted(seen) == sorted(j.id for j in jobs)  # each once (chunks may interleave)

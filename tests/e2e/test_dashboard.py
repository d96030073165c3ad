"""The dashboard (DESIGN §6) in headless Chromium, against a real ``tide api`` (auth on) and a
real worker: it follows jobs live over the WebSocket, and by long-polling once the socket is cut.

Runs the system's Chromium (``/usr/bin/chromium``); never downloads a browser. Without it the
test skips, except under CI, where it fails: ``.ci/run`` installs Debian's ``chromium``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from playwright.async_api import Browser, Page, WebSocketRoute, async_playwright, expect
from redis.asyncio import Redis

from app.dev.redis_server import RedisServer
from tests.e2e.conftest import SpawnWorker
from tests.helpers import ACME, ADMIN, ApiProcess, key

pytestmark = pytest.mark.redis

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WAIT_MS = 15_000


@pytest.fixture
def chromium() -> Path:
    if not CHROMIUM.exists():
        message = (
            f"the dashboard's browser test needs Chromium at {CHROMIUM} (apt install chromium)"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return CHROMIUM


@pytest.fixture
async def browser(chromium: Path) -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=str(chromium), args=ARGS)
        yield launched
        await launched.close()


async def submit(base: str, **body: object) -> str:
    job = {"type": "echo", "payload": 1, **body}
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{base}/v1/jobs", json=job, headers=key(ACME)) as response,
    ):
        assert response.status == 201, await response.text()
        job_id: str = (await response.json())["id"]
        return job_id


async def expect_succeeded(page: Page, job_id: str) -> None:
    row = page.locator(f'[data-testid="job-row"][data-job-id="{job_id}"]')
    await expect(row).to_have_attribute("data-status", "succeeded", timeout=WAIT_MS)


async def test_the_dashboard_follows_jobs_live_then_by_polling_once_the_socket_is_cut(
    redis_server: RedisServer,
    real_redis: Redis,
    spawn_worker: SpawnWorker,
    browser: Browser,
    tmp_path: Path,
) -> None:
    settings = {
        "API_KEYS": f"acme:{ACME}",
        "ADMIN_API_KEYS": ADMIN,
        "LOG_LEVEL": "warning",
        "SHUTDOWN_GRACE_S": "1",
    }
    with ApiProcess(redis_server.url, tmp_path / "api.log", **settings) as api:
        spawn_worker(concurrency=2)
        page = await browser.new_page()
        elsewhere: list[str] = []
        page.on("request", lambda r: r.url.startswith(api.base) or elsewhere.append(r.url))
        failures: list[str] = []
        page.on("pageerror", lambda error: failures.append(str(error)))
        sockets: list[WebSocketRoute] = []
        cut = False

        async def socket(route: WebSocketRoute) -> None:
            if cut:  # the page's later tries fail too: it must stay on the long poll
                await route.close(code=1011)
                return
            route.connect_to_server()
            sockets.append(route)

        await page.route_web_socket(re.compile(r"/v1/ws\?"), socket)
        await page.goto(f"{api.base}/")
        await page.get_by_test_id("login-key").fill(ACME)
        await page.get_by_test_id("login-submit").click()
        connection = page.get_by_test_id("connection")
        await expect(connection).to_have_attribute("data-state", "live", timeout=WAIT_MS)

        first = await submit(api.base)
        await expect_succeeded(page, first)
        number = re.compile(r"^\d+$")
        for counter in ("waiting", "running", "dead", "succeeded-per-min"):
            await expect(page.get_by_test_id(f"counter-{counter}")).to_have_text(number)
        await expect(page.get_by_test_id("counter-workers")).to_have_text("1")
        await expect(page.get_by_test_id("counter-rpm")).to_have_text(re.compile(r"^\d+ / \d+$"))
        await expect(page.get_by_test_id("worker-row")).to_have_count(1)
        await expect(page.get_by_test_id("tenants-message")).to_contain_text("admin keys")
        await page.locator(f'[data-testid="job-row"][data-job-id="{first}"]').click()
        details = page.get_by_test_id("detail-fields")
        await expect(details).to_have_attribute("data-status", "succeeded")
        await expect(details).to_contain_text("1 of 3")
        await expect(page.get_by_test_id("detail-result")).to_have_text("1")

        doomed = await submit(api.base, type="fail", max_attempts=1)
        dead = page.locator(f'[data-testid="dead-row"][data-job-id="{doomed}"]')
        await dead.get_by_test_id("dead-retry").click(timeout=WAIT_MS)
        await expect(page.get_by_test_id("dead-message")).to_contain_text("runs again")

        cut = True
        for route in sockets:
            await route.close(code=1011)
        await expect(connection).to_have_attribute("data-state", "polling", timeout=WAIT_MS)
        await expect_succeeded(page, await submit(api.base))
        await expect(connection).to_have_attribute("data-state", "polling")
        await expect(page.get_by_test_id("job-row")).to_have_count(3)

        cut = False  # the page tries the socket again every few seconds
        await expect(connection).to_have_attribute("data-state", "live", timeout=WAIT_MS)
        await page.close()
    assert not elsewhere, f"the page fetched from elsewhere: {elsewhere}"
    assert not failures, failures
    assert not api.errors(), "\n".join(api.errors())


COUNT_REDRAWS = """
window.redraws = 0;
document.addEventListener("DOMContentLoaded", () => {
  const rows = document.querySelector('[data-testid="jobs-body"]');
  new MutationObserver(() => { window.redraws += 1; }).observe(rows, {
    childList: true, subtree: true, attributes: true, characterData: true,
  });
});
"""


async def test_ten_thousand_events_at_once_cost_a_few_redraws_of_at_most_fifty_rows(
    redis_server: RedisServer, real_redis: Redis, browser: Browser, tmp_path: Path
) -> None:
    """A socket stood in for by the test pours 10,000 changes (batched frames) into the page
    within a moment: the page redraws a few times, not once per change, and keeps 50 rows."""
    ids = [f"job-{n:05d}" for n in range(10_000)]

    def frames() -> list[str]:
        return [
            json.dumps(
                {
                    "op": "events",
                    "events": [
                        {
                            "event_id": f"1-{n}:0",
                            "job": {
                                "id": ids[n],
                                "status": "succeeded",
                                "queue": "q",
                                "tenant": "t",
                            },
                        }
                        for n in range(start, start + 100)
                    ],
                }
            )
            for start in range(0, len(ids), 100)
        ]

    async def socket(route: WebSocketRoute) -> None:
        def on_message(message: str | bytes) -> None:
            if json.loads(message)["op"] == "subscribe":
                route.send(json.dumps({"op": "subscribed", "jobs": "all", "after": None}))
                for frame in frames():
                    route.send(frame)

        route.on_message(on_message)

    settings = {"LOG_LEVEL": "warning", "SHUTDOWN_GRACE_S": "1"}  # auth off: no key asked
    with ApiProcess(redis_server.url, tmp_path / "api.log", **settings) as api:
        page = await browser.new_page()
        await page.add_init_script(COUNT_REDRAWS)
        await page.route_web_socket(re.compile(r"/v1/ws\?"), socket)
        await page.goto(f"{api.base}/")
        rows = page.get_by_test_id("job-row")
        await expect(rows.first).to_have_attribute("data-job-id", ids[-1], timeout=WAIT_MS)
        await expect(rows).to_have_count(50)
        await expect(page.get_by_test_id("connection")).to_have_attribute("data-state", "live")
        redraws = await page.evaluate("window.redraws")
        await page.close()
    assert 1 <= redraws <= 10, redraws

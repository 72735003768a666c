"""Nothing stuck (issue 10, items 6-9): a crashed renderer, a dead browser or Playwright driver,
work that outlives its 504, and nested one-shots. Real Chromium, real processes killed by pid."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from typing import Any

import aiohttp
import psutil
from capture import Capture
from yarl import URL

from mock_server.browser import SessionPage
from mock_server.state import BROWSER, REGISTRY
from tests.emulator import RunningEmulator, emulator_config
from tests.pages import PageServer


def session_page(emulator: RunningEmulator, sid: str) -> SessionPage:
    page = emulator.app[REGISTRY].get(sid, "user_123").page
    assert isinstance(page, SessionPage)
    return page


async def crash_renderer(sp: SessionPage) -> None:
    """Crash the page's renderer for real (Chromium's chrome://crash) and await the event."""
    crashed = asyncio.Event()
    sp.page.on("crash", lambda _page: crashed.set())
    with contextlib.suppress(Exception):
        await asyncio.wait_for(sp.page.goto("chrome://crash"), 10)
    await asyncio.wait_for(crashed.wait(), 10)


async def status_becomes(emulator: RunningEmulator, sid: str, status: str) -> dict[str, Any]:
    async def poll() -> dict[str, Any]:
        while True:
            session = await emulator.get(sid)
            if session["status"] == status:
                return session
            await asyncio.sleep(0)

    return await asyncio.wait_for(poll(), 10)


async def test_a_crashed_renderer_ends_its_idle_session_in_error(emulator, pages):
    sid = (await emulator.create())["id"]
    await emulator.act(sid, "goto", {"url": pages.url("/counter")})
    await crash_renderer(session_page(emulator, sid))
    ended = await status_becomes(emulator, sid, "error")
    assert ended["billedCredits"] == 1 and ended["closeReason"] == "error"
    # Billed once: the action after it is refused as inactive and bills nothing more.
    refused = await emulator.act(sid, "title", expect=409)
    assert refused["session"]["billedCredits"] == 1
    assert emulator.app[REGISTRY].active_count("user_123") == 0


async def test_a_crash_during_an_action_answers_503_and_ends_the_session(emulator, pages):
    sid = (await emulator.create())["id"]
    await emulator.act(sid, "goto", {"url": pages.url("/counter")})
    sp = session_page(emulator, sid)
    waiting = asyncio.create_task(
        emulator.act(sid, "wait_for_selector", {"selector": "#never", "timeout": 20000}, expect=503)
    )
    await asyncio.wait_for(until(lambda: sp.lock.locked()), 10)
    await crash_renderer(sp)
    answer = await asyncio.wait_for(waiting, 10)
    assert answer["session"]["status"] == "error", answer
    assert "crashed" in answer["error"]
    assert answer["expiresInSeconds"] == 0


async def test_the_browser_killed_during_an_action_answers_503_and_ends_the_session(
    emulator, pages
):
    sid = (await emulator.create())["id"]
    await emulator.act(sid, "goto", {"url": pages.url("/counter")})
    sp = session_page(emulator, sid)
    waiting = asyncio.create_task(
        emulator.act(sid, "wait_for_selector", {"selector": "#never", "timeout": 20000}, expect=503)
    )
    await asyncio.wait_for(until(lambda: sp.lock.locked()), 10)
    os.kill(emulator.app[BROWSER].browser_pids()[0], signal.SIGKILL)
    answer = await asyncio.wait_for(waiting, 15)
    assert answer["session"]["status"] == "error", answer
    again = (await emulator.create())["id"]
    assert (await emulator.act(again, "goto", {"url": pages.url("/form")}))["title"] == "Login form"


async def test_the_pool_never_hands_out_a_crashed_spare(emulator, pages):
    browser = emulator.app[BROWSER]
    first = (await emulator.create())["id"]
    await browser.settle()
    assert browser.spares == 1
    spare = browser._pool[0]
    await crash_renderer(spare)
    sid = (await emulator.create())["id"]
    assert session_page(emulator, sid) is not spare
    answer = await emulator.act(sid, "goto", {"url": pages.url("/form")})
    assert answer["title"] == "Login form"
    assert (await emulator.get(first))["status"] == "active"


async def until(condition: Any) -> None:
    while not condition():
        await asyncio.sleep(0)


async def test_a_dead_playwright_driver_is_restarted_on_the_next_create(emulator, pages):
    browser = emulator.app[BROWSER]
    sid = (await emulator.create())["id"]
    await emulator.act(sid, "goto", {"url": pages.url("/counter")})
    driver = browser.driver_pid
    assert driver is not None and driver in {p.pid for p in psutil.Process().children()}
    os.kill(driver, signal.SIGKILL)
    await asyncio.wait_for(until(lambda: not browser.driver_alive()), 10)
    status, health = await emulator.call("GET", "/__admin/health", token=None)
    assert status == 503 and health["status"] == "degraded" and not health["success"], health
    assert "driver" in health["error"]
    # The session on the dead driver ends in error; the next create gets a new driver.
    gone = await emulator.act(sid, "title", expect=503)
    assert gone["session"]["status"] == "error"
    again = (await emulator.create())["id"]
    assert (await emulator.act(again, "goto", {"url": pages.url("/form")}))["title"] == "Login form"
    assert browser.driver_pid not in (None, driver)
    status, health = await emulator.call("GET", "/__admin/health", token=None)
    assert status == 200 and health["status"] == "ready", health


async def test_after_a_timeout_on_a_looping_page_the_session_navigates_again(pages):
    running = await RunningEmulator(emulator_config(action_timeout=2)).start()
    try:
        sid = (await running.create())["id"]
        await running.act(sid, "goto", {"url": pages.url("/busy")})
        timed_out = await running.act(sid, "title", expect=504)
        assert timed_out["expiresInSeconds"] > 0
        answer = await running.act(sid, "goto", {"url": pages.url("/form")})
        assert answer["title"] == "Login form"
        assert (await running.act(sid, "title"))["title"] == "Login form"
    finally:
        await running.stop()


async def test_markdown_of_a_page_over_the_cap_is_a_413_without_memory_growth(emulator, pages):
    sid = (await emulator.create())["id"]
    await emulator.act(sid, "goto", {"url": pages.url("/big?mb=8")})
    rss = psutil.Process().memory_info().rss
    refused = await emulator.act(sid, "content", {"format": "markdown"}, expect=413)
    assert "at most" in refused["error"] and refused["expiresInSeconds"] > 0
    assert psutil.Process().memory_info().rss - rss < 150 * 1024 * 1024
    # Under the cap it converts.
    await emulator.act(sid, "goto", {"url": pages.url("/big?mb=0.5")})
    converted = await emulator.act(sid, "content", {"format": "markdown"})
    assert converted["content"].startswith("Some words")


def oneshot_client(running: RunningEmulator) -> Capture:
    client = Capture("key", "secret", {"useEdge": True})
    client.EDGE_URL = running.url  # the SDK reads it from the instance first
    return client


async def fetch_oneshot(url: str) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http:
        async with http.get(URL(url, encoded=True)) as resp:
            assert resp.content_type == "application/json", await resp.text()
            return resp.status, await resp.json()


async def test_a_one_shot_of_the_emulator_itself_is_refused(emulator, pages):
    client = oneshot_client(emulator)
    port = URL(emulator.url).port
    inner = client.build_content_url(pages.url("/"))
    nested = inner
    for _ in range(5):
        nested = client.build_content_url(nested)
    for target in (
        inner,
        nested,
        f"http://localhost:{port}/",
        f"http://127.1:{port}/key/x/content?url=a",
        f"http://[::1]:{port}/",
    ):
        status, body = await asyncio.wait_for(fetch_oneshot(client.build_content_url(target)), 10)
        assert status == 400 and "itself" in body["error"], (target, body)
        assert body["success"] is False
    # Another server on loopback is still captured.
    status, body = await fetch_oneshot(client.build_content_url(pages.url("/")))
    assert status == 200 and body["success"], body


async def test_capture_slots_queue_then_answer_503():
    site = PageServer()
    await site.start()
    config = emulator_config(oneshot_slots=1, oneshot_queue=1, oneshot_wait=1.0)
    running = await RunningEmulator(config).start()
    try:
        client = oneshot_client(running)
        holding = asyncio.create_task(fetch_oneshot(client.build_content_url(site.url("/slow"))))
        await asyncio.wait_for(until(lambda: site.hits.get("slow") == 1), 20)
        url = client.build_content_url(site.url("/"))
        answers = await asyncio.wait_for(
            asyncio.gather(fetch_oneshot(url), fetch_oneshot(url + "&delay=0")), 20
        )
        assert [status for status, _ in answers] == [503, 503], answers
        errors = sorted(body["error"] for _, body in answers)
        assert "queue is full" in " ".join(errors) and "within 1 s" in " ".join(errors), errors
    finally:
        await site.stop()  # answers /slow at once
        status, _ = await asyncio.wait_for(holding, 30)
        assert status == 200
        await running.stop()

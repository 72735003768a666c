"""The browser backend on real Chromium: discovery, lazy launch, the pool, crashes and CDP."""

from __future__ import annotations

import asyncio
import os
import signal
import statistics
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from playwright.async_api import async_playwright

from mock_server import chromium as browser_module
from mock_server.actions import parse_action_request, run_action
from mock_server.browser import INSTALL_HINT, BrowserManager, find_browser
from mock_server.devices import DEVICES, device_list
from mock_server.errors import BrowserUnavailableError
from tests.pages import PageServer

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.browser]


async def goto(sp, url: str) -> dict:
    action_type, payload = parse_action_request({"type": "goto", "payload": {"url": url}})
    return await run_action(sp, action_type, payload, timeout_s=10)


# -- discovery -------------------------------------------------------------------------------


async def test_find_browser_explicit_path_wins_even_if_missing(tmp_path: Path) -> None:
    missing = str(tmp_path / "no-such-chrome")
    assert find_browser(missing) == missing


@pytest.fixture
def playwright_browsers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty Playwright browsers folder, which Playwright is asked about afresh."""
    root = tmp_path / "ms-playwright"
    root.mkdir()
    monkeypatch.setenv("PLAYWRIGHT_BROWSERS_PATH", str(root))
    browser_module._playwright_chromium.cache_clear()
    yield root
    browser_module._playwright_chromium.cache_clear()


async def test_find_browser_falls_back_to_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chromium: str, playwright_browsers: Path
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "google-chrome").symlink_to(chromium)
    monkeypatch.setenv("PATH", str(bin_dir))
    assert find_browser(None) == str(bin_dir / "google-chrome")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert find_browser(None) is None


async def test_find_browser_order_explicit_then_playwright_then_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chromium: str, playwright_browsers: Path
) -> None:
    # Where Playwright itself says its Chromium goes, under PLAYWRIGHT_BROWSERS_PATH.
    named = browser_module._playwright_chromium()
    assert named is not None and Path(named).is_relative_to(playwright_browsers)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "chromium").symlink_to(chromium)
    monkeypatch.setenv("PATH", str(bin_dir))
    assert find_browser(None) == str(bin_dir / "chromium")  # not installed: PATH
    Path(named).parent.mkdir(parents=True)
    Path(named).write_text("#!/bin/sh\n")
    Path(named).chmod(0o755)
    assert find_browser(None) == named  # installed: Playwright's wins over PATH
    explicit = str(tmp_path / "chrome")
    assert find_browser(explicit) == explicit  # explicit wins over both
    # Playwright was asked once; every later lookup used the cached answer.
    assert browser_module._playwright_chromium.cache_info().misses == 1


async def test_device_list_shape() -> None:
    iphone = DEVICES["iphone_15_pro"]
    assert iphone.viewport.width == 393 and iphone.viewport.deviceScaleFactor == 3
    entry = next(d for d in device_list() if d["key"] == "iphone_15_pro")
    assert entry["name"] == "iPhone 15 Pro" and "iPhone" in entry["userAgent"]
    assert set(entry["viewport"]) == {"width", "height", "deviceScaleFactor", "isMobile",
                                      "hasTouch", "isLandscape"}  # fmt: skip
    for key in ("iphone_15", "iphone_14", "pixel_8", "galaxy_s23", "ipad", "ipad_pro_12_9",
                "ipad_air", "galaxy_tab_s9", "desktop_hd", "laptop"):  # fmt: skip
        assert key in DEVICES


# -- the manager -----------------------------------------------------------------------------


async def test_missing_executable_is_unavailable_with_hint(tmp_path: Path) -> None:
    for executable in (str(tmp_path / "nope"), None):
        manager = BrowserManager(executable)
        try:
            with pytest.raises(BrowserUnavailableError) as info:
                await manager.open_session_page("s1")
            assert INSTALL_HINT in info.value.message
            assert "apt-get install -y chromium" in info.value.message
            assert not manager.launched
            await manager.warm_up()  # swallowed and remembered: the server stays up
            assert manager.last_error is not None
        finally:
            await manager.close()


async def test_lazy_launch_warm_pool_and_session_page(chromium: str, site: PageServer) -> None:
    manager = BrowserManager(chromium, pool_size=2)
    try:
        assert not manager.launched
        assert manager.browser_pids() == []
        await manager.warm_up()
        assert manager.launched
        timings = []
        for i in range(5):
            await manager.warm_up()  # refill the pool, as the idle server does between creates
            started = time.perf_counter()
            sp = await manager.open_session_page(f"s{i}")
            timings.append(time.perf_counter() - started)
            await sp.close()
            await sp.close()  # idempotent
        assert statistics.median(timings) < 0.05, timings
        sp = await manager.open_session_page("s-last")
        assert sp.session_id == "s-last" and sp.devtools_url is None
        assert sp.page.viewport_size == {"width": 1440, "height": 900}
        assert (await goto(sp, site.url("/counter")))["title"] == "Counter"
        context = await manager.new_context()
        assert context.pages == []
        await context.close()
        pids = manager.browser_pids()
        assert pids and all(psutil.pid_exists(pid) for pid in pids)
        await sp.close()
    finally:
        await manager.close()
    assert not _is_running(pids[0])  # the browser's root process is gone


async def test_concurrent_opens_launch_once(chromium: str) -> None:
    manager = BrowserManager(chromium, pool_size=0)
    try:
        pages = await asyncio.gather(*(manager.open_session_page(f"s{i}") for i in range(3)))
        cmdlines = [_cmdline(pid) for pid in manager.browser_pids()]
        roots = [c for c in cmdlines if c.strip() and "--type=" not in c]
        assert len(roots) == 1
        for sp in pages:
            await sp.close()
    finally:
        await manager.close()


async def test_crashed_browser_is_relaunched(chromium: str, site: PageServer) -> None:
    manager = BrowserManager(chromium, pool_size=1)
    try:
        sp = await manager.open_session_page("before")
        root = manager.browser_pids()[0]
        disconnected = asyncio.Event()
        sp.context.browser.on("disconnected", lambda _b: disconnected.set())
        os.kill(root, signal.SIGKILL)
        await asyncio.wait_for(disconnected.wait(), 10)
        after = await manager.open_session_page("after")
        assert (await goto(after, site.url("/form")))["title"] == "Login form"
        assert manager.browser_pids()[0] != root
        with pytest.raises(BrowserUnavailableError):
            await goto(sp, site.url("/"))
        await sp.close()
        await after.close()
    finally:
        await manager.close()


async def test_cdp_session_is_reachable_over_connect_url(chromium: str, site: PageServer) -> None:
    manager = BrowserManager(chromium, pool_size=0)
    try:
        sp = await manager.open_session_page("cdp-1", cdp=True)
        assert sp.devtools_url is not None and sp.devtools_url.startswith("ws://127.0.0.1:")
        await goto(sp, site.url("/counter"))
        async with async_playwright() as client:
            remote = await client.chromium.connect_over_cdp(sp.devtools_url)
            remote_pages = [p for c in remote.contexts for p in c.pages]
            page = next(p for p in remote_pages if p.url == site.url("/counter"))
            assert await page.title() == "Counter"
            await remote.close()  # disconnects the client only
        assert (await goto(sp, site.url("/form")))["title"] == "Login form"
        # The shared browser (launched first: it tells the version for the user agent) stays.
        cdp_root = next(
            p for p in manager.browser_pids() if "--remote-debugging-port" in _cmdline(p)
        )
        await sp.close()
        assert not _is_running(cdp_root)
    finally:
        await manager.close()


def _cmdline(pid: int) -> str:
    try:
        return " ".join(psutil.Process(pid).cmdline())
    except psutil.Error:
        return ""


def _is_running(pid: int) -> bool:
    """True for a live (not zombie) process."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


async def test_no_spare_page_is_kept_at_the_session_limit(chromium: str) -> None:
    manager = BrowserManager(chromium, pool_size=1, max_live=2)
    try:
        await manager.warm_up()
        assert manager.spares == 1
        first = await manager.open_session_page("one")
        await manager.settle()
        assert manager.spares == 1  # one of two sessions open: a spare is kept
        second = await manager.open_session_page("two")
        await manager.settle()
        assert manager.spares == 0  # at the limit a spare would only cost a renderer
        await second.close()
        await manager.settle()
        assert manager.spares == 1
        await first.close()
    finally:
        await manager.close()

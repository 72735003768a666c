"""Fixtures of the real-Chromium tests: one browser manager and one page server per module.

Tests here use `loop_scope="module"` so the shared browser, the page server and the tests run
on one event loop; each test gets a fresh session page and closes it.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from mock_server.browser import BrowserManager, SessionPage, find_browser
from tests.pages import PageServer

CHROMIUM = find_browser(None) or shutil.which("chromium")


@pytest.fixture(scope="session")
def chromium() -> str:
    if CHROMIUM is None:
        pytest.skip("no Chromium installed")
    return CHROMIUM


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def site() -> AsyncIterator[PageServer]:
    server = PageServer()
    await server.start()
    yield server
    await server.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def manager(chromium: str) -> AsyncIterator[BrowserManager]:
    mgr = BrowserManager(chromium, pool_size=2)
    yield mgr
    await mgr.close()


@pytest_asyncio.fixture(loop_scope="module")
async def session(manager: BrowserManager) -> AsyncIterator[SessionPage]:
    sp = await manager.open_session_page("test-session")
    yield sp
    await sp.close()

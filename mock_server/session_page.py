"""One session's page: `SessionPage` holds the Playwright page and the state its actions read and
update (viewport emulation, console messages, page errors, mouse position, the crash flag).
`mock_server.browser` opens and pools them; this module launches nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from playwright.async_api import Error as PlaywrightError

if TYPE_CHECKING:
    from playwright.async_api import BrowserContext, CDPSession, ConsoleMessage, Page

DEFAULT_VIEWPORT_WIDTH = 1440
DEFAULT_VIEWPORT_HEIGHT = 900
DEFAULT_DEVICE_SCALE_FACTOR = 1.0

# Bounded so a chatty page cannot grow a session's memory without limit.
MAX_CONSOLE_MESSAGES = 1000
MAX_PAGE_ERRORS = 1000
# How long stopping a stuck page's script may take before giving up on it.
_STOP_SCRIPTS_S = 2.0


@dataclass(frozen=True, slots=True)
class Viewport:
    """The live emulation state of a session page (`user_agent` None: the standard one)."""

    width: int = DEFAULT_VIEWPORT_WIDTH
    height: int = DEFAULT_VIEWPORT_HEIGHT
    device_scale_factor: float = DEFAULT_DEVICE_SCALE_FACTOR
    is_mobile: bool = False
    has_touch: bool = False
    user_agent: str | None = None


class SessionPage:
    """One session's page and the state its actions read and update.

    The API layer holds `lock` while an action runs, so actions of one session run in order.
    """

    def __init__(
        self,
        context: BrowserContext,
        page: Page,
        *,
        session_id: str = "",
        allow_file_urls: bool = False,
        devtools_url: str | None = None,
        user_data_dir: str | None = None,
    ) -> None:
        self.session_id = session_id
        self.context = context
        self.page = page
        self.lock = asyncio.Lock()
        # A dedicated CDP browser's own DevTools endpoint (relayed by mock_server.cdp, never
        # handed out); None for a page of the shared browser.
        self.devtools_url = devtools_url
        self.allow_file_urls = allow_file_urls
        self.viewport = Viewport()
        # The desktop user agent the page had before any emulateDevice (set by the manager).
        self.standard_user_agent: str | None = None
        self.console_messages: deque[dict[str, Any]] = deque(maxlen=MAX_CONSOLE_MESSAGES)
        self.page_errors: deque[dict[str, Any]] = deque(maxlen=MAX_PAGE_ERRORS)
        self.mouse_x = 0.0
        self.mouse_y = 0.0
        self._cdp: CDPSession | None = None
        self._user_data_dir = user_data_dir
        self._closed = False
        self.crashed = False
        self.on_close: Callable[[SessionPage], None] | None = None
        # Called once when the renderer crashes or the browser under the page goes away.
        self.on_crash: Callable[[SessionPage], None] | None = None
        page.on("console", self._on_console)
        page.on("pageerror", self._on_page_error)
        page.on("crash", lambda _page: self.mark_crashed())

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def gone(self) -> bool:
        """True when no action can run on the page any more: closed, its renderer crashed, or
        its browser disconnected."""
        if self._closed or self.crashed or self.page.is_closed():
            return True
        browser = self.context.browser
        return browser is not None and not browser.is_connected()

    def mark_crashed(self) -> None:
        """The renderer crashed (or the browser died): remember it and tell `on_crash` once."""
        if self.crashed:
            return
        self.crashed = True
        if self.on_crash is not None:
            self.on_crash(self)

    def _on_console(self, message: ConsoleMessage) -> None:
        self.console_messages.append(
            {"type": message.type, "text": message.text, "timestamp": _now_ms()}
        )

    def _on_page_error(self, error: PlaywrightError) -> None:
        entry: dict[str, Any] = {"message": error.message, "timestamp": _now_ms()}
        if error.stack:
            entry["stack"] = error.stack
        self.page_errors.append(entry)

    async def cdp(self) -> CDPSession:
        """A CDP session on the page, for emulation Playwright cannot change on a live page."""
        if self._cdp is None:
            self._cdp = await self.context.new_cdp_session(self.page)
        return self._cdp

    async def stop_scripts(self) -> bool:
        """Terminate the JavaScript running in the page (CDP `Runtime.terminateExecution`), so
        a page stuck in a loop takes actions again; False when the page did not answer."""
        try:
            cdp = await asyncio.wait_for(self.cdp(), _STOP_SCRIPTS_S)
            await asyncio.wait_for(cdp.send("Runtime.terminateExecution"), _STOP_SCRIPTS_S)
        except (PlaywrightError, TimeoutError):
            return False
        return True

    async def close(self) -> None:
        """Close the context (and a dedicated CDP browser with it); idempotent."""
        if self._closed:
            return
        self._closed = True
        if self.on_close is not None:
            self.on_close(self)
        with contextlib.suppress(PlaywrightError):
            await self.context.close()
        if self._user_data_dir:
            await asyncio.to_thread(shutil.rmtree, self._user_data_dir, True)


def _now_ms() -> int:
    return int(time.time() * 1000)

"""The local-browser backend: owning Chromium's process and handing out session pages.

`BrowserManager` owns one shared headless Chromium (launched lazily, or connected to a remote
Playwright browser server; relaunched after a crash), a small pool of ready contexts so that
creating a session with a warm browser costs a few milliseconds, the Chromium that shows
scrollbars, and one dedicated Chromium per session that asked for a CDP `connectUrl`. Finding
Chromium, its flags and its user agent are `mock_server.chromium`'s; one session's page and its
state are `mock_server.session_page`'s (both re-exported here). This module knows nothing of
HTTP, sessions' lifetime or billing; it raises only `mock_server.errors` errors and never reads
`os.environ`.

Longer than 500 lines: the driver, the shared browser, the pool and the CDP browsers are one
lifetime (one launch lock, one set of crash and death hooks: a crashed page ends its session, a
dead driver or browser is restarted on the next open); split, that state would be shared
across modules.

Session pages start at a 1440x900 viewport with device scale factor 1, the default of Capture's
one-shot screenshot API (`vw`/`vh`/`scaleFactor`). Every page (sessions and one-shots) gets a
standard Chrome user agent (`standard_user_agent`), never Chromium's `HeadlessChrome` one.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import tempfile
import uuid
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import async_playwright

from mock_server.chromium import (
    CHROMIUM_ARGS,
    INSTALL_HINT,
    error_message,
    find_browser,
    standard_user_agent,
)
from mock_server.errors import BrowserUnavailableError
from mock_server.session_page import (
    DEFAULT_DEVICE_SCALE_FACTOR,
    DEFAULT_VIEWPORT_HEIGHT,
    DEFAULT_VIEWPORT_WIDTH,
    SessionPage,
    Viewport,
)

# Re-exported: the names callers have always imported from here.
__all__ = [
    "CHROMIUM_ARGS",
    "DEFAULT_DEVICE_SCALE_FACTOR",
    "INSTALL_HINT",
    "BrowserManager",
    "SessionPage",
    "Viewport",
    "error_message",
    "find_browser",
    "standard_user_agent",
]

if TYPE_CHECKING:
    from playwright.async_api import (
        Browser,
        BrowserContext,
        Playwright,
    )

# Marks the Chromium launched to show scrollbars (see BrowserManager.new_context).
_SCROLLBARS_MARK = "--capture-replay-scrollbars"

# Waiting for Chromium to write DevToolsActivePort after launch; it is normally immediate.
_DEVTOOLS_PORT_WAIT_S = 10.0


def _child_pids() -> set[int]:
    with contextlib.suppress(psutil.Error):
        return {child.pid for child in psutil.Process().children()}
    return set()


def _is_node(pid: int) -> bool:
    with contextlib.suppress(psutil.Error):
        return "node" in psutil.Process(pid).name()
    return False


class BrowserManager:
    """Owns Playwright, the shared Chromium, the ready-context pool and per-session CDP browsers."""

    def __init__(
        self,
        executable: str | None,
        *,
        pool_size: int = 2,
        allow_file_urls: bool = False,
        max_live: int | None = None,
        endpoint: str | None = None,
    ) -> None:
        self.executable = executable
        # A Playwright browser server (ws://...) to connect to instead of launching Chromium.
        self.endpoint = endpoint
        self.pool_size = max(0, pool_size)
        # No spare page is kept while this many session pages are open: at the session limit
        # a spare would only cost memory (a renderer process each).
        self.max_live = max_live
        self._live: set[SessionPage] = set()
        self.allow_file_urls = allow_file_urls
        self.last_error: BrowserUnavailableError | None = None
        # The standard Chrome user agent of the launched Chromium (known after the first launch).
        self.user_agent: str | None = None
        self._playwright: Playwright | None = None
        self._browser: Browser | None = None
        self._scrollbar_browser: Browser | None = None  # see new_context(scrollbars=True)
        self._launched = False
        self._shared_launched = False  # the shared browser (not only CDP ones) was launched
        self._launch_lock = asyncio.Lock()
        self._pool: deque[SessionPage] = deque()
        self._refill_task: asyncio.Task[None] | None = None
        self._cdp_pages: set[SessionPage] = set()
        # Marks this manager's Chromium processes so browser_pids() can find them.
        self._marker = f"--capture-replay-owner={uuid.uuid4().hex}"
        self._closing = False
        # Told when a session's page crashes (its renderer, or the browser under it), so the
        # session can end with status `error` at once instead of living on as a zombie.
        self.on_page_crash: Callable[[SessionPage], None] | None = None
        self._closers: set[asyncio.Task[None]] = set()
        # The Playwright driver (a `node` child process): when it dies, Playwright's objects
        # still say connected but every call fails, so its pid is watched.
        self._driver_pid: int | None = None
        self._driver_lock = asyncio.Lock()

    @property
    def launched(self) -> bool:
        """True once a browser process has been launched (replay mode must never launch one)."""
        return self._launched

    @property
    def driver_pid(self) -> int | None:
        """Pid of the running Playwright driver process, if one was started."""
        return self._driver_pid

    def driver_alive(self) -> bool:
        """False once the Playwright driver process has exited (or was killed)."""
        if self._playwright is None or self._driver_pid is None:
            return self._playwright is not None
        try:
            proc = psutil.Process(self._driver_pid)
            return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
        except psutil.Error:
            return False

    def health(self) -> tuple[str, str | None]:
        """`ready`, or `degraded` with the reason: the driver or the shared browser died and
        the next create (or one-shot) restarts them."""
        if self._playwright is not None and not self.driver_alive():
            return "degraded", "The Playwright driver exited; the next create restarts it"
        if self._shared_launched and self._browser is None:
            if self._launch_lock.locked():
                return "degraded", "The browser is being relaunched"
            return "degraded", "The browser exited; the next create relaunches it"
        return "ready", None

    async def warm_up(self) -> None:
        """Launch the browser and fill the pool; a failure is remembered, not raised."""
        try:
            await self._ensure_browser()
            await self._fill_pool()
        except BrowserUnavailableError as err:
            self.last_error = err

    async def open_session_page(self, session_id: str, *, cdp: bool = False) -> SessionPage:
        """A ready page for a new session; raises BrowserUnavailableError when none can be had."""
        if cdp:
            return await self._open_cdp_page(session_id)
        browser = await self._ensure_browser()
        sp: SessionPage | None = None
        while self._pool:
            candidate = self._pool.popleft()
            if not candidate.gone:
                sp = candidate
                break
            self._discard(candidate)
        if sp is None:
            sp = await self._new_pooled_page(browser)
        sp.session_id = session_id
        self._live.add(sp)
        sp.on_close = self._released
        self._schedule_refill()
        return sp

    @property
    def spares(self) -> int:
        """Ready pages waiting in the pool."""
        return len(self._pool)

    async def settle(self) -> None:
        """Wait for a pool refill in progress (tests and benchmarks)."""
        if self._refill_task is not None:
            await asyncio.gather(self._refill_task, return_exceptions=True)

    def _released(self, sp: SessionPage) -> None:
        self._live.discard(sp)
        self._schedule_refill()

    def _crashed(self, sp: SessionPage) -> None:
        if sp in self._pool:
            # A crashed spare is never handed out: drop it and make another.
            self._pool.remove(sp)
            self._discard(sp)
            self._schedule_refill()
        elif sp in self._live and self.on_page_crash is not None:
            self.on_page_crash(sp)

    def _discard(self, sp: SessionPage) -> None:
        task = asyncio.create_task(sp.close())
        self._closers.add(task)
        task.add_done_callback(self._closers.discard)

    def _wants_spare(self) -> bool:
        if len(self._pool) >= self.pool_size or self._closing:
            return False
        return self.max_live is None or len(self._live) < self.max_live

    async def new_context(
        self, *, scrollbars: bool = False, **context_options: Any
    ) -> BrowserContext:
        """A fresh raw context on the shared browser (for one-shot endpoints); with `scrollbars`,
        on a second Chromium that shows them (headless Chromium hides scrollbars browser-wide,
        and no per-page setting undoes that), launched on first use."""
        browser = await (self._ensure_scrollbar_browser() if scrollbars else self._ensure_browser())
        if not context_options.get("user_agent"):
            context_options["user_agent"] = self.user_agent
        try:
            return await browser.new_context(**context_options)
        except PlaywrightError as err:
            raise BrowserUnavailableError(error_message(err), hint=INSTALL_HINT) from err

    def browser_pids(self) -> list[int]:
        """Pids of this manager's Chromium process trees (best effort).

        The shared browser's root process comes first, then its descendants, then the
        dedicated CDP browsers' trees.
        """
        marked: dict[int, tuple[int, str]] = {}
        for proc in psutil.process_iter(["ppid", "cmdline"]):
            cmdline = " ".join(proc.info["cmdline"] or ())
            if self._marker in cmdline:
                marked[proc.pid] = (proc.info["ppid"], cmdline)
        roots = [pid for pid, (ppid, _) in marked.items() if ppid not in marked]
        # The shared browser has no DevTools port of ours; CDP browsers do.
        roots.sort(
            key=lambda pid: (
                "--remote-debugging-port=0" in marked[pid][1],
                _SCROLLBARS_MARK in marked[pid][1],
            )
        )
        ordered: list[int] = []
        for root in roots:
            ordered.append(root)
            with contextlib.suppress(psutil.Error):
                ordered.extend(child.pid for child in psutil.Process(root).children(True))
        return ordered

    async def close(self) -> None:
        """Close every page, context and browser, then stop Playwright."""
        self._closing = True
        if self._refill_task is not None:
            self._refill_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._refill_task
            self._refill_task = None
        for sp in [*self._pool, *self._cdp_pages]:
            await sp.close()
        self._pool.clear()
        self._cdp_pages.clear()
        for browser in (self._browser, self._scrollbar_browser):
            if browser is not None:
                with contextlib.suppress(PlaywrightError):
                    await browser.close()
        self._browser = self._scrollbar_browser = None
        if self._playwright is not None:
            with contextlib.suppress(Exception):
                await self._playwright.stop()
            self._playwright = None

    # -- internals -----------------------------------------------------------------------------

    def _launch_options(self) -> dict[str, Any]:
        if not self.executable:
            raise BrowserUnavailableError(f"No Chromium executable found. {INSTALL_HINT}")
        if not os.path.exists(self.executable):
            raise BrowserUnavailableError(
                f"Browser executable not found: {self.executable}. {INSTALL_HINT}"
            )
        return {"executable_path": self.executable, "headless": True}

    async def _ensure_playwright(self) -> Playwright:
        async with self._driver_lock:
            if self._playwright is not None and not self.driver_alive():
                await self._drop_playwright()
            if self._playwright is None:
                before = _child_pids()
                try:
                    self._playwright = await async_playwright().start()
                except Exception as err:  # the driver could not start at all
                    raise BrowserUnavailableError(
                        f"Could not start the Playwright driver: {err}"
                    ) from err
                started = [pid for pid in _child_pids() - before if _is_node(pid)]
                self._driver_pid = started[0] if len(started) == 1 else None
            return self._playwright

    async def _drop_playwright(self) -> None:
        """Forget a Playwright whose driver died, and the browser and spares it drove."""
        playwright, self._playwright, self._driver_pid = self._playwright, None, None
        self._browser = self._scrollbar_browser = None
        self._pool.clear()
        if playwright is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(playwright.stop(), 5)

    async def _ensure_browser(self) -> Browser:
        if self._closing:
            raise BrowserUnavailableError("The browser backend is shutting down.")
        browser = self._browser
        if browser is not None and browser.is_connected() and self.driver_alive():
            return browser
        async with self._launch_lock:
            browser = self._browser
            if browser is not None and browser.is_connected() and self.driver_alive():
                return browser
            if self.endpoint is not None:
                browser = await self._connect()
            else:
                browser = await self._launch()
            browser.on("disconnected", self._on_disconnected)
            self.user_agent = standard_user_agent(browser.version)
            self._browser = browser
            self._launched = self._shared_launched = True
            self.last_error = None
            return browser

    async def _ensure_scrollbar_browser(self) -> Browser:
        await self._ensure_browser()  # the shared one first: it sets user_agent, starts the driver
        browser = self._scrollbar_browser
        if browser is not None and browser.is_connected():
            return browser
        async with self._launch_lock:
            browser = self._scrollbar_browser
            if browser is not None and browser.is_connected():
                return browser
            playwright = await self._ensure_playwright()
            try:
                browser = await playwright.chromium.launch(
                    **self._launch_options(),
                    args=[*CHROMIUM_ARGS, self._marker, _SCROLLBARS_MARK],
                    ignore_default_args=["--hide-scrollbars"],
                )
            except PlaywrightError as err:
                raise BrowserUnavailableError(
                    f"Could not launch Chromium at {self.executable}: {error_message(err)}. "
                    f"{INSTALL_HINT}"
                ) from err
            self._scrollbar_browser = browser
            return browser

    async def _launch(self) -> Browser:
        options = self._launch_options()
        playwright = await self._ensure_playwright()
        # Pages of a crashed browser are dead; never hand them out.
        self._pool.clear()
        try:
            return await playwright.chromium.launch(**options, args=[*CHROMIUM_ARGS, self._marker])
        except PlaywrightError as err:
            raise BrowserUnavailableError(
                f"Could not launch Chromium at {self.executable}: {error_message(err)}. "
                f"{INSTALL_HINT}"
            ) from err

    async def _connect(self) -> Browser:
        """Connect to the browser server at `endpoint`; the launch options go in the header
        Playwright's `run-server` reads (it honours `executablePath` and `args` only when started
        with `--unsafe`)."""
        options: dict[str, Any] = {"headless": True, "args": CHROMIUM_ARGS}
        if self.executable:
            options["executablePath"] = self.executable
        playwright = await self._ensure_playwright()
        self._pool.clear()
        assert self.endpoint is not None
        try:
            return await playwright.chromium.connect(
                self.endpoint, headers={"x-playwright-launch-options": json.dumps(options)}
            )
        except PlaywrightError as err:
            raise BrowserUnavailableError(
                f"Could not connect to the browser server at {self.endpoint}: {error_message(err)}"
            ) from err

    def _on_disconnected(self, browser: Browser) -> None:
        if self._browser is browser:
            self._browser = None
            self._pool.clear()

    async def _new_pooled_page(self, browser: Browser) -> SessionPage:
        try:
            context = await browser.new_context(
                viewport={"width": DEFAULT_VIEWPORT_WIDTH, "height": DEFAULT_VIEWPORT_HEIGHT},
                device_scale_factor=DEFAULT_DEVICE_SCALE_FACTOR,
                user_agent=standard_user_agent(browser.version),
            )
            page = await context.new_page()
        except PlaywrightError as err:
            raise BrowserUnavailableError(
                f"The browser could not open a page: {error_message(err)}"
            ) from err
        sp = SessionPage(context, page, allow_file_urls=self.allow_file_urls)
        sp.standard_user_agent = standard_user_agent(browser.version)
        sp.on_crash = self._crashed
        try:
            # Attached now, while the page waits in the pool, rather than on the session's first
            # goto or screenshot (a round trip off the request path).
            await sp.cdp()
        except PlaywrightError as err:
            await sp.close()
            raise BrowserUnavailableError(
                f"The browser could not open a page: {error_message(err)}"
            ) from err
        return sp

    async def _fill_pool(self) -> None:
        while self._wants_spare():
            browser = await self._ensure_browser()
            sp = await self._new_pooled_page(browser)
            if self._browser is browser and not self._closing:
                self._pool.append(sp)
            else:
                await sp.close()

    def _schedule_refill(self) -> None:
        if not self._wants_spare() or self._browser is None:
            return
        if self._refill_task is not None and not self._refill_task.done():
            return
        self._refill_task = asyncio.create_task(self._refill_quietly())

    async def _refill_quietly(self) -> None:
        try:
            await self._fill_pool()
        except BrowserUnavailableError as err:
            # The next open relaunches or reports; a background refill must not crash anything.
            self.last_error = err

    async def _open_cdp_page(self, session_id: str) -> SessionPage:
        """A dedicated Chromium with a DevTools port, so a CDP client sees only this session.

        Its standard user agent needs the browser's version, which the shared browser tells
        (launched now if it was not yet); given as Chromium's `--user-agent` switch, it is the
        default of every page and context a CDP client opens itself, not only of this page."""
        await self._ensure_browser()
        user_agent = self.user_agent
        assert user_agent is not None  # set by every launch of the shared browser
        options = self._launch_options()
        playwright = await self._ensure_playwright()
        user_data_dir = tempfile.mkdtemp(prefix="capture-replay-cdp-")
        try:
            context = await playwright.chromium.launch_persistent_context(
                user_data_dir,
                **options,
                args=[
                    *CHROMIUM_ARGS,
                    self._marker,
                    "--remote-debugging-port=0",
                    f"--user-agent={user_agent}",
                ],
                viewport={"width": DEFAULT_VIEWPORT_WIDTH, "height": DEFAULT_VIEWPORT_HEIGHT},
                device_scale_factor=DEFAULT_DEVICE_SCALE_FACTOR,
                user_agent=user_agent,
            )
        except PlaywrightError as err:
            shutil.rmtree(user_data_dir, ignore_errors=True)
            raise BrowserUnavailableError(
                f"Could not launch Chromium at {self.executable}: {error_message(err)}. "
                f"{INSTALL_HINT}"
            ) from err
        self._launched = True
        try:
            devtools_url = await _read_devtools_url(Path(user_data_dir))
            page = context.pages[0] if context.pages else await context.new_page()
        except (PlaywrightError, BrowserUnavailableError) as err:
            with contextlib.suppress(PlaywrightError):
                await context.close()
            shutil.rmtree(user_data_dir, ignore_errors=True)
            if isinstance(err, BrowserUnavailableError):
                raise
            raise BrowserUnavailableError(f"CDP browser failed: {error_message(err)}") from err
        sp = SessionPage(
            context,
            page,
            session_id=session_id,
            allow_file_urls=self.allow_file_urls,
            devtools_url=devtools_url,
            user_data_dir=user_data_dir,
        )
        sp.standard_user_agent = user_agent
        self._cdp_pages.add(sp)
        self._live.add(sp)
        sp.on_close = self._released
        sp.on_crash = self._crashed
        context.on("close", lambda _ctx: self._cdp_pages.discard(sp))
        return sp


async def _read_devtools_url(user_data_dir: Path) -> str:
    """The browser-level ws:// endpoint, from the DevToolsActivePort file Chromium writes."""
    port_file = user_data_dir / "DevToolsActivePort"
    loop = asyncio.get_running_loop()
    deadline = loop.time() + _DEVTOOLS_PORT_WAIT_S
    while True:
        try:
            lines = port_file.read_text(encoding="utf-8").split()
        except FileNotFoundError:
            lines = []
        if len(lines) >= 2:
            return f"ws://127.0.0.1:{lines[0]}{lines[1]}"
        if loop.time() > deadline:
            raise BrowserUnavailableError("Chromium did not report its DevTools port.")
        # Polling a file: there is no event to await for Chromium writing it.
        await asyncio.sleep(0.02)

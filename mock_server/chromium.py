"""Chromium itself: where to find it, the flags every launch uses, the user agent a desktop Chrome
of its version sends, and Playwright's errors as one line. Knows nothing of sessions or pages;
`mock_server.browser` launches what `find_browser` names.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import sys
from concurrent.futures import ThreadPoolExecutor

from playwright.sync_api import sync_playwright

CHROMIUM_ARGS = (
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
)

INSTALL_HINT = (
    "Install Chromium (e.g. `apt-get install -y chromium`), or pass --browser PATH "
    "or set CAPTURE_REPLAY_BROWSER to a Chromium/Chrome executable."
)

_PATH_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


@functools.cache
def _playwright_chromium() -> str | None:
    """Where Playwright's own Chromium is (or would be) installed, asked once per process.

    Playwright names the path from its browsers registry (`PLAYWRIGHT_BROWSERS_PATH` included)
    through its driver; nothing is launched or downloaded. Asked from a worker thread because
    the sync API refuses to run inside a running event loop (make_app is called from one).
    """

    def ask() -> str | None:
        try:
            with sync_playwright() as playwright:
                return playwright.chromium.executable_path
        except Exception:  # no driver, a broken install: there is simply no bundled Chromium
            return None

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="playwright-path") as pool:
        return pool.submit(ask).result()


def find_browser(explicit: str | None) -> str | None:
    """Resolve the Chromium executable to launch.

    An explicit path wins even when it does not exist (launching then fails with a clear 503);
    then Playwright's own Chromium if `playwright install chromium` put it there; then a
    Chromium/Chrome on PATH; else None.
    """
    if explicit:
        return explicit
    bundled = _playwright_chromium()
    if bundled and os.access(bundled, os.X_OK):
        return bundled
    for name in _PATH_CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


def standard_user_agent(version: str) -> str:
    """The user agent a desktop Chrome of this version sends on this host's system, in Chrome's
    reduced form (major version only, frozen platform string)."""
    major = version.split(".", 1)[0]
    if sys.platform == "darwin":
        system = "Macintosh; Intel Mac OS X 10_15_7"
    elif sys.platform == "win32":
        system = "Windows NT 10.0; Win64; x64"
    else:
        system = "X11; Linux x86_64"  # Chrome's reduced user agent says so on every Linux
    return (
        f"Mozilla/5.0 ({system}) AppleWebKit/537.36 (KHTML, like Gecko) "
        f"Chrome/{major}.0.0.0 Safari/537.36"
    )


_API_PREFIX = re.compile(r"^[A-Z][A-Za-z]*\.[A-Za-z_]+: ")


def error_message(err: BaseException) -> str:
    """A Playwright error's first line, without its `Page.goto: ` style prefix or call log."""
    text = (getattr(err, "message", None) or str(err)).strip()
    first = text.splitlines()[0] if text else type(err).__name__
    return _API_PREFIX.sub("", first)

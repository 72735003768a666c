"""The navigation actions (`goto`, `back`, `forward`, `reload`) and the URL rule one-shots share.

A navigation answers `{url, title, status}`. A failed one leaves Chromium's error page to commit
after Playwright has reported the failure; this module settles it so that it cannot interrupt
the session's next navigation, and retries a navigation such a late page did interrupt.
Imports no aiohttp: HTTP is the API layer's.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Awaitable, Callable
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from playwright.async_api import Error as PlaywrightError
from playwright.async_api import TimeoutError as PlaywrightTimeoutError

from mock_server.actions.budget import Budget
from mock_server.actions.payload import Payload, choice, text
from mock_server.browser import SessionPage, error_message
from mock_server.errors import ActionFailedError, BadRequestError


class WaitUntil(StrEnum):
    LOAD = "load"
    DOMCONTENTLOADED = "domcontentloaded"
    COMMIT = "commit"


# How long a failed navigation waits for its error page to commit, at most.
_ERROR_PAGE_WAIT_MS = 500.0
# Chromium commits no error page for an aborted navigation (a 204, a download): nothing to settle.
_NO_ERROR_PAGE = "net::ERR_ABORTED"
_INTERRUPTED = re.compile(r'is interrupted by another navigation to "([^"]+)"')
_NAVIGATION_ATTEMPTS = 3


def check_url(url: str, *, allow_file: bool) -> None:
    """Only http(s) URLs with a host are navigable (`file:` too when the server allows it)."""
    try:
        parts = urlsplit(url)
    except ValueError as err:
        raise BadRequestError(f"Invalid URL {url!r}") from err
    scheme = parts.scheme.lower()
    if scheme == "file" and allow_file:
        return
    if scheme not in ("http", "https"):
        raise BadRequestError(f"only http and https URLs are allowed (got {url!r})")
    if not parts.hostname:
        raise BadRequestError(f"Invalid URL {url!r}: no host")


async def _navigation_answer(sp: SessionPage, response: Any) -> dict[str, Any]:
    # The browser process knows the title from the navigation entry; asking the renderer
    # (page.title()) right after domcontentloaded waits for it to finish its work first.
    try:
        history = await (await sp.cdp()).send("Page.getNavigationHistory")
        title = history["entries"][history["currentIndex"]].get("title", "")
    except (PlaywrightError, KeyError, IndexError):
        try:
            title = await sp.page.title()
        except PlaywrightError:
            title = ""  # a navigation still committing has no document to read yet
    return {
        "url": sp.page.url,
        "title": title,
        "status": response.status if response is not None else None,
    }


async def _settle_error_page(sp: SessionPage, budget: Budget) -> None:
    """Wait for Chromium's error page after a failed navigation.

    It commits asynchronously after Playwright reports the failure and would otherwise
    interrupt the session's next navigation.
    """
    if sp.page.url.startswith("chrome-error:"):
        return
    main_frame = sp.page.main_frame
    with contextlib.suppress(PlaywrightError):
        await sp.page.wait_for_event(
            "framenavigated",
            predicate=lambda frame: frame == main_frame,
            timeout=budget.ms(_ERROR_PAGE_WAIT_MS),
        )


async def _go_past_interruptions(
    sp: SessionPage, budget: Budget, go: Callable[[float], Awaitable[Any]]
) -> Any:
    """Navigate; a navigation interrupted by one the client did not ask for is retried.

    A previous failed navigation's error page can commit late (on a loaded machine) and
    interrupt this one; the interrupted attempt may itself still land. Neither is this
    navigation's failure: let the page settle, and answer once it is where it was sent.
    """
    for attempt in range(_NAVIGATION_ATTEMPTS):
        try:
            return await go(budget.ms())
        except PlaywrightTimeoutError:
            raise
        except PlaywrightError as err:
            interrupted = _INTERRUPTED.search(error_message(err))
            if interrupted is None or attempt == _NAVIGATION_ATTEMPTS - 1:
                raise
            other = interrupted.group(1)
            with contextlib.suppress(PlaywrightError):
                if other.startswith("chrome-error://"):
                    await sp.page.wait_for_load_state("domcontentloaded", timeout=budget.ms())
                else:  # an earlier attempt of ours is landing there
                    await sp.page.wait_for_url(
                        other, wait_until="domcontentloaded", timeout=budget.ms()
                    )
                    return None
    raise AssertionError("unreachable")


async def _navigate(
    sp: SessionPage, budget: Budget, what: str, go: Callable[[float], Awaitable[Any]]
) -> dict[str, Any]:
    try:
        response = await _go_past_interruptions(sp, budget, go)
    except PlaywrightTimeoutError as err:
        raise budget.timeout_error(what) from err
    except PlaywrightError as err:
        reason = re.sub(r" at \S+$", "", error_message(err))
        if _NO_ERROR_PAGE not in reason:
            await _settle_error_page(sp, budget)
        raise ActionFailedError(f"{what} failed: {reason}", url=sp.page.url) from err
    return await _navigation_answer(sp, response)


def _wait_until(payload: Payload) -> WaitUntil:
    return choice(payload, "waitUntil", WaitUntil, WaitUntil.DOMCONTENTLOADED)


async def goto(sp: SessionPage, payload: Payload, budget: Budget) -> dict[str, Any]:
    url = text(payload, "url")
    check_url(url, allow_file=sp.allow_file_urls)
    wait = _wait_until(payload)
    return await _navigate(
        sp,
        budget,
        f"Navigation to {url}",
        lambda ms: sp.page.goto(url, wait_until=wait, timeout=ms),
    )


async def back(sp: SessionPage, payload: Payload, budget: Budget) -> dict[str, Any]:
    wait = _wait_until(payload)
    return await _navigate(
        sp, budget, "Navigation back", lambda ms: sp.page.go_back(wait_until=wait, timeout=ms)
    )


async def forward(sp: SessionPage, payload: Payload, budget: Budget) -> dict[str, Any]:
    wait = _wait_until(payload)
    return await _navigate(
        sp, budget, "Navigation forward", lambda ms: sp.page.go_forward(wait_until=wait, timeout=ms)
    )


async def reload(sp: SessionPage, payload: Payload, budget: Budget) -> dict[str, Any]:
    wait = _wait_until(payload)
    return await _navigate(
        sp, budget, "Reload", lambda ms: sp.page.reload(wait_until=wait, timeout=ms)
    )

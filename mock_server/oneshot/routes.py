"""The HTTP face of the one-shot endpoints: `setup_oneshot` registers
`GET /{key}/{hash}/{image|pdf|content|metadata|animated}?{query}` on the app.

Every request is checked (signature, then every option) before any browser work; then it waits
for one of `MAX_CONCURRENT` slots and runs within one time budget (`timeout`, delay and the wait
for a slot included): past it the answer is 504. Errors are raised as `mock_server.errors`
ones for the app's error middleware to answer. Must not import `mock_server.app` (it imports this).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from aiohttp import web
from playwright.async_api import Error as PlaywrightError

from mock_server.actions.budget import Budget
from mock_server.browser import error_message
from mock_server.errors import ActionTimeoutError, CaptureError
from mock_server.http import json_response
from mock_server.oneshot.capture import (
    capture_animated,
    capture_content,
    capture_image,
    capture_metadata,
    capture_pdf,
)
from mock_server.oneshot.options import (
    ENDPOINTS,
    IMAGE_CONTENT_TYPES,
    PARSERS,
    AnimatedOptions,
    ImageOptions,
    PdfOptions,
    Query,
)
from mock_server.signing import verify_signature

if TYPE_CHECKING:
    from mock_server.browser import BrowserManager

DEFAULT_TIMEOUT_S = 90.0
# Concurrent one-shot captures; more wait their turn (inside their own time budget).
MAX_CONCURRENT = 4


async def _capture(
    browser: BrowserManager, endpoint: str, options: Any, budget: Budget
) -> web.Response:
    if isinstance(options, ImageOptions):
        data = await capture_image(browser, options, budget)
        return web.Response(body=data, content_type=IMAGE_CONTENT_TYPES[options.type])
    if isinstance(options, PdfOptions):
        pdf = await capture_pdf(browser, options, budget)
        return web.Response(body=pdf, content_type="application/pdf")
    if isinstance(options, AnimatedOptions):
        gif = await capture_animated(browser, options, budget)
        return web.Response(body=gif, content_type="image/gif")
    if endpoint == "content":
        return json_response(await capture_content(browser, options, budget))
    return json_response(await capture_metadata(browser, options, budget))


def setup_oneshot(
    app: web.Application,
    browser: BrowserManager,
    users: dict[str, str] | None,
    *,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> None:
    """Register `GET /{key}/{hash}/{endpoint}` for the five one-shot endpoints."""
    slots = asyncio.Semaphore(MAX_CONCURRENT)
    allow_file = browser.allow_file_urls

    async def handle(request: web.Request) -> web.Response:
        info = request.match_info
        raw_query = request.raw_path.partition("?")[2]
        verify_signature(users, info["key"], info["hash"], raw_query)
        endpoint = info["endpoint"]
        # Every option is checked before waiting for a slot or touching the browser.
        options = PARSERS[endpoint](Query(raw_query), allow_file=allow_file)
        budget = Budget.start(timeout)
        try:
            async with asyncio.timeout(timeout):
                async with slots:
                    return await _capture(browser, endpoint, options, budget)
        except TimeoutError as err:
            raise ActionTimeoutError(
                f"The {endpoint} capture exceeded its {timeout:g} s budget"
            ) from err
        except PlaywrightError as err:
            raise CaptureError(f"The {endpoint} capture failed: {error_message(err)}") from err

    app.router.add_get("/{key}/{hash}/{endpoint:(?:" + "|".join(ENDPOINTS) + ")}", handle)

"""The actions that read the page and the session: `screenshot`, `title`, `url`,
`cursor_position`, `snapshot`, `console`, `errors`, `content` and `query`.

Screenshots go through CDP (so they keep the session's live viewport emulation); `query` and
`content` text are computed in the page in one evaluation each.
Imports no aiohttp: HTTP is the API layer's.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections import deque
from enum import StrEnum
from typing import Any

from playwright.async_api import Error as PlaywrightError

from mock_server import page_scripts
from mock_server.actions.budget import Budget
from mock_server.actions.payload import Payload, choice, flag, integer, selector, string_list
from mock_server.browser import SessionPage, error_message
from mock_server.errors import BadRequestError
from mock_server.page_text import collapse_lines, html_to_markdown, require_convertible


class ContentFormat(StrEnum):
    TEXT = "text"
    MARKDOWN = "markdown"
    HTML = "html"


class QueryField(StrEnum):
    TEXT = "text"
    HTML = "html"
    HREF = "href"
    SRC = "src"
    ALT = "alt"
    TITLE = "title"
    VALUE = "value"
    NAME = "name"
    ID = "id"
    CLASS_NAME = "className"
    TAG = "tag"
    ROLE = "role"
    ARIA_LABEL = "ariaLabel"
    VISIBLE = "visible"
    BBOX = "bbox"


MAX_QUERY_LIMIT = 500
DEFAULT_QUERY_LIMIT = 100
SCREENSHOT_ATTEMPTS = 3


async def screenshot_image(sp: SessionPage, budget: Budget, *, full_page: bool) -> dict[str, str]:
    """A PNG in device pixels, taken through CDP.

    Playwright's `page.screenshot` resets the device metrics to the context's own, which would
    undo the session's live viewport emulation.
    """
    cdp = await sp.cdp()
    params: dict[str, Any] = {"format": "png"}
    if full_page:
        metrics = await cdp.send("Page.getLayoutMetrics")
        size = metrics["cssContentSize"]
        params["captureBeyondViewport"] = True
        params["clip"] = {
            "x": 0,
            "y": 0,
            "width": max(1, math.ceil(size["width"])),
            "height": max(1, math.ceil(size["height"])),
            "scale": 1,
        }
    for attempt in range(SCREENSHOT_ATTEMPTS):
        try:
            async with asyncio.timeout(budget.left_ms() / 1000):
                shot = await cdp.send("Page.captureScreenshot", params)
            return {"contentType": "image/png", "bodyBase64": shot["data"]}
        except TimeoutError as err:
            raise budget.timeout_error("Screenshot") from err
        except PlaywrightError as err:
            # "Unable to capture screenshot": the compositor has no frame yet (a page that just
            # navigated on a busy machine). Playwright's own screenshot waits for a frame too.
            if (
                "Unable to capture screenshot" not in error_message(err)
                or attempt == SCREENSHOT_ATTEMPTS - 1
            ):
                raise
            with contextlib.suppress(PlaywrightError):
                async with asyncio.timeout(budget.left_ms() / 1000):
                    await sp.page.evaluate(page_scripts.NEXT_FRAME)
    raise AssertionError("unreachable")


async def screenshot(sp: SessionPage, payload: Payload, budget: Budget) -> dict[str, Any]:
    return await screenshot_image(sp, budget, full_page=flag(payload, "fullPage", False))


async def title(sp: SessionPage, payload: Payload, budget: Budget) -> dict[str, Any]:
    return {"title": await sp.page.title()}


async def current_url(sp: SessionPage, payload: Payload, budget: Budget) -> dict[str, Any]:
    return {"url": sp.page.url}


async def cursor_position(sp: SessionPage, payload: Payload, budget: Budget) -> dict[str, Any]:
    return {"x": sp.mouse_x, "y": sp.mouse_y}


async def snapshot(sp: SessionPage, payload: Payload, budget: Budget) -> dict[str, Any]:
    aria = await sp.page.locator("body").aria_snapshot(timeout=budget.ms())
    return {"format": "aria", "snapshot": aria, "url": sp.page.url, "title": await sp.page.title()}


def _read_log(log: deque[dict[str, Any]], payload: Payload) -> list[dict[str, Any]]:
    """The entries so far; `clear: true` empties the log after answering."""
    clear = flag(payload, "clear", False)
    entries = list(log)
    if clear:
        log.clear()
    return entries


async def console(sp: SessionPage, payload: Payload, budget: Budget) -> dict[str, Any]:
    return {"messages": _read_log(sp.console_messages, payload)}


async def errors(sp: SessionPage, payload: Payload, budget: Budget) -> dict[str, Any]:
    return {"errors": _read_log(sp.page_errors, payload)}


async def content(sp: SessionPage, payload: Payload, budget: Budget) -> dict[str, Any]:
    fmt = choice(payload, "format", ContentFormat, ContentFormat.TEXT)
    if fmt is ContentFormat.TEXT:
        # The browser's own rendered text: no markup, no scripts or styles, nothing hidden,
        # block elements on their own lines; computed in the page, so it costs one round trip.
        rendered = await sp.page.evaluate(page_scripts.READABLE_TEXT)
        return {"format": fmt.value, "content": collapse_lines(rendered)}
    html = await sp.page.content()
    if fmt is ContentFormat.HTML:
        return {"format": fmt.value, "content": html}
    require_convertible(html, 'content format "markdown"')
    # Parsing a large page takes long enough to stall other sessions' actions.
    return {"format": fmt.value, "content": await asyncio.to_thread(html_to_markdown, html)}


def _query_fields(payload: Payload) -> list[str]:
    fields = string_list(payload, "fields") or [QueryField.TEXT.value]
    valid = [f.value for f in QueryField]
    unknown = [f for f in fields if f not in valid]
    if unknown:
        raise BadRequestError(
            f"Unknown query field(s): {', '.join(unknown)}; valid fields: {', '.join(valid)}"
        )
    return list(dict.fromkeys(fields))


async def query(sp: SessionPage, payload: Payload, budget: Budget) -> dict[str, Any]:
    css = selector(payload)
    fields = _query_fields(payload)
    attributes = list(dict.fromkeys(string_list(payload, "attributes")))
    limit = integer(payload, "limit", DEFAULT_QUERY_LIMIT, minimum=1, maximum=MAX_QUERY_LIMIT,
                    clamp=True)  # fmt: skip
    visible_only = flag(payload, "visibleOnly", False)
    # One evaluate for every element: per-element handles cost 40-50x more at 500 matches.
    result = await sp.page.evaluate(
        page_scripts.QUERY, [css, fields, attributes, limit, visible_only]
    )
    if "invalidSelector" in result:
        raise BadRequestError(f"Invalid CSS selector {css!r}: {result['invalidSelector']}")
    elements = result["elements"]
    return {
        "selector": css,
        "fields": fields,
        "attributes": attributes,
        "limit": limit,
        "count": len(elements),
        "totalCount": result["total"],
        "elements": elements,
    }

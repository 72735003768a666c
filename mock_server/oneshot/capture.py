"""The one-shot captures on the shared browser: a fresh context per request, the page loaded
(then `waitFor` and `delay`), and an image, PDF, content, metadata or animated GIF taken from it.

Each capture gets the request's `Budget` and raises only `mock_server.errors` errors;
the context is closed in a `finally`. Knows nothing of HTTP.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import math
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

from PIL import Image
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import TimeoutError as PlaywrightTimeoutError

from mock_server import page_scripts
from mock_server.actions.budget import Budget
from mock_server.browser import error_message
from mock_server.errors import (
    ActionFailedError,
    ActionTimeoutError,
    BadRequestError,
    PageUnreachableError,
)
from mock_server.gif import GifRecorder
from mock_server.oneshot.options import (
    AnimatedOptions,
    ImageOptions,
    ImageType,
    PageOptions,
    PdfOptions,
)
from mock_server.page_text import html_to_markdown, html_to_text, require_convertible

if TYPE_CHECKING:
    from playwright.async_api import BrowserContext, Page

    from mock_server.browser import BrowserManager

WAIT_FOR_MAX_MS = 30_000.0
SELECTOR_WAIT_MS = 10_000.0
# One GIF frame per slot at most; slower captures simply give fewer, longer frames.
FRAME_INTERVAL_S = 0.1
# Larger GIFs (scaleFactor, big viewports) are scaled down to this many pixels per frame.
MAX_GIF_PIXELS = 1920 * 1200
MAX_FRAME_FAILURES = 5
WEBP_QUALITY = 80
JPEG_QUALITY = 80
METADATA_FIELDS = (
    "title", "description", "image", "lang", "author", "publisher", "logo", "url", "date",
    "feed", "audio", "video", "iframe",
)  # fmt: skip


@contextlib.asynccontextmanager
async def opened_page(
    browser: BrowserManager,
    options: PageOptions,
    budget: Budget,
    *,
    visual: bool = False,
    scrollbars: bool = False,
) -> AsyncIterator[tuple[BrowserContext, Page]]:
    """A fresh context and page on `options.url`, after waitFor and delay; closed on exit.

    `visual` (image, animated): `darkMode` also restyles the page (`apply_dark_mode`).
    `scrollbars`: the page shows them (headless Chromium hides them otherwise)."""
    context = await browser.new_context(scrollbars=scrollbars, **options.context_options())
    try:
        page = await context.new_page()
        try:
            await page.goto(options.url, wait_until="load", timeout=budget.ms())
        except PlaywrightTimeoutError as err:
            raise ActionTimeoutError(f"Loading {options.url} timed out") from err
        except PlaywrightError as err:
            reason = re.sub(r" at \S+$", "", error_message(err))
            if "ERR_INVALID_AUTH_CREDENTIALS" in reason:
                # The page answered, with a Basic/Digest challenge we could not meet.
                raise ActionFailedError(
                    f"{options.url} requires HTTP authentication: "
                    "pass httpAuth (base64url of user:password)"
                ) from err
            raise PageUnreachableError(f"Could not load {options.url}: {reason}") from err
        if visual and options.dark_mode:
            await apply_dark_mode(page)
        if options.wait_for is not None:
            await wait_for_selector(page, options.wait_for, budget)
        if options.delay_s:
            await asyncio.sleep(options.delay_s)
        yield context, page
    finally:
        with contextlib.suppress(PlaywrightError):
            await context.close()


async def apply_dark_mode(page: Page) -> None:
    """Capture's darkMode: invert the page's colours (images kept) unless it is already dark."""
    try:
        background = await page.evaluate(page_scripts.PAGE_BACKGROUND)
        if background == "dark":
            return
        css = page_scripts.DARK_MODE_CSS
        if background == "none":
            css += page_scripts.DARK_MODE_CANVAS_CSS
        await page.add_style_tag(content=css)
    except PlaywrightError as err:
        raise ActionFailedError(f"darkMode could not style the page: {error_message(err)}") from err


async def wait_for_selector(page: Page, selector: str, budget: Budget) -> None:
    try:
        await page.wait_for_selector(selector, timeout=budget.ms(WAIT_FOR_MAX_MS))
    except PlaywrightTimeoutError as err:
        if budget.exhausted():
            raise ActionTimeoutError(f"Waiting for {selector!r} exceeded the time budget") from err
        raise ActionFailedError(
            f"waitFor: no element matches {selector!r} after {WAIT_FOR_MAX_MS / 1000:g} s"
        ) from err
    except PlaywrightError as err:
        raise BadRequestError(
            f"waitFor: invalid selector {selector!r}: {error_message(err)}"
        ) from err


async def capture_image(browser: BrowserManager, opts: ImageOptions, budget: Budget) -> bytes:
    shot_type = "jpeg" if opts.type is ImageType.JPEG else "png"
    transparent = opts.transparent and opts.type is not ImageType.JPEG
    async with opened_page(browser, opts.page, budget, visual=True) as (_, page):
        if opts.selector is not None:
            element = page.locator(opts.selector).first
            try:
                data = await element.screenshot(
                    type=shot_type, omit_background=transparent,
                    timeout=budget.ms(SELECTOR_WAIT_MS),
                )  # fmt: skip
            except PlaywrightTimeoutError as err:
                raise ActionFailedError(
                    f"selector: no visible element matches {opts.selector!r}"
                ) from err
            except PlaywrightError as err:
                raise BadRequestError(f"selector {opts.selector!r}: {error_message(err)}") from err
        else:
            kwargs: dict[str, Any] = {}
            if opts.clip is not None:
                kwargs["clip"] = opts.clip
                if opts.full_page:
                    # full=true overrides height clipping: the clip runs to the page's end.
                    height = await page.evaluate(page_scripts.PAGE_HEIGHT)
                    kwargs["clip"] = {**opts.clip, "height": max(1, height - opts.clip["y"])}
            try:
                data = await page.screenshot(
                    type=shot_type, full_page=opts.full_page, omit_background=transparent,
                    timeout=budget.ms(), **kwargs,
                )  # fmt: skip
            except PlaywrightError as err:
                if "clip" not in kwargs or "Clipped area" not in error_message(err):
                    raise
                box = kwargs["clip"]
                raise BadRequestError(
                    f"The clip rectangle (left {box['x']:g}, top {box['y']:g}, width "
                    f"{box['width']:g}, height {box['height']:g}) is outside the page"
                ) from err
    if opts.resize is None and opts.type is not ImageType.WEBP:
        return data
    return await asyncio.to_thread(convert_image, data, opts.type, opts.resize)


def convert_image(data: bytes, image_type: ImageType, resize: tuple[int, int] | None) -> bytes:
    """Resize and/or re-encode a Chromium screenshot (Chromium only writes PNG and JPEG)."""
    buffer = io.BytesIO()
    with Image.open(io.BytesIO(data)) as image:
        out = image.resize(resize, Image.Resampling.LANCZOS) if resize else image
        if image_type is ImageType.WEBP:
            out.save(buffer, "WEBP", quality=WEBP_QUALITY)
        elif image_type is ImageType.JPEG:
            out.convert("RGB").save(buffer, "JPEG", quality=JPEG_QUALITY)
        else:
            out.save(buffer, "PNG")
    return buffer.getvalue()


async def capture_pdf(browser: BrowserManager, opts: PdfOptions, budget: Budget) -> bytes:
    async with opened_page(browser, opts.page, budget) as (_, page):
        kwargs: dict[str, Any] = dict(opts.paper)
        if opts.margin is not None:
            kwargs["margin"] = opts.margin
        try:
            return await page.pdf(
                landscape=opts.landscape, scale=opts.scale,
                print_background=opts.print_background, **kwargs,
            )  # fmt: skip
        except PlaywrightError as err:
            raise BadRequestError(
                f"Chromium refused these PDF options: {error_message(err)}"
            ) from err


async def capture_content(
    browser: BrowserManager, opts: PageOptions, budget: Budget
) -> dict[str, Any]:
    async with opened_page(browser, opts, budget) as (_, page):
        html = await page.content()
    require_convertible(html, "content (textContent and markdown)")
    text, markdown = await asyncio.gather(
        asyncio.to_thread(html_to_text, html), asyncio.to_thread(html_to_markdown, html)
    )
    return {"success": True, "html": html, "textContent": text, "markdown": markdown}


async def capture_metadata(
    browser: BrowserManager, opts: PageOptions, budget: Budget
) -> dict[str, Any]:
    async with opened_page(browser, opts, budget) as (_, page):
        found = await page.evaluate(page_scripts.METADATA)
    return {"success": True, "metadata": {name: found.get(name) for name in METADATA_FIELDS}}


def gif_size(width: int, height: int, scale: float) -> tuple[int, int]:
    w, h = width * scale, height * scale
    shrink = min(1.0, math.sqrt(MAX_GIF_PIXELS / (w * h)))
    return max(1, round(w * shrink)), max(1, round(h * shrink))


async def capture_animated(browser: BrowserManager, opts: AnimatedOptions, budget: Budget) -> bytes:
    width, height, scale = opts.page.viewport
    recorder = GifRecorder(gif_size(width, height, scale))
    async with opened_page(
        browser, opts.page, budget, visual=True, scrollbars=not opts.hide_scrollbars
    ) as (context, page):
        cdp = await context.new_cdp_session(page)
        await record_frames(cdp.send, recorder, opts.duration_s)
        if recorder.frame_count == 0 and not recorder.has_pending:
            # Not one capture made it within the duration: take one now rather than fail.
            shot = await cdp.send("Page.captureScreenshot", {"format": "png"})
            await asyncio.to_thread(recorder.add, base64.b64decode(shot["data"]), 0)
    return await asyncio.to_thread(recorder.finish, opts.duration_s * 1000)


async def record_frames(
    send: Callable[[str, dict[str, Any]], Awaitable[dict[str, Any]]],
    recorder: GifRecorder,
    seconds: float,
) -> None:
    """Screenshot on a fixed beat for `seconds`; each frame is encoded in a thread while the
    next one is taken, so capture and encoding overlap."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    encoding: asyncio.Future[None] | None = None
    slot = 0
    failures = 0
    try:
        while (at := loop.time() - start) < seconds:
            # PNG with optimizeForSpeed is quicker to take and to decode than JPEG here.
            try:
                shot = await send(
                    "Page.captureScreenshot", {"format": "png", "optimizeForSpeed": True}
                )
            except PlaywrightError:
                # A busy compositor can refuse one capture; the frame before simply lasts
                # longer. Only a page that keeps refusing fails the request.
                failures += 1
                if failures > MAX_FRAME_FAILURES:
                    raise
                shot = None
            if shot is not None:
                failures = 0
                data = base64.b64decode(shot["data"])
                if encoding is not None:
                    await encoding
                encoding = asyncio.ensure_future(asyncio.to_thread(recorder.add, data, at * 1000))
            slot = max(slot + 1, math.ceil((loop.time() - start) / FRAME_INTERVAL_S))
            pause = min(start + slot * FRAME_INTERVAL_S, start + seconds) - loop.time()
            if pause > 0:
                await asyncio.sleep(pause)
        if encoding is not None:
            await encoding
    finally:
        if encoding is not None and not encoding.done():
            encoding.cancel()
            with contextlib.suppress(BaseException):
                await encoding

"""Capture's signed one-shot endpoints ("Core API"), on the shared local Chromium.

`GET /{key}/{hash}/{image|pdf|content|metadata|animated}?{query}` (reference section 6).
`setup_oneshot(app, browser, users)` registers the route. Every request is checked (signature,
then every option) before any browser work; then it gets its own fresh browser context, closed
in a `finally`, and one time budget (`timeout`, delay included): past it the answer is 504.

Statuses: 400 bad option or URL; 401 unknown API key or hash mismatch (only with a users
table); 400 (`ActionFailedError`) when `waitFor`/`selector` finds nothing, or when the page
asks for HTTP authentication and no `httpAuth` is given (wrong credentials capture the site's
401 page, as a browser shows it); 502 when the target cannot be loaded (DNS, refused
connection, TLS...); 504 over budget. An HTTP error page of the target (404, 500) is
captured, as a browser would show it.

Accepted but without local effect: `blockAds`, `blockCookieBanners`, `bypassBotDetection`,
`stealth` (local test pages have neither ads, banners nor bot checks; the flags are validated
as booleans), `hideScrollbars` (Playwright's headless Chromium always hides scrollbars),
`preset`, `timestamp`, `fresh` (nothing is cached), `fileName`, `s3Acl`, `s3Redirect`,
`skipUpload` (nothing is uploaded), `bestFormat` (the answer stays `type`). Unknown parameters
are ignored. An unknown `emulateDevice` is a 400 for `image` and falls back to the viewport
for `animated`, as the animated docs say.

This module knows HTTP only through the handler; option parsing and capture are plain
functions. It must not import `mock_server.api` (api imports it).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import io
import json
import math
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from aiohttp import web
from PIL import Image
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import TimeoutError as PlaywrightTimeoutError

from mock_server.actions import check_url, html_to_markdown, html_to_text
from mock_server.devices import DEVICES, Device
from mock_server.errors import (
    ActionFailedError,
    ActionTimeoutError,
    BadRequestError,
    CaptureError,
)
from mock_server.gif import GifRecorder
from mock_server.signing import verify_signature

if TYPE_CHECKING:
    from playwright.async_api import BrowserContext, Page

    from mock_server.browser import BrowserManager

DEFAULT_TIMEOUT_S = 90.0
# Concurrent one-shot captures; more wait their turn (inside their own time budget).
MAX_CONCURRENT = 4
MAX_VIEWPORT_SIDE = 5000
MAX_SCALE_FACTOR = 3.0
MAX_DELAY_S = 60
MAX_ANIMATED_DELAY_S = 25
WAIT_FOR_MAX_S = 30.0
SELECTOR_WAIT_S = 10.0
DEFAULT_DURATION_S = 5
MAX_DURATION_S = 30
# One GIF frame per slot at most; slower captures simply give fewer, longer frames.
FRAME_INTERVAL_S = 0.1
# Larger GIFs (scaleFactor, big viewports) are scaled down to this many pixels per frame.
MAX_GIF_PIXELS = 1920 * 1200
WEBP_QUALITY = 80
JPEG_QUALITY = 80

JSON_TYPE = "application/json"
ENDPOINTS = ("image", "pdf", "content", "metadata", "animated")


class PageUnreachableError(CaptureError):
    """The target URL could not be loaded: DNS, refused connection, TLS... (502)."""

    status = 502


class ImageType(StrEnum):
    PNG = "png"
    JPEG = "jpeg"
    WEBP = "webp"


IMAGE_CONTENT_TYPES = {
    ImageType.PNG: "image/png",
    ImageType.JPEG: "image/jpeg",
    ImageType.WEBP: "image/webp",
}

# Playwright's names of the paper formats Capture documents.
PAPER_FORMATS = {
    name.lower(): name
    for name in ("Letter", "Legal", "Tabloid", "Ledger", "A0", "A1", "A2", "A3", "A4", "A5", "A6")
}
PX_PER_UNIT = {"px": 1.0, "in": 96.0, "cm": 96 / 2.54, "mm": 96 / 25.4, "pt": 96 / 72}
_LENGTH = re.compile(r"^\s*(\d+(?:\.\d+)?|\.\d+)\s*(px|in|cm|mm|pt)?\s*$", re.IGNORECASE)
_HAS_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")
_TRUE = frozenset({"true", "1"})
_FALSE = frozenset({"false", "0"})


# -- options ----------------------------------------------------------------------------------


class Query:
    """The decoded query of a one-shot URL, with typed readers that raise BadRequestError."""

    def __init__(self, raw: str) -> None:
        # Empty values count as absent ("omit empty params", DOCS/hash-generation).
        self.values = {k: v for k, v in parse_qsl(raw, keep_blank_values=True) if v != ""}

    def text(self, name: str) -> str | None:
        return self.values.get(name)

    def flag(self, name: str, default: bool = False) -> bool:
        raw = self.values.get(name)
        if raw is None:
            return default
        if raw.lower() in _TRUE:
            return True
        if raw.lower() in _FALSE:
            return False
        raise BadRequestError(f"{name} must be true or false (got {raw!r})")

    def number(self, name: str, default: float | None, low: float, high: float) -> float | None:
        raw = self.values.get(name)
        if raw is None:
            return default
        try:
            value = float(raw)
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or not low <= value <= high:
            raise BadRequestError(f"{name} must be a number from {low:g} to {high:g} (got {raw!r})")
        return value

    def integer(self, name: str, default: int | None, low: int, high: int) -> int | None:
        raw = self.values.get(name)
        if raw is None:
            return default
        if not re.fullmatch(r"-?\d+", raw.strip()) or not low <= int(raw) <= high:
            raise BadRequestError(f"{name} must be an integer from {low} to {high} (got {raw!r})")
        return int(raw)

    def base64url(self, name: str) -> str | None:
        """A base64url (padding optional) UTF-8 value, e.g. `userAgent` or `httpAuth`."""
        raw = self.values.get(name)
        if raw is None:
            return None
        padded = raw.strip() + "=" * (-len(raw.strip()) % 4)
        try:
            return base64.b64decode(padded, altchars=b"-_", validate=True).decode("utf-8")
        except (binascii.Error, ValueError) as err:
            raise BadRequestError(f"{name} must be base64url-encoded UTF-8") from err


def target_url(query: Query, *, allow_file: bool) -> str:
    url = (query.text("url") or "").strip()
    if not url:
        raise BadRequestError("url is required")
    if not _HAS_SCHEME.match(url):
        url = "https://" + url  # "example.com" as the SDKs' docs allow
    check_url(url, allow_file=allow_file)
    return url


@dataclass(frozen=True, slots=True)
class PageOptions:
    """How to open and prepare the page; shared by every endpoint."""

    url: str
    width: int = 1440
    height: int = 900
    scale_factor: float = 1.0
    device: Device | None = None
    user_agent: str | None = None
    credentials: tuple[str, str] | None = None
    dark_mode: bool = False
    delay_s: float = 0.0
    wait_for: str | None = None

    def context_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {
            "viewport": {"width": self.width, "height": self.height},
            "device_scale_factor": self.scale_factor,
        }
        if self.device is not None:
            vp = self.device.viewport
            options.update(
                viewport={"width": vp.width, "height": vp.height},
                device_scale_factor=vp.deviceScaleFactor,
                is_mobile=vp.isMobile,
                has_touch=vp.hasTouch,
                user_agent=self.device.userAgent,
            )
        if self.user_agent:
            options["user_agent"] = self.user_agent
        if self.credentials is not None:
            options["http_credentials"] = {
                "username": self.credentials[0],
                "password": self.credentials[1],
            }
        if self.dark_mode:
            options["color_scheme"] = "dark"
        return options

    @property
    def viewport(self) -> tuple[int, int, float]:
        """CSS width, height and device scale factor the page will have."""
        if self.device is not None:
            vp = self.device.viewport
            return vp.width, vp.height, vp.deviceScaleFactor
        return self.width, self.height, self.scale_factor


def id_selector(element_id: str) -> str:
    escaped = element_id.replace("\\", "\\\\").replace('"', '\\"')
    return f'[id="{escaped}"]'


def parse_page_options(
    query: Query, *, allow_file: bool, max_delay: int = MAX_DELAY_S, strict_device: bool = True
) -> PageOptions:
    url = target_url(query, allow_file=allow_file)
    device = None
    device_key = query.text("emulateDevice")
    if device_key is not None:
        device = DEVICES.get(device_key)
        if device is None and strict_device:
            raise BadRequestError(
                f"Unknown emulateDevice {device_key!r}; GET /screenshot/devices lists the keys"
            )
    credentials = None
    auth = query.base64url("httpAuth")
    if auth is not None:
        user, sep, password = auth.partition(":")
        if not sep:
            raise BadRequestError("httpAuth must be base64url of username:password")
        credentials = (user, password)
    wait_for = query.text("waitFor")
    wait_for_id = query.text("waitForId")
    if wait_for is None and wait_for_id is not None:
        wait_for = id_selector(wait_for_id)
    for name in ("blockAds", "blockCookieBanners", "bypassBotDetection", "stealth", "fresh"):
        query.flag(name)  # accepted without local effect; still must be a boolean
    width = query.integer("vw", 1440, 1, MAX_VIEWPORT_SIDE)
    height = query.integer("vh", 900, 1, MAX_VIEWPORT_SIDE)
    scale = query.number("scaleFactor", 1.0, 0.1, MAX_SCALE_FACTOR)
    delay = query.number("delay", 0.0, 0, max_delay)
    assert width is not None and height is not None and scale is not None and delay is not None
    return PageOptions(
        url=url,
        width=width,
        height=height,
        scale_factor=scale,
        device=device,
        user_agent=query.base64url("userAgent"),
        credentials=credentials,
        dark_mode=query.flag("darkMode"),
        delay_s=delay,
        wait_for=wait_for,
    )


@dataclass(frozen=True, slots=True)
class ImageOptions:
    page: PageOptions
    type: ImageType = ImageType.PNG
    full_page: bool = False
    transparent: bool = False
    selector: str | None = None
    clip: dict[str, float] | None = None
    resize: tuple[int, int] | None = None


def parse_image(query: Query, *, allow_file: bool) -> ImageOptions:
    page = parse_page_options(query, allow_file=allow_file)
    raw_type = (query.text("type") or "png").lower()
    if raw_type == "jpg":
        raw_type = "jpeg"
    try:
        image_type = ImageType(raw_type)
    except ValueError as err:
        raise BadRequestError(
            f"type must be one of png, jpeg, webp (got {query.text('type')!r})"
        ) from err
    selector = query.text("selector")
    if selector is None and query.text("selectorId") is not None:
        selector = id_selector(query.values["selectorId"])
    clip = None
    if any(query.text(k) is not None for k in ("top", "left", "width", "height")):
        width, height, _ = page.viewport
        box = {
            "x": query.integer("left", 0, 0, 100_000),
            "y": query.integer("top", 0, 0, 100_000),
            "width": query.integer("width", width, 1, 20_000),
            "height": query.integer("height", height, 1, 20_000),
        }
        clip = {name: float(value or 0) for name, value in box.items()}
    resize = None
    resize_w = query.integer("resizeWidth", None, 1, 10_000)
    resize_h = query.integer("resizeHeight", None, 1, 10_000)
    if (resize_w is None) != (resize_h is None):
        raise BadRequestError("resizeWidth and resizeHeight must be given together")
    if resize_w is not None and resize_h is not None:
        resize = (resize_w, resize_h)
    query.flag("bestFormat")
    return ImageOptions(
        page=page,
        type=image_type,
        full_page=query.flag("full"),
        transparent=query.flag("transparent"),
        selector=selector,
        clip=clip,
        resize=resize,
    )


@dataclass(frozen=True, slots=True)
class PdfOptions:
    page: PageOptions
    paper: dict[str, Any] = field(default_factory=lambda: {"format": "A4"})
    margin: dict[str, float] | None = None
    landscape: bool = False
    scale: float = 1.0
    print_background: bool = False


def parse_length(query: Query, name: str) -> float | None:
    """A CSS length with unit in|mm|cm|pt|px (none means px), in px."""
    raw = query.text(name)
    if raw is None:
        return None
    match = _LENGTH.match(raw)
    if match is None:
        raise BadRequestError(f"{name} must be a length such as 8.5in, 210mm, 21cm, 612pt, 800px")
    value = float(match.group(1)) * PX_PER_UNIT[(match.group(2) or "px").lower()]
    if value > 100_000:
        raise BadRequestError(f"{name} is too large")
    return value


def parse_pdf(query: Query, *, allow_file: bool) -> PdfOptions:
    page = parse_page_options(query, allow_file=allow_file)
    width, height = parse_length(query, "width"), parse_length(query, "height")
    if (width is None) != (height is None):
        raise BadRequestError("width and height must be given together")
    if width is not None and height is not None:
        if width <= 0 or height <= 0:
            raise BadRequestError("width and height must be greater than 0")
        paper: dict[str, Any] = {"width": width, "height": height}
    else:
        name = (query.text("format") or "A4").lower()
        if name not in PAPER_FORMATS:
            raise BadRequestError(
                f"format must be one of {', '.join(PAPER_FORMATS.values())} "
                f"(got {query.text('format')!r})"
            )
        paper = {"format": PAPER_FORMATS[name]}
    sides = {side: parse_length(query, "margin" + side.capitalize())
             for side in ("top", "right", "bottom", "left")}  # fmt: skip
    given = {side: value for side, value in sides.items() if value is not None}
    if given and len(given) != 4:
        raise BadRequestError(
            "All four margins must be specified (marginTop, marginRight, marginBottom, marginLeft)"
        )
    scale = query.number("scale", 1.0, 0.1, 2.0)
    assert scale is not None
    return PdfOptions(
        page=page,
        paper=paper,
        margin=given or None,
        landscape=query.flag("landscape"),
        scale=scale,
        print_background=query.flag("printBackground"),
    )


@dataclass(frozen=True, slots=True)
class AnimatedOptions:
    page: PageOptions
    duration_s: int = DEFAULT_DURATION_S


def parse_animated(query: Query, *, allow_file: bool) -> AnimatedOptions:
    page = parse_page_options(
        query, allow_file=allow_file, max_delay=MAX_ANIMATED_DELAY_S, strict_device=False
    )
    query.flag("hideScrollbars", True)
    duration = query.integer("duration", DEFAULT_DURATION_S, 1, MAX_DURATION_S)
    assert duration is not None
    return AnimatedOptions(page=page, duration_s=duration)


# -- the browser side -------------------------------------------------------------------------


class Deadline:
    """The time left of one request's budget."""

    def __init__(self, seconds: float) -> None:
        self._end = asyncio.get_running_loop().time() + seconds

    def left(self) -> float:
        return max(0.001, self._end - asyncio.get_running_loop().time())

    def ms(self, cap_s: float | None = None) -> float:
        left = self.left() if cap_s is None else min(cap_s, self.left())
        return left * 1000


def _message(err: PlaywrightError) -> str:
    text = (err.message or str(err)).strip()
    first = text.splitlines()[0] if text else type(err).__name__
    return re.sub(r"^[A-Z][A-Za-z]*\.[A-Za-z_]+: ", "", first)


@contextlib.asynccontextmanager
async def opened_page(
    browser: BrowserManager, options: PageOptions, deadline: Deadline
) -> AsyncIterator[tuple[BrowserContext, Page]]:
    """A fresh context and page on `options.url`, after waitFor and delay; closed on exit."""
    context = await browser.new_context(**options.context_options())
    try:
        page = await context.new_page()
        try:
            await page.goto(options.url, wait_until="load", timeout=deadline.ms())
        except PlaywrightTimeoutError as err:
            raise ActionTimeoutError(f"Loading {options.url} timed out") from err
        except PlaywrightError as err:
            reason = re.sub(r" at \S+$", "", _message(err))
            if "ERR_INVALID_AUTH_CREDENTIALS" in reason:
                # The page answered, with a Basic/Digest challenge we could not meet.
                raise ActionFailedError(
                    f"{options.url} requires HTTP authentication: "
                    "pass httpAuth (base64url of user:password)"
                ) from err
            raise PageUnreachableError(f"Could not load {options.url}: {reason}") from err
        if options.wait_for is not None:
            await wait_for_selector(page, options.wait_for, deadline)
        if options.delay_s:
            await asyncio.sleep(options.delay_s)
        yield context, page
    finally:
        with contextlib.suppress(PlaywrightError):
            await context.close()


async def wait_for_selector(page: Page, selector: str, deadline: Deadline) -> None:
    capped = deadline.left() > WAIT_FOR_MAX_S
    try:
        await page.wait_for_selector(selector, timeout=deadline.ms(WAIT_FOR_MAX_S))
    except PlaywrightTimeoutError as err:
        if not capped:
            raise ActionTimeoutError(f"Waiting for {selector!r} exceeded the time budget") from err
        raise ActionFailedError(
            f"waitFor: no element matches {selector!r} after {WAIT_FOR_MAX_S:g} s"
        ) from err
    except PlaywrightError as err:
        raise BadRequestError(f"waitFor: invalid selector {selector!r}: {_message(err)}") from err


async def capture_image(browser: BrowserManager, opts: ImageOptions, deadline: Deadline) -> bytes:
    shot_type = "jpeg" if opts.type is ImageType.JPEG else "png"
    transparent = opts.transparent and opts.type is not ImageType.JPEG
    async with opened_page(browser, opts.page, deadline) as (_, page):
        if opts.selector is not None:
            element = page.locator(opts.selector).first
            try:
                data = await element.screenshot(
                    type=shot_type, omit_background=transparent,
                    timeout=deadline.ms(SELECTOR_WAIT_S),
                )  # fmt: skip
            except PlaywrightTimeoutError as err:
                raise ActionFailedError(
                    f"selector: no visible element matches {opts.selector!r}"
                ) from err
            except PlaywrightError as err:
                raise BadRequestError(f"selector {opts.selector!r}: {_message(err)}") from err
        else:
            kwargs: dict[str, Any] = {}
            if opts.clip is not None:
                kwargs["clip"] = opts.clip
            data = await page.screenshot(
                type=shot_type, full_page=opts.full_page, omit_background=transparent,
                timeout=deadline.ms(), **kwargs,
            )  # fmt: skip
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


async def capture_pdf(browser: BrowserManager, opts: PdfOptions, deadline: Deadline) -> bytes:
    async with opened_page(browser, opts.page, deadline) as (_, page):
        kwargs: dict[str, Any] = dict(opts.paper)
        if opts.margin is not None:
            kwargs["margin"] = opts.margin
        try:
            return await page.pdf(
                landscape=opts.landscape, scale=opts.scale,
                print_background=opts.print_background, **kwargs,
            )  # fmt: skip
        except PlaywrightError as err:
            raise BadRequestError(f"Chromium refused these PDF options: {_message(err)}") from err


async def capture_content(
    browser: BrowserManager, opts: PageOptions, deadline: Deadline
) -> dict[str, Any]:
    async with opened_page(browser, opts, deadline) as (_, page):
        html = await page.content()
    text, markdown = await asyncio.gather(
        asyncio.to_thread(html_to_text, html), asyncio.to_thread(html_to_markdown, html)
    )
    return {"success": True, "html": html, "textContent": text, "markdown": markdown}


# The rules follow metascraper's (the extractor whose field set Capture answers): Open Graph,
# then Twitter cards, then plain HTML. `iframe` needs an oEmbed fetch, so it stays null here.
METADATA_JS = r"""() => {
  const meta = (...names) => {
    for (const n of names) {
      const el = document.querySelector(
        `meta[property="${n}"],meta[name="${n}"],meta[itemprop="${n}"]`);
      const v = el && (el.getAttribute('content') || '').trim();
      if (v) return v;
    }
    return null;
  };
  const attr = (selector, name) => {
    const el = document.querySelector(selector);
    const v = el && (el.getAttribute(name) || '').trim();
    return v || null;
  };
  const abs = (v) => { if (!v) return null; try { return new URL(v, document.baseURI).href; }
                       catch (e) { return null; } };
  const text = (selector) => {
    const el = document.querySelector(selector);
    const v = el && (el.textContent || '').replace(/\s+/g, ' ').trim();
    return v || null;
  };
  const isoDate = (v) => { if (!v) return null; const d = new Date(v);
                           return isNaN(d.getTime()) ? null : d.toISOString(); };
  const lang = (document.documentElement.getAttribute('lang') || meta('og:locale') ||
                meta('language') || '').trim();
  return {
    title: meta('og:title', 'twitter:title') || (document.title || '').trim() || text('h1'),
    description: meta('og:description', 'twitter:description', 'description'),
    image: abs(meta('og:image:secure_url', 'og:image', 'og:image:url', 'twitter:image',
                    'twitter:image:src', 'image') || attr('link[rel="image_src"]', 'href')),
    lang: lang ? lang.split(/[-_]/)[0].toLowerCase() : null,
    author: meta('author', 'article:author', 'twitter:creator', 'dc.creator') ||
            text('[rel="author"]') || text('[itemprop="author"] [itemprop="name"]') ||
            text('[itemprop="author"]'),
    publisher: meta('og:site_name', 'application-name', 'publisher', 'twitter:site'),
    logo: abs(meta('og:logo', 'logo') || attr('[itemprop="logo"]', 'content') ||
              attr('link[rel="apple-touch-icon"]', 'href') ||
              attr('link[rel="icon"],link[rel="shortcut icon"]', 'href')),
    url: abs(meta('og:url', 'twitter:url') || attr('link[rel="canonical"]', 'href') ||
             location.href),
    date: isoDate(meta('article:published_time', 'article:modified_time', 'og:updated_time',
                       'date', 'dc.date', 'datePublished') || attr('time[datetime]', 'datetime')),
    feed: abs(attr('link[rel="alternate"][type="application/rss+xml"],' +
                   'link[rel="alternate"][type="application/atom+xml"],' +
                   'link[rel="alternate"][type="application/feed+json"]', 'href')),
    audio: abs(meta('og:audio:secure_url', 'og:audio', 'og:audio:url') ||
               attr('audio[src]', 'src') || attr('audio source[src]', 'src')),
    video: abs(meta('og:video:secure_url', 'og:video', 'og:video:url', 'twitter:player:stream') ||
               attr('video[src]', 'src') || attr('video source[src]', 'src')),
    iframe: null,
  };
}"""

METADATA_FIELDS = (
    "title", "description", "image", "lang", "author", "publisher", "logo", "url", "date",
    "feed", "audio", "video", "iframe",
)  # fmt: skip


async def capture_metadata(
    browser: BrowserManager, opts: PageOptions, deadline: Deadline
) -> dict[str, Any]:
    async with opened_page(browser, opts, deadline) as (_, page):
        found = await page.evaluate(METADATA_JS)
    return {"success": True, "metadata": {name: found.get(name) for name in METADATA_FIELDS}}


MAX_FRAME_FAILURES = 5


def gif_size(width: int, height: int, scale: float) -> tuple[int, int]:
    w, h = width * scale, height * scale
    shrink = min(1.0, math.sqrt(MAX_GIF_PIXELS / (w * h)))
    return max(1, round(w * shrink)), max(1, round(h * shrink))


async def capture_animated(
    browser: BrowserManager, opts: AnimatedOptions, deadline: Deadline
) -> bytes:
    width, height, scale = opts.page.viewport
    recorder = GifRecorder(gif_size(width, height, scale))
    async with opened_page(browser, opts.page, deadline) as (context, page):
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


# -- HTTP -------------------------------------------------------------------------------------


def json_response(body: dict[str, Any]) -> web.Response:
    return web.Response(
        body=json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode(),
        content_type=JSON_TYPE,
    )


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

    async def run(endpoint: str, options: Any, deadline: Deadline) -> web.Response:
        if isinstance(options, ImageOptions):
            data = await capture_image(browser, options, deadline)
            return web.Response(body=data, content_type=IMAGE_CONTENT_TYPES[options.type])
        if isinstance(options, PdfOptions):
            pdf = await capture_pdf(browser, options, deadline)
            return web.Response(body=pdf, content_type="application/pdf")
        if isinstance(options, AnimatedOptions):
            gif = await capture_animated(browser, options, deadline)
            return web.Response(body=gif, content_type="image/gif")
        if endpoint == "content":
            return json_response(await capture_content(browser, options, deadline))
        return json_response(await capture_metadata(browser, options, deadline))

    async def handle(request: web.Request) -> web.Response:
        info = request.match_info
        raw_query = request.raw_path.partition("?")[2]
        verify_signature(users, info["key"], info["hash"], raw_query)
        endpoint = info["endpoint"]
        # Every option is checked before waiting for a slot or touching the browser.
        options = PARSERS[endpoint](Query(raw_query), allow_file=allow_file)
        deadline = Deadline(timeout)
        try:
            async with asyncio.timeout(timeout):
                async with slots:
                    return await run(endpoint, options, deadline)
        except TimeoutError as err:
            raise ActionTimeoutError(
                f"The {endpoint} capture exceeded its {timeout:g} s budget"
            ) from err
        except PlaywrightError as err:
            raise CaptureError(f"The {endpoint} capture failed: {_message(err)}") from err

    app.router.add_get("/{key}/{hash}/{endpoint:(?:" + "|".join(ENDPOINTS) + ")}", handle)


PARSERS: dict[str, Callable[..., object]] = {
    "image": parse_image,
    "pdf": parse_pdf,
    "content": parse_page_options,
    "metadata": parse_page_options,
    "animated": parse_animated,
}

"""The query of a one-shot URL, parsed and checked into typed options before any browser work.

`Query` reads the raw query (empty values count as absent); `parse_image`, `parse_pdf`,
`parse_animated` and `parse_page_options` (content, metadata) each raise `BadRequestError`
naming the option. Which options are accepted without local effect is written in the README
("One-shot (signed URL) endpoints"). Touches neither the browser nor HTTP.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from urllib.parse import parse_qsl

from mock_server.actions import check_url
from mock_server.devices import DEVICES, Device
from mock_server.errors import BadRequestError
from recorder.fields import NO_LOCAL_EFFECT_FLAGS

MAX_VIEWPORT_SIDE = 5000
MAX_SCALE_FACTOR = 3.0
MAX_DELAY_S = 60
MAX_ANIMATED_DELAY_S = 25
DEFAULT_DURATION_S = 5
MAX_DURATION_S = 30

ENDPOINTS = ("image", "pdf", "content", "metadata", "animated")


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
            if self.device.screen is not None:
                width, height = self.device.screen
                options["screen"] = {"width": width, "height": height}
        if self.user_agent:
            options["user_agent"] = self.user_agent
        if self.credentials is not None:
            options["http_credentials"] = {
                "username": self.credentials[0],
                "password": self.credentials[1],
            }
        if self.dark_mode:
            # prefers-color-scheme for pages with a dark theme; CSP bypassed so that the
            # stylesheet darkMode adds to the others (image, animated) is allowed.
            options.update(color_scheme="dark", bypass_csp=True)
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
    for name in NO_LOCAL_EFFECT_FLAGS:
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


def image_type(query: Query) -> ImageType:
    """`type`, or its alias `format` (the official clients' spelling); with neither, WebP when
    `bestFormat=true`, else PNG."""
    name = "type" if query.text("type") is not None else "format"
    best = query.flag("bestFormat")
    raw = query.text(name)
    if raw is None:
        return ImageType.WEBP if best else ImageType.PNG
    try:
        return ImageType("jpeg" if raw.lower() == "jpg" else raw.lower())
    except ValueError as err:
        raise BadRequestError(f"{name} must be one of png, jpeg, webp (got {raw!r})") from err


def parse_image(query: Query, *, allow_file: bool) -> ImageOptions:
    page = parse_page_options(query, allow_file=allow_file)
    kind = image_type(query)
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
    return ImageOptions(
        page=page,
        type=kind,
        # `fullPage` is the official clients' spelling of `full`; `full` wins when both are given.
        full_page=query.flag("full", query.flag("fullPage")),
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
    hide_scrollbars: bool = True


def parse_animated(query: Query, *, allow_file: bool) -> AnimatedOptions:
    page = parse_page_options(
        query, allow_file=allow_file, max_delay=MAX_ANIMATED_DELAY_S, strict_device=False
    )
    duration = query.integer("duration", DEFAULT_DURATION_S, 1, MAX_DURATION_S)
    assert duration is not None
    return AnimatedOptions(
        page=page, duration_s=duration, hide_scrollbars=query.flag("hideScrollbars", True)
    )


PARSERS: dict[str, Callable[..., object]] = {
    "image": parse_image,
    "pdf": parse_pdf,
    "content": parse_page_options,
    "metadata": parse_page_options,
    "animated": parse_animated,
}

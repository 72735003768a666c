"""The 27 session actions of the Capture contract, run on a local Playwright page.

This module owns parsing an action request, validating each payload, running it on a
`SessionPage` and shaping the answer fields (the API layer adds `success` and
`expiresInSeconds`). It raises only `mock_server.errors` errors and knows nothing of HTTP or
session lifetime.

Payload choices
---------------
Where the contract is silent, the emulator behaves as follows.

- Top level: only `type` and `payload` are allowed; `payload` may be omitted, `null` or an empty
  JSON array (PHP's `[]`), all meaning `{}`. Unknown payload keys are ignored.
- Viewport options (`viewport`, `vw`+`vh`, `scaleFactor`/`deviceScaleFactor`, `emulateDevice`)
  are validated on every action (bad values -> 400) but applied only on `goto`, `screenshot`
  and actions with `screenshot: true`. `emulateDevice` wins over the others; a `viewport` object
  wins over `vw`/`vh`; `deviceScaleFactor` wins over `scaleFactor`; a scale factor alone keeps
  the current size. A device's user agent and touch support stay until another
  `emulateDevice`. The session starts at 1440x900, DPR 1.
- `payload.screenshot: true` attaches `{"screenshot": {"contentType": "image/png",
  "bodyBase64": ...}}` (viewport only) to the action's answer, after the action.
- Navigation (`goto`, `back`, `forward`, `reload`) answers `{url, title, status}`; `status` is
  null when there was no network response (e.g. `back` with no history). `goto` accepts only
  http(s) URLs (`file://` only when the server allows file URLs). Navigation errors -> 400 with
  Chromium's net error, e.g. `Navigation to http://host/ failed: net::ERR_NAME_NOT_RESOLVED`.
- Selectors are Playwright selectors (CSS by default) for interactions; `query` takes plain CSS
  (`querySelectorAll`). Interactions wait for the selector up to `timeoutMs` (default 3000,
  max 30000). No match -> 400 `No element matches selector '...'` with `"matched": false`;
  a match that never becomes visible -> 400 with `"matched": true, "visible": false`.
- `click`/`hover`: `selector`, or `x`+`y` viewport coordinates. `click` takes `button`
  (left|right|middle) and `clickCount` (1..3). Selector answers carry `matched`, `visible`,
  `elementText` (whitespace collapsed, 200 chars max), `tagName`, `attributes` (id, class,
  href, name, type, role, aria-label, title, value, placeholder, src, alt, data-*),
  `boundingBox {x,y,width,height}` (viewport CSS px, after scrolling it into view),
  `clickedPoint`/`hoveredPoint {x,y}` (its centre) and `url`.
- `fill`: `selector` + `value` (alias `text`). `type`: `text` (alias `value`), typed key by key
  into `selector` if given, else into the focused element; optional `delay` ms (0..1000).
  `type_text`: `text` (alias `value`) typed into the focused element.
- `select`: `selector` + `value` (string or list; alias `values`) or `label`; answers the
  selected option values. `check`: `selector` + `checked` (default true; false unchecks).
- `press`: `key` (a Playwright key name such as `Enter`, `Control+A`) or `keys` (a list pressed
  in order), optionally on `selector`.
- `scroll`: `direction` up|down|left|right and `amount` px (default 500); or absolute `x`/`y`;
  `selector` alone scrolls that element into view, `selector` with a direction or `x`/`y`
  scrolls inside that element. Answers `scrollX`, `scrollY`.
- `move_mouse`: `x`, `y`, optional `steps` (1..100, default 1). `drag_mouse`: `path` (alias
  `points`) of 2..100 `{x, y}` points, or `from` + `to`; optional `steps` between points
  (default 5). `cursor_position` answers the last mouse position the emulator moved to
  (starts at 0,0).
- `wait_for_selector`: `selector`, `visible` (default true: wait until visible; false: until
  attached), `timeoutMs` (default 5000, max 30000); not found in time -> 400.
- `wait_for_timeout`: `timeoutMs` 1..2500 (default 1000; larger values are clamped to 2500).
- `console`: `{"messages": [{type, text, timestamp}]}` since the session started (last 1000);
  `errors`: `{"errors": [{message, stack?, timestamp}]}` of uncaught page errors (last 1000);
  both take `clear: true` to empty the buffer after answering. Timestamps are epoch ms.
- `snapshot`: `{"format": "aria", "snapshot": <Playwright ARIA snapshot YAML of body>,
  "url", "title"}`.
- `content`: `format` text|markdown|html (default text). `html` is the raw serialized DOM;
  `markdown` is markdownify of the body without script/style; `text` is the body's readable
  text without markup, scripts or styles, one block element per line, whitespace collapsed.
- `query`: `selector` (CSS), `fields` (default `["text"]`; unknown names -> 400), `attributes`,
  `limit` (default 100, 1..500, larger values clamped to 500), `visibleOnly` (default false).
  `count` is the number of elements returned (`len(elements)`); `totalCount` is the number of
  matches (after `visibleOnly`) before the limit. `href`/`src` are absolute URLs, `html` is
  the element's outerHTML, `role` is the explicit or implicit ARIA role, `bbox` is in viewport
  CSS px, missing attributes are null.
- `batch`: `actions` (1..25) of `{type, payload}`, run in order within one time budget; nested
  `batch` -> 400 before anything runs. Answer `{"results": [{"type", "success": true, ...}],
  "completed": n}`. It stops at the first failing step and answers that step's error status
  (400/504/...) with `results` (the steps done plus the failed one with `success: false` and
  `error`), `failedIndex` and `completed`.
- Timeouts: the whole action (a whole batch included) must finish within the server's action
  budget, else 504; the session stays usable.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any, TypeVar
from urllib.parse import urlsplit

from bs4 import BeautifulSoup
from markdownify import markdownify
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Locator
from playwright.async_api import TimeoutError as PlaywrightTimeoutError

from mock_server import page_scripts
from mock_server.browser import SessionPage, Viewport
from mock_server.devices import DEVICES
from mock_server.errors import (
    ActionFailedError,
    ActionTimeoutError,
    BadRequestError,
    BrowserUnavailableError,
    CaptureError,
)


class ActionType(StrEnum):
    GOTO = "goto"
    SCREENSHOT = "screenshot"
    WAIT_FOR_SELECTOR = "wait_for_selector"
    WAIT_FOR_TIMEOUT = "wait_for_timeout"
    CLICK = "click"
    MOVE_MOUSE = "move_mouse"
    DRAG_MOUSE = "drag_mouse"
    HOVER = "hover"
    TYPE = "type"
    TYPE_TEXT = "type_text"
    FILL = "fill"
    SELECT = "select"
    CHECK = "check"
    PRESS = "press"
    SCROLL = "scroll"
    BACK = "back"
    FORWARD = "forward"
    RELOAD = "reload"
    TITLE = "title"
    URL = "url"
    CURSOR_POSITION = "cursor_position"
    SNAPSHOT = "snapshot"
    CONSOLE = "console"
    ERRORS = "errors"
    CONTENT = "content"
    QUERY = "query"
    BATCH = "batch"


class WaitUntil(StrEnum):
    LOAD = "load"
    DOMCONTENTLOADED = "domcontentloaded"
    COMMIT = "commit"


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


class MouseButton(StrEnum):
    LEFT = "left"
    RIGHT = "right"
    MIDDLE = "middle"


class ScrollDirection(StrEnum):
    UP = "up"
    DOWN = "down"
    LEFT = "left"
    RIGHT = "right"


MAX_BATCH_ACTIONS = 25
MAX_DRAG_POINTS = 100
MAX_QUERY_LIMIT = 500
DEFAULT_QUERY_LIMIT = 100
MAX_WAIT_FOR_TIMEOUT_MS = 2500
DEFAULT_WAIT_FOR_TIMEOUT_MS = 1000
DEFAULT_SELECTOR_TIMEOUT_MS = 3000
DEFAULT_WAIT_FOR_SELECTOR_MS = 5000
MAX_SELECTOR_TIMEOUT_MS = 30000
DEFAULT_SCROLL_AMOUNT = 500
MAX_VIEWPORT_SIDE = 5000
MAX_DEVICE_SCALE_FACTOR = 3.0

_VIEWPORT_OBJECT_KEYS = frozenset({"width", "height", "deviceScaleFactor"})
_TOP_LEVEL_KEYS = frozenset({"type", "payload"})
# Actions that apply viewport options even without `screenshot: true` (OAS).
_VIEWPORT_ACTIONS = frozenset({ActionType.GOTO, ActionType.SCREENSHOT})
# "Page.goto: " style prefixes Playwright puts before its messages.
_API_PREFIX = re.compile(r"^[A-Z][A-Za-z]*\.[A-Za-z_]+: ")
# Grace over the action budget before the outer guard cancels a stuck Playwright call.
_GUARD_GRACE_S = 1.0

# Failed navigations without an error page (e.g. ERR_ABORTED) cost this much extra.
_ERROR_PAGE_WAIT_MS = 500.0

_E = TypeVar("_E", bound=StrEnum)


def parse_action_request(body: object) -> tuple[ActionType, dict[str, Any]]:
    """Validate the top level of an action request body; return its type and payload."""
    if not isinstance(body, dict):
        raise BadRequestError("Action request must be a JSON object with a 'type' field")
    unknown = sorted(set(body) - _TOP_LEVEL_KEYS)
    if unknown:
        raise BadRequestError(
            f"Unknown field(s) in action request: {', '.join(unknown)}; allowed: type, payload"
        )
    if "type" not in body:
        raise BadRequestError("Action request needs a 'type'")
    raw_type = body["type"]
    valid = ", ".join(t.value for t in ActionType)
    if not isinstance(raw_type, str) or raw_type not in ActionType.__members__.values():
        raise BadRequestError(f"Unknown action type {raw_type!r}; valid types: {valid}")
    payload = body.get("payload")
    if payload is None or payload == []:
        payload = {}
    if not isinstance(payload, dict):
        raise BadRequestError("'payload' must be a JSON object")
    return ActionType(raw_type), payload


async def run_action(
    sp: SessionPage, action_type: ActionType, payload: dict[str, Any], *, timeout_s: float
) -> dict[str, Any]:
    """Run one action (the caller holds `sp.lock`); return the answer fields.

    The whole action, a whole batch included, must finish within `timeout_s`.
    """
    budget = _Budget(asyncio.get_running_loop().time() + timeout_s, timeout_s)
    try:
        async with asyncio.timeout(timeout_s + _GUARD_GRACE_S):  # no extra task per action
            return await _execute(sp, action_type, payload, budget)
    except TimeoutError as err:
        raise ActionTimeoutError(f"Action '{action_type}' timed out after {timeout_s:g} s") from err


# -- time budget ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Budget:
    """The deadline of one action; Playwright timeouts are cut to what is left of it."""

    deadline: float
    total_s: float

    def left_ms(self) -> float:
        return max(1.0, (self.deadline - asyncio.get_running_loop().time()) * 1000)

    def ms(self, cap_ms: float | None = None) -> float:
        left = self.left_ms()
        return left if cap_ms is None else min(left, cap_ms)

    def exhausted(self) -> bool:
        # A Playwright timeout within 50 ms of the deadline was the budget's, not the step's.
        return asyncio.get_running_loop().time() >= self.deadline - 0.05

    def timeout_error(self, what: str) -> ActionTimeoutError:
        return ActionTimeoutError(f"{what} timed out after {self.total_s:g} s")


# -- payload validation -----------------------------------------------------------------------


def _pick(payload: dict[str, Any], *names: str) -> tuple[str, Any]:
    """The first present key among `names` (a field and its aliases) and its value."""
    for name in names:
        if name in payload and payload[name] is not None:
            return name, payload[name]
    return names[0], None


def _str(payload: dict[str, Any], *names: str, required: bool = False) -> str | None:
    name, value = _pick(payload, *names)
    if value is None:
        if required:
            raise BadRequestError(f"payload.{name} is required (a string)")
        return None
    if not isinstance(value, str):
        raise BadRequestError(f"payload.{name} must be a string")
    return value


def _selector(payload: dict[str, Any], *, required: bool = True) -> str | None:
    selector = _str(payload, "selector", required=required)
    if selector is not None and not selector.strip():
        raise BadRequestError("payload.selector must not be empty")
    return selector


def _bool(payload: dict[str, Any], name: str, default: bool) -> bool:
    value = payload.get(name)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise BadRequestError(f"payload.{name} must be a boolean")
    return value


def _int(
    payload: dict[str, Any],
    name: str,
    default: int | None,
    *,
    minimum: int,
    maximum: int | None = None,
    clamp: bool = False,
) -> int | None:
    value = payload.get(name)
    if value is None:
        return default
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadRequestError(f"payload.{name} must be an integer")
    if value < minimum:
        raise BadRequestError(f"payload.{name} must be >= {minimum}")
    if maximum is not None and value > maximum:
        if clamp:
            return maximum
        raise BadRequestError(f"payload.{name} must be <= {maximum}")
    return value


def _number(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise BadRequestError(f"{name} must be a finite number")
    return float(value)


def _point(value: object, name: str) -> tuple[float, float]:
    if not isinstance(value, dict) or "x" not in value or "y" not in value:
        raise BadRequestError(f"{name} must be an object with numeric x and y")
    return _number(value["x"], f"{name}.x"), _number(value["y"], f"{name}.y")


def _coordinates(payload: dict[str, Any]) -> tuple[float, float] | None:
    """Optional `x`+`y` viewport coordinates (both or neither)."""
    has_x, has_y = payload.get("x") is not None, payload.get("y") is not None
    if not has_x and not has_y:
        return None
    if has_x != has_y:
        raise BadRequestError("payload.x and payload.y must be given together")
    return _number(payload["x"], "payload.x"), _number(payload["y"], "payload.y")


def _enum(payload: dict[str, Any], name: str, enum: type[_E], default: _E) -> _E:
    value = payload.get(name)
    if value is None:
        return default
    if not isinstance(value, str) or value not in enum.__members__.values():
        valid = ", ".join(m.value for m in enum)
        raise BadRequestError(f"payload.{name} must be one of: {valid} (got {value!r})")
    return enum(value)


def _scale_factor(value: object, name: str) -> float:
    number = _number(value, name)
    if not 0 < number <= MAX_DEVICE_SCALE_FACTOR:
        raise BadRequestError(f"{name} must be > 0 and <= {MAX_DEVICE_SCALE_FACTOR:g}")
    return number


def _side(value: object, name: str) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadRequestError(f"{name} must be an integer")
    if not 1 <= value <= MAX_VIEWPORT_SIDE:
        raise BadRequestError(f"{name} must be between 1 and {MAX_VIEWPORT_SIDE}")
    return value


def _viewport_change(payload: dict[str, Any], current: Viewport) -> Viewport | None:
    """The viewport the payload asks for, or None when it asks for no change."""
    size: tuple[int, int] | None = None
    dpr: float | None = None
    raw = payload.get("viewport")
    if raw is not None:
        if not isinstance(raw, dict):
            raise BadRequestError("payload.viewport must be an object {width, height}")
        extra = sorted(set(raw) - _VIEWPORT_OBJECT_KEYS)
        if extra:
            raise BadRequestError(
                f"payload.viewport has unknown field(s): {', '.join(extra)}; "
                "allowed: width, height, deviceScaleFactor"
            )
        if "width" not in raw or "height" not in raw:
            raise BadRequestError("payload.viewport needs width and height")
        size = (
            _side(raw["width"], "payload.viewport.width"),
            _side(raw["height"], "payload.viewport.height"),
        )
        if raw.get("deviceScaleFactor") is not None:
            dpr = _scale_factor(raw["deviceScaleFactor"], "payload.viewport.deviceScaleFactor")
    vw, vh = payload.get("vw"), payload.get("vh")
    if (vw is None) != (vh is None):
        raise BadRequestError("payload.vw and payload.vh must be given together")
    if vw is not None:
        vw_vh = (_side(vw, "payload.vw"), _side(vh, "payload.vh"))
        size = size or vw_vh
    for name in ("scaleFactor", "deviceScaleFactor"):  # the later one wins
        if payload.get(name) is not None:
            explicit = _scale_factor(payload[name], f"payload.{name}")
            dpr = explicit if name == "deviceScaleFactor" or dpr is None else dpr
    device_key = payload.get("emulateDevice")
    if device_key is not None:
        if not isinstance(device_key, str) or device_key not in DEVICES:
            raise BadRequestError(
                f"Unknown emulateDevice {device_key!r}; valid keys: {', '.join(DEVICES)}"
            )
        device = DEVICES[device_key]
        vp = device.viewport
        return Viewport(
            width=vp.width,
            height=vp.height,
            device_scale_factor=vp.deviceScaleFactor,
            is_mobile=vp.isMobile,
            has_touch=vp.hasTouch,
            user_agent=device.userAgent,
        )
    if size is None and dpr is None:
        return None
    width, height = size or (current.width, current.height)
    return replace(
        current,
        width=width,
        height=height,
        device_scale_factor=dpr if dpr is not None else current.device_scale_factor,
    )


# -- execution ----------------------------------------------------------------------------------


_Handler = Callable[[SessionPage, dict[str, Any], _Budget], Awaitable[dict[str, Any]]]


async def _execute(
    sp: SessionPage, action_type: ActionType, payload: dict[str, Any], budget: _Budget
) -> dict[str, Any]:
    if sp.closed or sp.page.is_closed():
        raise BrowserUnavailableError("The session's page is gone (closed or browser crashed)")
    if action_type is ActionType.BATCH:
        return await _batch(sp, payload, budget)
    change = _viewport_change(payload, sp.viewport)
    attach = action_type is not ActionType.SCREENSHOT and _bool(payload, "screenshot", False)
    try:
        if change is not None and (action_type in _VIEWPORT_ACTIONS or attach):
            await _apply_viewport(sp, change)
        answer = await _HANDLERS[action_type](sp, payload, budget)
        if attach:
            answer["screenshot"] = await _screenshot_image(sp, budget, full_page=False)
        return answer
    except CaptureError:
        raise
    except PlaywrightTimeoutError as err:
        raise budget.timeout_error(f"Action '{action_type}'") from err
    except PlaywrightError as err:
        if sp.page.is_closed():
            raise BrowserUnavailableError(
                "The session's page is gone (the browser crashed or the page was closed)"
            ) from err
        raise ActionFailedError(f"Action '{action_type}' failed: {_message(err)}") from err


async def _apply_viewport(sp: SessionPage, vp: Viewport) -> None:
    """Emulate through CDP: Playwright cannot change DPR, UA or mobile on a live page."""
    cdp = await sp.cdp()
    await cdp.send(
        "Emulation.setDeviceMetricsOverride",
        {
            "width": vp.width,
            "height": vp.height,
            "deviceScaleFactor": vp.device_scale_factor,
            "mobile": vp.is_mobile,
            "screenWidth": vp.width,
            "screenHeight": vp.height,
        },
    )
    if vp.user_agent is not None and vp.user_agent != sp.viewport.user_agent:
        await cdp.send("Emulation.setUserAgentOverride", {"userAgent": vp.user_agent})
    if vp.has_touch != sp.viewport.has_touch:
        await cdp.send(
            "Emulation.setTouchEmulationEnabled",
            {"enabled": vp.has_touch, "maxTouchPoints": 5 if vp.has_touch else 1},
        )
    sp.viewport = vp


def _message(err: PlaywrightError) -> str:
    """Playwright's message without its API prefix and call log."""
    text = (err.message or str(err)).strip()
    first = text.splitlines()[0] if text else type(err).__name__
    return _API_PREFIX.sub("", first)


# -- navigation -------------------------------------------------------------------------------


def check_url(url: str, *, allow_file: bool) -> None:
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


async def _settle_error_page(sp: SessionPage, budget: _Budget) -> None:
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


_INTERRUPTED = re.compile(r'is interrupted by another navigation to "([^"]+)"')


async def _go_past_interruptions(
    sp: SessionPage, budget: _Budget, go: Callable[[float], Awaitable[Any]]
) -> Any:
    """Navigate; a navigation interrupted by one the client did not ask for is retried.

    A previous failed navigation's error page can commit late (on a loaded machine) and
    interrupt this one; the interrupted attempt may itself still land. Neither is this
    navigation's failure: let the page settle, and answer once it is where it was sent.
    """
    for attempt in range(3):
        try:
            return await go(budget.ms())
        except PlaywrightTimeoutError:
            raise
        except PlaywrightError as err:
            interrupted = _INTERRUPTED.search(_message(err))
            if interrupted is None or attempt == 2:
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
    sp: SessionPage, budget: _Budget, what: str, go: Callable[[float], Awaitable[Any]]
) -> dict[str, Any]:
    try:
        response = await _go_past_interruptions(sp, budget, go)
    except PlaywrightTimeoutError as err:
        raise budget.timeout_error(what) from err
    except PlaywrightError as err:
        reason = re.sub(r" at \S+$", "", _message(err))
        await _settle_error_page(sp, budget)
        raise ActionFailedError(f"{what} failed: {reason}", url=sp.page.url) from err
    return await _navigation_answer(sp, response)


async def _goto(sp: SessionPage, payload: dict[str, Any], budget: _Budget) -> dict[str, Any]:
    url = _str(payload, "url", required=True)
    assert url is not None
    check_url(url, allow_file=sp.allow_file_urls)
    wait = _enum(payload, "waitUntil", WaitUntil, WaitUntil.DOMCONTENTLOADED)
    return await _navigate(
        sp,
        budget,
        f"Navigation to {url}",
        lambda ms: sp.page.goto(url, wait_until=wait, timeout=ms),
    )


async def _back(sp: SessionPage, payload: dict[str, Any], budget: _Budget) -> dict[str, Any]:
    wait = _enum(payload, "waitUntil", WaitUntil, WaitUntil.DOMCONTENTLOADED)
    return await _navigate(
        sp, budget, "Navigation back", lambda ms: sp.page.go_back(wait_until=wait, timeout=ms)
    )


async def _forward(sp: SessionPage, payload: dict[str, Any], budget: _Budget) -> dict[str, Any]:
    wait = _enum(payload, "waitUntil", WaitUntil, WaitUntil.DOMCONTENTLOADED)
    return await _navigate(
        sp, budget, "Navigation forward", lambda ms: sp.page.go_forward(wait_until=wait, timeout=ms)
    )


async def _reload(sp: SessionPage, payload: dict[str, Any], budget: _Budget) -> dict[str, Any]:
    wait = _enum(payload, "waitUntil", WaitUntil, WaitUntil.DOMCONTENTLOADED)
    return await _navigate(
        sp, budget, "Reload", lambda ms: sp.page.reload(wait_until=wait, timeout=ms)
    )


# -- capture and reading ----------------------------------------------------------------------


SCREENSHOT_ATTEMPTS = 3


async def _screenshot_image(sp: SessionPage, budget: _Budget, *, full_page: bool) -> dict[str, str]:
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
                "Unable to capture screenshot" not in _message(err)
                or attempt == SCREENSHOT_ATTEMPTS - 1
            ):
                raise
            with contextlib.suppress(PlaywrightError):
                async with asyncio.timeout(budget.left_ms() / 1000):
                    await sp.page.evaluate(page_scripts.NEXT_FRAME)
    raise AssertionError("unreachable")


async def _screenshot(sp: SessionPage, payload: dict[str, Any], budget: _Budget) -> dict[str, Any]:
    full_page = _bool(payload, "fullPage", False)
    return await _screenshot_image(sp, budget, full_page=full_page)


async def _title(sp: SessionPage, payload: dict[str, Any], budget: _Budget) -> dict[str, Any]:
    return {"title": await sp.page.title()}


async def _url(sp: SessionPage, payload: dict[str, Any], budget: _Budget) -> dict[str, Any]:
    return {"url": sp.page.url}


async def _cursor_position(
    sp: SessionPage, payload: dict[str, Any], budget: _Budget
) -> dict[str, Any]:
    return {"x": sp.mouse_x, "y": sp.mouse_y}


async def _snapshot(sp: SessionPage, payload: dict[str, Any], budget: _Budget) -> dict[str, Any]:
    snapshot = await sp.page.locator("body").aria_snapshot(timeout=budget.ms())
    return {
        "format": "aria",
        "snapshot": snapshot,
        "url": sp.page.url,
        "title": await sp.page.title(),
    }


async def _console(sp: SessionPage, payload: dict[str, Any], budget: _Budget) -> dict[str, Any]:
    clear = _bool(payload, "clear", False)
    messages = list(sp.console_messages)
    if clear:
        sp.console_messages.clear()
    return {"messages": messages}


async def _errors(sp: SessionPage, payload: dict[str, Any], budget: _Budget) -> dict[str, Any]:
    clear = _bool(payload, "clear", False)
    errors = list(sp.page_errors)
    if clear:
        sp.page_errors.clear()
    return {"errors": errors}


_BLOCK_TAGS = (
    "address", "article", "aside", "blockquote", "br", "dd", "details", "dialog", "div", "dl",
    "dt", "fieldset", "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5",
    "h6", "header", "hr", "li", "main", "nav", "ol", "p", "pre", "section", "summary", "table",
    "td", "th", "tr", "ul",
)  # fmt: skip
_UNREADABLE_TAGS = ("script", "style", "noscript", "template", "head", "svg", "iframe")


def _readable_soup(html: str) -> BeautifulSoup:
    soup = BeautifulSoup(html, "html.parser")
    for tag in soup.find_all(_UNREADABLE_TAGS):
        tag.decompose()
    return soup


def html_to_text(html: str) -> str:
    soup = _readable_soup(html)
    # Block elements start and end a line; inline ones flow within it.
    for tag in soup.find_all(_BLOCK_TAGS):
        tag.insert_before("\n")
        tag.insert_after("\n")
    return _collapse_lines(soup.get_text())


def html_to_markdown(html: str) -> str:
    soup = _readable_soup(html)
    body = soup.body or soup
    markdown = markdownify(str(body), heading_style="ATX")
    return re.sub(r"\n{3,}", "\n\n", markdown).strip()


async def _content(sp: SessionPage, payload: dict[str, Any], budget: _Budget) -> dict[str, Any]:
    fmt = _enum(payload, "format", ContentFormat, ContentFormat.TEXT)
    if fmt is ContentFormat.TEXT:
        # The browser's own rendered text: no markup, no scripts or styles, nothing hidden,
        # block elements on their own lines; computed in the page, so it costs one round trip.
        rendered = await sp.page.evaluate(page_scripts.READABLE_TEXT)
        return {"format": fmt.value, "content": _collapse_lines(rendered)}
    html = await sp.page.content()
    if fmt is ContentFormat.HTML:
        return {"format": fmt.value, "content": html}
    # Parsing a large page takes long enough to stall other sessions' actions.
    return {"format": fmt.value, "content": await asyncio.to_thread(html_to_markdown, html)}


def _collapse_lines(text: str) -> str:
    lines = (" ".join(line.split()) for line in text.splitlines())
    return "\n".join(line for line in lines if line)


def _string_list(payload: dict[str, Any], name: str) -> list[str]:
    value = payload.get(name)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BadRequestError(f"payload.{name} must be an array of strings")
    return value


async def _query(sp: SessionPage, payload: dict[str, Any], budget: _Budget) -> dict[str, Any]:
    selector = _selector(payload)
    fields = _string_list(payload, "fields") or [QueryField.TEXT.value]
    valid = [f.value for f in QueryField]
    unknown = [f for f in fields if f not in valid]
    if unknown:
        raise BadRequestError(
            f"Unknown query field(s): {', '.join(unknown)}; valid fields: {', '.join(valid)}"
        )
    fields = list(dict.fromkeys(fields))
    attributes = list(dict.fromkeys(_string_list(payload, "attributes")))
    limit = _int(payload, "limit", DEFAULT_QUERY_LIMIT, minimum=1, maximum=MAX_QUERY_LIMIT,
                 clamp=True)  # fmt: skip
    visible_only = _bool(payload, "visibleOnly", False)
    # One evaluate for every element: per-element handles cost 40-50x more at 500 matches.
    result = await sp.page.evaluate(
        page_scripts.QUERY, [selector, fields, attributes, limit, visible_only]
    )
    if "invalidSelector" in result:
        raise BadRequestError(f"Invalid CSS selector {selector!r}: {result['invalidSelector']}")
    elements = result["elements"]
    return {
        "selector": selector,
        "fields": fields,
        "attributes": attributes,
        "limit": limit,
        "count": len(elements),
        "totalCount": result["total"],
        "elements": elements,
    }


# -- waiting ----------------------------------------------------------------------------------


async def _wait_for_selector(
    sp: SessionPage, payload: dict[str, Any], budget: _Budget
) -> dict[str, Any]:
    selector = _selector(payload)
    assert selector is not None
    visible = _bool(payload, "visible", True)
    own_ms = _int(payload, "timeoutMs", DEFAULT_WAIT_FOR_SELECTOR_MS, minimum=1,
                  maximum=MAX_SELECTOR_TIMEOUT_MS, clamp=True)  # fmt: skip
    assert own_ms is not None
    state = "visible" if visible else "attached"
    try:
        await _locator(sp, selector).wait_for(state=state, timeout=budget.ms(own_ms))
    except PlaywrightTimeoutError as err:
        if budget.exhausted():
            raise budget.timeout_error(f"Waiting for {selector!r}") from err
        raise ActionFailedError(
            f"No element matching selector {selector!r} became {state} within {own_ms} ms",
            matched=False,
            selector=selector,
        ) from err
    return {"selector": selector, "matched": True, "state": state, "url": sp.page.url}


async def _wait_for_timeout(
    sp: SessionPage, payload: dict[str, Any], budget: _Budget
) -> dict[str, Any]:
    ms = _int(payload, "timeoutMs", DEFAULT_WAIT_FOR_TIMEOUT_MS, minimum=1,
              maximum=MAX_WAIT_FOR_TIMEOUT_MS, clamp=True)  # fmt: skip
    assert ms is not None
    if ms > budget.left_ms():
        raise budget.timeout_error(f"Waiting {ms} ms")
    await sp.page.wait_for_timeout(ms)
    return {"waitedMs": ms}


# -- interaction ------------------------------------------------------------------------------


def _locator(sp: SessionPage, selector: str) -> Locator:
    return sp.page.locator(selector).first


async def _find(
    sp: SessionPage, payload: dict[str, Any], budget: _Budget, selector: str
) -> dict[str, Any]:
    """Wait for the selector to match a visible element, scroll it into view if it is outside
    the viewport, and return its diagnostics. Two round trips when the element is there:
    interactions are as fast as Playwright's own click."""
    own_ms = _int(payload, "timeoutMs", DEFAULT_SELECTOR_TIMEOUT_MS, minimum=1,
                  maximum=MAX_SELECTOR_TIMEOUT_MS, clamp=True)  # fmt: skip
    assert own_ms is not None
    try:
        handle = await sp.page.wait_for_selector(
            selector, state="visible", timeout=budget.ms(own_ms)
        )
    except PlaywrightTimeoutError as err:
        if budget.exhausted():
            raise budget.timeout_error(f"Waiting for {selector!r}") from err
        attached = _locator(sp, selector)
        if await attached.count() == 0:
            raise ActionFailedError(
                f"No element matches selector {selector!r}", matched=False, selector=selector
            ) from err
        diagnostics = await attached.evaluate(page_scripts.DESCRIBE, False, timeout=budget.ms())
        raise ActionFailedError(
            f"Element matching selector {selector!r} is not visible",
            matched=True,
            selector=selector,
            **diagnostics,
        ) from err
    except PlaywrightError as err:
        raise BadRequestError(f"Invalid selector {selector!r}: {_message(err)}") from err
    assert handle is not None
    try:
        diagnostics = await handle.evaluate(page_scripts.DESCRIBE, True)
    finally:
        await handle.dispose()
    return {"matched": True, **diagnostics}


def _centre(diagnostics: dict[str, Any]) -> dict[str, float]:
    bbox = diagnostics["boundingBox"]
    return {"x": bbox["x"] + bbox["width"] / 2, "y": bbox["y"] + bbox["height"] / 2}


async def _click(sp: SessionPage, payload: dict[str, Any], budget: _Budget) -> dict[str, Any]:
    button = _enum(payload, "button", MouseButton, MouseButton.LEFT)
    click_count = _int(payload, "clickCount", 1, minimum=1, maximum=3)
    assert click_count is not None
    selector = _selector(payload, required=False)
    if selector is None:
        point = _coordinates(payload)
        if point is None:
            raise BadRequestError("click needs payload.selector or payload.x and payload.y")
        await sp.page.mouse.click(*point, button=button.value, click_count=click_count)
        sp.mouse_x, sp.mouse_y = point
        return {"clickedPoint": {"x": point[0], "y": point[1]}, "url": sp.page.url}
    diagnostics = await _find(sp, payload, budget, selector)
    centre = _centre(diagnostics)
    # Click the centre point, as a user would (and as clickedPoint reports).
    await sp.page.mouse.click(
        centre["x"], centre["y"], button=button.value, click_count=click_count
    )
    sp.mouse_x, sp.mouse_y = centre["x"], centre["y"]
    return {**diagnostics, "clickedPoint": centre, "url": sp.page.url}


async def _hover(sp: SessionPage, payload: dict[str, Any], budget: _Budget) -> dict[str, Any]:
    selector = _selector(payload, required=False)
    if selector is None:
        point = _coordinates(payload)
        if point is None:
            raise BadRequestError("hover needs payload.selector or payload.x and payload.y")
        await sp.page.mouse.move(*point)
        sp.mouse_x, sp.mouse_y = point
        return {"hoveredPoint": {"x": point[0], "y": point[1]}, "url": sp.page.url}
    diagnostics = await _find(sp, payload, budget, selector)
    centre = _centre(diagnostics)
    await sp.page.mouse.move(centre["x"], centre["y"])
    sp.mouse_x, sp.mouse_y = centre["x"], centre["y"]
    return {**diagnostics, "hoveredPoint": centre, "url": sp.page.url}


async def _move_mouse(sp: SessionPage, payload: dict[str, Any], budget: _Budget) -> dict[str, Any]:
    point = _coordinates(payload)
    if point is None:
        raise BadRequestError("move_mouse needs payload.x and payload.y")
    steps = _int(payload, "steps", 1, minimum=1, maximum=100)
    assert steps is not None
    await sp.page.mouse.move(*point, steps=steps)
    sp.mouse_x, sp.mouse_y = point
    return {"x": point[0], "y": point[1]}


def _drag_path(payload: dict[str, Any]) -> list[tuple[float, float]]:
    name, raw = _pick(payload, "path", "points")
    if raw is None:
        if payload.get("from") is None or payload.get("to") is None:
            raise BadRequestError("drag_mouse needs payload.path (2..100 points) or from and to")
        return [_point(payload["from"], "payload.from"), _point(payload["to"], "payload.to")]
    if not isinstance(raw, list):
        raise BadRequestError(f"payload.{name} must be an array of {{x, y}} points")
    if not 2 <= len(raw) <= MAX_DRAG_POINTS:
        raise BadRequestError(
            f"payload.{name} must have 2 to {MAX_DRAG_POINTS} points (got {len(raw)})"
        )
    return [_point(p, f"payload.{name}[{i}]") for i, p in enumerate(raw)]


async def _drag_mouse(sp: SessionPage, payload: dict[str, Any], budget: _Budget) -> dict[str, Any]:
    path = _drag_path(payload)
    steps = _int(payload, "steps", 5, minimum=1, maximum=100)
    assert steps is not None
    mouse = sp.page.mouse
    await mouse.move(*path[0])
    await mouse.down()
    try:
        for point in path[1:]:
            await mouse.move(*point, steps=steps)
    finally:
        # Never leave the button held: the next action would act as a drag.
        await mouse.up()
    sp.mouse_x, sp.mouse_y = path[-1]
    return {
        "from": {"x": path[0][0], "y": path[0][1]},
        "to": {"x": path[-1][0], "y": path[-1][1]},
        "points": len(path),
    }


def _text(payload: dict[str, Any], *names: str) -> str:
    text = _str(payload, *names, required=True)
    assert text is not None
    return text


async def _type(sp: SessionPage, payload: dict[str, Any], budget: _Budget) -> dict[str, Any]:
    text = _text(payload, "text", "value")
    delay = _int(payload, "delay", 0, minimum=0, maximum=1000)
    selector = _selector(payload, required=False)
    if selector is None:
        await sp.page.keyboard.type(text, delay=delay)
        return {"typed": len(text)}
    await _find(sp, payload, budget, selector)
    locator = _locator(sp, selector)
    await locator.press_sequentially(text, delay=delay, timeout=budget.ms())
    return {"typed": len(text), "selector": selector, "matched": True}


async def _type_text(sp: SessionPage, payload: dict[str, Any], budget: _Budget) -> dict[str, Any]:
    text = _text(payload, "text", "value")
    await sp.page.keyboard.type(text)
    return {"typed": len(text)}


async def _fill(sp: SessionPage, payload: dict[str, Any], budget: _Budget) -> dict[str, Any]:
    selector = _selector(payload)
    assert selector is not None
    value = _text(payload, "value", "text")
    await _find(sp, payload, budget, selector)
    locator = _locator(sp, selector)
    await locator.fill(value, timeout=budget.ms())
    return {"selector": selector, "value": value, "matched": True}


async def _select(sp: SessionPage, payload: dict[str, Any], budget: _Budget) -> dict[str, Any]:
    selector = _selector(payload)
    assert selector is not None
    name, raw = _pick(payload, "value", "values", "label")
    if raw is None:
        raise BadRequestError("select needs payload.value (a string or array of strings)")
    values = [raw] if isinstance(raw, str) else raw
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise BadRequestError(f"payload.{name} must be a string or an array of strings")
    await _find(sp, payload, budget, selector)
    locator = _locator(sp, selector)
    if name == "label":
        selected = await locator.select_option(label=values, timeout=budget.ms())
    else:
        selected = await locator.select_option(value=values, timeout=budget.ms())
    return {"selector": selector, "selected": selected, "matched": True}


async def _check(sp: SessionPage, payload: dict[str, Any], budget: _Budget) -> dict[str, Any]:
    selector = _selector(payload)
    assert selector is not None
    checked = _bool(payload, "checked", True)
    await _find(sp, payload, budget, selector)
    locator = _locator(sp, selector)
    await locator.set_checked(checked, timeout=budget.ms())
    return {"selector": selector, "checked": await locator.is_checked(), "matched": True}


async def _press(sp: SessionPage, payload: dict[str, Any], budget: _Budget) -> dict[str, Any]:
    if payload.get("key") is not None:
        keys = [_text(payload, "key")]
    else:
        keys = _string_list(payload, "keys")
        if not keys:
            raise BadRequestError("press needs payload.key (e.g. 'Enter') or payload.keys")
    selector = _selector(payload, required=False)
    locator = None
    if selector:
        await _find(sp, payload, budget, selector)
        locator = _locator(sp, selector)
    for key in keys:
        try:
            if locator is not None:
                await locator.press(key, timeout=budget.ms())
            else:
                await sp.page.keyboard.press(key)
        except PlaywrightError as err:
            if "Unknown key" in _message(err):
                raise BadRequestError(f"Unknown key {key!r}") from err
            raise
    return {"keys": keys}


async def _scroll(sp: SessionPage, payload: dict[str, Any], budget: _Budget) -> dict[str, Any]:
    selector = _selector(payload, required=False)
    point = _coordinates(payload)
    has_direction = payload.get("direction") is not None
    if point is not None:
        mode, dx, dy = "to", point[0], point[1]
    else:
        direction = _enum(payload, "direction", ScrollDirection, ScrollDirection.DOWN)
        amount = _number(payload.get("amount", DEFAULT_SCROLL_AMOUNT), "payload.amount")
        dx, dy = {
            ScrollDirection.UP: (0.0, -amount),
            ScrollDirection.DOWN: (0.0, amount),
            ScrollDirection.LEFT: (-amount, 0.0),
            ScrollDirection.RIGHT: (amount, 0.0),
        }[direction]
        mode = "by"
    if selector is None:
        return await sp.page.evaluate(page_scripts.SCROLL_WINDOW, [mode, dx, dy])
    await _find(sp, payload, budget, selector)
    locator = _locator(sp, selector)
    if point is None and not has_direction:
        mode = "into_view"
    result = await locator.evaluate(page_scripts.SCROLL, [mode, dx, dy], timeout=budget.ms())
    return {"selector": selector, **result}


# -- batch ------------------------------------------------------------------------------------


def _batch_steps(payload: dict[str, Any]) -> list[tuple[ActionType, dict[str, Any]]]:
    actions = payload.get("actions")
    if not isinstance(actions, list) or not actions:
        raise BadRequestError("batch needs payload.actions: an array of 1 to 25 {type, payload}")
    if len(actions) > MAX_BATCH_ACTIONS:
        raise BadRequestError(
            f"batch accepts at most {MAX_BATCH_ACTIONS} actions (got {len(actions)})"
        )
    steps = []
    for index, step in enumerate(actions):
        try:
            action_type, step_payload = parse_action_request(step)
        except BadRequestError as err:
            raise BadRequestError(f"batch action {index}: {err.message}") from err
        if action_type is ActionType.BATCH:
            raise BadRequestError(f"batch action {index}: nested batch is not allowed")
        steps.append((action_type, step_payload))
    return steps


async def _batch(sp: SessionPage, payload: dict[str, Any], budget: _Budget) -> dict[str, Any]:
    steps = _batch_steps(payload)
    results: list[dict[str, Any]] = []
    for index, (action_type, step_payload) in enumerate(steps):
        try:
            answer = await _execute(sp, action_type, step_payload, budget)
        except CaptureError as err:
            results.append({"type": action_type.value, "success": False, "error": err.message})
            failed = type(err)(
                f"batch action {index} ({action_type}) failed: {err.message}",
                **{
                    **err.extra,
                    "results": results,
                    "failedIndex": index,
                    "completed": index,
                },
            )
            raise failed from err
        results.append({"type": action_type.value, "success": True, **answer})
    return {"results": results, "completed": len(results)}


_HANDLERS: dict[ActionType, _Handler] = {
    ActionType.GOTO: _goto,
    ActionType.SCREENSHOT: _screenshot,
    ActionType.WAIT_FOR_SELECTOR: _wait_for_selector,
    ActionType.WAIT_FOR_TIMEOUT: _wait_for_timeout,
    ActionType.CLICK: _click,
    ActionType.MOVE_MOUSE: _move_mouse,
    ActionType.DRAG_MOUSE: _drag_mouse,
    ActionType.HOVER: _hover,
    ActionType.TYPE: _type,
    ActionType.TYPE_TEXT: _type_text,
    ActionType.FILL: _fill,
    ActionType.SELECT: _select,
    ActionType.CHECK: _check,
    ActionType.PRESS: _press,
    ActionType.SCROLL: _scroll,
    ActionType.BACK: _back,
    ActionType.FORWARD: _forward,
    ActionType.RELOAD: _reload,
    ActionType.TITLE: _title,
    ActionType.URL: _url,
    ActionType.CURSOR_POSITION: _cursor_position,
    ActionType.SNAPSHOT: _snapshot,
    ActionType.CONSOLE: _console,
    ActionType.ERRORS: _errors,
    ActionType.CONTENT: _content,
    ActionType.QUERY: _query,
}

"""The actions that act on the page as a user would: pointer (`click`, `hover`, `move_mouse`,
`drag_mouse`), keyboard and form (`type`, `type_text`, `fill`, `select`, `check`, `press`),
`scroll`, and waiting (`wait_for_selector`, `wait_for_timeout`).

A selector is waited for until visible, scrolled into view when outside the viewport, and acted
on at its centre; the answer carries the element's diagnostics (`page_scripts.DESCRIBE`).
Imports no aiohttp: HTTP is the API layer's.
"""

from __future__ import annotations

import contextlib
from enum import StrEnum
from typing import Any

from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Locator
from playwright.async_api import TimeoutError as PlaywrightTimeoutError

from mock_server import page_scripts
from mock_server.actions.budget import Budget
from mock_server.actions.payload import (
    Payload,
    choice,
    coordinates,
    flag,
    integer,
    optional_selector,
    pick,
    pixels,
    point,
    selector,
    string_list,
    text,
    timeout_ms,
)
from mock_server.browser import SessionPage, error_message
from mock_server.errors import ActionFailedError, BadRequestError, CaptureError
from recorder.fields import ACTIONS


class MouseButton(StrEnum):
    LEFT = "left"
    RIGHT = "right"
    MIDDLE = "middle"


class ScrollDirection(StrEnum):
    UP = "up"
    DOWN = "down"
    LEFT = "left"
    RIGHT = "right"


MAX_DRAG_POINTS = 100
MAX_MOUSE_STEPS = 100
MAX_TYPE_DELAY_MS = 1000
DEFAULT_SCROLL_AMOUNT = 500
DEFAULT_WAIT_FOR_SELECTOR_MS = 5000
DEFAULT_WAIT_FOR_TIMEOUT_MS = 1000
MAX_WAIT_FOR_TIMEOUT_MS = 2500


def _locator(sp: SessionPage, css: str) -> Locator:
    return sp.page.locator(css).first


async def _find(sp: SessionPage, payload: Payload, budget: Budget, css: str) -> dict[str, Any]:
    """Wait for the selector's first match to be visible, scroll it into view if it is outside
    the viewport, and return its diagnostics.

    One round trip when the element is already there and visible (the usual case): the first
    match is described without waiting. Otherwise Playwright waits for it, as
    `wait_for_selector` does (the first match, visible).
    """
    own_ms = timeout_ms(payload)
    found = None
    # A page between documents or an invalid selector: the waiting path below tells them apart.
    with contextlib.suppress(PlaywrightError):
        found = await sp.page.locator(css).evaluate_all(page_scripts.DESCRIBE_FIRST, True)
    if found is not None and found["visible"]:
        return {"matched": True, **found}
    try:
        handle = await sp.page.wait_for_selector(css, state="visible", timeout=budget.ms(own_ms))
    except PlaywrightTimeoutError as err:
        if budget.exhausted():
            raise budget.timeout_error(f"Waiting for {css!r}") from err
        attached = _locator(sp, css)
        if await attached.count() == 0:
            raise ActionFailedError(
                f"No element matches selector {css!r}", matched=False, selector=css
            ) from err
        diagnostics = await attached.evaluate(page_scripts.DESCRIBE, False, timeout=budget.ms())
        raise ActionFailedError(
            f"Element matching selector {css!r} is not visible",
            matched=True,
            selector=css,
            **diagnostics,
        ) from err
    except PlaywrightError as err:
        raise BadRequestError(f"Invalid selector {css!r}: {error_message(err)}") from err
    assert handle is not None
    try:
        diagnostics = await handle.evaluate(page_scripts.DESCRIBE, True)
    finally:
        await handle.dispose()
    return {"matched": True, **diagnostics}


async def _found(sp: SessionPage, payload: Payload, budget: Budget, css: str) -> Locator:
    """The locator of a selector once `_find` has seen it visible."""
    await _find(sp, payload, budget, css)
    return _locator(sp, css)


def _centre(diagnostics: dict[str, Any]) -> tuple[float, float]:
    bbox = diagnostics["boundingBox"]
    return bbox["x"] + bbox["width"] / 2, bbox["y"] + bbox["height"] / 2


async def _pointer_target(
    sp: SessionPage, payload: Payload, budget: Budget, action: str
) -> tuple[tuple[float, float], dict[str, Any]]:
    """Where `click`/`hover` act: a selector's centre (with its diagnostics) or `x`+`y`."""
    css = optional_selector(payload)
    if css is None:
        at = coordinates(payload)
        if at is None:
            raise BadRequestError(f"{action} needs payload.selector or payload.x and payload.y")
        return at, {}
    diagnostics = await _find(sp, payload, budget, css)
    return _centre(diagnostics), diagnostics


def _xy(at: tuple[float, float]) -> dict[str, float]:
    return {"x": at[0], "y": at[1]}


async def click(sp: SessionPage, payload: Payload, budget: Budget) -> dict[str, Any]:
    button = choice(payload, "button", MouseButton, MouseButton.LEFT)
    click_count = integer(payload, "clickCount", 1, minimum=1, maximum=3)
    at, diagnostics = await _pointer_target(sp, payload, budget, "click")
    # The centre point, as a user would click (and as clickedPoint reports).
    await sp.page.mouse.click(*at, button=button.value, click_count=click_count)
    sp.mouse_x, sp.mouse_y = at
    return {**diagnostics, "clickedPoint": _xy(at), "url": sp.page.url}


async def hover(sp: SessionPage, payload: Payload, budget: Budget) -> dict[str, Any]:
    at, diagnostics = await _pointer_target(sp, payload, budget, "hover")
    await sp.page.mouse.move(*at)
    sp.mouse_x, sp.mouse_y = at
    return {**diagnostics, "hoveredPoint": _xy(at), "url": sp.page.url}


async def move_mouse(sp: SessionPage, payload: Payload, budget: Budget) -> dict[str, Any]:
    at = coordinates(payload)
    if at is None:
        raise BadRequestError("move_mouse needs payload.x and payload.y")
    steps = integer(payload, "steps", 1, minimum=1, maximum=MAX_MOUSE_STEPS)
    await sp.page.mouse.move(*at, steps=steps)
    sp.mouse_x, sp.mouse_y = at
    return _xy(at)


def _drag_path(payload: Payload) -> list[tuple[float, float]]:
    name, raw = pick(payload, *ACTIONS["drag_mouse"].names("path"))
    if raw is None:
        if payload.get("from") is None or payload.get("to") is None:
            raise BadRequestError("drag_mouse needs payload.path (2..100 points) or from and to")
        return [point(payload["from"], "payload.from"), point(payload["to"], "payload.to")]
    if not isinstance(raw, list):
        raise BadRequestError(f"payload.{name} must be an array of {{x, y}} points")
    if not 2 <= len(raw) <= MAX_DRAG_POINTS:
        raise BadRequestError(
            f"payload.{name} must have 2 to {MAX_DRAG_POINTS} points (got {len(raw)})"
        )
    return [point(p, f"payload.{name}[{i}]") for i, p in enumerate(raw)]


async def drag_mouse(sp: SessionPage, payload: Payload, budget: Budget) -> dict[str, Any]:
    path = _drag_path(payload)
    steps = integer(payload, "steps", 5, minimum=1, maximum=MAX_MOUSE_STEPS)
    mouse = sp.page.mouse
    await mouse.move(*path[0])
    await mouse.down()
    try:
        for at in path[1:]:
            await mouse.move(*at, steps=steps)
    finally:
        # Never leave the button held: the next action would act as a drag.
        await mouse.up()
    sp.mouse_x, sp.mouse_y = path[-1]
    return {"from": _xy(path[0]), "to": _xy(path[-1]), "points": len(path)}


async def type_keys(sp: SessionPage, payload: Payload, budget: Budget) -> dict[str, Any]:
    """`type`: key by key into `selector`, or into the focused element."""
    typed = text(payload, *ACTIONS["type"].names("text"))
    delay = integer(payload, "delay", 0, minimum=0, maximum=MAX_TYPE_DELAY_MS)
    css = optional_selector(payload)
    if css is None:
        await sp.page.keyboard.type(typed, delay=delay)
        return {"typed": len(typed)}
    locator = await _found(sp, payload, budget, css)
    await locator.press_sequentially(typed, delay=delay, timeout=budget.ms())
    return {"typed": len(typed), "selector": css, "matched": True}


async def type_text(sp: SessionPage, payload: Payload, budget: Budget) -> dict[str, Any]:
    typed = text(payload, *ACTIONS["type_text"].names("text"))
    await sp.page.keyboard.type(typed)
    return {"typed": len(typed)}


async def fill(sp: SessionPage, payload: Payload, budget: Budget) -> dict[str, Any]:
    css = selector(payload)
    value = text(payload, *ACTIONS["fill"].names("value"))
    locator = await _found(sp, payload, budget, css)
    await locator.fill(value, timeout=budget.ms())
    return {"selector": css, "value": value, "matched": True}


async def select(sp: SessionPage, payload: Payload, budget: Budget) -> dict[str, Any]:
    css = selector(payload)
    name, raw = pick(payload, "value", "values", "label")
    if raw is None:
        raise BadRequestError("select needs payload.value (a string or array of strings)")
    values = [raw] if isinstance(raw, str) else raw
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise BadRequestError(f"payload.{name} must be a string or an array of strings")
    locator = await _found(sp, payload, budget, css)
    by = "label" if name == "label" else "value"
    own_ms = budget.ms(timeout_ms(payload))
    try:
        # Playwright waits for the options to appear (a list filled by a script); a value that
        # never appears must not wait out the whole action budget as a 504 (which clients retry).
        if by == "label":
            selected = await locator.select_option(label=values, timeout=own_ms)
        else:
            selected = await locator.select_option(value=values, timeout=own_ms)
    except PlaywrightTimeoutError as err:
        if budget.exhausted():
            raise budget.timeout_error(f"Selecting in {css!r}") from err
        raise await _no_such_option(locator, budget, css, by, values) from err
    return {"selector": css, "selected": selected, "matched": True}


async def _no_such_option(
    locator: Locator, budget: Budget, css: str, by: str, values: list[str]
) -> CaptureError:
    """The 400 for a `select` whose value (or label) no option has, naming the options there."""
    options = await locator.evaluate(page_scripts.SELECT_OPTIONS, timeout=budget.ms())
    missing = [v for v in values if v not in {o[by] for o in options}]
    if not missing:  # every option is there: the element never became selectable
        return ActionFailedError(
            f"Could not select in {css!r}: the element stayed disabled or hidden",
            selector=css,
            options=options,
        )
    present = ", ".join(f"{o['value']!r} (label {o['label']!r})" for o in options) or "none"
    asked = ", ".join(repr(v) for v in missing)
    return BadRequestError(
        f"No option of {css!r} has the {by} {asked}; its options (value and label): {present}",
        selector=css,
        options=options,
    )


async def check(sp: SessionPage, payload: Payload, budget: Budget) -> dict[str, Any]:
    css = selector(payload)
    checked = flag(payload, "checked", True)
    locator = await _found(sp, payload, budget, css)
    await locator.set_checked(checked, timeout=budget.ms())
    return {"selector": css, "checked": await locator.is_checked(), "matched": True}


async def press(sp: SessionPage, payload: Payload, budget: Budget) -> dict[str, Any]:
    if payload.get("key") is not None:
        keys = [text(payload, "key")]
    else:
        keys = string_list(payload, "keys")
        if not keys:
            raise BadRequestError("press needs payload.key (e.g. 'Enter') or payload.keys")
    css = optional_selector(payload)
    locator = await _found(sp, payload, budget, css) if css else None
    for key in keys:
        try:
            if locator is not None:
                await locator.press(key, timeout=budget.ms())
            else:
                await sp.page.keyboard.press(key)
        except PlaywrightError as err:
            if "Unknown key" in error_message(err):
                raise BadRequestError(f"Unknown key {key!r}") from err
            raise
    return {"keys": keys}


async def scroll(sp: SessionPage, payload: Payload, budget: Budget) -> dict[str, Any]:
    css = optional_selector(payload)
    at = coordinates(payload)
    has_direction = payload.get("direction") is not None
    if at is not None:
        mode, dx, dy = "to", at[0], at[1]
    else:
        direction = choice(payload, "direction", ScrollDirection, ScrollDirection.DOWN)
        amount = pixels(payload.get("amount", DEFAULT_SCROLL_AMOUNT), "payload.amount")
        dx, dy = {
            ScrollDirection.UP: (0.0, -amount),
            ScrollDirection.DOWN: (0.0, amount),
            ScrollDirection.LEFT: (-amount, 0.0),
            ScrollDirection.RIGHT: (amount, 0.0),
        }[direction]
        mode = "by"
    if css is None:
        return await sp.page.evaluate(page_scripts.SCROLL_WINDOW, [mode, dx, dy])
    locator = await _found(sp, payload, budget, css)
    if at is None and not has_direction:
        mode = "into_view"
    result = await locator.evaluate(page_scripts.SCROLL, [mode, dx, dy], timeout=budget.ms())
    return {"selector": css, **result}


async def wait_for_selector(sp: SessionPage, payload: Payload, budget: Budget) -> dict[str, Any]:
    css = selector(payload)
    visible = flag(payload, "visible", True)
    own_ms = timeout_ms(payload, DEFAULT_WAIT_FOR_SELECTOR_MS)
    state = "visible" if visible else "attached"
    try:
        await _locator(sp, css).wait_for(state=state, timeout=budget.ms(own_ms))
    except PlaywrightTimeoutError as err:
        if budget.exhausted():
            raise budget.timeout_error(f"Waiting for {css!r}") from err
        raise ActionFailedError(
            f"No element matching selector {css!r} became {state} within {own_ms} ms",
            matched=False,
            selector=css,
        ) from err
    return {"selector": css, "matched": True, "state": state, "url": sp.page.url}


async def wait_for_timeout(sp: SessionPage, payload: Payload, budget: Budget) -> dict[str, Any]:
    ms = timeout_ms(payload, DEFAULT_WAIT_FOR_TIMEOUT_MS, MAX_WAIT_FOR_TIMEOUT_MS)
    if ms > budget.left_ms():
        raise budget.timeout_error(f"Waiting {ms} ms")
    await sp.page.wait_for_timeout(ms)
    return {"waitedMs": ms}

"""The action types, the top level of an action request, and running one action (or a batch).

`run_action` is the one entry point: it checks the page is alive, applies the viewport the
payload asks for where it applies, runs the handler of the type within the action's time
budget, attaches a screenshot when asked, and turns Playwright's errors into
`mock_server.errors` ones. Nothing here knows HTTP or session lifetime (the API layer adds
`success` and `expiresInSeconds`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from enum import StrEnum
from typing import Any

from playwright.async_api import Error as PlaywrightError
from playwright.async_api import TimeoutError as PlaywrightTimeoutError

from mock_server.actions import interaction, navigation, reading
from mock_server.actions.budget import Budget
from mock_server.actions.payload import Payload, flag
from mock_server.actions.viewport import apply_viewport, viewport_change
from mock_server.browser import SessionPage, error_message
from mock_server.errors import (
    ActionFailedError,
    ActionTimeoutError,
    BadRequestError,
    BrowserUnavailableError,
    CaptureError,
)
from recorder.fields import ACTION_REQUEST


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


MAX_BATCH_ACTIONS = 25

_TOP_LEVEL_KEYS = frozenset(ACTION_REQUEST.documented)
# Actions that apply viewport options even without `screenshot: true` (OAS).
_VIEWPORT_ACTIONS = frozenset({ActionType.GOTO, ActionType.SCREENSHOT})
# Grace over the action budget before the outer guard cancels a stuck Playwright call.
_GUARD_GRACE_S = 1.0

_Handler = Callable[[SessionPage, Payload, Budget], Awaitable[dict[str, Any]]]

_HANDLERS: dict[ActionType, _Handler] = {
    ActionType.GOTO: navigation.goto,
    ActionType.BACK: navigation.back,
    ActionType.FORWARD: navigation.forward,
    ActionType.RELOAD: navigation.reload,
    ActionType.CLICK: interaction.click,
    ActionType.HOVER: interaction.hover,
    ActionType.MOVE_MOUSE: interaction.move_mouse,
    ActionType.DRAG_MOUSE: interaction.drag_mouse,
    ActionType.TYPE: interaction.type_keys,
    ActionType.TYPE_TEXT: interaction.type_text,
    ActionType.FILL: interaction.fill,
    ActionType.SELECT: interaction.select,
    ActionType.CHECK: interaction.check,
    ActionType.PRESS: interaction.press,
    ActionType.SCROLL: interaction.scroll,
    ActionType.WAIT_FOR_SELECTOR: interaction.wait_for_selector,
    ActionType.WAIT_FOR_TIMEOUT: interaction.wait_for_timeout,
    ActionType.SCREENSHOT: reading.screenshot,
    ActionType.TITLE: reading.title,
    ActionType.URL: reading.current_url,
    ActionType.CURSOR_POSITION: reading.cursor_position,
    ActionType.SNAPSHOT: reading.snapshot,
    ActionType.CONSOLE: reading.console,
    ActionType.ERRORS: reading.errors,
    ActionType.CONTENT: reading.content,
    ActionType.QUERY: reading.query,
}


def parse_action_request(body: object) -> tuple[ActionType, Payload]:
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
    if not isinstance(raw_type, str) or raw_type not in ActionType.__members__.values():
        valid = ", ".join(t.value for t in ActionType)
        raise BadRequestError(f"Unknown action type {raw_type!r}; valid types: {valid}")
    payload = body.get("payload")
    if payload is None or payload == []:
        payload = {}
    if not isinstance(payload, dict):
        raise BadRequestError("'payload' must be a JSON object")
    return ActionType(raw_type), payload


async def run_action(
    sp: SessionPage, action_type: ActionType, payload: Payload, *, timeout_s: float
) -> dict[str, Any]:
    """Run one action (the caller holds `sp.lock`); return the answer fields.

    The whole action, a whole batch included, must finish within `timeout_s`.
    """
    budget = Budget.start(timeout_s)
    try:
        async with asyncio.timeout(timeout_s + _GUARD_GRACE_S):  # no extra task per action
            return await _execute(sp, action_type, payload, budget)
    except TimeoutError as err:
        raise ActionTimeoutError(f"Action '{action_type}' timed out after {timeout_s:g} s") from err


async def _execute(
    sp: SessionPage, action_type: ActionType, payload: Payload, budget: Budget
) -> dict[str, Any]:
    if sp.gone:
        raise BrowserUnavailableError(_gone_message(sp))
    if action_type is ActionType.BATCH:
        return await _batch(sp, payload, budget)
    change = viewport_change(payload, sp.viewport)
    attach = action_type is not ActionType.SCREENSHOT and flag(payload, "screenshot", False)
    try:
        if change is not None and (action_type in _VIEWPORT_ACTIONS or attach):
            await apply_viewport(sp, change)
        answer = await _HANDLERS[action_type](sp, payload, budget)
        if attach:
            answer["screenshot"] = await reading.screenshot_image(sp, budget, full_page=False)
        return answer
    except CaptureError:
        raise
    except PlaywrightTimeoutError as err:
        raise budget.timeout_error(f"Action '{action_type}'") from err
    except PlaywrightError as err:
        if sp.gone or _is_target_closed(err):
            raise BrowserUnavailableError(_gone_message(sp)) from err
        raise ActionFailedError(f"Action '{action_type}' failed: {error_message(err)}") from err


def _gone_message(sp: SessionPage) -> str:
    if sp.crashed:
        return "The session's page crashed (its renderer or the browser died)"
    return "The session's page is gone (the browser crashed or the page was closed)"


def _is_target_closed(err: PlaywrightError) -> bool:
    """Playwright's error for a page, context or browser that went away under a call (raised
    before the page's close event arrives when the browser is killed mid-action)."""
    return type(err).__name__ == "TargetClosedError" or "Target crashed" in err.message


def _batch_steps(payload: Payload) -> list[tuple[ActionType, Payload]]:
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


async def _batch(sp: SessionPage, payload: Payload, budget: Budget) -> dict[str, Any]:
    """Every step is checked before the first runs; the first failing step ends the batch."""
    steps = _batch_steps(payload)
    results: list[dict[str, Any]] = []
    for index, (action_type, step_payload) in enumerate(steps):
        try:
            answer = await _execute(sp, action_type, step_payload, budget)
        except CaptureError as err:
            results.append({"type": action_type.value, "success": False, "error": err.message})
            raise type(err)(
                f"batch action {index} ({action_type}) failed: {err.message}",
                **{**err.extra, "results": results, "failedIndex": index, "completed": index},
            ) from err
        results.append({"type": action_type.value, "success": True, **answer})
    return {"results": results, "completed": len(results)}

"""The field tables own every name the emulator reads: each action handler, run on real
Chromium, reads only names `recorder.fields` lists for its type (a field added to a handler but
not to the table fails here; the one-shot parsers are checked in tests/recorder/test_fields.py)."""

from __future__ import annotations

from typing import Any

import pytest

from mock_server.actions import ActionType, run_action
from mock_server.browser import SessionPage
from mock_server.errors import CaptureError
from recorder.fields import ACTIONS, ANY_ACTION
from tests.recorder.test_fields import ReadNames

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.browser]


PAYLOADS: dict[str, dict[str, Any]] = {
    "wait_for_selector": {"selector": "#user"},
    "wait_for_timeout": {"timeoutMs": 1},
    "click": {"selector": "#agree"},
    "move_mouse": {"x": 5, "y": 5},
    "drag_mouse": {"from": {"x": 1, "y": 1}, "to": {"x": 2, "y": 2}},
    "hover": {"selector": "#user"},
    "type": {"text": "a", "selector": "#user"},
    "type_text": {"text": "a"},
    "fill": {"selector": "#user", "value": "a"},
    "select": {"selector": "#color", "value": "red"},
    "check": {"selector": "#agree"},
    "press": {"key": "Tab"},
    "scroll": {"direction": "down"},
    "query": {"selector": "input"},
    "batch": {"actions": [{"type": "title", "payload": {}}]},
}


@pytest.mark.parametrize("action", [t.value for t in ActionType])
async def test_an_action_reads_only_names_of_its_table(session: SessionPage, site, action):
    payload = {
        k: site.url("/form") if v == "FORM" else v for k, v in PAYLOADS.get(action, {}).items()
    }
    tracked = ReadNames(payload)
    if action != "goto":
        await session.page.goto(site.url("/form"))
    try:
        await run_action(session, ActionType(action), tracked, timeout_s=10)
    except CaptureError:
        pass  # only the names read matter here (back without history may fail, for one)
    allowed = set(ACTIONS[action].accepted) | set(ANY_ACTION.accepted)
    assert tracked.asked - allowed == set()
    assert tracked.asked  # a handler that reads nothing could not fail this test

"""What the contract requires of an answer: the fields each sessions route must send back, by
status (and, for actions, by action type), with their JSON types.

The one owner of these facts at runtime (`import` checks hand-written answers with it). It is a
small explicit table rather than the OpenAPI file read by a JSON Schema validator because the YAML
is not packaged and the runtime has no `jsonschema`; `tests/contract` checks the same answers
against Capture's own OpenAPI file, and a test checks the two agree on every shipped cassette.
Only the `required` fields of the schemas (`CreateSessionResponse`, `GetSessionResponse`,
`BrowserSession`, `ErrorResponse`, `SessionLimitErrorResponse`, `InactiveSessionActionResponse`
and the action answers) are checked, with their types, plus the `expiresInSeconds` that
executeAction's description promises on every successful action answer; other fields are free,
as the schemas' `additionalProperties` leave them.

Plain functions over parsed JSON: imports no aiohttp, click or Pillow, and never `mock_server`.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import Any

from recorder.contract import action_type_in, is_action_path, is_create, session_id_from_path

SESSION_STATUSES = frozenset({"active", "closed", "expired", "error"})
CONTENT_FORMATS = frozenset({"text", "markdown", "html"})

Check = Callable[[Any], str | None]


def _string(value: Any) -> str | None:
    return None if isinstance(value, str) else "expected a string"


def _boolean(value: Any) -> str | None:
    return None if isinstance(value, bool) else "expected true or false"


def _integer(value: Any) -> str | None:
    ok = isinstance(value, int) and not isinstance(value, bool)
    return None if ok else "expected an integer"


def _count(value: Any) -> str | None:
    return _integer(value) or (None if value >= 0 else "expected an integer >= 0")


def _nullable_integer(value: Any) -> str | None:
    return None if value is None else _integer(value)


def _object(value: Any) -> str | None:
    return None if isinstance(value, dict) else "expected an object"


def _strings(value: Any) -> str | None:
    ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
    return None if ok else "expected a list of strings"


def _objects(value: Any) -> str | None:
    ok = isinstance(value, list) and all(isinstance(v, dict) for v in value)
    return None if ok else "expected a list of objects"


def _status(value: Any) -> str | None:
    if value in SESSION_STATUSES:
        return None
    return f"expected one of {', '.join(sorted(SESSION_STATUSES))}"


def _base64(value: Any) -> str | None:
    if not isinstance(value, str):
        return "expected a base64 string"
    try:
        base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return "expected a base64 string"
    return None


def _png(value: Any) -> str | None:
    return None if value == "image/png" else 'expected "image/png"'


def _format(value: Any) -> str | None:
    return None if value in CONTENT_FORMATS else "expected text, markdown or html"


# CreateSessionResponse.session
CREATED_SESSION: dict[str, Check] = {
    "id": _string,
    "status": _status,
    "expiresAt": _string,
    "maxTtlSeconds": _integer,
    "proxy": _boolean,
    "bypassBotDetection": _boolean,
    "cdp": _boolean,
}
# BrowserSession (GET, DELETE, and the snapshot of a 409)
BROWSER_SESSION: dict[str, Check] = {
    "id": _string,
    "status": _status,
    "startedAt": _string,
    "expiresAt": _string,
    "billedCredits": _nullable_integer,
    "actionCount": _integer,
    "actionSuccessCount": _integer,
    "actionErrorCount": _integer,
    "actionBreakdown": _object,
    "options": _object,
}
# Action answers by type (GotoActionResponse, ScreenshotActionResponse, ContentActionResponse,
# QueryActionResponse); any other type is a GenericActionResponse: `success` only.
_URL = {"url": _string}
ACTION_ANSWERS: dict[str, dict[str, Check]] = {
    "goto": _URL,
    "click": _URL,
    "hover": _URL,
    "screenshot": {"contentType": _png, "bodyBase64": _base64},
    "content": {"format": _format, "content": _string},
    "query": {
        "selector": _string,
        "fields": _strings,
        "attributes": _strings,
        "limit": _integer,
        "count": _integer,
        "elements": _objects,
    },
}
SESSION_LIMIT: dict[str, Check] = {
    "activeSessionCount": _integer,
    "maxConcurrentSessions": _integer,
}


def _fields(data: dict[str, Any], checks: dict[str, Check], where: str) -> str | None:
    for name, check in checks.items():
        if name not in data:
            return f"{where}{name}: missing (the contract requires it)"
        problem = check(data[name])
        if problem is not None:
            return f"{where}{name}: {problem}"
    return None


def _session(data: dict[str, Any], checks: dict[str, Check], *, required: bool) -> str | None:
    if "session" not in data:
        return "session: missing (the contract requires it)" if required else None
    if not isinstance(data["session"], dict):
        return "session: expected an object"
    return _fields(data["session"], checks, "session.")


def _expires_in(data: dict[str, Any]) -> str | None:
    if "expiresInSeconds" in data:
        problem = _count(data["expiresInSeconds"])
        if problem is not None:
            return f"expiresInSeconds: {problem}"
    return None


def is_sessions_route(method: str, path: str) -> bool:
    """A route of the sessions contract: create, get, close, or an action."""
    method = method.upper()
    if is_create(method, path):
        return True
    if session_id_from_path(path) is None:
        return False
    return method == "POST" if is_action_path(path) else method in ("GET", "DELETE")


def answer_problem(method: str, path: str, request: Any, status: int, answer: Any) -> str | None:
    """The first way the JSON `answer` (parsed) to `method path` (with the parsed `request`
    body) breaks the contract at `status`, as `field: problem` (`field` a dotted path in the
    answer, empty for the answer itself); None when it fits, or when the route is not one of
    the sessions routes the contract describes."""
    if not is_sessions_route(method, path):
        return None
    if not isinstance(answer, dict):
        return ": expected a JSON object"  # the body itself
    if status >= 400:
        if answer.get("success") is not False:
            return "success: expected false for an error status"
        problem = _fields(answer, {"error": _string}, "")
        if problem is None and status == 429 and is_create(method, path):
            problem = _fields(answer, SESSION_LIMIT, "")
        if problem is None and is_action_path(path):
            problem = _expires_in(answer)
        return problem or _session(answer, BROWSER_SESSION, required=False)
    if answer.get("success") is not True:
        return "success: expected true for a success status"
    if is_create(method, path):
        return _session(answer, CREATED_SESSION, required=True)
    if not is_action_path(path):
        return _session(answer, BROWSER_SESSION, required=True)
    # "Responses for existing sessions include expiresInSeconds" (executeAction's description)
    problem = _fields(answer, {"expiresInSeconds": _count}, "")
    checks = ACTION_ANSWERS.get(action_type_in(request) or "")
    return problem or (_fields(answer, checks, "") if checks else None)

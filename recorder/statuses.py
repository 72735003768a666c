"""Capture's documented failures: for each route, the statuses the contract names and their texts.

The one table of error statuses (`STATUSES`), next to the other wire rules of `recorder.contract`.
The sessions routes come from Capture's OpenAPI file (`sessions.openapi.yaml`): each status's
`description` there is the text answered, and `extra` names the fields the contract's schema for
that status adds to `{"success": false, "error": ...}` (`expiresInSeconds` and the `session`
snapshot of `ActionErrorResponse` / `InactiveSessionActionResponse`, the counts of
`SessionLimitErrorResponse`). The 404 text is the SDKs' own ("Session not found"). The one-shot
endpoints have no OpenAPI file: their 401 text is the docs' ("Invalid hash"); the other statuses
are the ones this emulator answers (`source` says which is which).

Fault injection (`mock_server.faults`) refuses a status not in the table for a route and answers
these texts; the emulator's own errors import the texts that are the same fact. Plain data over
`recorder.contract`: imports no aiohttp, click or Pillow, and never `mock_server`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from recorder.contract import SESSION_PATH, SIGNED_PATH, is_create


class Route(StrEnum):
    """The routes whose failures the contract documents."""

    CREATE = "create"
    GET = "get"
    CLOSE = "close"
    ACTION = "action"
    ONESHOT = "oneshot"


# How each route is called, as the contract writes it.
ROUTE_CALLS: dict[Route, tuple[str, str]] = {
    Route.CREATE: ("POST", "/v1/sessions"),
    Route.GET: ("GET", "/v1/sessions/{sessionId}"),
    Route.CLOSE: ("DELETE", "/v1/sessions/{sessionId}"),
    Route.ACTION: ("POST", "/v1/sessions/{sessionId}/actions"),
    Route.ONESHOT: ("GET", "/{key}/{hash}/{endpoint}"),
}
SESSION_ROUTES = frozenset({Route.GET, Route.CLOSE, Route.ACTION})

# Extra fields of an error body.
EXPIRES_IN = "expiresInSeconds"
SESSION = "session"
ACTIVE_COUNT = "activeSessionCount"
MAX_CONCURRENT = "maxConcurrentSessions"

OAS = "OpenAPI"
SDKS = "SDK fixtures"
DOCS = "docs"
EMULATOR = "this emulator"


@dataclass(frozen=True, slots=True)
class DocumentedStatus:
    status: int
    text: str
    extra: tuple[str, ...] = ()
    source: str = OAS


UNAUTHORIZED = "Missing or invalid Bearer credentials"
FORBIDDEN = "User is not allowed to create the session"
NOT_FOUND = "Session not found"
INACTIVE = "Session is unavailable or not active"
INTERNAL = "Internal server error"
BACKING_SERVICE = "Required backing service is unavailable"
CDP_UNAVAILABLE = "CDP connections are not available"
TIMED_OUT = "Action timed out"
SESSION_LIMIT = "User has reached the active session limit"
INVALID_HASH = "Invalid hash"

_ACTION_ERROR = (EXPIRES_IN, SESSION)


def _table(*entries: DocumentedStatus) -> dict[int, DocumentedStatus]:
    return {e.status: e for e in entries}


STATUSES: dict[Route, dict[int, DocumentedStatus]] = {
    Route.CREATE: _table(
        DocumentedStatus(400, "Invalid session options"),
        DocumentedStatus(401, UNAUTHORIZED),
        DocumentedStatus(403, FORBIDDEN),
        DocumentedStatus(429, SESSION_LIMIT, (ACTIVE_COUNT, MAX_CONCURRENT)),
        DocumentedStatus(500, INTERNAL),
        DocumentedStatus(503, CDP_UNAVAILABLE),
    ),
    Route.GET: _table(
        DocumentedStatus(401, UNAUTHORIZED),
        DocumentedStatus(404, NOT_FOUND, source=SDKS),
        DocumentedStatus(500, INTERNAL),
    ),
    Route.CLOSE: _table(
        DocumentedStatus(401, UNAUTHORIZED),
        DocumentedStatus(404, NOT_FOUND, source=SDKS),
        DocumentedStatus(409, INACTIVE, _ACTION_ERROR),
        DocumentedStatus(500, INTERNAL),
        DocumentedStatus(503, BACKING_SERVICE),
        DocumentedStatus(504, TIMED_OUT),
    ),
    Route.ACTION: _table(
        DocumentedStatus(400, "Invalid action request", _ACTION_ERROR),
        DocumentedStatus(401, UNAUTHORIZED),
        DocumentedStatus(404, NOT_FOUND, source=SDKS),
        DocumentedStatus(409, INACTIVE, _ACTION_ERROR),
        DocumentedStatus(500, INTERNAL, _ACTION_ERROR),
        DocumentedStatus(503, BACKING_SERVICE, _ACTION_ERROR),
        DocumentedStatus(504, TIMED_OUT, _ACTION_ERROR),
    ),
    Route.ONESHOT: _table(
        DocumentedStatus(400, "Invalid capture options", source=EMULATOR),
        DocumentedStatus(401, INVALID_HASH, source=DOCS),
        DocumentedStatus(500, "The capture failed", source=EMULATOR),
        DocumentedStatus(502, "Could not load the page", source=EMULATOR),
        DocumentedStatus(503, "All capture slots are busy; retry later", source=EMULATOR),
        DocumentedStatus(504, "The capture exceeded its time budget", source=EMULATOR),
    ),
}


def route_of(method: str, path: str) -> Route | None:
    """The documented route a request is on, or None (devices, admin, unknown paths)."""
    method = method.upper()
    if is_create(method, path):
        return Route.CREATE
    match = SESSION_PATH.match(path)
    if match:
        if match.group(2):
            return Route.ACTION if method == "POST" else None
        return {"GET": Route.GET, "DELETE": Route.CLOSE}.get(method)
    if method == "GET" and SIGNED_PATH.match(path):
        return Route.ONESHOT
    return None


def documented(route: Route, status: int) -> DocumentedStatus | None:
    return STATUSES[route].get(status)


def markdown_table() -> str:
    """The table as the README shows it (a test keeps the README equal to it)."""
    lines = [
        "| route | status | error text | extra fields | source |",
        "| --- | --- | --- | --- | --- |",
    ]
    for route, entries in STATUSES.items():
        method, path = ROUTE_CALLS[route]
        for entry in entries.values():
            extra = ", ".join(f"`{e}`" for e in entry.extra) or ""
            lines.append(
                f"| `{route.value}` {method} `{path}` | {entry.status} | {entry.text} | "
                f"{extra} | {entry.source} |"
            )
    return "\n".join(lines)

"""Warnings, and strict mode, for what in a request the real Capture API may not know.

A request that uses a field capture-replay chose or does not know, or selector syntax Capture's
docs do not describe (`recorder.findings`), is answered as usual with one
`X-Capture-Replay-Warning` header per finding, live and in replay alike; each distinct finding is
logged once and kept with its count and first request for `GET /__admin/warnings`. Under
`serve --strict` the findings that level refuses are a 400 `{"success": false, "error": <the
finding>}` instead (with `expiresInSeconds` for an action, counted as a failed action).

Where the findings come from: `screen_create` and `screen_action` are called by the session
routes once the body is read (so credentials, an unknown session and an inactive one are answered
first, as always); `oneshot_screening_middleware` screens signed one-shot URLs and the items of
batch requests before replay or capture (after their signature when refusing); the MCP tools
(`mock_server.mcp.warnings`) screen a tool call as the REST request it stands for.
`warnings_middleware`, the outermost, puts the headers on whatever answer comes back (a recorded
answer's own are replaced) and keeps the log.
The keys of the log and of a request's findings are owned here, beside the only code using them.
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from mock_server.config import StrictLevel
from mock_server.errors import BadRequestError
from mock_server.http import ADMIN_PREFIX, Handler, json_response
from mock_server.json_body import parse_json
from mock_server.live import counted_action
from mock_server.sessions import Session
from mock_server.signing import verify_body_signature, verify_signature
from mock_server.state import CONFIG, JOURNAL
from recorder.contract import BATCH_SIGNATURE_HEADER, batch_parts, blank_signature, signed_parts
from recorder.findings import (
    Finding,
    Level,
    action_findings,
    batch_findings,
    create_findings,
    header_values,
    oneshot_findings,
    unique,
)
from recorder.records import WARNING_HEADER

log = logging.getLogger(__name__)

# Distinct findings kept; later new ones are only counted.
MAX_DISTINCT = 1000

REFUSED: dict[StrictLevel, frozenset[Level]] = {
    StrictLevel.OFF: frozenset(),
    StrictLevel.UNKNOWN: frozenset({Level.UNKNOWN, Level.SELECTOR}),
    StrictLevel.DOCUMENTED: frozenset(Level),
}


def refused(level: StrictLevel, findings: list[Finding]) -> list[Finding]:
    """The findings a strict level refuses."""
    return [f for f in findings if f.level in REFUSED[level]]


class WarningLog:
    """Each distinct finding of this run: its level, count and the first request with it."""

    def __init__(self) -> None:
        self._seen: dict[str, dict[str, Any]] = {}
        self.dropped = 0

    def note(self, findings: list[Finding], method: str, path: str, journal: int | None) -> None:
        for finding in findings:
            entry = self._seen.get(finding.message)
            if entry is None:
                if len(self._seen) >= MAX_DISTINCT:
                    self.dropped += 1
                    continue
                first = {"method": method, "path": path, "journal": journal}
                entry = {**finding.to_json(), "count": 0, "first": first}
                self._seen[finding.message] = entry
                log.warning("%s (first: %s %s)", finding.message, method, path)
            entry["count"] += 1

    def entries(self) -> list[dict[str, Any]]:
        return [dict(e, first=dict(e["first"])) for e in self._seen.values()]

    def clear(self) -> None:
        self._seen.clear()
        self.dropped = 0


WARNINGS = web.AppKey("capture_warnings", WarningLog)
FINDINGS = web.RequestKey("capture_findings", list)


def screen(request: web.Request, findings: list[Finding], **extra: Any) -> list[Finding]:
    """Keep the request's findings; the first one strict mode refuses, raised as a 400."""
    request[FINDINGS] = findings
    refusing = refused(request.app[CONFIG].strict, findings)
    if refusing:
        raise BadRequestError(refusing[0].message, **extra)
    return findings


def _body(raw: bytes) -> Any:
    """The JSON body, or None when it is none (its handler answers the 400 for that)."""
    try:
        return parse_json(raw, optional=True)
    except BadRequestError:
        return None


def screen_create(request: web.Request, raw: bytes) -> None:
    screen(request, create_findings(_body(raw)))


def screen_action(request: web.Request, session: Session, expires_in: int, raw: bytes) -> None:
    """Screen an action request; refused, it counts as a failed action of its type (as any
    payload field the server rejects)."""
    try:
        screen(request, action_findings(_body(raw)), expiresInSeconds=expires_in)
    except BadRequestError:
        action_type = counted_action(raw)
        if action_type is not None:
            session.count_action(action_type.value, ok=False)
        raise


@web.middleware
async def oneshot_screening_middleware(
    request: web.Request, handler: Handler
) -> web.StreamResponse:
    parts = signed_parts(request.path) if request.method == "GET" else None
    batch = batch_parts(request.path) if request.method == "POST" else None
    if parts is not None:
        key, signature, endpoint = parts
        raw_query = request.raw_path.partition("?")[2]
        findings = oneshot_findings(endpoint, raw_query)
        request[FINDINGS] = findings
        if refused(request.app[CONFIG].strict, findings):
            verify_signature(request.app[CONFIG].users, key, signature, raw_query)
            screen(request, findings)
    elif batch is not None:
        endpoint, key = batch
        raw = await request.read()  # kept by aiohttp for the handler
        findings = unique(batch_findings(endpoint, _body(raw)))
        request[FINDINGS] = findings
        if refused(request.app[CONFIG].strict, findings):
            signature = request.headers.get(BATCH_SIGNATURE_HEADER)
            verify_body_signature(request.app[CONFIG].users, key, signature, raw)
            screen(request, findings)
    return await handler(request)


@web.middleware
async def warnings_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path.startswith(ADMIN_PREFIX):
        return await handler(request)
    response = await handler(request)
    findings = request.get(FINDINGS) or []
    if findings:
        # The journal middleware (inside this one) has just added this request's entry.
        path = blank_signature(request.path, "<hash>")
        request.app[WARNINGS].note(findings, request.method, path, request.app[JOURNAL].seen)
    if not response.prepared:
        response.headers.popall(WARNING_HEADER, None)
        for value in header_values(findings):
            response.headers.add(WARNING_HEADER, value)
    return response


async def list_warnings(request: web.Request) -> web.Response:
    """`GET /__admin/warnings`: every distinct finding of this run, with counts."""
    book = request.app[WARNINGS]
    entries = book.entries()
    body = {"success": True, "count": len(entries), "warnings": entries}
    if book.dropped:
        body["dropped"] = book.dropped
    return json_response(body)

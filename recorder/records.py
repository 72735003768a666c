"""Typed, frozen records shared by the cassette codec, the proxy, the tools and the replay engine,
plus the few rules that classify a Capture exchange (its session id, action type, main argument).

Plain data only: no I/O, no msgpack, no aiohttp. Must not import `mock_server`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote

Headers = tuple[tuple[str, str], ...]

# A stored Authorization value after redaction: "Bearer <redacted user=user_123>".
_REDACTED_USER = re.compile(r"<redacted user=([^>]*)>")
_SESSION_PATH = re.compile(r"^/v1/sessions/([^/?]+)(/actions)?/?$")
SIGNED_ENDPOINTS = frozenset({"image", "pdf", "content", "metadata", "animated"})
_SIGNED_PATH = re.compile(r"^/([^/]+)/([^/]+)/(image|pdf|content|metadata|animated)/?$")


def header_value(headers: Headers, name: str) -> str | None:
    """First value of header `name` (case-insensitive), or None."""
    lname = name.lower()
    for key, value in headers:
        if key.lower() == lname:
            return value
    return None


def _json_or_none(body: bytes) -> Any:
    if not body or body[:1] not in (b"{", b"[", b" ", b"\n"):
        return None
    try:
        return json.loads(body)
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    method: str
    path: str  # raw (percent-encoded) path as received, signed-URL hash redacted
    query: str  # raw query string without "?", byte for byte (signed URLs hash it)
    headers: Headers
    body: bytes

    def header(self, name: str) -> str | None:
        return header_value(self.headers, name)

    def json(self) -> Any:
        """The body decoded as JSON, or None when it is not JSON."""
        return _json_or_none(self.body)

    @property
    def target(self) -> str:
        return f"{self.path}?{self.query}" if self.query else self.path


@dataclass(frozen=True, slots=True)
class RecordedResponse:
    status: int
    headers: Headers
    body: bytes
    reason: str = ""

    def header(self, name: str) -> str | None:
        return header_value(self.headers, name)

    def json(self) -> Any:
        return _json_or_none(self.body)


@dataclass(frozen=True, slots=True)
class Interaction:
    """One recorded exchange: request, answer (or the proxy's 502/504) and its timing."""

    seq: int
    start: float  # epoch seconds when the proxy received the request
    duration: float  # seconds until the answer was ready
    session_id: str | None
    action_type: str | None
    user: str | None  # userId kept from the redacted Authorization header
    request: RecordedRequest
    response: RecordedResponse
    error: str | None = None  # set when the proxy answered itself (upstream down / too slow)


@dataclass(frozen=True, slots=True)
class CassetteHeader:
    format: str
    version: int  # the format version of the file as read (before upgrade)
    created_at: float
    tool_version: str
    upstream: str


@dataclass(frozen=True, slots=True)
class IndexEntry:
    """What listing a cassette yields without reading bodies; `Cassette.load` gives the rest."""

    seq: int
    start: float
    duration: float
    session_id: str | None
    action_type: str | None
    user: str | None
    method: str
    path: str
    query: str
    status: int
    request_size: int
    response_size: int
    error: str | None
    offset: int  # byte offset of the record in the file
    length: int  # byte length of the record


@dataclass(frozen=True, slots=True)
class TornTail:
    """Bytes after the last whole record that do not form a record."""

    offset: int
    size: int
    reason: str


def session_id_from_path(path: str) -> str | None:
    match = _SESSION_PATH.match(path)
    return unquote(match.group(1)) if match else None


def session_id_of(request: RecordedRequest, response: RecordedResponse) -> str | None:
    """The session an exchange belongs to: from the path, or from a create answer's `session.id`."""
    sid = session_id_from_path(request.path)
    if sid is not None:
        return sid
    if request.method == "POST" and request.path.rstrip("/") == "/v1/sessions":
        body = response.json()
        if isinstance(body, dict) and isinstance(body.get("session"), dict):
            value = body["session"].get("id")
            return value if isinstance(value, str) else None
    return None


def is_action_path(path: str) -> bool:
    match = _SESSION_PATH.match(path)
    return bool(match and match.group(2))


def action_type_of(method: str, path: str, body: bytes) -> str | None:
    """`type` of the JSON body of POST /v1/sessions/{id}/actions, else None."""
    if method != "POST" or not is_action_path(path):
        return None
    data = _json_or_none(body)
    if isinstance(data, dict) and isinstance(data.get("type"), str):
        return data["type"]
    return None


def user_of(headers: Headers) -> str | None:
    """The userId kept in a redacted Authorization header."""
    value = header_value(headers, "authorization")
    if value is None:
        return None
    match = _REDACTED_USER.search(value)
    return match.group(1) if match else None


def main_argument(path: str, query: str, body: bytes) -> str | None:
    """The argument worth showing: an action's URL or selector, a signed URL's target."""
    if is_action_path(path):
        data = _json_or_none(body)
        payload = data.get("payload") if isinstance(data, dict) else None
        if not isinstance(payload, dict):
            return None
        for key in ("url", "selector", "format", "key", "direction"):
            if isinstance(payload.get(key), str):
                return payload[key]
        if isinstance(payload.get("actions"), list):
            return f"{len(payload['actions'])} actions"
        return None
    if _SIGNED_PATH.match(path):
        for key, value in parse_qsl(query, keep_blank_values=True):
            if key == "url":
                return value
    return None

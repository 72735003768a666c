"""Typed, frozen records shared by the cassette codec, the proxy, the tools and the replay engine.

Plain data only: no I/O, no msgpack, no aiohttp. What an exchange *means* on Capture's wire (its
session id, action type, user...) is `recorder.contract`'s. Must not import `mock_server`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from recorder.bodies import Headers, header_value, json_or_none

__all__ = [
    "CassetteHeader",
    "Headers",
    "IndexEntry",
    "Interaction",
    "RecordedRequest",
    "RecordedResponse",
    "TornTail",
    "WARNING_HEADER",
    "header_value",
]


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
        return json_or_none(self.body)

    @property
    def target(self) -> str:
        return f"{self.path}?{self.query}" if self.query else self.path


# The answer header naming, one value per finding, what in the request the real API may not know
# (`recorder.findings`): the emulator answers it; the recorder stores it for an upstream that
# sends none (`findings.with_findings`); read back by `warnings`.
WARNING_HEADER = "X-Capture-Replay-Warning"


@dataclass(frozen=True, slots=True)
class RecordedResponse:
    status: int
    headers: Headers
    body: bytes
    reason: str = ""

    def header(self, name: str) -> str | None:
        return header_value(self.headers, name)

    def json(self) -> Any:
        return json_or_none(self.body)

    @property
    def warnings(self) -> tuple[str, ...]:
        """The `X-Capture-Replay-Warning` values of the stored answer."""
        name = WARNING_HEADER.lower()
        return tuple(v for k, v in self.headers if k.lower() == name)


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

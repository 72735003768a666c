"""Forwarding a `text/event-stream` answer to the recording proxy's client as it arrives.

MCP's Streamable HTTP answers a request with server-sent events, and its GET stream stays open
as long as its session: buffered whole, the client would see nothing until the stream ends. The
proxy hands a `ClientStream` to `recorder.upstream` for requests that accept event streams; the
upstream client starts the answer and passes each chunk on, and still returns the whole body,
which the proxy records once the stream ends.

Must not import `mock_server`.
"""

from __future__ import annotations

import contextlib

from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy

EVENT_STREAM = "text/event-stream"


def connection_listed(headers: CIMultiDict[str] | CIMultiDictProxy[str]) -> frozenset[str]:
    """Header names a `Connection` header marks as hop-by-hop."""
    values = headers.getall("Connection", ())
    return frozenset(t.strip().lower() for v in values for t in v.split(",") if t.strip())


class ClientStream:
    """Hands an upstream's `text/event-stream` answer to the client as it arrives (MCP's
    answers and its GET stream, which lasts as long as its session); the exchange, the whole
    stream, is recorded once it ends. A client gone meanwhile stops getting chunks, the
    recording goes on to the stream's end."""

    __slots__ = ("request", "skip", "response", "status", "reason", "headers", "chunks", "gone")

    def __init__(self, request: web.Request, skip: frozenset[str]) -> None:
        self.request = request
        self.skip = skip  # response headers not forwarded (hop-by-hop, Content-Length)
        self.response: web.StreamResponse | None = None
        self.status, self.reason = 0, ""
        self.headers: list[tuple[str, str]] = []
        self.chunks: list[bytes] = []
        self.gone = False

    async def start(self, status: int, reason: str, headers: list[tuple[str, str]]) -> None:
        self.status, self.reason, self.headers = status, reason, headers
        lowered = [k.lower() for k, _ in headers]
        skip = self.skip
        if "connection" in lowered:
            skip = skip | connection_listed(CIMultiDict(headers))
        kept = [kv for kv, low in zip(headers, lowered, strict=True) if low not in skip]
        self.response = web.StreamResponse(
            status=status, reason=reason or None, headers=CIMultiDict(kept)
        )
        await self.response.prepare(self.request)

    async def write(self, chunk: bytes) -> None:
        self.chunks.append(chunk)
        if self.gone or self.response is None:
            return
        try:
            await self.response.write(chunk)
        except ConnectionError:
            self.gone = True

    async def end(self) -> web.StreamResponse:
        assert self.response is not None
        with contextlib.suppress(ConnectionError):
            await self.response.write_eof()
        return self.response

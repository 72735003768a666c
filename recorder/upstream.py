"""A lean HTTP/1.1 client for the one upstream the recording proxy talks to: a keep-alive pool of
`asyncio.Protocol` connections (plain TCP, or TLS with `ssl.create_default_context()` for https),
whole request and response bodies in memory, no decompression, no cookies, no redirects.

Why not `aiohttp.ClientSession`: on a small exchange it cost the proxy more CPU than the upstream
spends answering (URL objects, header multidicts, tracing hooks, payload objects, two socket
writes). This client writes each request with one `transport.write` and parses the answer with a
few `bytes` operations. It serves exactly one origin, known at start-up.

Must not import `mock_server` (nor aiohttp: the proxy maps its errors to HTTP answers).
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections import deque
from dataclasses import dataclass
from urllib.parse import urlsplit

# Methods the client may send a second time when a reused keep-alive connection turns out to have
# been closed by the upstream before it read the request (RFC 9110 §9.2.2; aiohttp does the same).
_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})
# Methods that carry a body by definition: they always get a Content-Length, even 0.
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
_IDLE_SECONDS = 15.0  # an idle connection older than this may have been dropped upstream
_BIG_WRITE = 1 << 16  # bodies above this are written separately rather than copied into the head


class UpstreamError(Exception):
    """The upstream could not be reached or broke the HTTP exchange (the proxy answers 502)."""


class UpstreamConnectError(UpstreamError):
    """No connection could be opened (refused, DNS, TLS handshake)."""


class UpstreamDisconnectedError(UpstreamError):
    """The connection closed before a whole answer arrived."""


class UpstreamProtocolError(UpstreamError):
    """The answer was not valid HTTP/1.x."""


@dataclass(frozen=True, slots=True)
class UpstreamResponse:
    status: int
    reason: str
    headers: list[tuple[str, str]]  # as received: names keep their case, duplicates kept
    body: bytes


class _Connection(asyncio.Protocol):
    """One keep-alive connection; parses one answer at a time into `waiter`."""

    __slots__ = (
        "transport",
        "closed",
        "idle_since",
        "_buf",
        "_waiter",
        "_head",
        "_length",
        "_chunked",
        "_until_eof",
        "_body",
        "_reusable",
        "_no_body",
        "_got_bytes",
    )

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self._buf = bytearray()
        self._waiter: asyncio.Future[UpstreamResponse] | None = None
        self._head: tuple[int, str, list[tuple[str, str]]] | None = None
        self._length = -1
        self._chunked = False
        self._until_eof = False
        self._body = bytearray()
        self._reusable = True
        self._no_body = False
        self._got_bytes = False

    # -- asyncio.Protocol ------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self._waiter is None:  # unsolicited bytes: this connection cannot be trusted again
            self.close()
            return
        self._got_bytes = True
        self._buf += data
        try:
            self._parse()
        except UpstreamProtocolError as err:
            self._fail(err)
            self.close()

    def eof_received(self) -> bool:
        self.closed = True
        if self._waiter is not None and self._head is not None and self._until_eof:
            self._finish(bytes(self._body))
        return False  # let the transport close itself

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._waiter is not None:
            if self._head is not None and self._until_eof:
                self._finish(bytes(self._body))
            else:
                err = UpstreamDisconnectedError("upstream closed the connection mid-answer")
                self._fail(err if exc is None else _wrap(exc))

    # -- the exchange ----------------------------------------------------------------------------

    def send(self, data: bytes, body: bytes, no_body: bool) -> asyncio.Future[UpstreamResponse]:
        assert self.transport is not None
        loop = asyncio.get_running_loop()
        self._waiter = loop.create_future()
        self._head = None
        self._no_body = no_body
        self._got_bytes = False
        self._reusable = True
        self.transport.write(data)
        if body:
            self.transport.write(body)
        return self._waiter

    @property
    def answered_nothing(self) -> bool:
        return not self._got_bytes

    @property
    def reusable(self) -> bool:
        return self._reusable and not self.closed and not self._buf

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def _fail(self, err: Exception) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(err)

    def _finish(self, body: bytes) -> None:
        assert self._head is not None
        status, reason, headers = self._head
        waiter, self._waiter = self._waiter, None
        self._head = None
        self._body = bytearray()
        if waiter is not None and not waiter.done():
            waiter.set_result(UpstreamResponse(status, reason, headers, body))

    def _parse(self) -> None:
        buf = self._buf
        while self._head is None:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > 256 * 1024:
                    raise UpstreamProtocolError("response head larger than 256 KiB")
                return
            head = bytes(buf[:end])
            del buf[: end + 4]
            if not self._parse_head(head):
                continue  # an interim 1xx answer: the real one follows
            if self._no_body:
                self._finish(b"")
                return
        if self._chunked:
            self._parse_chunks()
        elif self._length >= 0:
            if len(buf) >= self._length:
                if len(buf) == self._length:
                    body = bytes(buf)
                    buf.clear()
                else:
                    body = bytes(buf[: self._length])
                    del buf[: self._length]
                self._finish(body)
        else:  # neither length nor chunks: the body runs until the upstream closes
            self._body += buf
            buf.clear()

    def _parse_head(self, head: bytes) -> bool:
        """Parse a status line and headers; False for an interim 1xx answer."""
        lines = head.split(b"\r\n")
        version, _, rest = lines[0].partition(b" ")
        code, _, reason = rest.partition(b" ")
        if not version.startswith(b"HTTP/1.") or len(code) != 3 or not code.isdigit():
            raise UpstreamProtocolError(f"malformed status line {lines[0][:80]!r}")
        status = int(code)
        headers: list[tuple[str, str]] = []
        length = -1
        chunked = False
        keep_alive = version == b"HTTP/1.1"
        for line in lines[1:]:
            name, sep, value = line.partition(b":")
            if not sep or not name or name != name.strip():
                raise UpstreamProtocolError(f"malformed header line {line[:80]!r}")
            value = value.strip()
            # Latin-1 maps every byte to one character, so what is recorded is what was received.
            headers.append((name.decode("latin-1"), value.decode("latin-1")))
            lower = name.lower()
            if lower == b"content-length":
                if not value.isdigit() or (length >= 0 and int(value) != length):
                    raise UpstreamProtocolError(f"bad Content-Length {value[:40]!r}")
                length = int(value)
            elif lower == b"transfer-encoding":
                chunked = value.lower().endswith(b"chunked")
            elif lower == b"connection":
                tokens = {t.strip() for t in value.lower().split(b",")}
                if b"close" in tokens:
                    keep_alive = False
                elif b"keep-alive" in tokens:
                    keep_alive = True
        if 100 <= status < 200:
            return False
        self._head = (status, reason.decode("latin-1"), headers)
        self._chunked = chunked
        self._length = -1 if chunked else length
        self._no_body = self._no_body or status in (204, 304)
        self._until_eof = not self._no_body and not chunked and length < 0
        self._reusable = keep_alive and not self._until_eof
        return True

    def _parse_chunks(self) -> None:
        buf = self._buf
        while True:
            if self._length > 0:  # inside a chunk: _length counts its bytes still to come
                take = min(self._length, len(buf))
                self._body += buf[:take]
                del buf[:take]
                self._length -= take
                if self._length:
                    return
                self._length = -2  # the CRLF after the chunk data
            if self._length == -2:
                if len(buf) < 2:
                    return
                if buf[:2] != b"\r\n":
                    raise UpstreamProtocolError("chunk not followed by CRLF")
                del buf[:2]
                self._length = -1
            if self._length == -3:  # trailers after the last chunk: skipped up to an empty line
                end = buf.find(b"\r\n")
                if end < 0:
                    return
                line = bytes(buf[:end])
                del buf[: end + 2]
                if not line:
                    self._finish(bytes(self._body))
                    return
                continue
            end = buf.find(b"\r\n")
            if end < 0:
                return
            size_text = bytes(buf[:end]).split(b";", 1)[0].strip()
            del buf[: end + 2]
            try:
                size = int(size_text, 16)
            except ValueError:
                raise UpstreamProtocolError(f"bad chunk size {size_text[:20]!r}") from None
            self._length = size if size else -3


def _expire(waiter: asyncio.Future[UpstreamResponse]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())


def _wrap(exc: BaseException) -> UpstreamError:
    err = UpstreamDisconnectedError(f"{exc.__class__.__name__}: {exc}")
    err.__cause__ = exc
    return err


class UpstreamClient:
    """Sends whole requests to one origin over pooled keep-alive connections."""

    def __init__(
        self, base: str, *, connect_timeout: float, timeout: float, limit: int = 256
    ) -> None:
        parts = urlsplit(base)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"upstream must be an http:// or https:// URL, not {base!r}")
        self.base = base.rstrip("/")
        self._host = parts.hostname
        self._port = parts.port or (443 if parts.scheme == "https" else 80)
        self._prefix = parts.path.rstrip("/")
        # The Host header names the origin as the URL did: no port when it is the default one.
        self._host_header = parts.netloc.rpartition("@")[2]
        self._ssl = ssl.create_default_context() if parts.scheme == "https" else None
        self._connect_timeout = connect_timeout
        self._timeout = timeout
        self._idle: deque[_Connection] = deque()
        self._slots = asyncio.Semaphore(limit)
        self._closed = False

    async def request(
        self, method: str, target: str, headers: list[tuple[str, str]], body: bytes
    ) -> UpstreamResponse:
        """One exchange. `target` is the raw path and query; `headers` exclude Host,
        Content-Length and hop-by-hop ones. Raises `UpstreamError`, or `TimeoutError` when the
        whole exchange (connecting included) overruns `timeout` (or connecting alone overruns
        `connect_timeout`)."""
        parts = [f"{method} {self._prefix}{target} HTTP/1.1\r\nHost: {self._host_header}\r\n"]
        parts += [f"{name}: {value}\r\n" for name, value in headers]
        if body or method in _BODY_METHODS:
            parts.append(f"Content-Length: {len(body)}\r\n")
        parts.append("\r\n")
        # aiohttp decodes request headers as UTF-8 with surrogate escapes; this restores the bytes.
        head = "".join(parts).encode("utf-8", "surrogateescape")
        if body and len(body) <= _BIG_WRITE:
            head, body = head + body, b""
        no_body = method == "HEAD"
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._timeout
        async with self._slots:
            conn = self._idle_connection()
            if conn is None:
                conn = await self._connect(deadline)
            try:
                try:
                    answer = await self._exchange(loop, conn, head, body, no_body, deadline)
                except UpstreamDisconnectedError:
                    stale = conn.idle_since > 0 and conn.answered_nothing
                    if not (stale and method in _IDEMPOTENT):
                        raise
                    # A stale keep-alive connection: the request never reached the upstream.
                    conn = await self._connect(deadline)
                    answer = await self._exchange(loop, conn, head, body, no_body, deadline)
            except BaseException:
                conn.close()
                raise
            self._release(conn)
            return answer

    @staticmethod
    async def _exchange(
        loop: asyncio.AbstractEventLoop,
        conn: _Connection,
        head: bytes,
        body: bytes,
        no_body: bool,
        deadline: float,
    ) -> UpstreamResponse:
        waiter = conn.send(head, body, no_body)
        # One timer handle on the answer's future: `asyncio.timeout` costs several times more
        # per exchange, and this is the path every request takes.
        timer = loop.call_at(deadline, _expire, waiter)
        try:
            return await waiter
        finally:
            timer.cancel()

    def _idle_connection(self) -> _Connection | None:
        now = time.monotonic()
        while self._idle:
            conn = self._idle.pop()  # the most recently used one is the least likely stale
            if not conn.closed and now - conn.idle_since < _IDLE_SECONDS:
                return conn
            conn.close()
        return None

    async def _connect(self, deadline: float) -> _Connection:
        loop = asyncio.get_running_loop()
        budget = min(self._connect_timeout, deadline - loop.time())
        try:
            async with asyncio.timeout(budget):
                _, conn = await loop.create_connection(
                    _Connection,
                    self._host,
                    self._port,
                    ssl=self._ssl,
                    server_hostname=self._host if self._ssl is not None else None,
                )
        except OSError as err:  # refused, DNS (gaierror), TLS (SSLError) are all OSErrors
            raise UpstreamConnectError(f"{err.__class__.__name__}: {err}") from err
        return conn

    def _release(self, conn: _Connection) -> None:
        if conn.reusable and not self._closed:
            conn.idle_since = time.monotonic()
            self._idle.append(conn)
        else:
            conn.close()

    async def close(self) -> None:
        self._closed = True
        while self._idle:
            self._idle.pop().close()

"""The recording proxy's forwarding client: one `aiohttp.ClientSession` for the one upstream.

Thin on purpose. aiohttp already does what a hand-written client got wrong: keep-alive pooling,
TLS verified against the default trust store (so `SSL_CERT_FILE` serves a private CA), a
forwarding HTTP proxy or a CONNECT tunnel, chunked bodies, and it refuses an answer framed by
both Content-Length and Transfer-Encoding and drops its connection. What is left here is what a
recorder needs and a browser-like client does not: the raw path and query byte for byte, the
client's headers without aiohttp's defaults, no decompression, no cookies, no redirects, a cap on
an answer's size, and aiohttp's errors mapped onto `recorder.errors`.

Proxy variables (`HTTP_PROXY`, `HTTPS_PROXY`, `NO_PROXY`, any case) are read once, when the
client is made: `trust_env=True` would look them up in a worker thread on every request, and
would also read `~/.netrc` for credentials, sending them upstream unrecorded (or refusing every
request that already carries an `Authorization` header).

Must not import `mock_server`.
"""

from __future__ import annotations

import io
import ssl
import urllib.request
from base64 import b64encode
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp
from multidict import CIMultiDict
from yarl import URL

from recorder.errors import (
    UpstreamConnectError,
    UpstreamError,
    UpstreamTimeoutError,
    UpstreamTooLargeError,
)

__all__ = [
    "DEFAULT_MAX_RESPONSE_BYTES",
    "StreamSink",
    "UpstreamClient",
    "UpstreamError",
    "UpstreamResponse",
    "proxy_for",
]

DEFAULT_MAX_RESPONSE_BYTES = 256 * 1024 * 1024
# Headers aiohttp adds on its own when the client did not send them.
_NOT_ADDED = frozenset({"User-Agent", "Accept", "Accept-Encoding", "Content-Type"})
_NO_BODY_STATUSES = frozenset({204, 304})
# aiohttp warns (ResourceWarning) when a body above 1 MiB is handed to it as bytes.
_BIG_BODY = 1 << 20


@dataclass(frozen=True, slots=True)
class UpstreamResponse:
    status: int
    reason: str
    headers: list[tuple[str, str]]  # as received: names keep their case, duplicates kept
    body: bytes


class StreamSink(Protocol):
    """Where a `text/event-stream` answer goes as it arrives (MCP's streams), while the whole
    of it is still returned for the cassette."""

    async def start(self, status: int, reason: str, headers: list[tuple[str, str]]) -> None: ...

    async def write(self, chunk: bytes) -> None: ...


def _event_stream(resp: aiohttp.ClientResponse) -> bool:
    return resp.content_type == "text/event-stream"


def proxy_for(url: str) -> str | None:
    """The HTTP proxy the environment names for `url` (`HTTP_PROXY`/`HTTPS_PROXY`, unless
    `NO_PROXY` exempts its host), as urllib and aiohttp's `trust_env` read them; None for none."""
    parts = URL(url)
    if parts.host is not None and urllib.request.proxy_bypass(parts.host):
        return None
    return urllib.request.getproxies().get(parts.scheme)


class UpstreamClient:
    """Sends whole requests to one origin; made and closed inside a running event loop."""

    def __init__(
        self,
        base: str,
        *,
        connect_timeout: float,
        timeout: float,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        proxy: str | None = None,
        limit: int = 256,
    ) -> None:
        origin = URL(base)
        if origin.scheme not in ("http", "https") or not origin.host:
            raise ValueError(f"upstream must be an http:// or https:// URL, not {base!r}")
        self.base = base.rstrip("/")
        self.max_response_bytes = max_response_bytes
        # A stream has no total budget (an MCP GET stream lasts as long as its session), only a
        # budget between two reads (servers send keep-alive comments well within it).
        self._stream_timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=connect_timeout, sock_read=timeout
        )
        self._proxy: URL | None = None
        self._proxy_headers: dict[str, str] | None = None  # sent with CONNECT (https)
        self._proxy_auth: str | None = None  # sent with each forwarded request (http)
        if proxy:
            proxy_url = URL(proxy)
            if proxy_url.user is not None:  # http://user:password@host:port
                pair = f"{proxy_url.user}:{proxy_url.password or ''}".encode()
                credentials = f"Basic {b64encode(pair).decode()}"
                if origin.scheme == "https":
                    self._proxy_headers = {"Proxy-Authorization": credentials}
                else:
                    self._proxy_auth = credentials
                proxy_url = proxy_url.with_user(None)
            self._proxy = proxy_url
        # Made now, not at import time as aiohttp's default is, so that SSL_CERT_FILE set after
        # start-up of the interpreter still counts.
        context = ssl.create_default_context() if origin.scheme == "https" else None
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=limit, ssl=context or True, ttl_dns_cache=300),
            timeout=aiohttp.ClientTimeout(total=timeout, sock_connect=connect_timeout),
            cookie_jar=aiohttp.DummyCookieJar(),
            auto_decompress=False,
            skip_auto_headers=_NOT_ADDED,
            max_line_size=64 * 1024,
            max_field_size=64 * 1024,
        )

    async def request(
        self,
        method: str,
        target: str,
        headers: list[tuple[str, str]],
        body: bytes,
        sink: StreamSink | None = None,
    ) -> UpstreamResponse:
        """One exchange. `target` is the raw path and query, sent as is; `headers` exclude Host,
        Content-Length and hop-by-hop ones. Raises `UpstreamConnectError` (no connection within
        `connect_timeout`), `UpstreamTimeoutError` (no whole answer within `timeout`),
        `UpstreamTooLargeError` (an answer over `max_response_bytes`) or `UpstreamError`.
        With a `sink`, a `text/event-stream` answer is also handed to it as it arrives."""
        url = URL(self.base + target, encoded=True)
        sent = CIMultiDict(headers)
        if self._proxy_auth is not None:
            sent["Proxy-Authorization"] = self._proxy_auth
        data = (io.BytesIO(body) if len(body) > _BIG_BODY else body) if body else None
        options: dict[str, Any] = {} if sink is None else {"timeout": self._stream_timeout}
        try:
            resp = await self._session.request(
                method,
                url,
                headers=sent,
                data=data,
                allow_redirects=False,
                proxy=self._proxy,
                proxy_headers=self._proxy_headers,
                **options,
            )
            raw_headers = [
                (k.decode("utf-8", "surrogateescape"), v.decode("utf-8", "surrogateescape"))
                for k, v in resp.raw_headers
            ]
            try:
                length = resp.content_length
                if sink is not None and _event_stream(resp):
                    await sink.start(resp.status, resp.reason or "", raw_headers)
                    answer = await self._read_capped(resp, sink)
                elif method == "HEAD" or resp.status in _NO_BODY_STATUSES:
                    answer = b""
                elif length is not None:
                    if length > self.max_response_bytes:
                        resp.close()  # never read, never pooled
                        raise self._too_large()
                    answer = await resp.read()
                else:  # chunked or until the upstream closes: count while reading
                    answer = await self._read_capped(resp)
            finally:
                resp.release()
            return UpstreamResponse(resp.status, resp.reason or "", raw_headers, answer)
        except aiohttp.ConnectionTimeoutError as err:
            raise UpstreamConnectError(f"no connection within the connect timeout ({err})") from err
        except (aiohttp.ClientConnectorError, aiohttp.ClientHttpProxyError) as err:
            raise UpstreamConnectError(f"{err.__class__.__name__}: {err}") from err
        except TimeoutError as err:  # aiohttp's total budget, or a read timeout
            raise UpstreamTimeoutError("no whole answer within the timeout") from err
        except aiohttp.ClientError as err:
            raise UpstreamError(f"{err.__class__.__name__}: {err}") from err

    async def _read_capped(
        self, resp: aiohttp.ClientResponse, sink: StreamSink | None = None
    ) -> bytes:
        chunks: list[bytes] = []
        size = 0
        async for chunk in resp.content.iter_any():
            size += len(chunk)
            if size > self.max_response_bytes:
                resp.close()  # the rest is never read; the connection is not reused
                raise self._too_large()
            chunks.append(chunk)
            if sink is not None:
                await sink.write(chunk)
        return b"".join(chunks)

    def _too_large(self) -> UpstreamTooLargeError:
        return UpstreamTooLargeError(
            f"larger than the cap of {self.max_response_bytes} bytes on an answer's size"
        )

    async def close(self) -> None:
        await self._session.close()

"""The recording proxy's forwarding client (`recorder.upstream`) on real sockets: an HTTP proxy and
a CONNECT tunnel from the environment, HTTPS with a private CA, the answer cap, an answer framed
twice, raw targets, headers as given. Also the small servers `test_proxy.py` reuses."""

from __future__ import annotations

import asyncio
import base64
import socket
import ssl
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import pytest
import trustme
from aiohttp import web
from yarl import URL

from recorder.errors import (
    UpstreamConnectError,
    UpstreamError,
    UpstreamTimeoutError,
    UpstreamTooLargeError,
)
from recorder.upstream import UpstreamClient, proxy_for
from tests.recorder.conftest import FakeUpstream

PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


@asynccontextmanager
async def serving(
    app: web.Application, ssl_context: ssl.SSLContext | None = None
) -> AsyncIterator[str]:
    """Serve `app` on 127.0.0.1 on a free port (over TLS when given a context); yield its URL."""
    runner = web.AppRunner(app, shutdown_timeout=1.0, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context)
        await site.start()
        host, port = runner.addresses[0][:2]
        yield f"{'https' if ssl_context else 'http'}://{host}:{port}"
    finally:
        await runner.cleanup()


class ForwardProxy:
    """A small HTTP forward proxy (absolute-form requests, no CONNECT): `seen` lists the request
    targets it was sent, as sent."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.app = web.Application()
        self.app.router.add_route("*", "/{tail:.*}", self._forward)
        self.app.cleanup_ctx.append(self._client)

    async def _client(self, app: web.Application) -> AsyncIterator[None]:
        async with aiohttp.ClientSession(auto_decompress=False) as self.client:
            yield

    async def _forward(self, request: web.Request) -> web.Response:
        self.seen.append(request.raw_path)
        headers = {k: v for k, v in request.headers.items() if k.lower() != "host"}
        async with self.client.request(
            request.method,
            URL(request.raw_path, encoded=True),
            headers=headers,
            data=await request.read() or None,
            allow_redirects=False,
        ) as resp:
            body = await resp.read()
            kept = [(k, v) for k, v in resp.headers.items() if k.lower() != "content-length"]
            return web.Response(status=resp.status, body=body, headers=kept)


class ConnectTunnel:
    """A small CONNECT proxy: `seen` lists the authorities it was asked to tunnel to,
    `credentials` the Proxy-Authorization each CONNECT carried."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.credentials: list[str | None] = []
        self.url = ""
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._tasks.add(asyncio.current_task())  # type: ignore[arg-type]
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            method, authority, _ = head.split(b"\r\n", 1)[0].decode().split(" ")
            assert method == "CONNECT"
            self.seen.append(authority)
            lines = head.decode().split("\r\n")[1:]
            found = [
                v.strip()
                for k, _, v in (x.partition(":") for x in lines)
                if k.lower() == "proxy-authorization"
            ]
            self.credentials.append(found[0] if found else None)
            host, port = authority.rsplit(":", 1)
            up_reader, up_writer = await asyncio.open_connection(host, int(port))
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")

            async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
                dst.close()

            try:
                await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
            finally:
                up_writer.close()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


class RawUpstream:
    """Answers the n-th request with `answers[n]`, bytes written as given (for answers no HTTP
    library would write); `connections` counts the connections it accepted."""

    def __init__(self, answers: list[bytes]) -> None:
        self.answers = list(answers)
        self.connections = 0
        self.url = ""
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.close()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.append(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                for line in head.lower().split(b"\r\n"):
                    if line.startswith(b"content-length:"):
                        await reader.readexactly(int(line.split(b":")[1]))
                writer.write(self.answers.pop(0))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


def plain_answer(text: str) -> bytes:
    return (
        f"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {len(text)}\r\n\r\n{text}"
    ).encode()


# An answer framed both ways, followed by a whole second answer: a client that kept this
# connection would hand "smuggled" to whoever sends the next request on it.
DOUBLY_FRAMED = (
    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"5\r\nfirst\r\n0\r\n\r\n" + plain_answer("smuggled")
)


def chunked_app(size: int) -> web.Application:
    """`GET /` answers `size` bytes in 1 KiB chunks, with no Content-Length."""

    async def handle(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        try:
            for _ in range(size // 1024):
                await resp.write(b"x" * 1024)
            await resp.write_eof()
        except ConnectionError:  # the client stopped reading at its cap
            pass
        return resp

    app = web.Application()
    app.router.add_get("/", handle)
    return app


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def clear_proxy_variables(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """Unset every proxy variable (in both cases) for the test; returns `monkeypatch`."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    return monkeypatch


def private_ca(directory: Path) -> tuple[Path, ssl.SSLContext]:
    """A new private CA: the PEM file of its certificate (for `SSL_CERT_FILE`) and a server
    context holding a certificate it issued for 127.0.0.1."""
    ca = trustme.CA()
    path = directory / "private-ca.pem"
    ca.cert_pem.write_to_path(str(path))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    return path, context


@pytest.fixture
def no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    return clear_proxy_variables(monkeypatch)


@pytest.fixture
def ca_file_and_server_ssl(tmp_path: Path) -> tuple[Path, ssl.SSLContext]:
    return private_ca(tmp_path)


@pytest.fixture
async def forward_proxy() -> AsyncIterator[tuple[ForwardProxy, str]]:
    proxy = ForwardProxy()
    async with serving(proxy.app) as url:
        yield proxy, url


@pytest.fixture
async def tunnel() -> AsyncIterator[ConnectTunnel]:
    server = ConnectTunnel()
    await server.start()
    yield server
    await server.stop()


@asynccontextmanager
async def client_for(base: str, **kw: object) -> AsyncIterator[UpstreamClient]:
    client = UpstreamClient(base, **{"connect_timeout": 5.0, "timeout": 10.0, **kw})  # type: ignore[arg-type]
    try:
        yield client
    finally:
        await client.close()


def _names(headers: tuple[tuple[str, str], ...]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers}


async def test_upstream_sends_the_raw_target_and_only_the_given_headers(upstream):
    target = "/v1/sessions/a%2Fb/actions?x=1&y=%20z&x=2&e=%E2%82%AC"
    async with client_for(upstream.url) as client:
        answer = await client.request(
            "POST", target, [("X-Trace", "t1"), ("X-Trace", "t2")], b'{"type":"title"}'
        )
    assert answer.status == 200
    got = upstream.received[-1]
    assert got.target == target
    assert [v for k, v in got.headers if k == "X-Trace"] == ["t1", "t2"]
    # Nothing of aiohttp's own: no User-Agent, Accept, Accept-Encoding or Content-Type added.
    assert set(_names(got.headers)) == {"host", "x-trace", "content-length"}


async def test_upstream_keeps_answer_header_names_and_duplicates_as_received(upstream):
    async with client_for(upstream.url) as client:
        answer = await client.request("GET", "/hop", [], b"")
    assert (answer.status, answer.reason, answer.body) == (203, "Odd Reason", b"hop")
    assert [v for k, v in answer.headers if k == "X-Dup"] == ["a", "b"]
    assert ("X-Custom", "kept") in answer.headers


async def test_upstream_follows_no_redirect_and_keeps_no_cookie():
    async def redirect(request: web.Request) -> web.Response:
        return web.Response(
            status=302, headers={"Location": "/elsewhere", "Set-Cookie": "sid=abc; Path=/"}
        )

    seen: list[str | None] = []

    async def echo(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Cookie"))
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/redirect", redirect)
    app.router.add_get("/elsewhere", echo)
    async with serving(app) as url, client_for(url) as client:
        first = await client.request("GET", "/redirect", [], b"")
        second = await client.request("GET", "/elsewhere", [], b"")
    assert first.status == 302 and ("Location", "/elsewhere") in first.headers
    assert second.body == b"ok" and seen == [None]


async def test_upstream_keeps_the_upstreams_content_length_for_head(upstream):
    async with client_for(upstream.url) as client:
        answer = await client.request("HEAD", "/anything", [], b"")
    assert answer.status == 200 and answer.body == b""
    assert int(_names(tuple(answer.headers))["content-length"]) > 0


def test_upstream_proxy_for_reads_proxy_variables_and_no_proxy(no_proxy_env):
    assert proxy_for("https://api.capture.page") is None
    no_proxy_env.setenv("HTTPS_PROXY", "http://corp-proxy:3128")
    no_proxy_env.setenv("HTTP_PROXY", "http://plain-proxy:8080")
    assert proxy_for("https://api.capture.page") == "http://corp-proxy:3128"
    assert proxy_for("http://127.0.0.1:8765") == "http://plain-proxy:8080"
    no_proxy_env.setenv("NO_PROXY", "localhost,127.0.0.1,.capture.page")
    assert proxy_for("https://api.capture.page") is None
    assert proxy_for("http://127.0.0.1:8765") is None
    assert proxy_for("https://example.com") == "http://corp-proxy:3128"


async def test_upstream_goes_through_the_http_proxy_it_is_given(upstream, forward_proxy):
    proxy, proxy_url = forward_proxy
    async with client_for(upstream.url, proxy=proxy_url) as client:
        answer = await client.request("GET", "/v1/sessions/a%2Fb?x=%20y", [], b"")
    assert answer.status == 200
    assert proxy.seen == [f"{upstream.url}/v1/sessions/a%2Fb?x=%20y"]
    assert upstream.received[-1].target == "/v1/sessions/a%2Fb?x=%20y"


async def test_upstream_sends_proxy_credentials_from_the_proxy_url(upstream):
    seen: list[str | None] = []
    proxy = ForwardProxy()

    @web.middleware
    async def remember(request: web.Request, handler):  # type: ignore[no-untyped-def]
        seen.append(request.headers.get("Proxy-Authorization"))
        return await handler(request)

    proxy.app.middlewares.append(remember)
    async with serving(proxy.app) as proxy_url:
        with_user = proxy_url.replace("http://", "http://alice:pw@")
        async with client_for(upstream.url, proxy=with_user) as client:
            answer = await client.request("GET", "/", [], b"")
    assert answer.status == 200
    assert seen == ["Basic " + base64.b64encode(b"alice:pw").decode()]


async def test_upstream_reaches_https_with_a_private_ca_from_ssl_cert_file(
    monkeypatch, ca_file_and_server_ssl
):
    ca_file, server_ssl = ca_file_and_server_ssl
    fake = FakeUpstream()
    async with serving(fake.app, server_ssl) as url:
        monkeypatch.delenv("SSL_CERT_FILE", raising=False)
        async with client_for(url) as client:
            with pytest.raises(UpstreamConnectError, match="certificate"):
                await client.request("GET", "/", [], b"")
        monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))
        async with client_for(url) as client:
            answer = await client.request("GET", "/v1/x?y=1", [], b"")
    assert answer.status == 200 and fake.received[-1].target == "/v1/x?y=1"


async def test_upstream_tunnels_https_through_the_proxy(
    monkeypatch, ca_file_and_server_ssl, tunnel
):
    ca_file, server_ssl = ca_file_and_server_ssl
    monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))
    fake = FakeUpstream()
    async with serving(fake.app, server_ssl) as url:
        async with client_for(url, proxy=tunnel.url.replace("//", "//bob:secret@")) as client:
            answer = await client.request("GET", "/v1/sessions", [], b"")
    assert answer.status == 200
    assert tunnel.seen == [url.removeprefix("https://")]
    assert tunnel.credentials == ["Basic " + base64.b64encode(b"bob:secret").decode()]
    assert fake.received[-1].target == "/v1/sessions"


async def test_upstream_refuses_an_answer_over_the_cap(upstream):
    async with client_for(upstream.url, max_response_bytes=1024) as client:
        with pytest.raises(UpstreamTooLargeError, match="1024 bytes"):
            await client.request("GET", "/big", [], b"")  # Content-Length says so up front
        answer = await client.request("GET", "/", [], b"")
    assert answer.status == 200


async def test_upstream_refuses_a_chunked_answer_growing_over_the_cap():
    async with serving(chunked_app(64 * 1024)) as url:
        async with client_for(url, max_response_bytes=10_000) as client:
            with pytest.raises(UpstreamTooLargeError):
                await client.request("GET", "/", [], b"")
        async with client_for(url, max_response_bytes=64 * 1024) as client:
            answer = await client.request("GET", "/", [], b"")
    assert answer.body == b"x" * 64 * 1024


async def test_upstream_refuses_an_answer_framed_by_both_length_and_chunks_and_drops_it():
    raw = RawUpstream([DOUBLY_FRAMED, plain_answer("second")])
    await raw.start()
    try:
        async with client_for(raw.url) as client:
            with pytest.raises(UpstreamError) as caught:
                await client.request("GET", "/first", [], b"")
            answer = await client.request("GET", "/second", [], b"")
    finally:
        await raw.stop()
    assert "Content-Length" in str(caught.value)
    assert answer.body == b"second"  # not "smuggled": the first connection was not reused
    assert raw.connections == 2


async def test_upstream_maps_a_refused_connection_and_a_timeout(upstream):
    async with client_for(f"http://127.0.0.1:{closed_port()}") as client:
        with pytest.raises(UpstreamConnectError):
            await client.request("GET", "/", [], b"")
    async with client_for(upstream.url, timeout=0.2) as client:
        with pytest.raises(UpstreamTimeoutError):
            await client.request("GET", "/slow", [], b"")


@pytest.fixture
def netrc_for_loopback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    path = tmp_path / "netrc"
    path.write_text("machine 127.0.0.1 login someone password hunter2\n")
    path.chmod(0o600)
    monkeypatch.setenv("NETRC", str(path))
    yield


async def test_upstream_never_adds_credentials_from_netrc(upstream, netrc_for_loopback):
    async with client_for(upstream.url) as client:
        await client.request("GET", "/a", [], b"")
        await client.request("GET", "/b", [("Authorization", "Bearer mine")], b"")
    first, second = (_names(r.headers) for r in upstream.received)
    assert "authorization" not in first
    assert second["authorization"] == "Bearer mine"


def test_upstream_client_refuses_a_non_http_upstream():
    with pytest.raises(ValueError, match="http:// or https://"):
        UpstreamClient("ftp://example.com", connect_timeout=1, timeout=1)

"""The recording proxy against a fake upstream on real sockets."""

from __future__ import annotations

import asyncio
import io
import json
import socket
from pathlib import Path

import aiohttp
import pytest

from recorder.cassette import WriteMode, open_cassette
from recorder.errors import CassetteExistsError
from recorder.proxy import ProxyConfig
from tests.recorder.conftest import AUTH, BIG_SIZE, FakeUpstream, running_proxy
from tests.recorder.test_upstream import (
    DOUBLY_FRAMED,
    ForwardProxy,
    RawUpstream,
    chunked_app,
    clear_proxy_variables,
    plain_answer,
    private_ca,
    serving,
)


def _config(upstream: FakeUpstream, path: Path, **kw: object) -> ProxyConfig:
    return ProxyConfig(cassette=path, upstream=upstream.url, **kw)  # type: ignore[arg-type]


async def test_proxy_passes_status_headers_and_body_through(upstream, cassette_path):
    async with running_proxy(_config(upstream, cassette_path)) as url:
        async with aiohttp.ClientSession(auto_decompress=False) as client:
            async with client.post(
                f"{url}/v1/sessions/sess%2F1/actions?x=1&y=%20z",
                data=b'{"type":"click","payload":{"selector":"#inc"}}',
                headers={**AUTH, "X-Trace": "t1", "Content-Type": "application/json"},
            ) as resp:
                assert resp.status == 200
                body = await resp.json()
    assert body["type"] == "click"
    got = upstream.received[-1]
    assert got.target == "/v1/sessions/sess%2F1/actions?x=1&y=%20z"
    names = {k.lower(): v for k, v in got.headers}
    assert names["x-trace"] == "t1"
    assert names["authorization"] == AUTH["Authorization"]  # the live exchange keeps the token
    assert names["host"] == upstream.url.removeprefix("http://")
    with open_cassette(cassette_path) as cassette:
        (entry,) = cassette.entries
        assert (entry.method, entry.path, entry.query) == (
            "POST",
            "/v1/sessions/sess%2F1/actions",
            "x=1&y=%20z",
        )
        assert (entry.session_id, entry.action_type, entry.user) == ("sess/1", "click", "user_123")
        item = cassette.load(entry)
    assert item.response.json()["type"] == "click"


async def test_proxy_drops_hop_by_hop_headers(upstream, cassette_path):
    async with running_proxy(_config(upstream, cassette_path)) as url:
        async with aiohttp.ClientSession() as client:
            async with client.get(
                f"{url}/hop",
                headers={
                    "Connection": "keep-alive, X-Secret-Hop",
                    "X-Secret-Hop": "1",
                    "Proxy-Authorization": "Basic abc",
                    "TE": "trailers",
                },
            ) as resp:
                assert (resp.status, resp.reason) == (203, "Odd Reason")
                assert await resp.read() == b"hop"
                assert resp.headers["X-Custom"] == "kept"
                assert resp.headers.getall("X-Dup") == ["a", "b"]
                for name in ("Keep-Alive", "Upgrade", "X-Private"):
                    assert name not in resp.headers
    sent = {k.lower() for k, _ in upstream.received[-1].headers}
    assert not sent & {"x-secret-hop", "proxy-authorization", "te"}


async def test_proxy_passes_30mb_bodies_and_gzip_unchanged(upstream, cassette_path):
    upload = bytes(range(256)) * (4 * 1024 * 16)  # 16 MiB
    async with running_proxy(_config(upstream, cassette_path)) as url:
        async with aiohttp.ClientSession(auto_decompress=False) as client:
            async with client.get(f"{url}/big") as resp:
                assert resp.status == 200
                big = await resp.read()
            async with client.post(f"{url}/upload", data=io.BytesIO(upload)) as resp:
                echoed = await resp.read()
            async with client.get(f"{url}/gzip", headers={"Accept-Encoding": "gzip"}) as resp:
                assert resp.headers["Content-Encoding"] == "gzip"
                gz = await resp.read()
    assert len(big) == BIG_SIZE and big == upstream.big
    assert echoed == upload
    assert gz == upstream.gzipped
    with open_cassette(cassette_path) as cassette:
        items = [cassette.load(e) for e in cassette.entries]
    assert items[0].response.body == upstream.big
    assert items[1].request.body == upload
    assert items[2].response.body == upstream.gzipped


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_proxy_answers_502_when_upstream_is_down_and_records_it(cassette_path):
    down = f"http://127.0.0.1:{_closed_port()}"
    config = ProxyConfig(cassette=cassette_path, upstream=down, connect_timeout=2)
    async with running_proxy(config) as url:
        async with aiohttp.ClientSession() as client:
            async with client.get(f"{url}/v1/sessions/sess_1", headers=AUTH) as resp:
                assert resp.status == 502
                body = await resp.json()
            async with client.get(f"{url}/__admin/health") as resp:
                health = await resp.json()
    assert body["success"] is False and down in body["error"]
    assert health["failures"] == 1
    with open_cassette(cassette_path) as cassette:
        (entry,) = cassette.entries
        assert entry.status == 502 and down in (entry.error or "")
        assert cassette.load(entry).response.json() == body


async def test_proxy_answers_504_when_upstream_is_too_slow(upstream, cassette_path):
    async with running_proxy(_config(upstream, cassette_path, timeout=0.2)) as url:
        async with aiohttp.ClientSession() as client:
            async with client.get(f"{url}/slow") as resp:
                assert resp.status == 504
                body = await resp.json()
    assert upstream.arrived.is_set()
    assert body["success"] is False and upstream.url in body["error"]
    with open_cassette(cassette_path) as cassette:
        (entry,) = cassette.entries
        assert entry.status == 504 and entry.error


async def test_proxy_health_answers_on_the_proxy(upstream, cassette_path):
    async with running_proxy(_config(upstream, cassette_path)) as url:
        async with aiohttp.ClientSession() as client:
            async with client.get(f"{url}/__admin/health") as resp:
                data = await resp.json()
    assert data["role"] == "recorder" and data["upstream"] == upstream.url
    assert upstream.received == []


async def test_proxy_records_concurrent_exchanges_without_loss(upstream, cassette_path):
    async with running_proxy(_config(upstream, cassette_path)) as url:
        async with aiohttp.ClientSession() as client:

            async def create() -> str:
                async with client.post(f"{url}/v1/sessions", json={}, headers=AUTH) as resp:
                    return (await resp.json())["session"]["id"]

            sessions = await asyncio.gather(*(create() for _ in range(4)))

            async def act(sid: str, i: int) -> int:
                payload = {"type": "click" if i % 2 else "title", "payload": {"selector": f"#b{i}"}}
                async with client.post(
                    f"{url}/v1/sessions/{sid}/actions", json=payload, headers=AUTH
                ) as r:
                    await r.read()
                    return r.status

            statuses = await asyncio.gather(*(act(s, i) for s in sessions for i in range(10)))
    assert statuses == [200] * 40
    with open_cassette(cassette_path) as cassette:
        entries = cassette.entries
        assert cassette.torn_tail is None
    assert len(entries) == 44
    assert len({e.seq for e in entries}) == 44
    per_session = {s: sum(1 for e in entries if e.session_id == s) for s in sessions}
    assert per_session == {s: 11 for s in sessions}  # the create answer + 10 actions


async def test_proxy_refuses_an_existing_cassette_unless_append_or_overwrite(
    upstream, cassette_path
):
    async with running_proxy(_config(upstream, cassette_path)) as url:
        async with aiohttp.ClientSession() as client:
            async with client.get(f"{url}/a") as resp:
                await resp.read()
    with pytest.raises(CassetteExistsError, match="already exists"):
        async with running_proxy(_config(upstream, cassette_path)):
            pass
    async with running_proxy(_config(upstream, cassette_path, mode=WriteMode.APPEND)) as url:
        async with aiohttp.ClientSession() as client:
            async with client.get(f"{url}/b") as resp:
                await resp.read()
    with open_cassette(cassette_path) as cassette:
        assert [(e.seq, e.path) for e in cassette.entries] == [(1, "/a"), (2, "/b")]
    async with running_proxy(_config(upstream, cassette_path, mode=WriteMode.OVERWRITE)) as url:
        async with aiohttp.ClientSession() as client:
            async with client.get(f"{url}/c") as resp:
                await resp.read()
    with open_cassette(cassette_path) as cassette:
        assert [(e.seq, e.path) for e in cassette.entries] == [(1, "/c")]


async def test_proxy_json_error_body_is_valid_json(cassette_path):
    down = f"http://127.0.0.1:{_closed_port()}"
    async with running_proxy(ProxyConfig(cassette=cassette_path, upstream=down)) as url:
        async with aiohttp.ClientSession() as client:
            async with client.delete(f"{url}/v1/sessions/x") as resp:
                assert resp.content_type == "application/json"
                assert json.loads(await resp.read())["success"] is False


async def _get(url: str, **kw: object) -> tuple[int, dict[str, str], bytes]:
    async with aiohttp.ClientSession(auto_decompress=False) as client:
        async with client.get(url, **kw) as resp:  # type: ignore[arg-type]
            return resp.status, dict(resp.headers), await resp.read()


async def test_proxy_records_through_the_http_proxy_named_by_http_proxy(
    upstream, cassette_path, monkeypatch
):
    env = clear_proxy_variables(monkeypatch)
    proxy = ForwardProxy()
    async with serving(proxy.app) as proxy_url:
        env.setenv("HTTP_PROXY", proxy_url)
        async with running_proxy(_config(upstream, cassette_path)) as url:
            status, _, body = await _get(f"{url}/v1/sessions/s%2F1?x=%20y", headers=AUTH)

        env.setenv("NO_PROXY", "localhost,127.0.0.1")
        again = _config(upstream, cassette_path, mode=WriteMode.APPEND)
        async with running_proxy(again) as url:
            direct, _, _ = await _get(f"{url}/direct")
    assert status == 200 and json.loads(body)["target"] == "/v1/sessions/s%2F1?x=%20y"
    assert proxy.seen == [f"{upstream.url}/v1/sessions/s%2F1?x=%20y"]
    with open_cassette(cassette_path) as cassette:
        recorded = [(e.status, e.path, e.query) for e in cassette.entries]
    assert recorded == [(200, "/v1/sessions/s%2F1", "x=%20y"), (200, "/direct", "")]
    assert direct == 200 and upstream.received[-1].target == "/direct"
    assert len(proxy.seen) == 1  # NO_PROXY sent this one straight to the upstream


async def test_proxy_records_an_https_upstream_with_a_private_ca(
    cassette_path, monkeypatch, tmp_path
):
    ca_file, server_ssl = private_ca(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))
    fake = FakeUpstream()
    async with serving(fake.app, server_ssl) as up_url:
        config = ProxyConfig(cassette=cassette_path, upstream=up_url)
        async with running_proxy(config) as url:
            status, _, body = await _get(f"{url}/v1/sessions/sess_1", headers=AUTH)
    assert status == 200 and json.loads(body)["target"] == "/v1/sessions/sess_1"
    with open_cassette(cassette_path) as cassette:
        (entry,) = cassette.entries
        assert entry.status == 200 and entry.error is None


async def test_proxy_answers_502_over_the_answer_cap_and_records_it(upstream, cassette_path):
    config = _config(upstream, cassette_path, max_response_bytes=4096)
    async with running_proxy(config) as url:
        status, headers, body = await _get(f"{url}/big")
        after, _, _ = await _get(f"{url}/small")
        _, _, health = await _get(f"{url}/__admin/health")
    assert status == 502 and headers["Content-Type"].startswith("application/json")
    error = json.loads(body)
    assert error["success"] is False
    assert upstream.url in error["error"] and "4096 bytes" in error["error"]
    assert after == 200 and json.loads(health)["failures"] == 1
    with open_cassette(cassette_path) as cassette:
        big, small = cassette.entries
        assert big.status == 502 and "4096 bytes" in (big.error or "")
        assert cassette.load(big).response.json() == error
        assert small.status == 200


async def test_proxy_answers_502_to_a_chunked_answer_growing_over_the_cap(cassette_path):
    async with serving(chunked_app(64 * 1024)) as up_url:
        config = ProxyConfig(cassette=cassette_path, upstream=up_url, max_response_bytes=10_000)
        async with running_proxy(config) as url:
            status, _, body = await _get(f"{url}/")
    assert status == 502 and "10000 bytes" in json.loads(body)["error"]


async def test_proxy_answers_502_to_an_answer_framed_twice_and_drops_its_connection(
    cassette_path,
):
    raw = RawUpstream([DOUBLY_FRAMED, plain_answer("second")])
    await raw.start()
    try:
        config = ProxyConfig(cassette=cassette_path, upstream=raw.url)
        async with running_proxy(config) as url:
            first, _, body = await _get(f"{url}/first")
            second, _, answer = await _get(f"{url}/second")
    finally:
        await raw.stop()
    assert first == 502 and raw.url in json.loads(body)["error"]
    assert (second, answer) == (200, b"second")  # never "smuggled"
    assert raw.connections == 2
    with open_cassette(cassette_path) as cassette:
        statuses = [(e.status, e.error is not None) for e in cassette.entries]
    assert statuses == [(502, True), (200, False)]


async def test_proxy_asks_upstream_only_for_codings_it_can_decode(upstream, cassette_path):
    async with running_proxy(_config(upstream, cassette_path)) as url:
        await _get(f"{url}/a", headers={"Accept-Encoding": "br, zstd, foo"})
        await _get(f"{url}/b", headers={"Accept-Encoding": "foo;q=1, gzip;q=0.5"})
        await _get(f"{url}/c", headers={"Accept-Encoding": "foo"})
    sent = [[v for k, v in r.headers if k.lower() == "accept-encoding"] for r in upstream.received]
    assert sent == [["br, zstd"], ["gzip;q=0.5"], ["identity"]]
    with open_cassette(cassette_path) as cassette:
        first = cassette.load(cassette.entries[0])
    assert first.request.header("Accept-Encoding") == "br, zstd, foo"  # what the client sent


async def test_proxy_head_keeps_the_upstreams_content_length(upstream, cassette_path):
    async with aiohttp.ClientSession() as client:
        async with client.head(f"{upstream.url}/v1/sessions/x") as resp:
            direct = resp.headers["Content-Length"]
        async with running_proxy(_config(upstream, cassette_path)) as url:
            async with client.head(f"{url}/v1/sessions/x") as resp:
                assert resp.status == 200
                assert resp.headers["Content-Length"] == direct
                assert await resp.read() == b""

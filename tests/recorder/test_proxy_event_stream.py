"""A `text/event-stream` answer (MCP's) goes through the recording proxy as it arrives, and the
whole stream lands in the cassette once it ends."""

from __future__ import annotations

import asyncio

import aiohttp
from aiohttp import web

from mock_server.serving import listen_on_loopback
from recorder.cassette import open_cassette
from recorder.proxy import ProxyConfig
from tests.recorder.conftest import running_proxy

FIRST = b'event: message\r\ndata: {"jsonrpc":"2.0","method":"notifications/progress"}\r\n\r\n'
LAST = b'event: message\r\ndata: {"jsonrpc":"2.0","id":1,"result":{}}\r\n\r\n'


class StreamingUpstream:
    """Sends one event, then the last one only when the test says the first one arrived."""

    def __init__(self) -> None:
        self.first_seen = asyncio.Event()
        self.app = web.Application()
        self.app.router.add_route("*", "/mcp/v1", self.stream)
        self.runner = web.AppRunner(self.app)

    async def stream(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Mcp-Session-Id": "abc"}
        )
        await response.prepare(request)
        await response.write(FIRST)
        await asyncio.wait_for(self.first_seen.wait(), 10)
        await response.write(LAST)
        await response.write_eof()
        return response


async def test_event_stream_reaches_the_client_before_it_ends_and_is_recorded_whole(
    cassette_path,
):
    upstream = StreamingUpstream()
    base = await listen_on_loopback(upstream.runner)
    try:
        async with running_proxy(ProxyConfig(cassette=cassette_path, upstream=base)) as url:
            async with aiohttp.ClientSession() as http:
                headers = {"Accept": "application/json, text/event-stream"}
                async with http.post(url + "/mcp/v1", data=b"{}", headers=headers) as resp:
                    assert resp.status == 200
                    assert resp.headers["Content-Type"] == "text/event-stream"
                    assert resp.headers["Mcp-Session-Id"] == "abc"
                    received = b""
                    while not received.endswith(b"\r\n\r\n"):
                        received += await asyncio.wait_for(resp.content.readany(), 10)
                    assert received == FIRST  # the upstream has not sent the rest yet
                    upstream.first_seen.set()
                    assert received + await resp.read() == FIRST + LAST
    finally:
        await upstream.runner.cleanup()
    with open_cassette(cassette_path) as cassette:
        [entry] = cassette.entries
        item = cassette.load(entry)
    assert item.response.body == FIRST + LAST and item.error is None
    assert item.response.header("content-type") == "text/event-stream"
    assert item.response.header("mcp-session-id") == "abc"


async def test_a_json_answer_to_an_event_stream_client_is_forwarded_whole(cassette_path):
    app = web.Application()

    async def answer(request: web.Request) -> web.Response:
        return web.json_response({"jsonrpc": "2.0", "id": 1, "result": {}})

    app.router.add_post("/mcp/v1", answer)
    runner = web.AppRunner(app)
    base = await listen_on_loopback(runner)
    try:
        async with running_proxy(ProxyConfig(cassette=cassette_path, upstream=base)) as url:
            async with aiohttp.ClientSession() as http:
                headers = {"Accept": "application/json, text/event-stream"}
                async with http.post(url + "/mcp/v1", data=b"{}", headers=headers) as resp:
                    assert resp.status == 200 and resp.content_length is not None
                    assert (await resp.json())["result"] == {}
    finally:
        await runner.cleanup()
    with open_cassette(cassette_path) as cassette:
        assert [e.status for e in cassette.entries] == [200]

"""`capture-replay serve` at its edges, as a real process: connections that never finish a
request are closed after `--idle-timeout`, a connection past `--max-connections` gets a 503 JSON
answer, and binding a non-loopback address needs an admin token."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import pytest

from mock_server.cli import main
from recorder.cassette import CassetteWriter
from tests.recorder.builders import exchange
from tests.serve_process import serve_process


@pytest.fixture
def served(tmp_path) -> Iterator[tuple[str, int]]:
    cassette = tmp_path / "c.msgpack"
    with CassetteWriter(cassette, upstream="https://api.capture.page") as writer:
        writer.append(exchange(1, 0, "GET", "/v1/sessions/sess_a", sid="sess_a"))
    with serve_process(
        "--cassette", str(cassette), "--idle-timeout", "1", "--max-connections", "3"
    ) as url:
        host, port = url.removeprefix("http://").rsplit(":", 1)
        yield host, int(port)


async def test_incomplete_requests_are_closed_and_extra_connections_refused(served):
    host, port = served
    slow = []
    for _ in range(3):  # a slowloris: a request line that never ends
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(b"GET /__admin/health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        await writer.drain()
        slow.append((reader, writer))
    refused = b""
    for _ in range(5):  # the server may not have accepted all three yet: try again
        reader, writer = await asyncio.open_connection(host, port)
        refused = await asyncio.wait_for(reader.read(), 10)
        writer.close()
        if refused:
            break
    head, _, body = refused.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 503")
    answer = json.loads(body)
    assert answer["success"] is False and "open connections" in answer["error"]
    for reader, writer in slow:  # closed by the server after --idle-timeout, unanswered
        assert await asyncio.wait_for(reader.read(), 10) == b""
        writer.close()
    reader, writer = await asyncio.open_connection(host, port)  # room again
    writer.write(b"GET /__admin/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert (await asyncio.wait_for(reader.read(), 10)).startswith(b"HTTP/1.1 200")
    writer.close()


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", "more than 8190 bytes"),
        (b"FO@O / HTTP/1.1\r\nHost: x\r\n\r\n", "Invalid method"),
        (b"POST /v1/sessions HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", "Content-Length"),
    ],
)
async def test_protocol_errors_are_answered_in_the_contracts_json_shape(served, raw, error):
    reader, writer = await asyncio.open_connection(*served)
    writer.write(raw)
    answer = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.split(b" ", 2)[1] == b"400" and b"Content-Type: application/json" in head
    data = json.loads(body)
    assert data["success"] is False and error in data["error"] and "\n" not in data["error"]


def test_binding_beyond_loopback_needs_an_admin_token():
    from click.testing import CliRunner

    result = CliRunner().invoke(main, ["serve", "--host", "0.0.0.0", "--port", "0"])
    assert result.exit_code == 2 and "--admin-token" in result.output

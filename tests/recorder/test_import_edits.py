"""Mistakes a person makes editing an exported cassette by hand, each refused by `import` with
one line naming the exchange and the field, nothing written: a field given twice (JSON keeps the
last one silently), a missing request or answer, and an MCP answer whose server-sent event no
longer holds the JSON-RPC answer (replay would send an empty stream the client waits on)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from mock_server.cli import main


def run_import(tmp_path: Path, text: str, *flags: str) -> tuple[int, str, bool]:
    source = tmp_path / "edited.json"
    source.write_text(text, encoding="utf-8")
    out = tmp_path / "edited.msgpack"
    result = CliRunner().invoke(main, ["import", str(source), "-o", str(out), *flags])
    return result.exit_code, result.stderr.strip(), out.exists()


def mcp_document(answer_body: str) -> str:
    call = {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "ping"}}
    exchange = {
        "request": {
            "method": "POST",
            "path": "/mcp/v1",
            "headers": [["Content-Type", "application/json"], ["Mcp-Session-Id", "abc"]],
            "body": {"json": call},
        },
        "response": {
            "status": 200,
            "headers": [["Content-Type", "text/event-stream"]],
            "body": {"text": answer_body},
        },
    }
    return json.dumps({"interactions": [exchange]})


@pytest.mark.parametrize(
    ("exchange", "field"),
    [
        (
            '{"request": {"method": "GET", "path": "/a", "path": "/b"}, '
            '"response": {"status": 200}}',
            "request.path",
        ),
        (
            '{"request": {"method": "GET", "path": "/a"}, '
            '"response": {"status": 200, "body": {"json": {"count": 1, "count": 0}}}}',
            "response.body.json.count",
        ),
    ],
)
def test_a_field_given_twice_is_refused_naming_it(tmp_path, exchange, field):
    code, err, written = run_import(tmp_path, f'{{"interactions": [{exchange}]}}')
    assert code == 1 and not written
    assert err == (
        f"Error: {tmp_path / 'edited.json'}: interactions[0] (exchange #1): {field}: "
        "given twice (JSON would keep only the last one)"
    )


def test_a_missing_request_or_answer_says_missing(tmp_path):
    code, err, written = run_import(
        tmp_path, '{"interactions": [{"request": {"method": "GET", "path": "/a"}}]}'
    )
    assert code == 1 and not written
    assert err.endswith("interactions[0] (exchange #1): response: missing")
    code, err, _ = run_import(tmp_path, '{"interactions": [{"response": {"status": 200}}]}')
    assert err.endswith("interactions[0] (exchange #1): request: missing")


def test_an_mcp_answer_without_the_json_rpc_answer_is_refused(tmp_path):
    broken = 'event: message\r\ndata: {"jsonrpc":"2.0","id":3,"result":{"content":[]}\r\n\r\n'
    code, err, written = run_import(tmp_path, mcp_document(broken))
    assert code == 1 and not written
    assert err.endswith(
        "interactions[0] (exchange #1): response.body: no JSON-RPC answer to request id 3 "
        "(replay would answer nothing); not what the contract allows for this route "
        "(--no-validate keeps it)"
    )
    assert run_import(tmp_path, mcp_document(broken), "--no-validate")[0] == 0


def test_an_mcp_answer_as_recorded_imports(tmp_path):
    good = 'event: message\r\ndata: {"jsonrpc":"2.0","id":3,"result":{"content":[]}}\r\n\r\n'
    code, err, written = run_import(tmp_path, mcp_document(good))
    assert (code, err, written) == (0, "", True)

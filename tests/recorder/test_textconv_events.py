"""`textconv`'s text of MCP answers: a `text/event-stream` body event by event (fields kept, JSON
data pretty-printed, other data as it is), and a tool's JSON text expanded only in MCP's text
content shape (a REST answer with `type` and `text` fields is shown as it is)."""

from __future__ import annotations

from recorder.textconv import body_lines

JSON = (("Content-Type", "application/json"),)
STREAM = (("Content-Type", "text/event-stream"),)


def test_an_event_stream_is_shown_event_by_event():
    body = (
        b'event: message\r\nid: 7\r\ndata: {"jsonrpc":"2.0","id":1,"result":{}}\r\n\r\n'
        b"event: note\r\ndata: not json\r\ndata: second line\r\n\r\n"
    )
    assert body_lines(body, STREAM) == [
        "event: message",
        "id: 7",
        "data:",
        "    {",
        '      "id": 1,',
        '      "jsonrpc": "2.0",',
        '      "result": {}',
        "    }",
        "",
        "event: note",
        "data: not json",
        "data: second line",
    ]


def test_an_event_stream_that_is_not_text_is_summarized():
    [line] = body_lines(b"data: \xff\xfe\x00", STREAM)
    assert line.startswith("<text/event-stream, 9 bytes, sha256 ")


def test_json_text_is_expanded_only_in_mcp_text_content():
    mcp = b'{"content": [{"type": "text", "text": "{\\"billedCredits\\": 3}"}]}'
    assert '        "billedCredits": 3' in body_lines(mcp, JSON)
    assert '      "text (JSON)": {' in body_lines(mcp, JSON)
    rest = b'{"type": "text", "text": "{\\"a\\": 1}", "selector": "#x"}'
    assert '  "text": "{\\"a\\": 1}",' in body_lines(rest, JSON)

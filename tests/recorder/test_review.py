"""Reviewing and editing cassettes through the real `capture-replay` group (click's CliRunner):
`textconv` (stable text, images summarized, damage shown, exit 0), `import` (the export round
trip on every shipped cassette, hand-written files, one-line refusals that write nothing) and
`prune` (records kept byte for byte, refusals, a writer in another process)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from mock_server.cli import main
from mock_server.sessions import SessionStatus
from recorder.answers import SESSION_STATUSES
from recorder.cassette import open_cassette
from recorder.exchange_checks import contract_problem
from tests.contract.schemas import action_schema, validate

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "cassettes" / "examples").glob("*.msgpack"))
GOLDEN = sorted((ROOT / "tests" / "fixtures").glob("golden-v*.cassette"))
SID = "sess_hand_1"


def cli(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(map(str, args)))
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def export(path: Path) -> dict:
    code, out, err = cli("export", path)
    assert code == 0, err
    return json.loads(out)


def write_json(path: Path, document: dict) -> Path:
    path.write_text(json.dumps(document, indent=2), encoding="utf-8")
    return path


def hand_written() -> dict:
    """A session written by hand with only the required fields (and bodies)."""
    base = f"/v1/sessions/{SID}"
    session = {
        "id": SID,
        "status": "active",
        "expiresAt": "2026-01-01T00:05:00.000Z",
        "maxTtlSeconds": 300,
        "proxy": False,
        "bypassBotDetection": False,
        "cdp": False,
    }
    query = {
        "success": True,
        "expiresInSeconds": 299,
        "selector": "#results li",
        "fields": ["text"],
        "attributes": [],
        "limit": 100,
        "count": 0,
        "totalCount": 0,
        "elements": [],
    }
    return {
        "interactions": [
            {
                "request": {"method": "POST", "path": "/v1/sessions", "body": {"json": {}}},
                "response": {
                    "status": 201,
                    "body": {"json": {"success": True, "session": session}},
                },
            },
            {
                "request": {
                    "method": "POST",
                    "path": f"{base}/actions",
                    "body": {"json": {"type": "query", "payload": {"selector": "#results li"}}},
                },
                "response": {"status": 200, "body": {"json": query}},
            },
            {
                "request": {"method": "DELETE", "path": base},
                "response": {
                    "status": 200,
                    "body": {"json": {"success": True, "session": browser_session()}},
                },
            },
        ]
    }


def browser_session() -> dict:
    return {
        "id": SID,
        "status": "closed",
        "startedAt": "2026-01-01T00:00:00.000Z",
        "expiresAt": "2026-01-01T00:05:00.000Z",
        "billedCredits": 1,
        "actionCount": 1,
        "actionSuccessCount": 1,
        "actionErrorCount": 0,
        "actionBreakdown": {"query": {"total": 1, "success": 1, "error": 0}},
        "options": {"maxTtlSeconds": 300},
    }


# -- import: the round trip --------------------------------------------------------------------


@pytest.mark.parametrize("original", EXAMPLES + GOLDEN, ids=lambda p: p.name)
def test_export_import_export_gives_the_same_export_and_the_same_bytes(tmp_path, original):
    copy = tmp_path / original.name
    shutil.copy(original, copy)
    first = export(copy)
    source = write_json(tmp_path / "export.json", first)
    extra = ["--no-validate"] if original in GOLDEN else []  # their create answers are minimal
    code, _, err = cli("import", source, "-o", copy, *extra)
    assert code == 0, err
    second = export(copy)
    with open_cassette(original) as before, open_cassette(copy) as after:
        assert after.version == 3
        if before.version == 3 and before.header.tool_version == after.header.tool_version:
            assert second == first
        for a, b in zip(before.interactions(), after.interactions(), strict=True):
            # the export keeps times to the millisecond and durations to the microsecond
            assert abs(a.start - b.start) < 0.001 and abs(a.duration - b.duration) < 1e-6
            same_times = dataclasses.replace(b, start=a.start, duration=a.duration)
            assert same_times == a  # every other field, headers and bodies byte for byte
    for doc in (first, second):
        for header in doc["cassettes"]:
            header.pop("formatVersion"), header.pop("toolVersion")
    assert second == first


def test_golden_minimal_create_answer_fails_the_contract_check_naming_the_field(tmp_path):
    source = write_json(tmp_path / "golden.json", export(GOLDEN[-1]))
    out = tmp_path / "out.msgpack"
    code, _, err = cli("import", source, "-o", out)
    assert code == 1 and not out.exists()
    (line,) = err.strip().splitlines()
    assert "interactions[0] (exchange #1): response.body.session.expiresAt: missing" in line
    assert line.endswith("(--no-validate keeps it)")


def test_the_contract_check_agrees_with_the_openapi_file_on_every_shipped_answer():
    """The runtime table (recorder.answers) and Capture's OpenAPI file accept the same
    recorded answers, and refuse the same broken ones."""
    assert set(SESSION_STATUSES) == {s.value for s in SessionStatus}  # the emulator's own
    checked = 0
    for path in EXAMPLES:
        with open_cassette(path) as cassette:
            for item in cassette.interactions():
                assert contract_problem(item) is None, (path.name, item.seq)
                if item.action_type and item.response.status == 200:
                    answer = item.response.json()
                    validate(answer, action_schema(item.action_type))
                    if item.action_type in ("query", "goto", "content", "screenshot"):
                        broken = {k: v for k, v in answer.items() if k not in ("url", "elements")}
                        broken.pop("content", None), broken.pop("bodyBase64", None)
                        with pytest.raises(Exception, match="required property"):
                            validate(broken, action_schema(item.action_type))
                    checked += 1
    assert checked >= 10


# -- import: hand-written files ------------------------------------------------------------------


def test_a_hand_written_file_with_required_fields_only_gets_documented_defaults(tmp_path):
    source = write_json(tmp_path / "hand.json", hand_written())
    out = tmp_path / "hand.msgpack"
    code, stdout, err = cli("import", source, "-o", out)
    assert code == 0, err
    assert stdout == f"wrote {out}: 3 exchanges, 1 sessions\n"
    with open_cassette(out) as cassette:
        assert cassette.header.upstream == "https://api.capture.page"
        items = list(cassette.interactions())
    assert [i.seq for i in items] == [1, 2, 3]
    assert [i.session_id for i in items] == [SID] * 3
    assert [i.action_type for i in items] == [None, "query", None]
    assert items[0].start == 1_767_225_600.0 and items[0].duration == 0.0
    assert items[1].request.header("content-type") == "application/json"
    assert items[1].response.reason == "OK" and items[0].response.reason == "Created"
    assert items[2].request.body == b"" and items[2].request.headers == ()
    assert json.loads(items[1].response.body)["elements"] == []


def test_a_missing_seq_never_collides_with_a_given_one(tmp_path):
    doc = hand_written()
    doc["interactions"][0]["seq"] = 7
    doc["interactions"][2]["seq"] = 8
    source = write_json(tmp_path / "hand.json", doc)
    out = tmp_path / "hand.msgpack"
    assert cli("import", source, "-o", out)[0] == 0
    with open_cassette(out) as cassette:
        assert [e.seq for e in cassette.entries] == [7, 9, 8]


BAD_FIELDS = [
    (
        lambda d: d["interactions"][1]["response"].update(status="200"),
        "interactions[1] (exchange #2): response.status: expected 100..999",
    ),
    (
        lambda d: d["interactions"][1]["response"].update(bodyy={}),
        "interactions[1] (exchange #2): response.bodyy: unknown field",
    ),
    (lambda d: d.update(extra=1), "extra: unknown field"),
    (
        lambda d: d.update(cassettes=[{"path": "a"}, {"path": "b"}]),
        "cassettes: lists 2 cassettes; import one cassette's export",
    ),
    (
        lambda d: d["interactions"][2]["request"].pop("method"),
        "interactions[2] (exchange #3): request.method: missing",
    ),
    (
        lambda d: d["interactions"][1].update(startedAt="yesterday"),
        "interactions[1] (exchange #2): startedAt: 'yesterday' is not an ISO 8601 time",
    ),
    (
        lambda d: d["interactions"][1]["response"].update(
            body={"text": "%%%", "encoding": "base64"}
        ),
        "interactions[1] (exchange #2): response.body.text: is not valid base64",
    ),
    (
        lambda d: d["interactions"][1].update(sessionId="sess_other"),
        "interactions[1] (exchange #2): sessionId: 'sess_other' disagrees with 'sess_hand_1'",
    ),
    (
        lambda d: d["interactions"].insert(0, d["interactions"].pop(1)),
        "interactions[0] (exchange #1): request.path: uses sess_hand_1 before its create (#2)",
    ),
    (
        lambda d: d["interactions"].pop(0),
        "interactions[0] (exchange #1): request.path: sess_hand_1 is never created in this file",
    ),
    (
        lambda d: d["interactions"][1]["response"]["body"]["json"].pop("elements"),
        "interactions[1] (exchange #2): response.body.elements: missing (the contract requires "
        "it); not what the contract allows for this route (--no-validate keeps it)",
    ),
    (
        lambda d: d["interactions"][1]["response"]["body"]["json"].update(expiresInSeconds=-1),
        "interactions[1] (exchange #2): response.body.expiresInSeconds: expected an integer >= 0",
    ),
    (
        lambda d: d["interactions"][2]["response"]["body"]["json"]["session"].update(status="gone"),
        "interactions[2] (exchange #3): response.body.session.status: expected one of",
    ),
]


@pytest.mark.parametrize(("edit", "expected"), BAD_FIELDS)
def test_a_bad_field_is_one_line_naming_the_exchange_and_nothing_is_written(
    tmp_path, edit, expected
):
    doc = hand_written()
    edit(doc)
    source = write_json(tmp_path / "hand.json", doc)
    out = tmp_path / "kept.msgpack"
    shutil.copy(EXAMPLES[0], out)
    before = out.read_bytes()
    code, stdout, err = cli("import", source, "-o", out)
    assert code == 1 and stdout == ""
    (line,) = err.strip().splitlines()
    assert line.startswith(f"Error: {source}: ") and expected in line, line
    assert out.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_no_validate_keeps_a_deliberately_odd_answer_but_not_a_malformed_field(tmp_path):
    doc = hand_written()
    doc["interactions"][1]["response"]["body"] = {"json": {"success": True, "surprise": 1}}
    source = write_json(tmp_path / "odd.json", doc)
    out = tmp_path / "odd.msgpack"
    assert cli("import", source, "-o", out)[0] == 1 and not out.exists()
    assert cli("import", source, "--no-validate", "-o", out)[0] == 0
    with open_cassette(out) as cassette:
        assert json.loads(cassette.load(cassette.entries[1]).response.body)["surprise"] == 1
    doc["interactions"][1]["response"]["status"] = True
    write_json(source, doc)
    code, _, err = cli("import", source, "--no-validate", "-o", out)
    assert code == 1 and "response.status" in err


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ('{"interactions": [\n  {"seq": 1,}\n]}', "line 2 column 13: invalid JSON"),
        ('{"interactions": [{"durationMs": NaN}]}', "invalid JSON: NaN is not JSON"),
        ("", "line 1 column 1: invalid JSON"),
    ],
)
def test_malformed_json_is_one_line_with_its_location(tmp_path, text, where):
    source = tmp_path / "bad.json"
    source.write_text(text, encoding="utf-8")
    out = tmp_path / "out.msgpack"
    code, _, err = cli("import", source, "-o", out)
    assert code == 1 and not out.exists()
    (line,) = err.strip().splitlines()
    assert where in line, line


def test_import_never_replaces_a_file_that_is_not_a_cassette(tmp_path):
    source = write_json(tmp_path / "hand.json", hand_written())
    precious = tmp_path / "notes.txt"
    precious.write_text("keep me")
    code, _, err = cli("import", source, "-o", precious)
    assert code == 1 and "not a capture-replay cassette; refusing to replace it" in err
    assert precious.read_text() == "keep me"


# -- textconv ---------------------------------------------------------------------------------


def test_textconv_is_stable_line_oriented_text_with_images_summarized():
    counter = ROOT / "cassettes" / "examples" / "counter-flow.msgpack"
    code, text, _ = cli("textconv", counter)
    assert code == 0 and cli("textconv", counter)[1] == text
    lines = text.splitlines()
    assert lines[0].startswith("capture-replay cassette, format 2, upstream http://127.0.0.1")
    assert "#5 POST /v1/sessions/sess_c76e3410-1a79-405f-a8e1-ff1f1cc335c1/actions" in lines
    assert "  action: query #count" in lines and "  status: 200 OK" in lines
    assert '        "billedCredits": 1,' in lines  # sorted keys, as recorded
    shot = next(line for line in lines if '"bodyBase64"' in line)
    assert "<image/png, " in shot and " px, sha256 " in shot
    assert max(len(line) for line in lines) < 400  # no base64 blob
    code, text, _ = cli("textconv", ROOT / "cassettes" / "examples" / "oneshot.msgpack")
    assert "    <image/gif, 11358 bytes, 320x240 px, sha256 " in text


def test_textconv_of_a_damaged_cassette_prints_every_whole_record_and_where(tmp_path):
    path = tmp_path / "d.msgpack"
    shutil.copy(GOLDEN[-1], path)
    with open_cassette(path) as cassette:
        second = cassette.entries[1]
    data = bytearray(path.read_bytes())
    data[second.offset + second.length - 3] ^= 0xFF
    data += b"\xc1\x1aCRREC\n\x00\x00"  # and a torn tail
    path.write_bytes(bytes(data))
    code, text, err = cli("textconv", path)
    assert code == 0, err
    lines = text.splitlines()
    assert "#1 POST /v1/sessions" in lines and any(x.startswith("#3 GET /user_123/") for x in lines)
    assert not any(x.startswith("#2 ") for x in lines)
    damage = [x for x in lines if x.startswith("!! ")]
    assert damage[0].startswith(f"!! damaged: {second.length} bytes at byte {second.offset}")
    assert "between records #1 and #3 (checksum mismatch)" in damage[0]
    assert damage[1].startswith("!! torn tail: 10 bytes")
    assert lines.index(damage[0]) < lines.index(
        "#3 GET /user_123/<redacted>/image?url=https%3A%2F%2Fexample.com%2F"
    )


def test_textconv_of_a_file_that_is_not_a_cassette_says_so_and_exits_0(tmp_path):
    path = tmp_path / "x.msgpack"
    path.write_bytes(b"\x93\x01\x02\x03")
    code, text, _ = cli("textconv", path)
    assert code == 0
    assert text.startswith("!! not a capture-replay cassette (4 bytes, sha256 ")


# -- prune ------------------------------------------------------------------------------------


def test_prune_drops_exchanges_and_keeps_the_others_byte_for_byte(tmp_path):
    path = tmp_path / "c.msgpack"
    shutil.copy(ROOT / "cassettes" / "examples" / "counter-flow.msgpack", path)
    with open_cassette(path) as cassette:
        before = dict(zip((e.seq for e in cassette.entries), cassette.raw_records(), strict=True))
        header = cassette.raw_header()
    code, out, err = cli("prune", path, "--drop", "6,#7")
    assert code == 0, err
    assert out.strip() == f"{path}: dropped #6, #7; 7 exchanges kept"
    with open_cassette(path) as cassette:
        assert cassette.raw_header() == header and cassette.version == 2
        after = dict(zip((e.seq for e in cassette.entries), cassette.raw_records(), strict=True))
    assert list(after) == [1, 2, 3, 4, 5, 8, 9]
    assert all(after[s] == before[s] for s in after)


@pytest.mark.parametrize(
    ("drop", "expected"),
    [
        ("1", "#1 creates sess_c76e3410-1a79-405f-a8e1-ff1f1cc335c1, whose exchanges #2, #3"),
        ("4,99", "has no exchange #99 (it has 9 exchanges)"),
        ("x", "'x' is not a sequence number"),
    ],
)
def test_prune_refusals_are_one_line_and_change_nothing(tmp_path, drop, expected):
    path = tmp_path / "c.msgpack"
    shutil.copy(ROOT / "cassettes" / "examples" / "counter-flow.msgpack", path)
    before = path.read_bytes()
    code, _, err = cli("prune", path, "--drop", drop)
    assert code in (1, 2) and expected in err, err
    assert path.read_bytes() == before


def test_prune_of_a_damaged_cassette_is_refused(tmp_path):
    path = tmp_path / "d.msgpack"
    shutil.copy(GOLDEN[-1], path)
    with open_cassette(path) as cassette:
        second = cassette.entries[1]
    data = bytearray(path.read_bytes())
    data[second.offset + 20] ^= 0xFF
    path.write_bytes(bytes(data))
    code, _, err = cli("prune", path, "--drop", "3")
    assert code == 1 and "repair" in err


HOLD = """
import sys
from recorder.cassette import CassetteWriter, WriteMode
writer = CassetteWriter(sys.argv[1], upstream="u", mode=WriteMode.APPEND)
print("holding", flush=True)
sys.stdin.read()
writer.close()
"""


async def test_prune_and_import_are_refused_while_another_process_writes_the_cassette(tmp_path):
    path = tmp_path / "c.msgpack"
    shutil.copy(GOLDEN[-1], path)
    source = write_json(tmp_path / "hand.json", hand_written())
    writer = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        HOLD,
        str(path),
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        assert await asyncio.wait_for(writer.stdout.readline(), 30) == b"holding\n"
        before = path.read_bytes()
        for args in (("prune", path, "--drop", "3"), ("import", source, "-o", path)):
            code, _, err = await asyncio.to_thread(cli, *args)
            assert code == 1
            assert f"is being written by another process (pid {writer.pid})" in err, err
        assert path.read_bytes() == before
    finally:
        writer.stdin.close()
        assert await asyncio.wait_for(writer.wait(), 30) == 0
    assert cli("prune", path, "--drop", "3")[0] == 0


def test_import_redacts_as_the_recorder_does_so_no_secret_reaches_disk(tmp_path):
    token = "dXNlcl8xMjM6czNjcjN0LXZhbHVl"  # base64("user_123:s3cr3t-value")
    doc = hand_written()
    for item in doc["interactions"]:
        item["request"]["headers"] = [["Authorization", f"Bearer {token}"]]
    doc["interactions"].insert(
        2,
        {
            "request": {
                "method": "POST",
                "path": f"/v1/sessions/{SID}/actions",
                "headers": [["Authorization", f"Bearer {token}"]],
                "body": {
                    "json": {
                        "type": "fill",
                        "payload": {"selector": "#password", "value": "hunter2-typed"},
                    }
                },
            },
            "response": {"status": 200, "body": {"json": {"success": True, "expiresInSeconds": 1}}},
        },
    )
    doc["interactions"].append(
        {
            "request": {
                "method": "GET",
                "path": "/user_123/0123456789abcdef0123456789abcdef/image",
                "query": "url=https%3A%2F%2Fexample.com%2F",
            },
            "response": {"status": 200, "body": {"text": "iVBORw0KGgo=", "encoding": "base64"}},
        }
    )
    source = write_json(tmp_path / "hand.json", doc)
    out = tmp_path / "hand.msgpack"
    code, _, err = cli("import", source, "-o", out)
    assert code == 0, err
    raw = out.read_bytes()
    for secret in (token, "s3cr3t-value", "hunter2-typed", "0123456789abcdef0123456789abcdef"):
        assert secret.encode() not in raw
    with open_cassette(out) as cassette:
        items = list(cassette.interactions())
    assert items[0].request.headers == (("Authorization", "Bearer <redacted user=user_123>"),)
    assert [i.user for i in items] == ["user_123"] * 4 + [None]
    assert items[-1].request.path == "/user_123/<redacted>/image"


def test_bodies_nested_past_the_recursion_limit_are_text_not_a_traceback(tmp_path):
    deep = "[" * 100_000 + "]" * 100_000
    doc = hand_written()
    doc["interactions"][1]["response"]["body"] = {"text": deep}
    doc["interactions"][1]["response"]["headers"] = [["Content-Type", "application/json"]]
    source = write_json(tmp_path / "deep.json", doc)
    out = tmp_path / "deep.msgpack"
    code, _, err = cli("import", source, "-o", out)
    assert code == 1 and "(exchange #2): response.body: expected a JSON object" in err, err
    assert cli("import", source, "--no-validate", "-o", out)[0] == 0
    code, text, _ = cli("textconv", out)
    assert code == 0 and f"    {deep}" in text.splitlines()  # as its text

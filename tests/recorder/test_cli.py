"""The cassette commands through click's CliRunner: inspect, export, audit, repair, bad input;
and `record` refusing to clobber a cassette, through the real `capture-replay` group."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import click
import msgpack
import pytest
from click.testing import CliRunner

from recorder.cassette import FORMAT_NAME, CassetteWriter
from recorder.cli import SECRETS_FOUND_EXIT, commands
from recorder.records import Interaction
from tests.recorder.builders import exchange as _x

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256))


def _act(seq, at, sid, kind, payload, status=200, duration=0.1):
    body = json.dumps({"type": kind, "payload": payload}).encode()
    resp = (
        b'{"success":true,"expiresInSeconds":200}'
        if status < 400
        else b'{"success":false,"error":"no"}'
    )
    return _x(
        seq,
        at,
        "POST",
        f"/v1/sessions/{sid}/actions",
        body,
        status,
        resp,
        sid=sid,
        action=kind,
        duration=duration,
    )


def _session_json(sid, status, billed):
    return json.dumps(
        {
            "success": True,
            "session": {"id": sid, "status": status, "billedCredits": billed, "maxTtlSeconds": 300},
        }
    ).encode()


def flow() -> list[Interaction]:
    a, b = "sess_aaaa", "sess_bbbb"
    return [
        _x(1, 0, "POST", "/v1/sessions", b"{}", 201, _session_json(a, "active", None), sid=a),
        _act(2, 1, a, "goto", {"url": "https://example.com/"}, duration=0.5),
        _act(3, 2, a, "click", {"selector": "#inc"}, duration=0.1),
        _act(4, 3, a, "click", {"selector": "#inc"}, duration=0.2),
        _act(5, 4, a, "click", {"selector": "#missing"}, status=400, duration=0.3),
        _x(6, 5, "GET", f"/v1/sessions/{a}", resp=_session_json(a, "active", None), sid=a),
        _x(7, 70, "DELETE", f"/v1/sessions/{a}", resp=_session_json(a, "closed", 2), sid=a),
        _x(8, 71, "POST", "/v1/sessions", b"{}", 201, _session_json(b, "active", None), sid=b),
        _x(
            9,
            72,
            "GET",
            "/v1/sessions/sess_nope",
            status=404,
            resp=b'{"success":false,"error":"Session not found"}',
            sid="sess_nope",
        ),
        _x(
            10,
            73,
            "GET",
            "/user_123/<redacted>/image",
            resp=PNG,
            ctype="image/png",
            query="url=https%3A%2F%2Fexample.com%2F",
        ),
        _x(
            11,
            74,
            "GET",
            "/v1/sessions/sess_bbbb",
            status=502,
            sid=b,
            resp=b'{"success":false,"error":"upstream down"}',
            error="upstream down",
        ),
    ]


def write(path: Path, items: list[Interaction]) -> Path:
    with CassetteWriter(path, upstream="https://api.capture.page") as writer:
        for item in items:
            writer.append(item)
    return path


@pytest.fixture
def cli() -> click.Group:
    return commands


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def recorded(tmp_path) -> Path:
    return write(tmp_path / "flow.cassette", flow())


def test_inspect_table_lists_sessions_and_exchanges(cli, runner, recorded):
    result = runner.invoke(cli, ["inspect", str(recorded)])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "session sess_aaaa  user user_123" in out and "session sess_bbbb" in out
    assert "goto https://example.com/" in out and "click #missing" in out
    assert "500.0ms" in out and "/user_123/<redacted>/image" in out


def test_inspect_json_and_several_files(cli, runner, recorded, tmp_path):
    other = write(tmp_path / "other.cassette", flow()[:2])
    result = runner.invoke(cli, ["inspect", "--json", str(recorded), str(other)])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [len(c["sessions"]) for c in data["cassettes"]] == [4, 1]
    first = data["cassettes"][0]["sessions"][0]
    assert first["sessionId"] == "sess_aaaa"
    assert first["exchanges"][1]["argument"] == "https://example.com/"


def test_export_json_has_interactions_with_text_and_base64_bodies(cli, runner, recorded):
    result = runner.invoke(cli, ["export", "--format", "json", str(recorded)])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert len(data["interactions"]) == 11
    image = data["interactions"][9]["response"]["body"]
    assert image["encoding"] == "base64" and base64.b64decode(image["text"]) == PNG
    assert data["interactions"][1]["request"]["body"]["encoding"] == "utf-8"


def test_export_har_is_har_1_2(cli, runner, recorded, tmp_path):
    out = tmp_path / "flow.har"
    result = runner.invoke(cli, ["export", "--format", "har", "-o", str(out), str(recorded)])
    assert result.exit_code == 0, result.output
    log = json.loads(out.read_text())["log"]
    assert log["version"] == "1.2" and log["creator"]["name"] == "capture-replay"
    assert len(log["entries"]) == 11
    for entry in log["entries"]:
        assert {
            "startedDateTime",
            "time",
            "request",
            "response",
            "cache",
            "timings",
        } <= entry.keys()
        req, resp = entry["request"], entry["response"]
        assert {
            "method",
            "url",
            "httpVersion",
            "cookies",
            "headers",
            "queryString",
            "headersSize",
            "bodySize",
        } <= req.keys()
        assert req["url"].startswith("https://api.capture.page/") and "<" not in req["url"]
        assert {
            "status",
            "statusText",
            "httpVersion",
            "cookies",
            "headers",
            "content",
            "redirectURL",
            "headersSize",
            "bodySize",
        } <= resp.keys()
        assert {"size", "mimeType"} <= resp["content"].keys()
        assert all(entry["timings"][k] >= 0 for k in ("send", "wait", "receive"))
        assert entry["startedDateTime"].endswith("Z")
    image = log["entries"][9]["response"]["content"]
    assert image["encoding"] == "base64" and base64.b64decode(image["text"]) == PNG
    assert log["entries"][9]["request"]["queryString"] == [
        {"name": "url", "value": "https://example.com/"}
    ]
    assert "encoding" not in log["entries"][1]["response"]["content"]


def test_audit_credits_latency_and_errors(cli, runner, recorded):
    result = runner.invoke(cli, ["audit", "--json", str(recorded)])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    sessions = {s["session_id"]: s for s in data["sessions"]}
    a, b = sessions["sess_aaaa"], sessions["sess_bbbb"]
    assert (a["credits"], a["credits_source"], a["status"]) == (2, "billed", "closed")
    assert (b["credits"], b["credits_source"]) == (5, "computed")  # never closed: to expiry, 300 s
    assert b["server_errors"] == 1
    # a 404 for an id no create answered is no session: counted apart, never billed
    assert "sess_nope" not in sessions and data["uncreatedExchanges"] == 1
    click_stats = next(x for x in a["actions"] if x["type"] == "click")
    assert (click_stats["count"], click_stats["errors"]) == (3, 1)
    assert (click_stats["p50_ms"], click_stats["p95_ms"]) == pytest.approx((200.0, 300.0))
    (user,) = data["users"]
    assert user["user"] == "user_123" and user["credits"] == 2 + 5
    assert data["findings"] == []
    text = runner.invoke(cli, ["audit", str(recorded)])
    assert text.exit_code == 0 and "secret scan: clean" in text.stdout


def test_audit_exits_non_zero_on_a_planted_secret(cli, runner, tmp_path, recorded):
    token = base64.b64encode(b"user_123:plain-secret").decode()
    leaked = _x(
        1, 0, "GET", "/v1/sessions/s", headers=(("Authorization", f"Bearer {token}"),), sid="s"
    )
    planted = write(tmp_path / "leak.cassette", [leaked])
    result = runner.invoke(cli, ["audit", str(recorded), str(planted)])
    assert result.exit_code == SECRETS_FOUND_EXIT
    assert "Bearer token" in result.stdout and "request header Authorization" in result.stdout
    assert token not in result.stdout + result.stderr  # findings never echo the secret
    literal = runner.invoke(cli, ["audit", "--secret", "example.com", str(recorded)])
    assert literal.exit_code == SECRETS_FOUND_EXIT


def test_repair_cuts_a_torn_tail(cli, runner, recorded):
    data = recorded.read_bytes()
    recorded.write_bytes(data[:-7])
    torn = runner.invoke(cli, ["inspect", str(recorded)])
    assert torn.exit_code == 1 and "repair" in torn.stderr and "sess_aaaa" in torn.stdout
    result = runner.invoke(cli, ["repair", str(recorded)])
    assert result.exit_code == 0 and "kept 10 records" in result.stdout
    assert runner.invoke(cli, ["inspect", str(recorded)]).exit_code == 0
    again = runner.invoke(cli, ["repair", str(recorded)])
    assert "nothing to repair (10 records)" in again.stdout


@pytest.mark.parametrize(
    "command", [["inspect"], ["export"], ["export", "--format", "har"], ["audit"], ["repair"]]
)
@pytest.mark.parametrize("kind", ["png", "newer", "truncated-header", "missing"])
def test_bad_input_gives_one_line_and_exit_1(cli, runner, tmp_path, command, kind):
    path = tmp_path / "bad.cassette"
    if kind == "png":
        path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    elif kind == "newer":
        path.write_bytes(
            msgpack.packb(
                {
                    "format": FORMAT_NAME,
                    "version": 99,
                    "created_at": 0.0,
                    "tool_version": "9",
                    "upstream": "u",
                }
            )
        )
    elif kind == "truncated-header":
        path.write_bytes(
            msgpack.packb({"format": FORMAT_NAME, "version": 2, "created_at": 0.0})[:-4]
        )
    result = runner.invoke(cli, [*command, str(path)])
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and str(path) in lines[0]
    assert (
        "Traceback" not in result.output
        and result.exception is None
        or isinstance(result.exception, SystemExit)
    )
    if kind == "newer":
        assert "upgrade capture-replay" in lines[0]


def test_record_refuses_existing_cassette(runner, recorded):
    from mock_server.cli import main

    result = runner.invoke(main, ["record", "--cassette", str(recorded), "--port", "0"])
    assert result.exit_code == 1 and "--append or --overwrite" in result.stderr
    both = runner.invoke(main, ["record", "--cassette", str(recorded), "--append", "--overwrite"])
    assert both.exit_code == 2


def test_commands_are_registered_on_the_real_cli(runner, recorded):
    from mock_server.cli import main

    assert {"record", "inspect", "export", "audit", "repair"} <= set(main.commands)
    result = runner.invoke(main, ["inspect", "--json", str(recorded)])
    assert result.exit_code == 0 and json.loads(result.stdout)["cassettes"]


def _damage_record(path: Path, seq: int) -> tuple[int, int]:
    """Flip one byte in the middle of record `seq`; its (offset, length)."""
    from recorder.cassette import open_cassette

    with open_cassette(path) as cassette:
        entry = next(e for e in cassette.entries if e.seq == seq)
    data = bytearray(path.read_bytes())
    data[entry.offset + entry.length // 2] ^= 0x01
    path.write_bytes(bytes(data))
    return entry.offset, entry.length


@pytest.mark.parametrize("command", [["inspect"], ["inspect", "--json"], ["export"], ["audit"]])
def test_reading_tools_report_damage_in_the_middle_loudly_after_every_whole_record(
    cli, runner, recorded, command
):
    offset, length = _damage_record(recorded, 3)
    result = runner.invoke(cli, [*command, str(recorded)])
    assert result.exit_code == 1, result.output
    expected = f"{length} bytes at byte {offset} between records #2 and #4"
    assert expected in result.stderr and "10 whole records readable" in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith(f"Error: {recorded}: damaged: ")
    assert "capture-replay repair" in result.stderr and "Traceback" not in result.output
    if command == ["export"]:
        seqs = [x["seq"] for x in json.loads(result.stdout)["interactions"]]
        assert seqs == [1, 2, *range(4, 12)]
    if command == ["inspect", "--json"]:
        (damage,) = json.loads(result.stdout)["cassettes"][0]["damage"]
        assert (damage["afterSeq"], damage["beforeSeq"], damage["size"]) == (2, 4, length)
    if command == ["inspect"]:
        assert "sess_bbbb" in result.stdout  # the records after the damage are shown


def test_repair_keeps_the_records_after_the_damage_and_a_backup(cli, runner, recorded):
    original = recorded.read_bytes()
    _damage_record(recorded, 3)
    damaged = recorded.read_bytes()
    result = runner.invoke(cli, ["repair", str(recorded)])
    assert result.exit_code == 0, result.output
    assert "kept 10 records" in result.stdout and "between records #2 and #4" in result.stdout
    assert f"kept as {recorded}.bak" in result.stdout
    assert Path(f"{recorded}.bak").read_bytes() == damaged
    assert len(recorded.read_bytes()) < len(original)
    listed = runner.invoke(cli, ["export", str(recorded)])
    assert listed.exit_code == 0, listed.output
    assert [x["seq"] for x in json.loads(listed.stdout)["interactions"]] == [1, 2, *range(4, 12)]
    _damage_record(recorded, 5)
    quiet = runner.invoke(cli, ["repair", "--no-backup", str(recorded)])
    assert quiet.exit_code == 0 and "kept 9 records" in quiet.stdout and ".bak" not in quiet.stdout
    assert not Path(f"{recorded}.bak.1").exists()


@pytest.mark.parametrize(
    "changes",
    [{"start": float("nan")}, {"duration": float("inf")}, {"seq": 2**63}, {"status": "x"}],
    ids=repr,
)
@pytest.mark.parametrize(
    "command", [["inspect"], ["inspect", "--json"], ["export"], ["export", "--format", "har"]]
)
def test_a_record_with_nan_infinity_or_a_huge_or_wrong_index_is_damage(
    cli, runner, tmp_path, changes, command
):
    from recorder.codec import encode_interaction, encode_record, frame

    path = write(tmp_path / "odd.cassette", flow()[:2])
    record = msgpack.unpackb(encode_record(flow()[2]), raw=False)
    record[0].update(changes)
    with open(path, "ab") as f:
        f.write(frame(msgpack.packb(record, use_bin_type=True)))
        f.write(encode_interaction(flow()[3]))
    result = runner.invoke(cli, [*command, str(path)])
    assert (
        result.exit_code == 1
        and result.exception is None
        or isinstance(result.exception, SystemExit)
    ), result.exception
    assert "between records #2 and #4" in result.stderr and "invalid" in result.stderr
    assert "Traceback" not in result.output

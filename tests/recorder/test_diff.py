"""`recorder.diff` on synthetic cassettes: pairing as replay pairs, time fields and session ids
ignored, answers compared field by field, screenshots compared as pictures; and `capture-replay
diff` through click (exit codes, --json, bad input)."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image, ImageDraw

from recorder.cassette import CassetteWriter, open_cassette
from recorder.cli_guard import commands
from recorder.diff import compare_images, diff_cassettes
from tests.recorder.builders import exchange

JSON = (("Content-Type", "application/json"),)


def png(color: str = "white", box: str | None = None, size: tuple[int, int] = (200, 120)) -> bytes:
    image = Image.new("RGB", size, color)
    if box is not None:
        ImageDraw.Draw(image).rectangle((20, 20, 120, 80), fill=box)
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def _x(seq, at, method, path, req, status, resp, **kwargs):
    """An exchange as the diff tests use them: request and answer always given, 0.2 s each."""
    kwargs.setdefault("duration", 0.2)
    return exchange(seq, at, method, path, req, status, resp, **kwargs)


def _j(data) -> bytes:
    return json.dumps(data).encode()


def write_flow(
    path: Path,
    *,
    sid: str = "sess_aaaa",
    title: str = "Counter",
    shot: bytes | None = None,
    at: float = 0.0,
    billed: int = 1,
    extra_click: bool = False,
    goto_status: int = 200,
    sessions: int = 1,
) -> Path:
    """A recorded flow per session: create, goto, screenshot, click with an attached screenshot,
    get, delete; then a one-shot image URL. Times and ids vary with `sid` and `at`."""
    shot = shot or png()
    items = []
    seq = 0

    def add(*args, **kwargs):
        nonlocal seq
        seq += 1
        items.append(_x(seq, at + seq, *args, **kwargs))

    for n in range(sessions):
        s = f"{sid}{n}" if sessions > 1 else sid
        session = {
            "id": s,
            "status": "active",
            "expiresAt": f"2026-01-01T00:0{n}:{int(at) % 60:02}Z",
            "maxTtlSeconds": 300,
        }
        add(
            "POST",
            "/v1/sessions",
            _j({"maxTtlSeconds": 300}),
            201,
            _j({"success": True, "session": session}),
            sid=s,
        )
        act = f"/v1/sessions/{s}/actions"
        add(
            "POST",
            act,
            _j({"type": "goto", "payload": {"url": "http://127.0.0.1:9/counter"}}),
            goto_status,
            _j({"success": goto_status < 400, "title": title, "expiresInSeconds": 299 - at}),
            sid=s,
            action="goto",
        )
        add(
            "POST",
            act,
            _j({"type": "screenshot", "payload": {}}),
            200,
            _j(
                {
                    "success": True,
                    "contentType": "image/png",
                    "bodyBase64": base64.b64encode(shot).decode(),
                    "expiresInSeconds": 280,
                }
            ),
            sid=s,
            action="screenshot",
        )
        clicks = 2 if extra_click else 1
        for _ in range(clicks):
            add(
                "POST",
                act,
                _j({"type": "click", "payload": {"selector": "#inc", "screenshot": True}}),
                200,
                _j(
                    {
                        "success": True,
                        "screenshot": {
                            "contentType": "image/png",
                            "bodyBase64": base64.b64encode(shot).decode(),
                        },
                    }
                ),
                sid=s,
                action="click",
            )
        add(
            "GET",
            f"/v1/sessions/{s}",
            b"",
            200,
            _j(
                {"success": True, "session": {**session, "startedAt": f"x{at}", "billedCredits": 0}}
            ),
            sid=s,
        )
        add(
            "DELETE",
            f"/v1/sessions/{s}",
            b"",
            200,
            _j(
                {
                    "success": True,
                    "session": {
                        **session,
                        "status": "closed",
                        "billedCredits": billed,
                        "durationSeconds": 30 + at,
                        "closedAt": f"y{at}",
                    },
                }
            ),
            sid=s,
        )
    add(
        "GET",
        "/user_123/<redacted>/image",
        b"",
        200,
        shot,
        query="url=http%3A%2F%2Fexample.test",
        ctype="image/png",
    )
    with CassetteWriter(path, upstream="http://upstream.test") as writer:
        for item in items:
            writer.append(item)
    return path


def _diff(a: Path, b: Path, **kw):
    with open_cassette(a) as ca, open_cassette(b) as cb:
        return diff_cassettes(ca, cb, **kw)


def test_diff_of_a_cassette_with_itself_finds_no_drift(tmp_path):
    a = write_flow(tmp_path / "a.cassette")
    result = _diff(a, a)
    assert not result.drift and result.unchanged == 7
    assert result.credits_a == result.credits_b == 1


def test_diff_ignores_time_fields_and_maps_session_ids_by_create_order(tmp_path):
    a = write_flow(tmp_path / "a.cassette", sid="sess_one", at=0, sessions=2)
    b = write_flow(tmp_path / "b.cassette", sid="sess_two", at=17, billed=3, sessions=2)
    result = _diff(a, b)
    assert result.to_json()["changed"] == [] and not result.drift, result.to_text()
    assert (result.credits_a, result.credits_b) == (2, 6)  # reported, not drift


def test_diff_reports_changed_fields_added_exchanges_and_screenshot_drift(tmp_path):
    a = write_flow(tmp_path / "a.cassette", shot=png("white", box="red"))
    b = write_flow(
        tmp_path / "b.cassette",
        sid="sess_b",
        title="Counter v2",
        shot=png("white", box="blue"),
        extra_click=True,
    )
    result = _diff(a, b)
    assert result.drift
    assert [d.request for d in result.added] == [
        "POST /v1/sessions/<session 1>/actions (click #inc)"
    ]
    assert result.removed == ()
    changed = {d.request: d for d in result.changed}
    goto = changed["POST /v1/sessions/<session 1>/actions (goto http://127.0.0.1:9/counter)"]
    assert goto.differences == ('body.title: "Counter" -> "Counter v2"',)
    shot = changed["POST /v1/sessions/<session 1>/actions (screenshot)"]
    assert shot.differences == () and shot.images[0].where == "body"
    assert shot.images[0].changed_share == round(101 * 61 / 24000, 6) and shot.images[0].drift
    click_diff = changed["POST /v1/sessions/<session 1>/actions (click #inc)"]
    assert click_diff.images[0].where == "body.screenshot"
    image = changed["GET /user_123/*/image (http://example.test)"]
    assert image.images[0].drift and image.differences == ()


def test_diff_threshold_tolerates_small_screenshot_changes(tmp_path):
    small = Image.new("RGB", (200, 120), "white")
    ImageDraw.Draw(small).point((5, 5), fill="black")
    buf = io.BytesIO()
    small.save(buf, "PNG")
    tiny = compare_images(png(), buf.getvalue(), "body", threshold=0.001)
    assert tiny is not None and not tiny.drift and tiny.changed_share == round(1 / 24000, 6)
    resized = compare_images(png(), png(size=(100, 60)), "body", threshold=0.5)
    assert resized is not None and resized.drift and resized.changed_share == 1.0


def test_diff_reports_status_changes_and_removed_exchanges(tmp_path):
    a = write_flow(tmp_path / "a.cassette", extra_click=True)
    b = write_flow(tmp_path / "b.cassette", goto_status=400)
    result = _diff(a, b)
    assert [d.a for d in result.removed] == ["a.cassette#5"]
    goto = next(d for d in result.changed if "goto" in d.request)
    assert "status: 200 -> 400" in goto.differences
    assert "body.success: true -> false" in goto.differences


def _cli():
    group = commands
    return group


def test_diff_command_exit_codes_and_json(tmp_path):
    a = write_flow(tmp_path / "a.cassette")
    b = write_flow(tmp_path / "b.cassette", title="Other")
    runner = CliRunner()
    same = runner.invoke(_cli(), ["diff", str(a), str(a)])
    assert same.exit_code == 0 and same.output.strip().endswith("no drift")
    drift = runner.invoke(_cli(), ["diff", str(a), str(b), "--json"])
    assert drift.exit_code == 1, drift.output
    data = json.loads(drift.output)
    assert data["drift"] is True and data["changed"][0]["differences"] == [
        'body.title: "Counter" -> "Other"'
    ]
    text = runner.invoke(_cli(), ["diff", str(a), str(b)])
    assert text.exit_code == 1 and 'body.title: "Counter" -> "Other"' in text.output


def test_diff_command_rejects_bad_input_with_one_line(tmp_path):
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"not a cassette at all")
    a = write_flow(tmp_path / "a.cassette")
    result = CliRunner().invoke(_cli(), ["diff", str(a), str(junk)])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [f"Error: {junk}: not a capture-replay cassette"]
    usage = CliRunner().invoke(_cli(), ["diff", str(a)])
    assert usage.exit_code == 2


@pytest.mark.browser
async def test_diff_of_real_recordings_finds_the_changed_fixture_page(pages, monkeypatch, tmp_path):
    from mock_server.cli import main
    from tests.emulator import RunningEmulator, emulator_config
    from tests.mock_server.test_verify import PAGE_V1, PAGE_V2, record_drift_flow
    from tests.pages import EXTRA_PAGES

    first, again, changed = (tmp_path / f"{n}.cassette" for n in ("first", "again", "changed"))
    live = await RunningEmulator(emulator_config()).start()
    try:
        monkeypatch.setitem(EXTRA_PAGES, "drift", PAGE_V1)
        await record_drift_flow(live.url, pages.url("/drift"), first)
        await record_drift_flow(live.url, pages.url("/drift"), again)
        monkeypatch.setitem(EXTRA_PAGES, "drift", PAGE_V2)
        await record_drift_flow(live.url, pages.url("/drift"), changed)
    finally:
        await live.stop()

    assert not _diff(first, first).drift
    rerun = _diff(first, again)  # new session ids, new times: still no drift
    assert not rerun.drift and rerun.unchanged == 9, rerun.to_text()
    result = _diff(first, changed)
    assert result.drift and not result.added and not result.removed
    shots = [img for d in result.changed for img in d.images if img.drift]
    assert {img.where for img in shots} == {"body", "body.screenshot"}
    assert any(
        d.request.endswith("(screenshot)") and d.images[0].changed_share > 0.01
        for d in result.changed
    )

    runner = CliRunner()
    assert runner.invoke(main, ["diff", str(first), str(again)]).exit_code == 0
    out = runner.invoke(main, ["diff", str(first), str(changed)])
    assert (
        out.exit_code == 1 and "of pixels differ" in out.output and out.output.endswith("drift\n")
    )

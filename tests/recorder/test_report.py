"""`recorder.report` on synthetic cassettes: one self-contained HTML file with lanes, thumbnails,
credits and errors; and `capture-replay report` through click (progress, output, bad input)."""

from __future__ import annotations

import base64
import io
import random
import re

from click.testing import CliRunner
from PIL import Image

from recorder.cassette import open_cassette
from recorder.cli_guard import commands
from recorder.report import FULL_MAX_BYTES, THUMB_WIDTH, make_shot, render_report
from tests.recorder.test_diff import png, write_flow


def _render(*paths, progress=None) -> str:
    cassettes = [open_cassette(p) for p in paths]
    try:
        return render_report(cassettes, on_progress=progress)
    finally:
        for c in cassettes:
            c.close()


def test_report_is_self_contained_with_lanes_thumbnails_and_credits(tmp_path):
    big = png("white", box="red", size=(1280, 2400))
    path = write_flow(tmp_path / "flow.cassette", shot=big, sessions=2, billed=2, goto_status=400)
    calls = []
    page = _render(path, progress=lambda done, total: calls.append((done, total)))
    assert calls[-1] == (13, 13) and len(calls) == 13
    # No external resource: every src/href is a data URI or an in-page anchor.
    assert not re.search(r'(src|href)="(?!data:|#)', page)
    assert "<script src" not in page and "<link" not in page
    assert page.count('class="lane"') == 3  # two sessions and the one-shot lane
    assert "one-shot &amp; other requests" in page
    assert "2 sessions" in page and "13 exchanges" in page and "4 credits" in page
    assert page.count('<tr id="') == 13 and page.count('class="ex failed"') == 2
    # screenshot answer + click attachment per session, plus the one-shot image
    thumbs = re.findall(
        r'<img class="thumb" src="data:image/jpeg;base64,([^"]+)" '
        r'data-full="data:image/png;base64,([^"]+)"',
        page,
    )
    assert len(thumbs) == 5
    thumb = Image.open(io.BytesIO(base64.b64decode(thumbs[0][0])))
    assert thumb.width <= THUMB_WIDTH and thumb.height <= 640
    assert base64.b64decode(thumbs[0][1]) == big
    # Answers are shown without their base64 payloads.
    assert f"&lt;{len(big)} bytes image/png&gt;" in page
    for action in ("goto", "screenshot", "click"):
        assert f'<option value="{action}">{action}</option>' in page


def test_report_command_writes_the_file_and_reports_progress(tmp_path):
    path = write_flow(tmp_path / "flow.cassette")
    out = tmp_path / "report.html"
    group = commands
    result = CliRunner().invoke(group, ["report", str(path), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_text(encoding="utf-8").startswith("<!doctype html>")
    assert "reading exchanges 7/7" in result.output  # not a TTY: counter lines on stderr
    assert f"wrote {out}" in result.output


def test_report_command_rejects_a_file_that_is_not_a_cassette(tmp_path):
    junk = tmp_path / "junk.cassette"
    junk.write_bytes(b"")
    group = commands
    result = CliRunner().invoke(group, ["report", str(junk), "-o", str(tmp_path / "r.html")])
    assert result.exit_code == 1
    assert result.output.strip() == f"Error: {junk}: empty file, not a capture-replay cassette"
    assert not (tmp_path / "r.html").exists()


def test_report_embeds_a_very_large_picture_re_encoded():
    noise = Image.frombytes("RGB", (1000, 1000), random.Random(3).randbytes(3_000_000))
    buffer = io.BytesIO()
    noise.save(buffer, "PNG")
    assert len(buffer.getvalue()) > FULL_MAX_BYTES
    shot = make_shot("body", "image/png", buffer.getvalue())
    assert shot is not None and (shot.width, shot.height) == (1000, 1000)
    assert shot.full_uri.startswith("data:image/jpeg;base64,")
    small = make_shot("body", "image/png", png())
    assert small is not None and small.full_uri.startswith("data:image/png;base64,")
    assert make_shot("body", "image/png", b"not an image") is None


def _torn_and_damaged(tmp_path):
    from recorder.cassette import open_cassette as open_

    torn = write_flow(tmp_path / "torn.cassette")
    torn.write_bytes(torn.read_bytes()[:-9])
    damaged = write_flow(tmp_path / "damaged.cassette")
    with open_(damaged) as cassette:
        entry = cassette.entries[2]
    data = bytearray(damaged.read_bytes())
    data[entry.offset + 30] ^= 0xFF
    damaged.write_bytes(bytes(data))
    return torn, damaged


def test_report_exits_1_on_a_torn_or_damaged_cassette_unless_told_to_tolerate(tmp_path):
    torn, damaged = _torn_and_damaged(tmp_path)
    out = tmp_path / "r.html"
    for path, words in ((torn, "truncated cassette"), (damaged, "between records #2 and #4")):
        result = CliRunner().invoke(commands, ["report", str(path), "-o", str(out)])
        assert result.exit_code == 1, result.output
        assert words in result.stderr and "capture-replay repair" in result.stderr
        assert out.exists()  # the whole records are written all the same
        out.unlink()
        tolerated = CliRunner().invoke(
            commands, ["report", "--tolerate-damage", str(path), "-o", str(out)]
        )
        assert tolerated.exit_code == 0, tolerated.output
        assert "warning:" in tolerated.stderr


def test_report_shows_a_record_with_nan_in_its_index_as_damage_not_a_traceback(tmp_path):
    import msgpack

    from recorder.codec import encode_record, frame

    path = write_flow(tmp_path / "flow.cassette")
    with open_cassette(path) as cassette:
        item = cassette.load(cassette.entries[0])
    record = msgpack.unpackb(encode_record(item), raw=False)
    record[0]["start"] = float("nan")
    with open(path, "ab") as f:
        f.write(frame(msgpack.packb(record, use_bin_type=True)))
    out = tmp_path / "r.html"
    result = CliRunner().invoke(commands, ["report", str(path), "-o", str(out)])
    assert result.exit_code == 1 and "invalid 'start'" in result.stderr, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_diff_exits_1_naming_the_damage(tmp_path):
    _, damaged = _torn_and_damaged(tmp_path)
    other = write_flow(tmp_path / "other.cassette")
    result = CliRunner().invoke(commands, ["diff", str(other), str(damaged)])
    assert result.exit_code == 1
    assert "between records #2 and #4" in result.stderr.strip().splitlines()[-1]

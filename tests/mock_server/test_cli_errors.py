"""`capture-replay serve` and `record` failing to start, as real processes: one line on stderr,
exit code 1, no traceback; "cannot listen" only when binding failed; a cassette `record` created
for a start-up that failed is removed, one that existed before is never touched."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from recorder.cassette import CassetteWriter
from tests.recorder.builders import exchange

ROOT = Path(__file__).resolve().parents[2]


def capture_replay(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mock_server.cli", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ")
    return lines[0]


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port some other socket is listening on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def write_cassette(path: Path) -> Path:
    with CassetteWriter(path, upstream="https://api.capture.page") as writer:
        writer.append(exchange(1, 0, "GET", "/v1/sessions/sess_a", sid="sess_a"))
    return path


def test_record_into_a_missing_directory_names_it(tmp_path):
    missing = tmp_path / "missing-dir"
    line = one_line(
        capture_replay("record", "--cassette", str(missing / "x.msgpack"), "--port", "0")
    )
    assert "cannot listen" not in line
    assert f"directory {missing} does not exist" in line
    assert not missing.exists()


def test_record_reports_a_file_error_as_one_not_as_listening(tmp_path):
    cassette = tmp_path / ("x" * 300 + ".msgpack")
    line = one_line(capture_replay("record", "--cassette", str(cassette), "--port", "0"))
    assert "cannot listen" not in line
    assert line.endswith(f"{cassette}: File name too long")


def test_record_refuses_an_upstream_that_is_not_http_and_leaves_no_file(tmp_path):
    cassette = tmp_path / "x.msgpack"
    args = ("record", "--cassette", str(cassette), "--port", "0")
    line = one_line(capture_replay(*args, "--upstream", "ftp://example.com/"))
    assert "http(s) URL" in line and "ftp://example.com/" in line
    assert not cassette.exists()  # so the next plain `record` does not find it "already exists"


def test_record_that_cannot_listen_says_so_and_removes_only_the_cassette_it_created(
    tmp_path, busy_port
):
    cassette = tmp_path / "new.msgpack"
    args = ("record", "--port", str(busy_port))
    line = one_line(capture_replay(*args, "--cassette", str(cassette)))
    assert line == f"Error: cannot listen on 127.0.0.1:{busy_port}: Address already in use"
    assert not cassette.exists()

    existing = write_cassette(tmp_path / "existing.msgpack")
    before = existing.read_bytes()
    line = one_line(capture_replay(*args, "--cassette", str(existing), "--append"))
    assert line == f"Error: cannot listen on 127.0.0.1:{busy_port}: Address already in use"
    assert existing.read_bytes() == before


def test_serve_that_cannot_listen_says_so(tmp_path, busy_port):
    cassette = write_cassette(tmp_path / "flow.msgpack")
    line = one_line(capture_replay("serve", "--cassette", str(cassette), "--port", str(busy_port)))
    assert line == f"Error: cannot listen on 127.0.0.1:{busy_port}: Address already in use"


def test_record_names_the_flags_and_commands_that_help(tmp_path):
    """Library errors name no flag; the CLI's one mapping adds the hint."""
    existing = write_cassette(tmp_path / "flow.msgpack")
    line = one_line(capture_replay("record", "--cassette", str(existing), "--port", "0"))
    assert line == f"Error: {existing}: already exists; pass --append or --overwrite"
    existing.write_bytes(existing.read_bytes()[:-5])  # a torn tail
    args = ("record", "--cassette", str(existing), "--port", "0", "--append")
    line = one_line(capture_replay(*args))
    assert "ends in a torn record" in line and f"`capture-replay repair {existing}`" in line

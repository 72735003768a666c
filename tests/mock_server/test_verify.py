"""`verify`: a flow recorded through the recording proxy in front of the live emulator is re-run
against the emulator: no drift while the fixture page is unchanged, drift (screenshot included)
once it changed; a stop request ends the run cleanly with a partial report; the token is never
printed. Also `capture-replay verify` through click, in a thread (it runs its own event loop)."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path
from urllib.parse import quote

import pytest
from aiohttp import web
from click.testing import CliRunner

from mock_server.cli import main
from mock_server.serving import listen_on_loopback
from recorder.cassette import open_cassette
from recorder.errors import VerifyError
from recorder.verify import verify_cassette
from tests.emulator import ApiClient, RunningEmulator, emulator_config
from tests.pages import EXTRA_PAGES
from tests.recorder.test_diff import write_flow
from tests.replay import recording_proxy

PAGE_V1 = """<!doctype html><html><head><meta charset="utf-8"><title>Drift page</title></head>
<body style="margin:0;background:#fff"><h1 id="t">Version one</h1>
<div id="box" style="width:300px;height:200px;background:#c00"></div>
<button id="b" onclick="this.textContent='clicked'">press</button></body></html>"""
PAGE_V2 = PAGE_V1.replace("Version one", "Version two").replace("#c00", "#00c")


async def record_drift_flow(emulator_url: str, page_url: str, cassette: Path) -> None:
    """create, goto, screenshot, click with an attached screenshot, query, an invalid action,
    get, close, and a one-shot image: through the recording proxy in front of `emulator_url`."""
    async with recording_proxy(emulator_url, cassette) as proxy_url, ApiClient(proxy_url) as client:
        await run_drift_flow(client, page_url)


async def run_drift_flow(client: ApiClient, page_url: str) -> None:
    sid = (await client.create({"maxTtlSeconds": 300}))["id"]
    await client.act(sid, "goto", {"url": page_url})
    await client.act(sid, "screenshot", {})
    await client.act(sid, "click", {"selector": "#b", "screenshot": True})
    await client.act(sid, "query", {"selector": "#t"})
    await client.act(sid, "click", {"selector": "#missing", "timeoutMs": 200}, expect=400)
    await client.get(sid)
    await client.close(sid)
    assert client.http is not None
    async with client.http.get(
        f"{client.url}/user_123/hash/image?url={quote(page_url, safe='')}"
    ) as r:
        assert r.status == 200 and r.content_type.startswith("image/")
        await r.read()


@pytest.fixture
async def drift_page(pages, monkeypatch):
    monkeypatch.setitem(EXTRA_PAGES, "drift", PAGE_V1)
    return pages.url("/drift")


@pytest.fixture
async def live_and_recording(drift_page, tmp_path):
    live = await RunningEmulator(emulator_config()).start()
    cassette = tmp_path / "drift.cassette"
    try:
        await record_drift_flow(live.url, drift_page, cassette)
        yield live, cassette
    finally:
        await live.stop()


@pytest.mark.browser
async def test_verify_finds_no_drift_stops_when_asked_then_finds_screenshot_drift(
    live_and_recording, monkeypatch
):
    live, path = live_and_recording
    seen = []
    with open_cassette(path) as cassette:
        result = await verify_cassette(
            cassette, live.url, on_progress=lambda done, total: seen.append((done, total))
        )
    assert not result.report.drift, result.report.to_text()
    assert (result.sent, result.total, result.interrupted) == (9, 9, False)
    assert result.report.unchanged == 9 and seen[-1] == (9, 9)
    assert result.closed_leftovers == 0

    # A stop request (Ctrl-C in the CLI) ends the run after the exchange in flight; the session
    # the run opened is closed so it does not keep billing.
    stop = asyncio.Event()

    def progress(done: int, total: int) -> None:
        if done == 3:  # after create, goto, screenshot: the session is still open
            stop.set()

    with open_cassette(path) as cassette:
        partial = await verify_cassette(cassette, live.url, stop=stop, on_progress=progress)
    assert partial.interrupted and (partial.sent, partial.total) == (3, 9)
    assert not partial.report.drift and partial.report.unchanged == 3
    assert partial.closed_leftovers == 1
    status, sessions = await live.call("GET", "/__admin/sessions", token=None)
    assert status == 200 and all(s["status"] != "active" for s in sessions["sessions"]), sessions

    monkeypatch.setitem(EXTRA_PAGES, "drift", PAGE_V2)
    # The emulator caches one-shots as Capture does; empty it so the one-shot shows the new page.
    assert (await live.call("DELETE", "/__admin/oneshot-cache", token=None))[0] == 200
    with open_cassette(path) as cassette:
        drifted = await verify_cassette(cassette, live.url)
    report = drifted.report
    assert report.drift and not report.added and not report.removed
    changed = {d.request.split(" (")[1].split()[0].rstrip(")"): d for d in report.changed}
    assert {"screenshot", "click", "query"} <= set(changed)
    shot = changed["screenshot"]
    assert shot.images and shot.images[0].drift and shot.images[0].changed_share > 0.01
    assert changed["click"].images[0].where == "body.screenshot"
    assert any("Version one" in d and "Version two" in d for d in changed["query"].differences)
    oneshot = next(d for d in report.changed if d.request.startswith("GET /user_123/*/image"))
    assert oneshot.images[0].drift


async def test_verify_needs_a_token_for_a_remote_target(tmp_path):
    path = write_flow(tmp_path / "flow.cassette")
    with open_cassette(path) as cassette, pytest.raises(VerifyError, match="token is needed"):
        await verify_cassette(cassette, "https://api.capture.page")
    with open_cassette(path) as cassette, pytest.raises(VerifyError, match="http"):
        await verify_cassette(cassette, "ftp://127.0.0.1/")


@pytest.mark.browser
async def test_verify_command_exit_codes_and_no_secret_in_output(live_and_recording, monkeypatch):
    live, path = live_and_recording
    token = "dXNlcl8xMjM6dG9wLXNlY3JldC12YWx1ZQ=="  # base64("user_123:top-secret-value")
    runner = CliRunner()
    args = ["verify", str(path), "--against", live.url, "--json"]
    ok = await asyncio.to_thread(runner.invoke, main, args, env={"CAPTURE_REPLAY_TOKEN": token})
    assert ok.exit_code == 0, ok.output
    assert "verifying 9/9" in ok.output
    monkeypatch.setitem(EXTRA_PAGES, "drift", PAGE_V2)
    drift = await asyncio.to_thread(runner.invoke, main, [*args, "--token", f"Bearer {token}"])
    assert drift.exit_code == 1, drift.output
    document = json.loads(drift.output[drift.output.index("{") :])
    assert document["drift"] is True and document["changed"]
    for out in (ok.output, drift.output):
        assert token not in out and "top-secret-value" not in out
    remote = await asyncio.to_thread(
        runner.invoke,
        main,
        ["verify", str(path), "--against", "https://api.capture.page"],
        env={"CAPTURE_REPLAY_TOKEN": ""},
    )
    assert remote.exit_code == 2 and "CAPTURE_REPLAY_TOKEN" in remote.output


class SlowTarget:
    """A Capture-like target on an ephemeral port: creates at once, holds every action until
    `release` is set, closes; records what it received."""

    def __init__(self) -> None:
        self.received: list[tuple[str, str, str]] = []
        self.action_arrived = asyncio.Event()
        self.release = asyncio.Event()
        self.app = web.Application()
        self.app.router.add_route("*", "/{tail:.*}", self.handle)
        self.runner = web.AppRunner(self.app, shutdown_timeout=1.0)
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.received.append(
            (request.method, request.path, request.headers.get("Authorization", ""))
        )
        session = {"id": "sess_live1", "status": "active", "maxTtlSeconds": 300}
        if request.method == "POST" and request.path == "/v1/sessions":
            return web.json_response({"success": True, "session": session}, status=201)
        if request.path.endswith("/actions"):
            self.action_arrived.set()
            await asyncio.wait_for(self.release.wait(), 30)
            return web.json_response({"success": True})
        return web.json_response({"success": True, "session": {**session, "status": "closed"}})

    async def start(self) -> None:
        self.url = await listen_on_loopback(self.runner)

    async def stop(self) -> None:
        self.release.set()
        await self.runner.cleanup()


async def _line_with(stream: asyncio.StreamReader, text: str, seen: list[str]) -> None:
    while True:
        line = (await stream.readline()).decode()
        assert line, f"stream ended before {text!r}: {seen}"
        seen.append(line)
        if text in line:
            return


async def test_verify_command_stops_cleanly_on_ctrl_c(tmp_path):
    path = write_flow(tmp_path / "flow.cassette")
    target = SlowTarget()
    await target.start()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "mock_server.cli",
        "verify",
        str(path),
        "--against",
        target.url,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=Path(__file__).resolve().parents[2],
    )
    err: list[str] = []
    try:
        await asyncio.wait_for(target.action_arrived.wait(), 30)  # the goto is in flight
        proc.send_signal(signal.SIGINT)
        await asyncio.wait_for(_line_with(proc.stderr, "stopping after the exchange", err), 10)
        target.release.set()
        out, rest = await asyncio.wait_for(proc.communicate(), 30)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await target.stop()
    stderr = "".join(err) + rest.decode()
    assert proc.returncode == 130, stderr
    assert "interrupted after 2 of 7 exchanges" in stderr
    assert "closed 1 live session(s) left open" in stderr
    assert "Traceback" not in stderr
    assert out.decode().splitlines()[0].endswith("1 unchanged; credits 0 -> 0")
    # Only create and goto were sent, then the session it opened was closed.
    assert [(m, p) for m, p, _ in target.received] == [
        ("POST", "/v1/sessions"),
        ("POST", "/v1/sessions/sess_live1/actions"),
        ("DELETE", "/v1/sessions/sess_live1"),
    ]
    # No token given, loopback target: base64(recordedUser:local) was sent.
    assert {a for _, _, a in target.received} == {"Bearer dXNlcl8xMjM6bG9jYWw="}


def test_verify_against_an_unreachable_target_exits_2_with_one_line(tmp_path):
    import socket

    from recorder.cli_guard import commands

    cassette = write_flow(tmp_path / "flow.cassette")
    with socket.socket() as s:  # a port nothing listens on once this socket is closed
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    target = f"http://127.0.0.1:{port}"
    result = CliRunner().invoke(commands, ["verify", str(cassette), "--against", target])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith(f"Error: cannot reach the target {target}: "), lines
    assert "drift" not in result.stdout.lower() and "Usage" not in result.stderr
    assert result.stdout == ""


async def test_verify_command_runs_the_whole_records_of_a_damaged_cassette_then_exits_1(tmp_path):
    path = write_flow(tmp_path / "flow.cassette")
    with open_cassette(path) as cassette:
        entry = cassette.entries[3]
    data = bytearray(path.read_bytes())
    data[entry.offset + entry.length // 2] ^= 0x40
    path.write_bytes(bytes(data))
    target = SlowTarget()
    await target.start()
    target.release.set()  # answer actions at once
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "mock_server.cli",
            "verify",
            str(path),
            "--against",
            target.url,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=Path(__file__).resolve().parents[2],
        )
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    finally:
        await target.stop()
    stderr = err.decode()
    assert proc.returncode == 1, stderr
    assert stderr.startswith(f"warning: {path}: damaged: ")
    last = stderr.strip().splitlines()[-1]
    assert last.startswith(f"Error: {path}: damaged: ") and f"records #{entry.seq - 1} and" in last
    assert "Traceback" not in stderr and out  # the report of the whole records was printed
    assert len(target.received) >= 6  # every whole record was re-run

"""`git diff` of a re-recorded cassette shows the changed field as a text line: a real git
repository in a temp dir with the README's two lines (`.gitattributes` and the textconv config),
a cassette recorded through the real recording proxy in front of the emulator (replaying the
counter example, no browser), committed, then re-recorded with the session held longer."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from mock_server.config import Mode
from recorder.cassette import WriteMode
from recorder.proxy import ProxyConfig
from tests.emulator import TOKEN, RunningEmulator, emulator_config
from tests.recorder.conftest import running_proxy

ROOT = Path(__file__).resolve().parents[2]
COUNTER = ROOT / "cassettes" / "examples" / "counter-flow.msgpack"
PAGE = "http://127.0.0.1:8765/counter"
GIT = shutil.which("git")
pytestmark = pytest.mark.skipif(GIT is None, reason="git is not installed")


async def record_flow(emulator: RunningEmulator, cassette: Path, mode: WriteMode, hold: float):
    """Create, goto, two clicks, query, close, through the recording proxy; `hold` seconds of
    the emulator's manual clock pass before the close."""
    config = ProxyConfig(cassette=cassette, upstream=emulator.url, mode=mode)
    headers = {"Authorization": TOKEN}
    async with running_proxy(config) as url, aiohttp.ClientSession(headers=headers) as http:

        async def call(method: str, path: str, body: object = None) -> dict:
            async with http.request(method, url + path, json=body) as resp:
                assert resp.status < 300, await resp.text()
                return await resp.json()

        sid = (await call("POST", "/v1/sessions", {"maxTtlSeconds": 300}))["session"]["id"]
        actions = f"/v1/sessions/{sid}/actions"
        await call("POST", actions, {"type": "goto", "payload": {"url": PAGE}})
        for _ in range(2):
            await call("POST", actions, {"type": "click", "payload": {"selector": "#inc"}})
        await call("POST", actions, {"type": "query", "payload": {"selector": "#count"}})
        await emulator.advance(hold)
        await call("DELETE", f"/v1/sessions/{sid}")
    await emulator.call("POST", "/__admin/reset", {}, token=None)


def git(repo: Path, *args: str) -> str:
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "GIT_CONFIG_NOSYSTEM": "1",
        "HOME": str(repo),
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.test",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.test",
    }
    result = subprocess.run(
        [GIT, *args], cwd=repo, env=env, capture_output=True, text=True, timeout=60, check=True
    )
    return result.stdout


async def test_git_diff_of_a_re_recorded_cassette_shows_the_changed_field(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    (repo / ".gitattributes").write_text("*.msgpack diff=capture-replay\n")
    git(repo, "config", "diff.capture-replay.textconv", "capture-replay textconv")
    cassette = repo / "cassettes" / "counter.msgpack"
    cassette.parent.mkdir()

    emulator = await RunningEmulator(
        emulator_config(mode=Mode.REPLAY, cassettes=(COUNTER,))
    ).start()
    try:
        await record_flow(emulator, cassette, WriteMode.NEW, hold=10)
        git(repo, "add", ".gitattributes", "cassettes/counter.msgpack")
        git(repo, "commit", "-q", "-m", "record")
        await record_flow(emulator, cassette, WriteMode.OVERWRITE, hold=150)
    finally:
        await emulator.stop()

    diff = git(repo, "diff", "--", "cassettes/counter.msgpack")
    assert "Binary files" not in diff
    removed = [x for x in diff.splitlines() if x.startswith("-") and not x.startswith("---")]
    added = [x for x in diff.splitlines() if x.startswith("+") and not x.startswith("+++")]
    assert '-        "billedCredits": 1,' in removed
    assert '+        "billedCredits": 3,' in added
    assert '+        "durationSeconds": 150,' in added
    # only the close answer (and the header's creation time) changed: the rest is context
    assert len(added) == len(removed) <= 8, diff

    # the optional third line: hunk headers name the exchange they are in
    git(repo, "config", "diff.capture-replay.xfuncname", "^#[0-9]+ .*$")
    named = git(repo, "diff", "--", "cassettes/counter.msgpack")
    assert any(
        x.startswith("@@ ") and " @@ #6 DELETE /v1/sessions/sess_" in x for x in named.splitlines()
    )

    plain = git(repo, "diff", "--no-textconv", "--", "cassettes/counter.msgpack")
    assert "Binary files" in plain

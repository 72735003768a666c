"""`capture-replay serve` with the cache, storage and batch options, as a real process: the
options reach the server, a bad value is a usage error, and the default object store is a
temporary folder that exists while the server runs and is gone after it stops."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from mock_server.cli import main
from recorder.contract import sign_body

ROOT = Path(__file__).resolve().parents[2]


def call(url: str, data: bytes | None = None, headers: dict[str, str] | None = None) -> Any:
    request = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_serve_passes_the_cache_storage_and_batch_options_and_removes_its_store(tmp_path):
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    process = subprocess.Popen(
        [
            sys.executable, "-m", "mock_server.cli", "serve", "--port", "0", "--clock", "manual",
            "--oneshot-cache-ttl", "60", "--oneshot-cache-mb", "0.5", "--batch-max", "2",
            "--allow-webhook-host", "hooks.example.test",
        ],
        cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert process.stderr is not None
        line = process.stderr.readline()
        match = re.search(r"on (http://[\d.]+:\d+)", line)
        assert match, line
        base = match.group(1)
        status, cache = call(base + "/__admin/oneshot-cache")
        assert status == 200
        assert (cache["ttlSeconds"], cache["maxBytes"]) == (60, 512 * 1024)
        stores = list(tmp_path.glob("capture-replay-storage-*"))
        assert len(stores) == 1 and stores[0].is_dir()
        body = json.dumps({"data": [{"url": "http://127.0.0.1:1/"}] * 3}).encode()
        headers = {"x-req-signature": sign_body("s", body), "Content-Type": "application/json"}
        status, answer = call(base + "/batch-image/key", body, headers)
        assert status == 400 and "at most 2" in answer["error"]
        body = json.dumps(
            {"data": [{"url": "http://127.0.0.1:1/"}], "notification_uri": "http://10.1.2.3/"}
        ).encode()
        headers["x-req-signature"] = sign_body("s", body)
        status, answer = call(base + "/batch-image/key", body, headers)
        assert status == 400 and "--allow-webhook-host" in answer["error"]
    finally:
        process.terminate()
        process.communicate(timeout=30)
    assert list(tmp_path.glob("capture-replay-storage-*")) == []


@pytest.mark.parametrize(
    "args",
    [
        ["--oneshot-cache-ttl", "-1"],
        ["--oneshot-cache-mb", "0"],
        ["--batch-max", "0"],
        ["--storage-dir", __file__],
    ],
)
def test_bad_values_are_usage_errors(args: list[str]):
    result = CliRunner().invoke(main, ["serve", "--port", "0", *args])
    assert result.exit_code == 2 and args[0] in result.output

"""`capture-replay serve` with the cache, storage and batch options, as a real process: the
options reach the server, a bad value is a usage error, and the default object store is a
temporary folder that exists while the server runs and is gone after it stops."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from mock_server.cli import main
from recorder.contract import sign_body
from tests.serve_process import call_json, serve_process

ROOT = Path(__file__).resolve().parents[2]


def test_serve_passes_the_cache_storage_and_batch_options_and_removes_its_store(tmp_path):
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    options = ["--clock", "manual", "--oneshot-cache-ttl", "60", "--oneshot-cache-mb", "0.5"]
    options += ["--batch-max", "2", "--allow-webhook-host", "hooks.example.test"]
    with serve_process(*options, env=env) as base:
        status, cache = call_json(base + "/__admin/oneshot-cache")
        assert status == 200
        assert (cache["ttlSeconds"], cache["maxBytes"]) == (60, 512 * 1024)
        stores = list(tmp_path.glob("capture-replay-storage-*"))
        assert len(stores) == 1 and stores[0].is_dir()
        body = json.dumps({"data": [{"url": "http://127.0.0.1:1/"}] * 3}).encode()
        headers = {"x-req-signature": sign_body("s", body), "Content-Type": "application/json"}
        status, answer = call_json(base + "/batch-image/key", body, headers)
        assert status == 400 and "at most 2" in answer["error"]
        body = json.dumps(
            {"data": [{"url": "http://127.0.0.1:1/"}], "notification_uri": "http://10.1.2.3/"}
        ).encode()
        headers["x-req-signature"] = sign_body("s", body)
        status, answer = call_json(base + "/batch-image/key", body, headers)
        assert status == 400 and "--allow-webhook-host" in answer["error"]
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

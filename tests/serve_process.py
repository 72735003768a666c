"""`capture-replay serve` as a real process for tests, and a blocking JSON call to it."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


@contextmanager
def serve_process(*options: str, env: dict[str, str] | None = None) -> Iterator[str]:
    """`capture-replay serve --port 0 OPTIONS` in a subprocess; yields its base URL (read from
    the line it prints once listening) and stops it on exit."""
    command = [sys.executable, "-m", "mock_server.cli", "serve", "--port", "0", *options]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stderr is not None
        line = process.stderr.readline()
        match = re.search(r"on (http://[\d.]+:\d+)", line)
        assert match, line
        yield match.group(1)
    finally:
        process.terminate()
        process.communicate(timeout=30)


def call_json(
    url: str, data: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    """GET `url` (POST `data` when given): the status and the JSON answered, errors included."""
    request = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())

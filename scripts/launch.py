"""Start `capture-replay` commands as subprocesses for the benchmarks and example recorder, and
read the URL each prints once listening. Imported by sibling scripts only."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


async def start_command(*args: str, timeout: float = 30) -> tuple[subprocess.Popen[str], str]:
    """Run `capture-replay ARGS...`; return the process and the URL its banner names."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "mock_server.cli", *args],
        cwd=ROOT,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    loop = asyncio.get_running_loop()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = await loop.run_in_executor(None, proc.stderr.readline)
        found = re.search(r"on (http://\S+)", line)
        if found:
            return proc, found.group(1)
        if not line and proc.poll() is not None:
            break
    proc.kill()
    raise SystemExit(f"capture-replay {' '.join(args)} did not start")


async def start_emulator(browser: str) -> tuple[subprocess.Popen[str], str]:
    """The live emulator on a free port with a manual clock (sessions never expire mid-run)."""
    return await start_command("serve", "--port", "0", "--browser", browser, "--clock", "manual")

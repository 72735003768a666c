"""Benchmark: an action through the MCP endpoint (`/mcp/v1`, the official `mcp` client over
Streamable HTTP) against the same action through the REST API, on one `capture-replay serve`.

Both sides drive one session each on the same emulator, the same Chromium and the same local page;
rounds are interleaved (alternating which side goes first) so machine noise hits both alike.
Prints, per action, the medians, the ratio MCP / REST and the milliseconds MCP adds (the median
of each round's difference).

    .venv/bin/python scripts/bench_mcp.py [--rounds 30] [--browser PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from launch import start_emulator  # noqa: E402

from mock_server.browser import find_browser  # noqa: E402
from tests.emulator import TOKEN  # noqa: E402
from tests.mcp_client import call_ok, json_of, mcp_session  # noqa: E402
from tests.pages import PageServer  # noqa: E402

ACTIONS = {"title": {}, "screenshot": {}, "query": {"selector": "a"}}


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--browser", default=os.environ.get("CAPTURE_REPLAY_BROWSER"))
    args = parser.parse_args()
    browser = find_browser(args.browser)
    if browser is None:
        raise SystemExit("no Chromium found: pass --browser or set CAPTURE_REPLAY_BROWSER")
    pages = PageServer()
    await pages.start()
    site = f"http://127.0.0.1:{pages.port}"
    proc, base = await start_emulator(browser)
    headers = {"Authorization": TOKEN}
    try:
        async with aiohttp.ClientSession(headers=headers) as http, mcp_session(base) as mcp:

            async def rest_act(sid: str, kind: str, payload: dict) -> None:
                body = {"type": kind, "payload": payload}
                async with http.post(f"{base}/v1/sessions/{sid}/actions", json=body) as resp:
                    assert resp.status == 200, await resp.text()
                    await resp.read()

            async def mcp_act(sid: str, kind: str, payload: dict) -> None:
                await call_ok(
                    mcp, "browser_session_act", {"sessionId": sid, "type": kind, "payload": payload}
                )

            async with http.post(f"{base}/v1/sessions", json={}) as resp:
                rest_sid = (await resp.json())["session"]["id"]
            created = await call_ok(mcp, "browser_session_create", {})
            mcp_sid = json_of(created)["sessionId"]
            for sid, act in ((rest_sid, rest_act), (mcp_sid, mcp_act)):
                await act(sid, "goto", {"url": f"{site}/list?n=50"})
            print(f"{'action':12} {'REST p50':>10} {'MCP p50':>10} {'ratio':>7} {'added':>9}")
            for kind, payload in ACTIONS.items():
                rest: list[float] = []
                via_mcp: list[float] = []
                for i in range(args.rounds):
                    order = [(rest_act, rest_sid, rest), (mcp_act, mcp_sid, via_mcp)]
                    for act, sid, times in order if i % 2 == 0 else order[::-1]:
                        started = time.perf_counter()
                        await act(sid, kind, payload)
                        times.append((time.perf_counter() - started) * 1000)
                r, m = statistics.median(rest), statistics.median(via_mcp)
                added = statistics.median(b - a for a, b in zip(rest, via_mcp, strict=True))
                print(f"{kind:12} {r:8.1f}ms {m:8.1f}ms {m / r:6.2f}x {added:+7.1f}ms")
    finally:
        proc.terminate()
        proc.wait(10)
        await pages.stop()


if __name__ == "__main__":
    asyncio.run(main())

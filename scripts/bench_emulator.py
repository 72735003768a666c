"""Benchmark: the emulator's HTTP API against the same Playwright calls made in-process.

Runs `capture-replay serve` in a subprocess (as users run it) and, in this process, a raw
Playwright baseline on the same Chromium binary and the same local pages. Operations are
interleaved round by round (each round runs both sides, alternating which goes first), so machine
noise hits both sides alike. Prints one line per operation: the medians, their ratio emulator /
baseline, and the milliseconds the emulator adds (the median of each round's difference; the
target is at most 3 ms per action).

    .venv/bin/python scripts/bench_emulator.py [--rounds 30] [--only goto,click] [--browser PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import sys
import time
from pathlib import Path

import aiohttp
import psutil
from playwright.async_api import async_playwright

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from launch import start_emulator  # noqa: E402

from mock_server.auth import make_token  # noqa: E402
from mock_server.browser import CHROMIUM_ARGS, find_browser  # noqa: E402
from tests.pages import PageServer  # noqa: E402

TOKEN = make_token("bench", "bench")
# The same flags the emulator launches Chromium with: both sides run the same browser.
LAUNCH_ARGS = list(CHROMIUM_ARGS)
QUERY_JS = """(sel) => Array.from(document.querySelectorAll(sel)).slice(0, 500).map(e => ({
  text: e.innerText, href: e.getAttribute('href'),
  attributes: {title: e.getAttribute('title')}}))"""


def pss_mb(root_pid: int) -> float:
    """Proportional set size of every process below root_pid, in MB."""
    total = 0
    for child in psutil.Process(root_pid).children(recursive=True):
        with contextlib.suppress(psutil.Error):
            total += child.memory_full_info().pss
    return total / (1024 * 1024)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--only", default="", help="comma-separated operations to run")
    parser.add_argument("--browser", default=os.environ.get("CAPTURE_REPLAY_BROWSER"))
    args = parser.parse_args()
    browser_path = find_browser(args.browser)
    if browser_path is None:
        raise SystemExit("no Chromium found (apt-get install -y chromium)")

    pages = PageServer()
    await pages.start()
    proc, base = await start_emulator(browser_path)
    http = aiohttp.ClientSession(headers={"Authorization": TOKEN})

    async def api(method: str, path: str, body: object = None) -> dict:
        async with http.request(method, base + path, json=body) as resp:
            data = await resp.json()
            assert resp.status < 300, data
            return data

    async def act(sid: str, type_: str, payload: dict) -> dict:
        return await api("POST", f"/v1/sessions/{sid}/actions", {"type": type_, "payload": payload})

    try:
        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path=browser_path, args=LAUNCH_ARGS)
            ctx = await browser.new_context(viewport={"width": 1440, "height": 900})
            page = await ctx.new_page()
            sid = (await api("POST", "/v1/sessions", {"maxTtlSeconds": 900}))["session"]["id"]
            counter, listing, long = (
                pages.url("/counter"),
                pages.url("/list?n=500"),
                pages.url("/long"),
            )

            ops = {
                "goto": (
                    lambda: page.goto(counter, wait_until="domcontentloaded"),
                    lambda: act(sid, "goto", {"url": counter}),
                    None,
                ),
                "click": (
                    lambda: page.click("#inc"),
                    lambda: act(sid, "click", {"selector": "#inc"}),
                    counter,
                ),
                "query 500": (
                    lambda: page.evaluate(QUERY_JS, "li.item a"),
                    lambda: act(
                        sid,
                        "query",
                        {
                            "selector": "li.item a",
                            "fields": ["text", "href"],
                            "attributes": ["title"],
                            "limit": 500,
                        },
                    ),
                    listing,
                ),
                "screenshot": (
                    lambda: page.screenshot(),
                    lambda: act(sid, "screenshot", {}),
                    counter,
                ),
                "screenshot full": (
                    lambda: page.screenshot(full_page=True),
                    lambda: act(sid, "screenshot", {"fullPage": True}),
                    long,
                ),
                "content html": (
                    lambda: page.content(),
                    lambda: act(sid, "content", {"format": "html"}),
                    listing,
                ),
                "content text": (
                    # The same work in the page: the body's rendered text.
                    lambda: page.evaluate("() => document.body.innerText"),
                    lambda: act(sid, "content", {"format": "text"}),
                    listing,
                ),
            }
            print(
                f"{'operation':<18}{'playwright ms':>14}{'emulator ms':>13}{'ratio':>8}"
                f"{'added ms':>10}"
            )
            only = {name.strip() for name in args.only.split(",") if name.strip()}
            for name, (baseline, emulated, start_url) in ops.items():
                if only and name not in only:
                    continue
                if start_url:
                    await page.goto(start_url)
                    await act(sid, "goto", {"url": start_url})
                for _ in range(3):  # warm both sides
                    await baseline()
                    await emulated()
                b_times, e_times = [], []
                for i in range(args.rounds):
                    # Alternate which side goes first: the browser that just worked still has
                    # trailing work (layout, paint) that slows whatever runs right after it.
                    first, second = (baseline, emulated) if i % 2 == 0 else (emulated, baseline)
                    t0 = time.perf_counter()
                    await first()
                    t1 = time.perf_counter()
                    await second()
                    t2 = time.perf_counter()
                    b, e = (t1 - t0, t2 - t1) if i % 2 == 0 else (t2 - t1, t1 - t0)
                    b_times.append(b)
                    e_times.append(e)
                b, e = statistics.median(b_times) * 1000, statistics.median(e_times) * 1000
                diffs = [et - bt for bt, et in zip(b_times, e_times, strict=True)]
                added = statistics.median(diffs) * 1000
                print(f"{name:<18}{b:>14.2f}{e:>13.2f}{e / b:>7.2f}x{added:>+10.2f}")

            # Session create with a warm pool against a raw new context + page.
            await api("DELETE", f"/v1/sessions/{sid}")
            raw_times, create_times = [], []
            for _ in range(10):
                t0 = time.perf_counter()
                c = await browser.new_context()
                await c.new_page()
                t1 = time.perf_counter()
                raw_times.append(t1 - t0)
                await c.close()
                t0 = time.perf_counter()
                s = (await api("POST", "/v1/sessions", {}))["session"]["id"]
                create_times.append(time.perf_counter() - t0)
                await api("DELETE", f"/v1/sessions/{s}")
                # let the pool refill, as it would between a test's sessions
                await api("GET", "/__admin/health")
                await asyncio.sleep(0.3)
            raw, cr = statistics.median(raw_times) * 1000, statistics.median(create_times) * 1000
            print(
                f"{'session create':<18}{raw:>14.2f}{cr:>13.2f}{cr / raw:>7.2f}x  "
                f"(raw new_context+new_page vs POST /v1/sessions, warm pool)"
            )
            await browser.close()

        # Memory: five live sessions, each on a page.
        live = [(await api("POST", "/v1/sessions", {}))["session"]["id"] for _ in range(5)]
        for s in live:
            await act(s, "goto", {"url": pages.url("/")})
        print(f"browser PSS with 5 live sessions: {pss_mb(proc.pid):.0f} MB (target <= 800 MB)")
        for s in live:
            await api("DELETE", f"/v1/sessions/{s}")
    finally:
        await http.close()
        proc.terminate()
        proc.wait(timeout=15)
        await pages.stop()


if __name__ == "__main__":
    asyncio.run(main())

"""Benchmark: the one-shot `image` and `animated` endpoints end to end.

`image`: an HTTP GET to a `capture-replay serve` subprocess against a raw in-process Playwright
screenshot of the same local page (new context + goto + screenshot + close, same 1440x900
viewport, same Chromium binary), interleaved round by round (alternating which side goes
first), ratio of medians and the median added milliseconds. Target <= 1.15x.
An identical request answered from the one-shot cache, against the same two (its speed-up).
`animated` with duration=3: wall time of the GET against the asked duration. Target <= 1.3x.

    .venv/bin/python scripts/bench_oneshot.py [--rounds 20] [--gif-rounds 3] [--browser PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import quote

import aiohttp
from playwright.async_api import async_playwright

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from launch import start_emulator  # noqa: E402

from mock_server.browser import CHROMIUM_ARGS, find_browser  # noqa: E402
from recorder.contract import sign  # noqa: E402
from tests.pages import PageServer  # noqa: E402

# The same flags the emulator launches Chromium with: both sides run the same browser.
LAUNCH_ARGS = list(CHROMIUM_ARGS)


def signed_path(endpoint: str, query: str) -> str:
    return f"/bench/{sign('bench', query)}/{endpoint}?{query}"


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--gif-rounds", type=int, default=3)
    parser.add_argument("--browser", default=os.environ.get("CAPTURE_REPLAY_BROWSER"))
    args = parser.parse_args()
    browser_path = find_browser(args.browser)
    if browser_path is None:
        raise SystemExit("no Chromium found (apt-get install -y chromium)")

    pages = PageServer()
    await pages.start()
    proc, base = await start_emulator(browser_path)
    http = aiohttp.ClientSession()

    async def get(path: str) -> bytes:
        async with http.get(base + path) as resp:
            body = await resp.read()
            assert resp.status == 200, body[:300]
            return body

    try:
        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path=browser_path, args=LAUNCH_ARGS)
            target = pages.url("/")
            # fresh=true: every request renders (an identical one would come from the cache)
            image_path = signed_path("image", "fresh=true&url=" + quote(target, safe=""))
            cached_path = signed_path("image", "url=" + quote(target, safe=""))

            async def baseline() -> bytes:
                ctx = await browser.new_context(viewport={"width": 1440, "height": 900})
                try:
                    page = await ctx.new_page()
                    await page.goto(target)
                    return await page.screenshot()
                finally:
                    await ctx.close()

            for _ in range(3):  # warm both sides
                await baseline()
                await get(image_path)
            b_times, e_times = [], []
            for i in range(args.rounds):
                # Alternate which side goes first, as bench_emulator does.
                emulated = functools.partial(get, image_path)
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
            print(
                f"{'operation':<22}{'playwright ms':>14}{'emulator ms':>13}{'ratio':>8}"
                f"{'added ms':>10}"
            )
            print(
                f"{'image 1440x900':<22}{b:>14.1f}{e:>13.1f}{e / b:>7.2f}x{added:>+10.1f}"
                "  (target <= 1.15x)"
            )
            await get(cached_path)  # the first renders and fills the cache
            c_times = []
            for _ in range(args.rounds):
                t0 = time.perf_counter()
                await get(cached_path)
                c_times.append(time.perf_counter() - t0)
            c = statistics.median(c_times) * 1000
            print(f"{'image from the cache':<22}{b:>14.1f}{c:>13.1f}{c / b:>7.4f}x{c - b:>+10.1f}")
            print(
                f"cached answer: {b / c:.0f}x faster than raw Playwright, "
                f"{e / c:.0f}x faster than an emulator render"
            )
            await browser.close()

        duration = 3
        gif_query = f"fresh=true&duration={duration}&url=" + quote(pages.url("/animated"), safe="")
        walls = []
        for _ in range(args.gif_rounds):
            t0 = time.perf_counter()
            gif = await get(signed_path("animated", gif_query))
            walls.append(time.perf_counter() - t0)
        wall = statistics.median(walls)
        print(
            f"animated duration={duration}: median wall {wall:.2f} s = {wall / duration:.2f}x "
            f"the duration (target <= 1.3x); runs {', '.join(f'{w:.2f}' for w in walls)} s; "
            f"last GIF {len(gif) / 1024:.0f} KiB"
        )
    finally:
        await http.close()
        proc.terminate()
        proc.wait(timeout=15)
        await pages.stop()


if __name__ == "__main__":
    asyncio.run(main())

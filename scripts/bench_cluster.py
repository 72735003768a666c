"""Benchmark: cluster mode's cost. An action answered through a non-owner instance (routed to the
owner through Redis) against the same action asked of the owner, in the same run; and session
create with a warm browser, cluster mode against one instance alone.

Starts a real `redis-server` on a free port and three `capture-replay serve` processes (as users
run them): A and B in one cluster (`--redis`), S alone. Rounds are interleaved (each round asks
both sides, alternating which goes first) so machine noise hits both alike. Prints per operation
the medians, the ratio and the milliseconds added (median of each round's difference). Targets:
title <= 1.3x, screenshot <= 1.1x, <= 2 ms added p50; cluster create <= 25 ms.

    .venv/bin/python scripts/bench_cluster.py [--rounds 40] [--browser PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from launch import start_command  # noqa: E402

from mock_server.auth import make_token  # noqa: E402
from mock_server.browser import find_browser  # noqa: E402
from tests.pages import PageServer  # noqa: E402

TOKEN = make_token("bench", "bench")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_redis(folder: str) -> tuple[subprocess.Popen[bytes], str]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server not found (apt-get install -y redis-server)")
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", folder],
        stdout=subprocess.PIPE,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if b"Ready to accept connections" in line:
            break
    else:
        raise SystemExit("redis-server did not start")
    return proc, f"redis://127.0.0.1:{port}/0"


def median_ms(values: list[float]) -> float:
    return statistics.median(values) * 1000


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--browser", default=os.environ.get("CAPTURE_REPLAY_BROWSER"))
    args = parser.parse_args()
    browser = find_browser(args.browser)
    if browser is None:
        raise SystemExit("no Chromium found (apt-get install -y chromium)")
    folder = tempfile.mkdtemp(prefix="bench-cluster-")
    redis_proc, redis_url = start_redis(folder)
    pages = PageServer()
    await pages.start()
    common = ("serve", "--port", "0", "--browser", browser, "--clock", "manual")
    procs = []
    http = aiohttp.ClientSession(headers={"Authorization": TOKEN})
    try:
        for extra in (("--redis", redis_url), ("--redis", redis_url), ()):
            procs.append(await start_command(*common, *extra, timeout=60))
        (_, owner), (_, other), (_, alone) = procs

        async def call(base: str, method: str, path: str, body: object = None) -> dict:
            async with http.request(method, base + path, json=body) as resp:
                data = await resp.json()
                assert resp.status < 300, data
                return data

        async def act(base: str, sid: str, kind: str, payload: dict) -> float:
            started = time.perf_counter()
            await call(
                base, "POST", f"/v1/sessions/{sid}/actions", {"type": kind, "payload": payload}
            )
            return time.perf_counter() - started

        sid = (await call(owner, "POST", "/v1/sessions", {"maxTtlSeconds": 900}))["session"]["id"]
        await act(owner, sid, "goto", {"url": pages.url("/counter")})
        print(f"{'operation':<28}{'owner ms':>10}{'non-owner ms':>14}{'ratio':>8}{'added ms':>10}")
        for kind in ("title", "screenshot"):
            direct: list[float] = []
            routed: list[float] = []
            for _ in range(3):  # warm-up
                await act(owner, sid, kind, {})
                await act(other, sid, kind, {})
            for n in range(args.rounds):
                pair = [(owner, direct), (other, routed)]
                for base, sink in pair if n % 2 == 0 else pair[::-1]:
                    sink.append(await act(base, sid, kind, {}))
            added = statistics.median(r - d for r, d in zip(routed, direct, strict=True)) * 1000
            ratio = median_ms(routed) / median_ms(direct)
            print(
                f"{kind + ' (via non-owner)':<28}{median_ms(direct):>10.2f}"
                f"{median_ms(routed):>14.2f}{ratio:>8.2f}{added:>10.2f}"
            )
        await call(owner, "DELETE", f"/v1/sessions/{sid}")

        async def create_ms(base: str) -> float:
            started = time.perf_counter()
            made = await call(base, "POST", "/v1/sessions", {"maxTtlSeconds": 60})
            took = time.perf_counter() - started
            await call(base, "DELETE", f"/v1/sessions/{made['session']['id']}")
            await asyncio.sleep(0.3)  # the pool refills its warm context in the background
            return took

        clustered: list[float] = []
        single: list[float] = []
        for n in range(max(10, args.rounds // 2)):
            pair = [(owner, clustered), (alone, single)]
            for base, sink in pair if n % 2 == 0 else pair[::-1]:
                sink.append(await create_ms(base))
        print(
            f"{'create, warm browser':<28}{median_ms(single):>10.2f}{median_ms(clustered):>14.2f}"
            f"{median_ms(clustered) / median_ms(single):>8.2f}"
            f"{median_ms(clustered) - median_ms(single):>10.2f}"
            "   (alone vs cluster)"
        )
    finally:
        await http.close()
        for proc, _ in procs:
            proc.terminate()
        for proc, _ in procs:
            proc.wait(timeout=30)
        await pages.stop()
        redis_proc.terminate()
        redis_proc.wait(timeout=10)
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())

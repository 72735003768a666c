"""Benchmark: replay throughput against the cheapest possible server of the same bytes, and
against mitmproxy's `mitmdump --server-replay`, in one run.

1. Records a 23-exchange session flow (create, 20 actions, get, close) through the recording
   proxy in front of the live emulator (and through `mitmdump -w` for the peer).
2. Serves it three ways, each in its own process: `capture-replay serve --cassette` (replay),
   a bare aiohttp app answering the same precomputed bytes from a dict (baseline), and
   `mitmdump --server-replay` (peer, if mitmproxy is installed in a separate venv).
3. 4 clients each replay the flow 10 times against each; prints requests/s and ratios.
Also times opening a 10,000-exchange cassette for replay.

    .venv/bin/python scripts/bench_replay.py [--rounds 3] [--mitm-venv PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from aiohttp import web

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mock_server.auth import make_token  # noqa: E402
from mock_server.browser import find_browser  # noqa: E402
from mock_server.serving import listen_on_loopback  # noqa: E402
from recorder.cassette import open_cassette  # noqa: E402
from recorder.proxy import ProxyConfig, make_proxy_app  # noqa: E402
from tests.pages import PageServer  # noqa: E402

TOKEN = make_token("bench", "bench")
CLIENTS, REPEATS = 4, 10
SESSION = re.compile(r"sess_[0-9a-f-]+")


def flow_steps(page: str) -> list[tuple[str, dict]]:
    steps: list[tuple[str, dict]] = [("goto", {"url": page})]
    for i in range(6):
        steps.append(("click", {"selector": "#inc"}))
        steps.append(("query", {"selector": "#count", "fields": ["text"], "limit": 1 + i}))
    steps += [
        ("title", {}),
        ("url", {}),
        ("content", {"format": "text"}),
        ("hover", {"selector": "#hover-target"}),
        ("cursor_position", {}),
        ("scroll", {"direction": "down", "amount": 100}),
        ("console", {}),
    ]
    assert len(steps) == 20
    return steps


async def run_flow(http: aiohttp.ClientSession, base: str, page: str) -> int:
    """One session through the flow; returns the number of requests made (23)."""
    headers = {"Authorization": TOKEN}
    async with http.post(f"{base}/v1/sessions", json={"maxTtlSeconds": 600}, headers=headers) as r:
        body = await r.read()
        assert r.status == 201, body
    sid = json.loads(body)["session"]["id"]
    for action_type, payload in flow_steps(page):
        async with http.post(
            f"{base}/v1/sessions/{sid}/actions",
            headers=headers,
            json={"type": action_type, "payload": payload},
        ) as r:
            await r.read()
            assert r.status == 200, (action_type, r.status)
    async with http.get(f"{base}/v1/sessions/{sid}", headers=headers) as r:
        await r.read()
    async with http.delete(f"{base}/v1/sessions/{sid}", headers=headers) as r:
        await r.read()
    return 2 + len(flow_steps(page)) + 1


async def load(base: str, page: str) -> float:
    """Requests per second of CLIENTS clients each running the flow REPEATS times."""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        await run_flow(http, base, page)  # warm-up
        t0 = time.perf_counter()

        async def client() -> int:
            return sum([await run_flow(http, base, page) for _ in range(REPEATS)])

        total = sum(await asyncio.gather(*(client() for _ in range(CLIENTS))))
        return total / (time.perf_counter() - t0)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def wait_ready(url: str, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 30
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise SystemExit(f"server exited: {proc.args}")
            try:
                async with http.get(url, timeout=aiohttp.ClientTimeout(total=1)) as r:
                    await r.read()
                    return
            except aiohttp.ClientError:
                await asyncio.sleep(0.1)
    raise SystemExit(f"server did not start: {proc.args}")


def serve_baseline(cassette: Path, port: int) -> None:
    """The baseline: one catch-all handler, answers looked up in a dict of precomputed bytes."""
    table: dict[tuple[str, str, bytes], tuple[int, bytes]] = {}
    with open_cassette(cassette) as c:
        for item in c.interactions():
            req = item.request
            key = (
                req.method,
                SESSION.sub("S", req.path),
                SESSION.sub("S", req.body.decode()).encode(),
            )
            table.setdefault(key, (item.response.status, item.response.body))

    async def handle(request: web.Request) -> web.Response:
        body = await request.read()
        key = (
            request.method,
            SESSION.sub("S", request.path),
            SESSION.sub("S", body.decode()).encode(),
        )
        status, answer = table[key]
        return web.Response(status=status, body=answer, content_type="application/json")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


async def record(emulator: str, cassette: Path, page: str) -> None:
    runner = web.AppRunner(
        make_proxy_app(ProxyConfig(cassette=cassette, upstream=emulator, port=0))
    )
    url = await listen_on_loopback(runner)
    async with aiohttp.ClientSession() as http:
        await run_flow(http, url, page)
    await runner.cleanup()


def find_mitmdump(venv: Path | None) -> str | None:
    for candidate in ([venv / "bin" / "mitmdump"] if venv else []) + [
        Path.home() / ".cache" / "capture-replay" / "mitm-venv" / "bin" / "mitmdump",
        Path("/tmp/mitm-venv/bin/mitmdump"),
    ]:
        if candidate.exists():
            return str(candidate)
    return shutil.which("mitmdump")


def time_open(n: int) -> tuple[float, int]:
    """Seconds to open and index an n-exchange cassette for replay, and its size."""
    from mock_server.replay.player import Player
    from recorder.cassette import CassetteWriter, WriteMode
    from recorder.records import Interaction, RecordedRequest, RecordedResponse

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.msgpack"
        body = json.dumps(
            {"success": True, "expiresInSeconds": 100, "content": "x" * 4200}
        ).encode()
        with CassetteWriter(path, upstream="bench", mode=WriteMode.OVERWRITE) as writer:
            for i in range(n):
                sid = f"sess_{i // 23:08d}"
                if i % 23 == 0:
                    req = RecordedRequest("POST", "/v1/sessions", "", (), b"{}")
                    resp_body = json.dumps({"success": True, "session": {"id": sid}}).encode()
                    resp = RecordedResponse(201, (("Content-Type", "application/json"),), resp_body)
                    action = None
                else:
                    req = RecordedRequest(
                        "POST",
                        f"/v1/sessions/{sid}/actions",
                        "",
                        (),
                        b'{"type":"content","payload":{}}',
                    )
                    resp = RecordedResponse(200, (("Content-Type", "application/json"),), body)
                    action = "content"
                writer.append(
                    Interaction(writer.next_seq(), 0.0, 0.01, sid, action, "bench", req, resp)
                )
        size = path.stat().st_size
        t0 = time.perf_counter()
        player = Player((path,))
        elapsed = time.perf_counter() - t0
        player.close()
        return elapsed, size


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--mitm-venv", type=Path, default=None)
    parser.add_argument("--browser", default=os.environ.get("CAPTURE_REPLAY_BROWSER"))
    args = parser.parse_args()
    browser = find_browser(args.browser)
    if browser is None:
        raise SystemExit("no Chromium found (apt-get install -y chromium)")

    tmp = Path(tempfile.mkdtemp())
    cassette = tmp / "flow.msgpack"
    pages = PageServer()
    await pages.start()
    page = pages.url("/counter")
    procs: list[subprocess.Popen] = []

    def spawn(cmd: list[str]) -> subprocess.Popen:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(proc)
        return proc

    try:
        # 1. Record (not timed).
        emu_port = free_port()
        emulator = f"http://127.0.0.1:{emu_port}"
        emu = spawn(
            [
                sys.executable,
                "-m",
                "mock_server.cli",
                "serve",
                "--port",
                str(emu_port),
                "--clock",
                "manual",
                "--browser",
                browser,
            ]
        )
        await wait_ready(f"{emulator}/__admin/health", emu)
        await record(emulator, cassette, page)
        mitmdump = find_mitmdump(args.mitm_venv)
        if mitmdump:
            mport = free_port()
            rec = spawn(
                [
                    mitmdump,
                    "-q",
                    "--mode",
                    f"reverse:{emulator}",
                    "-p",
                    str(mport),
                    "-w",
                    str(tmp / "flows"),
                    "--set",
                    f"confdir={tmp}/mitm",
                ]
            )
            await asyncio.sleep(1.5)  # mitmdump has no health route; give it time to bind
            async with aiohttp.ClientSession() as http:
                await run_flow(http, f"http://127.0.0.1:{mport}", page)
            rec.terminate()
            rec.wait(10)
        emu.terminate()
        emu.wait(15)

        # 2. Serve three ways.
        rport, bport = free_port(), free_port()
        replay = spawn(
            [
                sys.executable,
                "-m",
                "mock_server.cli",
                "serve",
                "--port",
                str(rport),
                "--clock",
                "manual",
                "--cassette",
                str(cassette),
            ]
        )
        base = spawn([sys.executable, __file__, "--serve-baseline", str(cassette), str(bport)])
        await wait_ready(f"http://127.0.0.1:{rport}/__admin/health", replay)
        await wait_ready(f"http://127.0.0.1:{bport}/__admin/health", base)
        targets = {"baseline": f"http://127.0.0.1:{bport}", "replay": f"http://127.0.0.1:{rport}"}
        if mitmdump:
            pport = free_port()
            spawn(
                [
                    mitmdump,
                    "-q",
                    "--mode",
                    f"reverse:{emulator}",
                    "-p",
                    str(pport),
                    "--server-replay",
                    str(tmp / "flows"),
                    "--set",
                    "server_replay_reuse=true",
                    "--set",
                    "server_replay_extra=kill",
                    "--set",
                    "connection_strategy=lazy",
                    "--set",
                    f"confdir={tmp}/mitm",
                ]
            )
            await asyncio.sleep(1.5)
            targets["mitmdump"] = f"http://127.0.0.1:{pport}"

        # 3. Load, interleaved rounds.
        results: dict[str, list[float]] = {name: [] for name in targets}
        for _ in range(args.rounds):
            for name, url in targets.items():
                try:
                    results[name].append(await load(url, page))
                except aiohttp.ClientError as err:
                    raise SystemExit(f"{name} failed: {err!r}") from err
        rps = {name: statistics.median(v) for name, v in results.items()}
        n = CLIENTS * REPEATS * 23
        print(
            f"{CLIENTS} clients x {REPEATS} flows x 23 exchanges = {n} requests per round, "
            f"median of {args.rounds} rounds"
        )
        for name, value in rps.items():
            print(f"  {name:<9} {value:8.0f} req/s")
        print(f"replay / baseline: {rps['replay'] / rps['baseline']:.2f}x (target >= 0.70x)")
        if "mitmdump" in rps:
            print(f"replay / mitmdump --server-replay: {rps['replay'] / rps['mitmdump']:.2f}x")
        else:
            print("mitmdump not found (install mitmproxy in a separate venv); peer skipped")

        seconds, size = time_open(10_000)
        print(
            f"open a 10,000-exchange cassette ({size / 1e6:.0f} MB) for replay: "
            f"{seconds * 1000:.0f} ms (target <= 250 ms)"
        )
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
        await pages.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--serve-baseline":
        serve_baseline(Path(sys.argv[2]), int(sys.argv[3]))
    else:
        asyncio.run(main())

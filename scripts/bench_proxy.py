"""Throughput and latency of the recording proxy (not a test; nothing imports scripts/).

One aiohttp client sends the same workload (N POSTs of a small action with a Bearer token,
bounded concurrency) to a cheap static aiohttp upstream three ways, in one run:

  direct      client -> upstream
  recorder    client -> `capture-replay record` -> upstream   (cassette written)
  mitmdump    client -> `mitmdump --mode reverse:URL -w FILE` -> upstream

Upstream and proxies run in their own processes (subprocesses) so the client does not share their
event loop. Prints requests/s, p50/p99 latency, the CPU time each server process spent per request
(from /proc, steadier than requests/s on a shared machine), the best and median recorder/direct
and recorder/mitmdump throughput ratios, and the p50 latency the recorder adds over direct
(targets: >= 5x mitmdump's throughput, <= 1 ms added p50 at concurrency 16). `--baseline DIR` adds
a second recorder run from another source tree (a copy holding `recorder/` and `mock_server/`,
e.g. `git archive HEAD | tar -x -C DIR`), in the same interleaved rounds, for A/B comparisons of a
change. mitmproxy is never a dependency: it is looked for in --mitm-venv (default
~/.cache/capture-replay/mitm-venv, or /tmp/mitm-venv when present) and installed there with pip
when missing unless --no-install is given.

    .venv/bin/python scripts/bench_proxy.py [-n 3000] [-c 16] [-r 3] [--baseline DIR]
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

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "Bearer dXNlcl8xMjM6c2VjcmV0"  # base64("user_123:secret")
BODY = b'{"type":"click","payload":{"selector":"#inc"}}'
ANSWER = (
    b'{"success":true,"expiresInSeconds":287,"url":"https://example.com/","matched":true,'
    b'"visible":true,"elementText":"Increment","tagName":"button","attributes":{"id":"inc"},'
    b'"boundingBox":{"x":8,"y":60,"width":120,"height":40},"clickedPoint":{"x":68,"y":80}}'
)

UPSTREAM_CODE = """
import sys
from aiohttp import web
ANSWER = %r
async def handle(request):
    await request.read()
    return web.Response(body=ANSWER, content_type="application/json")
app = web.Application()
app.router.add_route("*", "/{tail:.*}", handle)
try:
    import uvloop; uvloop.install()
except ImportError:
    pass
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)
""".replace("%r", repr(ANSWER))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_listening(
    port: int, proc: subprocess.Popen[bytes], what: str, timeout: float = 30
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on {port} within {timeout} s")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


async def run_load(url: str, total: int, concurrency: int) -> tuple[float, list[float], int]:
    import aiohttp

    latencies: list[float] = []
    errors = 0
    per_worker = total // concurrency
    connector = aiohttp.TCPConnector(limit=concurrency)
    headers = {"Authorization": TOKEN, "Content-Type": "application/json"}
    target = f"{url}/v1/sessions/sess_bench/actions"
    async with aiohttp.ClientSession(connector=connector) as client:

        async def worker(n: int) -> None:
            nonlocal errors
            for _ in range(n):
                t0 = time.perf_counter()
                async with client.post(target, data=BODY, headers=headers) as resp:
                    await resp.read()
                    if resp.status != 200:
                        errors += 1
                latencies.append(time.perf_counter() - t0)

        await asyncio.gather(*(worker(min(50, per_worker)) for _ in range(concurrency)))  # warm-up
        latencies.clear()
        started = time.perf_counter()
        await asyncio.gather(*(worker(per_worker) for _ in range(concurrency)))
        wall = time.perf_counter() - started
    return wall, latencies, errors


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(name: str, url: str, total: int, concurrency: int, pids: list[int]) -> dict[str, float]:
    """One load run; `pids` are the server processes the request passes through (their CPU
    time is charged to this run; the warm-up requests are included, hence `sent`)."""
    before = [cpu_seconds(pid) for pid in pids]
    wall, lat, errors = asyncio.run(run_load(url, total, concurrency))
    spent = [cpu_seconds(pid) - b for pid, b in zip(pids, before, strict=True)]
    sent = len(lat) + concurrency * min(50, total // concurrency)
    lat.sort()
    result = {
        "rps": len(lat) / wall,
        "p50": statistics.median(lat) * 1000,
        "p99": lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000,
        "errors": errors,
        "cpu_us": spent[0] / sent * 1e6,  # the first pid is the one under test
        "cpu_all_us": sum(spent) / sent * 1e6,
    }
    print(
        f"{name:10} {result['rps']:9.0f} req/s   p50 {result['p50']:6.2f} ms   "
        f"p99 {result['p99']:6.2f} ms   errors {errors}   "
        f"cpu {result['cpu_us']:4.0f} us/req (servers {result['cpu_all_us']:4.0f})",
        flush=True,
    )
    return result


def start_recorder(root: Path, up_url: str, cassette: Path, port: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mock_server.cli",
            "record",
            "--upstream",
            up_url,
            "--cassette",
            str(cassette),
            "--port",
            str(port),
        ],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        stderr=subprocess.DEVNULL,
    )


def find_mitmdump(venv: Path, install: bool) -> Path | None:
    for candidate in (venv / "bin" / "mitmdump", Path("/tmp/mitm-venv/bin/mitmdump")):
        if candidate.exists():
            return candidate
    found = shutil.which("mitmdump")
    if found:
        return Path(found)
    if not install:
        return None
    print(f"installing mitmproxy into {venv} (separate venv, not a dependency)…", flush=True)
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
        subprocess.run(
            [str(venv / "bin" / "pip"), "install", "-q", "mitmproxy"], check=True, timeout=900
        )
    except (subprocess.SubprocessError, OSError) as err:
        print(f"mitmproxy could not be installed: {err}", flush=True)
        return None
    binary = venv / "bin" / "mitmdump"
    return binary if binary.exists() else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--requests", type=int, default=3000)
    parser.add_argument("-c", "--concurrency", type=int, default=16)
    parser.add_argument(
        "--mitm-venv", type=Path, default=Path.home() / ".cache" / "capture-replay" / "mitm-venv"
    )
    parser.add_argument("-r", "--rounds", type=int, default=3, help="interleaved rounds")
    parser.add_argument("--no-install", action="store_true", help="never pip-install mitmproxy")
    parser.add_argument(
        "--baseline", type=Path, help="also run the recorder of this source tree (A/B)"
    )
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass

    procs: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory(prefix="bench-proxy-") as tmp:
        try:
            up_port = free_port()
            upstream = subprocess.Popen([sys.executable, "-c", UPSTREAM_CODE, str(up_port)])
            procs.append(upstream)
            wait_listening(up_port, upstream, "upstream")
            up_url = f"http://127.0.0.1:{up_port}"
            print(
                f"{args.requests} POSTs, concurrency {args.concurrency}, "
                f"{len(ANSWER)}-byte JSON answers, {os.cpu_count()} CPUs",
                flush=True,
            )
            targets = {"direct": up_url}

            rec_port = free_port()
            cassette = Path(tmp) / "bench.cassette"
            recorder = start_recorder(ROOT, up_url, cassette, rec_port)
            procs.append(recorder)
            wait_listening(rec_port, recorder, "recorder")
            targets["recorder"] = f"http://127.0.0.1:{rec_port}"
            pids = {"direct": [upstream.pid], "recorder": [recorder.pid, upstream.pid]}
            if args.baseline is not None:
                base_port = free_port()
                baseline = start_recorder(
                    args.baseline.resolve(), up_url, Path(tmp) / "base.cassette", base_port
                )
                procs.append(baseline)
                wait_listening(base_port, baseline, "baseline recorder")
                targets["baseline"] = f"http://127.0.0.1:{base_port}"
                pids["baseline"] = [baseline.pid, upstream.pid]

            binary = find_mitmdump(args.mitm_venv, not args.no_install)
            if binary is None:
                print("mitmdump   not available (mitmproxy could not be installed); skipped")
            else:
                mitm_port = free_port()
                mitm_proc = subprocess.Popen(
                    [
                        str(binary),
                        "--mode",
                        f"reverse:{up_url}",
                        "-w",
                        str(Path(tmp) / "mitm.flows"),
                        "--listen-host",
                        "127.0.0.1",
                        "--listen-port",
                        str(mitm_port),
                        "-q",
                        "--set",
                        f"confdir={tmp}/mitm-conf",
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                procs.append(mitm_proc)
                wait_listening(mitm_port, mitm_proc, "mitmdump", timeout=60)
                targets["mitmdump"] = f"http://127.0.0.1:{mitm_port}"
                pids["mitmdump"] = [mitm_proc.pid, upstream.pid]

            # Interleaved rounds, so that load from other processes hits every target alike.
            results: dict[str, list[dict[str, float]]] = {name: [] for name in targets}
            for round_no in range(1, args.rounds + 1):
                print(f"-- round {round_no}", flush=True)
                for name, url in targets.items():
                    n = (
                        args.requests
                        if name != "mitmdump"
                        else max(args.concurrency, args.requests // 4)
                    )
                    results[name].append(measure(name, url, n, args.concurrency, pids[name]))
            stop(recorder)
            from recorder.cassette import open_cassette

            with open_cassette(cassette) as c:
                print(
                    f"recorder cassette: {len(c.entries)} records, "
                    f"{cassette.stat().st_size / 1e6:.2f} MB, torn tail: {c.torn_tail}"
                )

            def rps(name: str, pick: str) -> float:
                values = [r["rps"] for r in results[name]]
                return max(values) if pick == "best" else statistics.median(values)

            print()
            for name in results:
                cpu = statistics.median(r["cpu_us"] for r in results[name])
                print(f"median cpu {name:10} {cpu:5.0f} us/request in its own process")
            for pick in ("best", "median"):
                for ours in ("recorder", "baseline") if "baseline" in results else ("recorder",):
                    mine = rps(ours, pick)
                    line = f"{pick:6}: {ours} / direct = {mine / rps('direct', pick):.2f}x"
                    if "mitmdump" in results:
                        line += f"   {ours} / mitmdump = {mine / rps('mitmdump', pick):.2f}x"
                    print(line)
            direct_p50 = statistics.median(r["p50"] for r in results["direct"])
            for ours in ("recorder", "baseline") if "baseline" in results else ("recorder",):
                p50 = statistics.median(r["p50"] for r in results[ours])
                print(
                    f"median p50: {ours} {p50:.2f} ms, direct {direct_p50:.2f} ms: "
                    f"{ours} adds {p50 - direct_p50:.2f} ms"
                )
            print("targets: recorder / mitmdump >= 5x; recorder adds <= 1 ms p50 at concurrency 16")
        finally:
            for proc in procs:
                stop(proc)


if __name__ == "__main__":
    main()

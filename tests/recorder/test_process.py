"""`capture-replay record` as a real process: kill -9 loses no answered exchange; SIGTERM drains."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp

from recorder.cassette import open_cassette
from tests.recorder.conftest import AUTH
from tests.recorder.test_upstream import PROXY_VARIABLES, ForwardProxy, serving

ROOT = Path(__file__).resolve().parents[2]
_URL = re.compile(r"on (http://\S+)")


@asynccontextmanager
async def recorder_process(
    upstream_url: str, cassette: Path, environ: dict[str, str] | None = None
) -> AsyncIterator[tuple[asyncio.subprocess.Process, str]]:
    env = {**(os.environ if environ is None else environ), "PYTHONPATH": str(ROOT)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "mock_server.cli",
        "record",
        "--upstream",
        upstream_url,
        "--cassette",
        str(cassette),
        "--port",
        "0",
        "--shutdown-timeout",
        "10",
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stderr is not None
        line = (await asyncio.wait_for(proc.stderr.readline(), 20)).decode()
        match = _URL.search(line)
        assert match, line
        yield proc, match.group(1)
    finally:
        if proc.returncode is None:
            proc.kill()
        await asyncio.wait_for(proc.wait(), 10)


async def test_kill_9_keeps_every_answered_exchange(upstream, cassette_path):
    async with recorder_process(upstream.url, cassette_path) as (proc, url):
        async with aiohttp.ClientSession() as client:

            async def act(i: int) -> int:
                payload = {"type": "click", "payload": {"selector": f"#b{i}"}}
                async with client.post(
                    f"{url}/v1/sessions/sess_k/actions", json=payload, headers=AUTH
                ) as r:
                    await r.read()
                    return r.status

            statuses = await asyncio.gather(*(act(i) for i in range(25)))
        assert statuses == [200] * 25
        proc.send_signal(signal.SIGKILL)
        assert await asyncio.wait_for(proc.wait(), 10) == -signal.SIGKILL
    with open_cassette(cassette_path) as cassette:
        assert len(cassette.entries) == 25
        selectors = {
            cassette.load(e).request.json()["payload"]["selector"] for e in cassette.entries
        }
    assert selectors == {f"#b{i}" for i in range(25)}


async def test_sigterm_finishes_the_exchange_in_flight_and_closes_the_file(upstream, cassette_path):
    async with recorder_process(upstream.url, cassette_path) as (proc, url):
        async with aiohttp.ClientSession() as client:
            slow = asyncio.create_task(client.get(f"{url}/slow"))
            await asyncio.wait_for(upstream.arrived.wait(), 10)
            proc.send_signal(signal.SIGTERM)
            assert proc.stderr is not None
            line = (await asyncio.wait_for(proc.stderr.readline(), 10)).decode()
            assert "stopping" in line and "1 exchanges in flight" in line
            upstream.release.set()
            resp = await asyncio.wait_for(slow, 10)
            assert resp.status == 200 and (await resp.json())["late"] is True
            resp.release()
        assert await asyncio.wait_for(proc.wait(), 15) == 0
    with open_cassette(cassette_path) as cassette:
        assert cassette.torn_tail is None
        assert [e.path for e in cassette.entries] == ["/slow"]


async def test_record_goes_through_the_http_proxy_of_its_environment(upstream, cassette_path):
    proxy = ForwardProxy()
    async with serving(proxy.app) as proxy_url:
        env = {k: v for k, v in os.environ.items() if k.lower() not in PROXY_VARIABLES}
        env["HTTP_PROXY"] = proxy_url
        async with recorder_process(upstream.url, cassette_path, env) as (proc, url):
            async with aiohttp.ClientSession() as client:
                async with client.get(f"{url}/v1/sessions/sess_p", headers=AUTH) as resp:
                    assert resp.status == 200
            proc.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(proc.wait(), 15) == 0
    assert proxy.seen == [f"{upstream.url}/v1/sessions/sess_p"]
    with open_cassette(cassette_path) as cassette:
        assert [(e.status, e.path) for e in cassette.entries] == [(200, "/v1/sessions/sess_p")]

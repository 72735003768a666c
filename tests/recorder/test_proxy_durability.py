"""The recording proxy never answers as recorded what it could not record: a full disk answers
503 JSON and recording resumes when space returns; a deleted cassette ends the recording; a stop
that cuts exchanges records them as interrupted. Real `record` processes and real files."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from dataclasses import replace

import aiohttp
import psutil

from recorder.cassette import open_cassette
from recorder.proxy import ProxyConfig
from tests.recorder.conftest import running_proxy
from tests.recorder.test_process import _URL, AUTH, ROOT

ACTION = {"type": "title", "payload": {}}


def _ignore_file_size_signal() -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG


async def test_a_full_disk_answers_503_and_recording_resumes_when_space_returns(
    upstream, cassette_path
):
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "mock_server.cli", "record", "--upstream", upstream.url,
        "--cassette", str(cassette_path), "--port", "0",
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        preexec_fn=_ignore_file_size_signal,
    )  # fmt: skip
    try:
        assert proc.stderr is not None
        url = _URL.search((await asyncio.wait_for(proc.stderr.readline(), 20)).decode()).group(1)
        target = f"{url}/v1/sessions/sess_f/actions"
        async with aiohttp.ClientSession() as client:
            async with client.post(target, json=ACTION, headers=AUTH) as resp:
                assert resp.status == 200
            # the disk is full: the next record does not fit
            recorder = psutil.Process(proc.pid)
            _, hard = recorder.rlimit(psutil.RLIMIT_FSIZE)
            recorder.rlimit(psutil.RLIMIT_FSIZE, (cassette_path.stat().st_size + 16, hard))
            async with client.post(target, json=ACTION, headers=AUTH) as resp:
                answer = await resp.json()
                assert resp.status == 503 and answer["success"] is False
                assert (
                    "could not record" in answer["error"] and str(cassette_path) in answer["error"]
                )
            async with client.get(f"{url}/__admin/health") as resp:
                health = await resp.json()
                assert health["writeFailures"] == 1 and health["recording"] is True
            recorder.rlimit(psutil.RLIMIT_FSIZE, (hard, hard))  # space returns
            async with client.post(target, json=ACTION, headers=AUTH) as resp:
                assert resp.status == 200
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 15) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    with open_cassette(cassette_path) as cassette:
        assert len(cassette.entries) == 2 and cassette.gaps == () and cassette.torn_tail is None
        assert [e.seq for e in cassette.entries] == [1, 3]


async def test_a_deleted_cassette_ends_the_recording_with_a_clear_error(upstream, cassette_path):
    async with running_proxy(ProxyConfig(cassette=cassette_path, upstream=upstream.url)) as url:
        target = f"{url}/v1/sessions/sess_d/actions"
        async with aiohttp.ClientSession() as client:
            async with client.post(target, json=ACTION, headers=AUTH) as resp:
                assert resp.status == 200
            cassette_path.unlink()
            for _ in range(2):
                async with client.post(target, json=ACTION, headers=AUTH) as resp:
                    answer = await resp.json()
                    assert resp.status == 503 and "was deleted" in answer["error"]
            forwarded = len(upstream.received)
            async with client.get(f"{url}/__admin/health") as resp:
                health = await resp.json()
        assert health["recording"] is False and "was deleted" in health["cassetteError"]
        assert forwarded == 2  # once the cassette is gone nothing more is sent upstream


async def test_a_stop_records_what_it_cut_as_interrupted(upstream, cassette_path):
    config = replace(ProxyConfig(cassette=cassette_path, upstream=upstream.url), shutdown_timeout=0)
    async with aiohttp.ClientSession() as client:
        async with running_proxy(config) as url:
            slow = asyncio.create_task(client.get(f"{url}/slow"))
            await asyncio.wait_for(upstream.arrived.wait(), 10)
        # the proxy stopped; /slow was never answered by the upstream
        try:
            await asyncio.wait_for(slow, 10)
        except aiohttp.ClientError:
            pass
    with open_cassette(cassette_path) as cassette:
        (entry,) = cassette.entries
        item = cassette.load(entry)
    assert entry.path == "/slow" and entry.status == 503
    assert item.error is not None and item.error.startswith("interrupted")

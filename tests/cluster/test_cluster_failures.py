"""Cluster mode's time and failures, with a real Redis and real instances: the shared manual
clock, the action budget through a non-owner, Redis going away and coming back, and an owner
killed with SIGKILL (a real `capture-replay serve` process)."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from tests.cluster.conftest import start_instances
from tests.contract.schemas import validate
from tests.emulator import ApiClient, browser_path

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
TEXT_503 = "Required backing service is unavailable"


async def test_actions_through_a_non_owner_keep_the_session_order(instances, pages):
    a, b, c = instances
    sid = (await a.create())["id"]
    await b.act(sid, "goto", {"url": pages.url("/counter")})
    clicks = [(b, c)[i % 2].act(sid, "click", {"selector": "#inc"}) for i in range(6)]
    await asyncio.gather(*clicks)
    found = await c.act(sid, "query", {"selector": "#count"})
    assert found["elements"][0]["text"] == "6"
    assert (await a.get(sid))["actionBreakdown"]["click"]["total"] == 6


async def test_over_budget_through_a_non_owner_is_504_and_the_session_survives(redis_server, pages):
    a, b = await start_instances(2, redis_server.url, action_timeout=1.0)
    try:
        sid = (await a.create())["id"]
        await b.act(sid, "goto", {"url": pages.url("/slow?s=30")}, expect=504)
        again = await b.act(sid, "goto", {"url": pages.url("/counter")})
        assert again["url"] == pages.url("/counter")
    finally:
        await asyncio.gather(a.stop(), b.stop())


async def test_manual_clock_advanced_on_b_expires_a_session_owned_by_a_billed_once(instances):
    a, b, c = instances
    sid = (await a.create({"maxTtlSeconds": 90}))["id"]
    await b.advance(60)
    assert (await c.act(sid, "title"))["expiresInSeconds"] == 30
    await b.advance(40)
    for instance in (a, b, c):
        got = await instance.get(sid)
        assert (got["status"], got["billedCredits"], got["durationSeconds"]) == ("expired", 2, 90)
    await c.advance(1000)
    status, usage = await a.call("GET", "/__admin/usage", token=None)
    assert usage["users"]["user_123"] == {
        "sessions": 1,
        "active": 0,
        "creditsBilled": 2,
        "actions": 1,
    }
    # The owner freed the page and the slot: five new sessions fit again.
    for _ in range(5):
        await b.create()
    status, clock = await c.call("GET", "/__admin/clock", token=None)
    assert clock["now"] == (await a.call("GET", "/__admin/clock", token=None))[1]["now"]


async def test_redis_stopped_is_503_with_the_contract_text_and_service_resumes(redis_server, pages):
    a, b = await start_instances(2, redis_server.url)
    try:
        sid = (await a.create())["id"]
        redis_server.stop()
        for call in (
            b.call("POST", "/v1/sessions", {}),
            b.call("GET", f"/v1/sessions/{sid}"),
            b.call("POST", f"/v1/sessions/{sid}/actions", {"type": "title", "payload": {}}),
            a.call("DELETE", f"/v1/sessions/{sid}"),
        ):
            status, body = await asyncio.wait_for(call, 10)
            assert (status, body["success"], body["error"]) == (503, False, TEXT_503), body
            validate(body, "ActionErrorResponse")
        status, health = await b.call("GET", "/__admin/health", token=None)
        assert status == 503 and health["status"] != "ready" and health["cluster"]["redis"] is False
        redis_server.start()
        status, health = await b.call("GET", "/__admin/health", token=None)
        assert status == 200 and health["status"] == "ready", health
        await b.act(sid, "goto", {"url": pages.url("/counter")})
        assert (await b.get(sid))["status"] == "active"
        assert (await b.create())["status"] == "active"
    finally:
        await asyncio.gather(a.stop(), b.stop())


async def test_owner_killed_ends_its_sessions_in_error_billed_once_and_answers_409(
    redis_server, pages
):
    ttl = 3.0
    (b,) = await start_instances(1, redis_server.url, heartbeat_ttl=ttl)
    owner = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mock_server.cli",
            "serve",
            "--port",
            "0",
            "--clock",
            "manual",
            "--redis",
            redis_server.url,
            "--heartbeat-ttl",
            str(ttl),
            "--browser",
            browser_path(),
        ],
        stderr=subprocess.PIPE,
        cwd=ROOT,
    )
    family: list[psutil.Process] = []
    try:
        assert owner.stderr is not None

        def banner_url() -> str:  # the line `serve` prints once listening
            for line in owner.stderr:
                if found := re.search(rb"on (http://\S+)", line):
                    return found.group(1).decode()
            raise AssertionError("capture-replay serve exited before listening")

        url = await asyncio.wait_for(asyncio.to_thread(banner_url), 60)
        async with ApiClient(url) as a:
            sid = (await a.create())["id"]
            await b.act(sid, "goto", {"url": pages.url("/counter")})
            family = psutil.Process(owner.pid).children(recursive=True)
            os.kill(owner.pid, signal.SIGKILL)
            owner.wait()
            killed_at = asyncio.get_running_loop().time()

            async def ended() -> dict:
                while (got := await b.get(sid))["status"] == "active":
                    await asyncio.sleep(0.05)
                return got

            got = await asyncio.wait_for(ended(), ttl + 1)
            assert asyncio.get_running_loop().time() - killed_at <= ttl + 0.5
            assert (got["status"], got["closeReason"], got["billedCredits"]) == (
                "error",
                "error",
                1,
            )
            status, body = await b.call(
                "POST", f"/v1/sessions/{sid}/actions", {"type": "title", "payload": {}}
            )
            assert status == 409, body
            validate(body, "InactiveSessionActionResponse")
            assert body["session"]["status"] == "error"
            status, usage = await b.call("GET", "/__admin/usage", token=None)
            assert usage["users"]["user_123"]["creditsBilled"] == 1
            assert usage["users"]["user_123"]["active"] == 0
            status, listed = await b.call("GET", "/__admin/cluster", token=None)
            assert listed["count"] == 1
    finally:
        if owner.poll() is None:
            owner.kill()
            owner.wait()
        for child in family:
            if child.is_running():
                child.kill()
        if owner.stderr is not None:
            owner.stderr.close()
        await b.stop()

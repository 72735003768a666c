"""The replay engine's decisions that live and replay must agree on: what counts as an action,
CDP (which cannot be replayed), and `new_episodes` answering in process."""

from __future__ import annotations

from pathlib import Path

import psutil
from multidict import CIMultiDict, CIMultiDictProxy
from playwright.async_api import async_playwright

from mock_server.config import Mode
from mock_server.replay.episodes import EpisodeReplayer
from tests.emulator import TOKEN, ApiClient, RunningEmulator, emulator_config
from tests.replay import recording_proxy


async def _flow_with_a_rejected_action(client: ApiClient, sid: str) -> list[tuple[int, dict]]:
    answers = [await client.call("POST", f"/v1/sessions/{sid}/actions", {"type": "fly"})]
    answers.append(await client.call("GET", f"/v1/sessions/{sid}"))
    answers.append(await client.call("DELETE", f"/v1/sessions/{sid}"))
    answers.append(await client.call("POST", f"/v1/sessions/{sid}/actions", {"type": "title"}))
    return answers


async def test_replay_counts_actions_as_live_does(tmp_path: Path):
    """A request refused before it is an action (`{"type": "fly"}`) counts nothing, live and
    in replay: the 409 after close carries the same counters as the GET before it."""
    cassette = tmp_path / "fly.msgpack"
    live = await RunningEmulator(emulator_config()).start()
    try:
        async with recording_proxy(live.url, cassette) as url, ApiClient(url) as client:
            sid = (await client.call("POST", "/v1/sessions", {}))[1]["session"]["id"]
            live_answers = await _flow_with_a_rejected_action(client, sid)
    finally:
        await live.stop()
    replay = await RunningEmulator(emulator_config(mode=Mode.REPLAY, cassettes=(cassette,))).start()
    try:
        sid = (await replay.call("POST", "/v1/sessions", {}))[1]["session"]["id"]
        replayed = await _flow_with_a_rejected_action(replay, sid)
    finally:
        await replay.stop()
    assert [s for s, _ in replayed] == [s for s, _ in live_answers] == [400, 200, 200, 409]
    for answers in (live_answers, replayed):
        got, conflict = answers[1][1]["session"], answers[3][1]["session"]
        assert conflict["actionCount"] == got["actionCount"] == 0
        assert conflict["actionBreakdown"] == got["actionBreakdown"] == {}


async def test_cdp_cannot_be_replayed_but_runs_live_in_hybrid(tmp_path: Path, pages):
    cassette = tmp_path / "plain.msgpack"
    live = await RunningEmulator(emulator_config()).start()
    try:
        async with recording_proxy(live.url, cassette) as url, ApiClient(url) as client:
            sid = (await client.call("POST", "/v1/sessions", {}))[1]["session"]["id"]
            await client.call("DELETE", f"/v1/sessions/{sid}")
    finally:
        await live.stop()

    strict = await RunningEmulator(emulator_config(mode=Mode.REPLAY, cassettes=(cassette,))).start()
    try:
        status, body = await strict.call("POST", "/v1/sessions", {"cdp": True})
        assert status == 503 and body["error"] == "CDP connections are not available"
        assert "--mode hybrid" in body["hint"]
    finally:
        await strict.stop()

    hybrid = await RunningEmulator(emulator_config(mode=Mode.HYBRID, cassettes=(cassette,))).start()
    try:
        status, body = await hybrid.call("POST", "/v1/sessions", {"cdp": True})
        assert status == 201, body
        connect_url = body["session"]["connectUrl"]
        async with async_playwright() as pw:
            browser = await pw.chromium.connect_over_cdp(connect_url)
            page = browser.contexts[0].pages[0]
            await page.goto(pages.url("/form"))
            assert await page.title() == "Login form"
            await browser.close()
        _, journal = await hybrid.call("GET", "/__admin/requests", token=None)
        assert journal["requests"][0]["source"] == "live (CDP cannot be replayed)"
    finally:
        await hybrid.stop()


def _listening() -> int:
    return sum(
        1 for c in psutil.Process().net_connections(kind="tcp") if c.status == psutil.CONN_LISTEN
    )


async def test_new_episodes_replays_in_process_without_a_second_server(tmp_path: Path):
    cassette = tmp_path / "episodes.msgpack"
    live = await RunningEmulator(emulator_config()).start()
    try:
        async with recording_proxy(live.url, cassette) as url, ApiClient(url) as client:
            await client.call("POST", "/v1/sessions", {"maxTtlSeconds": 120})
    finally:
        await live.stop()
    before = _listening()
    replayer = EpisodeReplayer(cassette)
    async with replayer.running():
        assert _listening() == before
        headers = CIMultiDictProxy(CIMultiDict({"Authorization": TOKEN}))
        answered = await replayer.answer("POST", "/v1/sessions", headers, b'{"maxTtlSeconds":120}')
        assert answered is not None and answered[0] == 201
        # a create the cassette does not have is a new episode: forwarded (None)
        assert (
            await replayer.answer("POST", "/v1/sessions", headers, b'{"maxTtlSeconds":60}') is None
        )

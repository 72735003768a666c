"""Replay in cluster mode: one cassette replayed through three instances round-robin (a load
balancer's way) gives byte for byte the answers one instance gives, because the create counts,
id mappings and cursors are the cluster's (Redis), not each instance's."""

from __future__ import annotations

from pathlib import Path

from mock_server.config import Exhausted, Mode
from recorder.cassette import open_cassette
from tests.cluster.conftest import start_instances
from tests.emulator import ApiClient, RunningEmulator, emulator_config

CASSETTE = Path(__file__).resolve().parents[2] / "cassettes/examples/counter-flow.msgpack"
RECORDED = "http://127.0.0.1:8765/counter"


async def flow(clients: list[ApiClient]) -> list[tuple[int, bytes]]:
    """Two sessions of the recorded flow, interleaved, each request to the next client."""
    turn = iter(range(1000))
    answers: list[tuple[int, bytes]] = []

    async def call(method: str, path: str, body=None) -> dict:
        client = clients[next(turn) % len(clients)]
        status, data = await client.call(method, path, body)
        answers.append((status, client.last_raw))
        return data

    one = (await call("POST", "/v1/sessions", {"maxTtlSeconds": 300}))["session"]["id"]
    two = (await call("POST", "/v1/sessions", {"maxTtlSeconds": 300}))["session"]["id"]
    steps = [
        {"type": "goto", "payload": {"url": RECORDED}},
        {"type": "click", "payload": {"selector": "#inc"}},
        {"type": "click", "payload": {"selector": "#inc"}},
        {"type": "query", "payload": {"selector": "#count"}},
        {"type": "content", "payload": {"format": "text"}},
        {"type": "click", "payload": {"selector": "#inc"}},  # past the recording: repeats
    ]
    for step in steps:
        for sid in (one, two):
            await call("POST", f"/v1/sessions/{sid}/actions", step)
    await call("POST", f"/v1/sessions/{one}/actions", {"type": "goto", "payload": {"url": "x"}})
    for sid in (one, two):
        await call("GET", f"/v1/sessions/{sid}")
        await call("DELETE", f"/v1/sessions/{sid}")
    await call("GET", f"/v1/sessions/{one}")
    return answers


async def test_three_instances_round_robin_replay_as_one(redis_server):
    single = await RunningEmulator(emulator_config(cassettes=(CASSETTE,), mode=Mode.REPLAY)).start()
    try:
        expected = await flow([single])
    finally:
        await single.stop()
    instances = await start_instances(3, redis_server.url, cassettes=(CASSETTE,), mode=Mode.REPLAY)
    try:
        answers = await flow(instances)
        for instance in instances:
            assert not instance.app[_browser()].launched
    finally:
        for instance in instances:
            await instance.stop()
    assert [a[0] for a in answers] == [a[0] for a in expected]
    assert answers == expected
    assert any(status == 502 for status, _ in answers)  # the unrecorded goto is a miss


def _browser():
    from mock_server.state import BROWSER

    return BROWSER


ONESHOT = CASSETTE.with_name("oneshot.msgpack")


async def test_oneshot_cursors_are_the_clusters(redis_server):
    """Recorded once, asked twice with `--exhausted error`: the second ask is a miss whichever
    instance answers it, as on one instance."""
    path = recorded_oneshot_path()
    instances = await start_instances(
        2, redis_server.url, cassettes=(ONESHOT,), mode=Mode.REPLAY, exhausted=Exhausted.ERROR
    )
    try:
        statuses = []
        for instance in instances:
            async with instance.http.get(instance.url + path) as resp:
                statuses.append(resp.status)
        assert statuses == [200, 502]
    finally:
        for instance in instances:
            await instance.stop()


def recorded_oneshot_path() -> str:
    with open_cassette(ONESHOT) as cassette:
        entry = next(e for e in cassette.entries if e.path.endswith("/content"))
        return f"{entry.path.replace('<redacted>', 'anyhash')}?{entry.query}"

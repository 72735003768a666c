"""Cluster mode with a real Redis and three real instances: any instance answers for any
session, the per-user limit holds across them, atomically."""

from __future__ import annotations

import asyncio

import pytest

from tests.cluster.conftest import start_instances
from tests.contract.schemas import validate

pytestmark = pytest.mark.browser


def shape(value):
    """The shape of an answer: keys and value types, recursively."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(v) for v in value]
    return type(value).__name__


async def test_create_on_a_act_on_b_get_on_c_delete_on_b(instances, pages):
    a, b, c = instances
    created = await a.create({"maxTtlSeconds": 300})
    sid = created["id"]
    await b.act(sid, "goto", {"url": pages.url("/counter")})
    await c.act(sid, "click", {"selector": "#inc"})
    found = await b.act(sid, "query", {"selector": "#count"})
    assert found["elements"][0]["text"] == "1"
    title_b = await b.act(sid, "title")
    title_a = await a.act(sid, "title")
    assert title_a == title_b
    got = await c.get(sid)
    assert got["status"] == "active"
    assert got["actionCount"] == 5
    assert got["actionBreakdown"]["title"] == {"total": 2, "success": 2, "error": 0}
    closed = await b.close(sid)
    assert closed["status"] == "closed" and closed["billedCredits"] == 1
    assert await a.get(sid) == closed
    status, body = await c.call(
        "POST", f"/v1/sessions/{sid}/actions", {"type": "title", "payload": {}}
    )
    assert status == 409, body
    validate(body, "InactiveSessionActionResponse")
    assert body["session"]["status"] == "closed"
    # The owner freed the page of the session closed elsewhere.
    await asyncio.wait_for(_until(lambda: a.app[_registry()].local(sid) is None), 5)


async def test_answers_have_the_shape_of_one_instance(instances, pages, emulator):
    a, b, _ = instances
    one = await emulator.create({"maxTtlSeconds": 120})
    many = await a.create({"maxTtlSeconds": 120})
    assert shape(one) == shape(many)
    for action, payload in (("goto", {"url": pages.url("/counter")}), ("title", {})):
        alone = await emulator.act(one["id"], action, payload)
        routed = await b.act(many["id"], action, payload)
        assert shape(alone) == shape(routed)
    assert shape(await emulator.get(one["id"])) == shape(await b.get(many["id"]))
    assert shape(await emulator.close(one["id"])) == shape(await b.close(many["id"]))


async def test_limit_holds_across_instances_under_concurrent_creates(instances):
    async def create(i: int) -> int:
        status, _ = await instances[i % 3].call("POST", "/v1/sessions", {"maxTtlSeconds": 60})
        return status

    statuses = await asyncio.gather(*(create(i) for i in range(12)))
    assert sorted(statuses) == [201] * 5 + [429] * 7
    status, body = await instances[1].call("POST", "/v1/sessions", {})
    assert status == 429 and body["activeSessionCount"] == 5, body
    usage = await instances[2].call("GET", "/__admin/usage", token=None)
    assert usage[1]["users"]["user_123"]["active"] == 5


async def test_admin_cluster_lists_instances_and_their_sessions(instances):
    a, b, c = instances
    await a.create({})
    await a.create({})
    await c.create({})
    status, body = await b.call("GET", "/__admin/cluster", token=None)
    assert status == 200 and body["count"] == 3, body
    counts = {i["id"]: i["activeSessions"] for i in body["instances"]}
    assert sorted(counts.values()) == [0, 1, 2]
    addresses = {i["address"] for i in body["instances"]}
    assert a.url in addresses or len(addresses) == 3
    status, listed = await b.call("GET", "/__admin/sessions", token=None)
    assert listed["count"] == 3


def _registry():
    from mock_server.state import REGISTRY

    return REGISTRY


async def _until(predicate) -> None:
    while not predicate():
        await asyncio.sleep(0.01)


async def test_admin_reset_on_one_instance_resets_the_cluster(instances):
    a, b, c = instances
    sid = (await a.create())["id"]
    _, start = await c.call("GET", "/__admin/clock", token=None)
    await b.advance(30)
    status, _ = await b.call("POST", "/__admin/reset", {}, token=None)
    assert status == 200
    status, _ = await c.call("GET", f"/v1/sessions/{sid}")
    assert status == 404
    _, now = await a.call("GET", "/__admin/clock", token=None)
    assert now["now"] == start["now"]
    _, usage = await c.call("GET", "/__admin/usage", token=None)
    assert usage["users"] == {}


async def test_closed_sessions_are_forgotten_after_keep_closed_their_usage_kept(redis_server):
    a, b = await start_instances(2, redis_server.url, keep_closed=60.0)
    try:
        sid = (await a.create())["id"]
        await a.act(sid, "title")
        await b.close(sid)
        await a.advance(59)
        assert (await b.get(sid))["status"] == "closed"
        await b.advance(2)
        status, _ = await a.call("GET", f"/v1/sessions/{sid}")
        assert status == 404
        _, usage = await b.call("GET", "/__admin/usage", token=None)
        assert usage["users"]["user_123"] == {
            "sessions": 1,
            "active": 0,
            "creditsBilled": 1,
            "actions": 1,
        }
        _, listed = await a.call("GET", "/__admin/sessions", token=None)
        assert listed["count"] == 0
    finally:
        await asyncio.gather(a.stop(), b.stop())

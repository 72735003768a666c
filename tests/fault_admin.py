"""Fault rules through a running server's admin API, for tests: add one, list them, read the
journal."""

from __future__ import annotations

from typing import Any


async def add_fault(server: Any, rule: dict[str, Any]) -> dict[str, Any]:
    """POST the rule to `/__admin/faults` (it must be accepted: 201); the rule as answered."""
    status, body = await server.call("POST", "/__admin/faults", rule, token=None)
    assert status == 201, body
    return body


async def fault_list(server: Any) -> list[dict[str, Any]]:
    status, body = await server.call("GET", "/__admin/faults", token=None)
    assert status == 200, body
    return body["faults"]


async def journal(server: Any) -> list[dict[str, Any]]:
    status, body = await server.call("GET", "/__admin/requests", token=None)
    assert status == 200, body
    return body["requests"]

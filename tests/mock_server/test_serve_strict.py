"""`capture-replay serve --strict[=documented]` as a real process replaying the login example
(no browser): what each level refuses with 400, and what it lets through with its warning."""

from __future__ import annotations

import json
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import aiohttp

from recorder.records import WARNING_HEADER
from tests.emulator import TOKEN
from tests.serve_process import serve_process

ROOT = Path(__file__).resolve().parents[2]
LOGIN = ROOT / "cassettes" / "examples" / "login-form.msgpack"
FILL = {"type": "fill", "payload": {"selector": "#user", "value": "demo"}}  # as recorded


def serving(*options: str) -> AbstractContextManager[str]:
    return serve_process("--clock", "manual", "--cassette", str(LOGIN), *options)


async def session_flow(url: str) -> list[tuple[int, dict[str, Any], list[str]]]:
    """Create, the recorded fill, a fill with an unknown field: status, body, warnings."""
    answers = []
    async with aiohttp.ClientSession(
        headers={"Authorization": TOKEN}, timeout=aiohttp.ClientTimeout(total=30)
    ) as http:

        async def call(path: str, body: Any) -> dict[str, Any]:
            async with http.post(url + path, data=json.dumps(body)) as resp:
                answer = await resp.json()
                answers.append((resp.status, answer, resp.headers.getall(WARNING_HEADER, [])))
                return answer

        sid = (await call("/v1/sessions", {}))["session"]["id"]
        await call(f"/v1/sessions/{sid}/actions", FILL)
        bogus = {"type": "fill", "payload": {**FILL["payload"], "bogus": True}}
        await call(f"/v1/sessions/{sid}/actions", bogus)
    return answers


async def test_strict_refuses_unknown_fields_and_lets_chosen_names_through():
    with serving("--strict") as url:
        created, fill, bogus = await session_flow(url)
    assert created[0] == 201 and created[2] == []
    assert fill[0] == 200 and len(fill[2]) == 2  # selector and value: chosen, with warnings
    assert bogus[0] == 400 and bogus[1]["error"] == bogus[2][-1]
    assert bogus[1]["error"].startswith("fill payload.bogus is unknown")
    assert bogus[1]["expiresInSeconds"] == 300


async def test_strict_documented_refuses_chosen_names_too():
    with serving("--strict=documented") as url:
        _, fill, _ = await session_flow(url)
    assert fill[0] == 400
    assert fill[1]["error"].startswith("fill payload.selector is not named by Capture's docs")


async def test_without_strict_everything_is_answered_with_warnings():
    with serving() as url:
        _, fill, bogus = await session_flow(url)
    assert fill[0] == 200 and bogus[0] == 502  # a replay miss: the body was not recorded
    assert any("payload.bogus is unknown" in w for w in bogus[2])

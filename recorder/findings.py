"""What in a request the real Capture API may not know: fields capture-replay chose or does not
know, and selector syntax Capture's docs do not describe.

`request_findings(method, path, query, body)` classifies one request with the tables of
`recorder.fields` (the create body, an action and each step of a batch, a one-shot query, each
item of a batch request, an MCP tool call as the REST request it stands for) and
returns its findings, each one line of text whose wording does not depend on the values sent
(so equal findings count together, and no typed text or secret is ever repeated). The emulator
answers them as warnings or, in strict mode, refuses them; the pytest plugin and audit read them.
`header_values` is what one answer carries (at most `MAX_HEADERS`), and `with_findings` keeps a
recorded exchange's findings in its stored answer when its upstream (the real API) sent none.
Plain functions: imports no aiohttp, and never `mock_server`.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any
from urllib.parse import parse_qsl, urlencode

from recorder.bodies import json_or_none
from recorder.contract import batch_parts, is_action_path, is_create, signed_parts
from recorder.fields import (
    ACTION_REQUEST,
    ACTIONS,
    ANY_ACTION,
    CREATE,
    ONESHOT,
    ONESHOT_SELECTOR_FIELDS,
    PLAYWRIGHT_ENGINES,
    PLAYWRIGHT_STARTS,
    PLAYWRIGHT_SYNTAX,
    SELECTOR_FIELDS,
    Fields,
    Kind,
)
from recorder.mcp_tools import is_mcp_path, messages_in, query_of, rest_call, rest_payload
from recorder.records import WARNING_HEADER, Interaction

_NAME_LIMIT = 64
# Warning headers on one answer at most (a payload of a thousand unknown keys must not make a
# thousand), then one `... and N more`.
MAX_HEADERS = 20
_QUOTED = re.compile(r""""(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'""")


class Level(StrEnum):
    """How far a finding is from the contract: `chosen` (a capture-replay choice or alias),
    `unknown` (a field nobody names), `selector` (syntax the docs do not describe)."""

    CHOSEN = "chosen"
    UNKNOWN = "unknown"
    SELECTOR = "selector"


@dataclass(frozen=True, slots=True)
class Finding:
    level: Level
    message: str

    def to_json(self) -> dict[str, str]:
        return {"level": self.level.value, "warning": self.message}


def shown(name: str) -> str:
    """A field name as a finding shows it: one printable ASCII line, at most 64 characters."""
    if len(name) <= _NAME_LIMIT and name.isascii() and name.isprintable():
        return name
    clipped = name[:_NAME_LIMIT] + ("..." if len(name) > _NAME_LIMIT else "")
    return json.dumps(clipped)


# Selectors repeat (a recorder sees the same few on every exchange): remember recent answers.
@functools.lru_cache(maxsize=1024)
def playwright_syntax(selector: str) -> str | None:
    """The Playwright-only syntax `selector` uses (`text=`, `>>`, `:has-text(`…), or None."""
    text = selector.strip()
    lowered = text.lower()
    for engine in PLAYWRIGHT_ENGINES:
        if lowered.startswith(engine):
            return engine
    for start in PLAYWRIGHT_STARTS:
        if text.startswith(start):
            return "a leading " + start + (" (XPath)" if start in ("//", "..") else " (text)")
    bare = _QUOTED.sub('""', text)
    for token in PLAYWRIGHT_SYNTAX:
        if token in bare:
            return token
    return None


def _selector_finding(subject: str, value: Any) -> Finding | None:
    if not isinstance(value, str):
        return None
    syntax = playwright_syntax(value)
    if syntax is None:
        return None
    return Finding(
        Level.SELECTOR,
        f"{subject} uses {syntax}: Playwright-only selector syntax that Capture's docs do not "
        "describe (they take CSS selectors)",
    )


def _field_findings(names: list[str], tables: tuple[Fields, ...], subject: str) -> list[Finding]:
    found = []
    for name in names:
        kinds = [t.kind(name) for t in tables]
        if Kind.DOCUMENTED in kinds:
            continue
        where = f"{subject}{shown(name)}"
        if Kind.CHOSEN in kinds:
            note = next(t.chosen[name] for t in tables if name in t.chosen)
            found.append(Finding(Level.CHOSEN, f"{where} is not named by Capture's docs: {note}"))
        else:
            found.append(
                Finding(
                    Level.UNKNOWN,
                    f"{where} is unknown: neither Capture's docs nor capture-replay name it",
                )
            )
    return found


def action_findings(body: Any) -> list[Finding]:
    """Findings of a parsed action request (and of each step of a batch); nothing for a
    request that is not a valid action request (that one is a 400 anyway)."""
    if not isinstance(body, dict) or set(body) - set(ACTION_REQUEST.documented):
        return []
    kind, payload = body.get("type"), body.get("payload")
    if not isinstance(kind, str) or kind not in ACTIONS:
        return []
    if payload is None or payload == []:
        payload = {}
    if not isinstance(payload, dict):
        return []
    found = _field_findings(list(payload), (ACTIONS[kind], ANY_ACTION), f"{kind} payload.")
    for name in SELECTOR_FIELDS:
        finding = _selector_finding(f"{kind} payload.{name}", payload.get(name))
        if finding is not None:
            found.append(finding)
    steps = payload.get("actions") if kind == "batch" else None
    for step in steps if isinstance(steps, list) else ():
        if not (isinstance(step, dict) and step.get("type") == "batch"):
            found += action_findings(step)
    return found


def create_findings(body: Any) -> list[Finding]:
    if not isinstance(body, dict):
        return []
    return _field_findings(list(body), (CREATE,), "create field ")


def oneshot_findings(endpoint: str, query: str) -> list[Finding]:
    """Findings of a one-shot query (empty values count as absent, as the endpoints read it)."""
    fields = ONESHOT.get(endpoint)
    if fields is None:
        return []
    values = {k: v for k, v in parse_qsl(query, keep_blank_values=True) if v != ""}
    found = _field_findings(list(values), (fields,), f"{endpoint} option ")
    for name in ONESHOT_SELECTOR_FIELDS:
        finding = _selector_finding(f"{endpoint} option {name}", values.get(name))
        if finding is not None:
            found.append(finding)
    return found


def batch_findings(endpoint: str, body: Any) -> list[Finding]:
    """Findings of a batch request (`POST /batch-image|pdf/{apiKey}`): each item's `options`
    read as the query of its one-shot endpoint, so a finding reads (and counts) as that
    one-shot's would."""
    items = body.get("data") if isinstance(body, dict) else None
    found = []
    for item in items if isinstance(items, list) else ():
        options = item.get("options") if isinstance(item, dict) else None
        if isinstance(options, dict):
            found += oneshot_findings(endpoint, urlencode(query_of(options)))
    return found


def unique(findings: list[Finding]) -> list[Finding]:
    return list(dict.fromkeys(findings))


def _json(body: bytes) -> Any:
    try:
        return json_or_none(body)
    except RecursionError:  # nested too deeply: no request the API would take
        return None


def request_findings(method: str, path: str, query: str, body: bytes) -> list[Finding]:
    """The findings of one request on Capture's wire, each once, in the order met."""
    method = method.upper()
    if method == "POST" and is_action_path(path):
        return unique(action_findings(_json(body)))
    if is_create(method, path):
        return unique(create_findings(_json(body)))
    parts = signed_parts(path)
    if method == "GET" and parts is not None:
        return unique(oneshot_findings(parts[2], query))
    batch = batch_parts(path) if method == "POST" else None
    if batch is not None:
        return unique(batch_findings(batch[0], _json(body)))
    if method == "POST" and is_mcp_path(path):
        return unique(mcp_findings(body))
    return []


def tool_findings(tool: str, arguments: dict[str, Any], user: str) -> list[Finding]:
    """The findings of an MCP tool call: those of the REST request it stands for
    (`recorder.mcp_tools.rest_call`)."""
    call = rest_call(tool, arguments, user)
    if call is None:
        return []
    query, body = rest_payload(tool, arguments)
    return request_findings(call.method, call.path, query, body)


def mcp_findings(body: bytes) -> list[Finding]:
    """The findings of the `tools/call` requests in an MCP request body (the user is not
    known here, and no finding's wording depends on it)."""
    try:
        messages = messages_in(body)
    except RecursionError:  # nested too deeply: no request a server would take
        return []
    found = []
    for message in messages:
        params = message.get("params")
        if message.get("method") != "tools/call" or not isinstance(params, dict):
            continue
        name, arguments = params.get("name"), params.get("arguments")
        if isinstance(name, str):
            found += tool_findings(name, arguments if isinstance(arguments, dict) else {}, "-")
    return found


def header_values(findings: list[Finding]) -> list[str]:
    """The `X-Capture-Replay-Warning` values of an answer to a request with these findings."""
    values = [f.message for f in findings[:MAX_HEADERS]]
    if len(findings) > MAX_HEADERS:
        values.append(f"... and {len(findings) - MAX_HEADERS} more")
    return values


def with_findings(item: Interaction) -> Interaction:
    """`item` as the recorder stores it: when the answer carries no warning header (the real
    API sends none), its request's findings are added to the stored answer's headers, so audit
    and the report list them for any upstream; an answer with the header (the emulator's own
    findings) is kept as it came, never counted twice."""
    if item.response.warnings:
        return item
    req = item.request
    values = header_values(request_findings(req.method, req.path, req.query, req.body))
    if not values:
        return item
    headers = (*item.response.headers, *((WARNING_HEADER, v) for v in values))
    return replace(item, response=replace(item.response, headers=headers))

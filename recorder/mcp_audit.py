"""What recorded MCP sessions (`/mcp/v1`) did and cost: per `Mcp-Session-Id`, its user, the tool
calls by name (and how many were tool errors), the browser sessions its tools created and the
credits they were billed, and the one-shot captures it ran.

Credits of a browser session: the last `billedCredits` a `browser_session_get` or
`browser_session_close` answered (source "billed"); for one never closed in the recording, its
TTL from a `startedAt`/`expiresAt` pair it answered, billed at expiry by
`recorder.contract`'s rule (source "computed"); with neither, 0 (source "unknown").
`inspect`, `audit` and `report` share `mcp_label` and `audit_mcp`.

Must not import `mock_server`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from recorder.contract import credits_between
from recorder.mcp_tools import (
    CAPTURE_ENDPOINTS,
    CLOSE,
    CREATE,
    GET,
    McpCall,
    is_mcp_path,
    mcp_calls,
    mcp_session_of,
    messages_in,
)
from recorder.records import Interaction


def mcp_label(body: bytes) -> str | None:
    """A short name for an MCP request: `browser_session_act goto`, `capture_pdf https://…`,
    `tools/list`, `notifications/initialized`; None when the body holds no JSON-RPC message."""
    labels = []
    for message in messages_in(body):
        method = message.get("method")
        if not isinstance(method, str):
            continue
        params = message.get("params") if isinstance(message.get("params"), dict) else {}
        if method == "tools/call" and isinstance(params.get("name"), str):
            args = params.get("arguments") if isinstance(params.get("arguments"), dict) else {}
            main = args.get("type") or args.get("url")
            labels.append(params["name"] + (f" {main}" if isinstance(main, str) else ""))
        else:
            labels.append(method)
    return ", ".join(labels) or None


def mcp_session_key(item: Interaction) -> str | None:
    """`mcp <Mcp-Session-Id>` for an MCP exchange (its lane, its row group), else None."""
    if not is_mcp_path(item.request.path):
        return None
    sid = mcp_session_of(item.request.headers, item.response.headers)
    return f"mcp {sid}" if sid else "mcp (no session)"


@dataclass(frozen=True, slots=True)
class ToolStats:
    tool: str
    count: int
    errors: int


@dataclass(frozen=True, slots=True)
class McpSessionAudit:
    mcp_session_id: str
    user: str | None
    exchanges: int
    tools: tuple[ToolStats, ...]
    browser_sessions: tuple[str, ...]
    credits: int
    credits_source: str  # "billed", "computed", "unknown" (the worst of its browser sessions)
    captures: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(slots=True)
class _BrowserSession:
    billed: int | None = None
    ttl_credits: int | None = None


@dataclass(slots=True)
class _Facts:
    user: str | None = None
    exchanges: int = 0
    counts: dict[str, list[int]] = field(default_factory=dict)  # tool -> [calls, errors]
    browser: dict[str, _BrowserSession] = field(default_factory=dict)
    captures: int = 0


def _time(value: Any) -> float | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _observe(facts: _Facts, call: McpCall) -> None:
    tool = call.tool
    if tool is None:
        return
    counts = facts.counts.setdefault(tool, [0, 0])
    counts[0] += 1
    counts[1] += call.is_error
    if call.is_error:
        return
    if tool in CAPTURE_ENDPOINTS:
        facts.captures += 1
    answer = call.structured() or {}
    sid = answer.get("sessionId")
    if not isinstance(sid, str):
        return
    if tool == CREATE:
        facts.browser.setdefault(sid, _BrowserSession())
    if tool in (GET, CLOSE):
        state = facts.browser.setdefault(sid, _BrowserSession())
        if isinstance(answer.get("billedCredits"), int):
            state.billed = answer["billedCredits"]
        start, end = _time(answer.get("startedAt")), _time(answer.get("expiresAt"))
        if start is not None and end is not None:
            state.ttl_credits = credits_between(start, max(start, end))


def audit_mcp(items: Iterable[Interaction]) -> tuple[McpSessionAudit, ...]:
    """The MCP sessions of recorded exchanges, in the order they started."""
    sessions: dict[str, _Facts] = {}
    for item in items:
        key = mcp_session_key(item)
        if key is None:
            continue
        facts = sessions.setdefault(key.removeprefix("mcp "), _Facts())
        facts.exchanges += 1
        facts.user = facts.user or item.user
        for call in mcp_calls(item.request.body, item.response.headers, item.response.body):
            _observe(facts, call)
    out = []
    for sid, facts in sessions.items():
        credits, sources = 0, set()
        for state in facts.browser.values():
            if state.billed is not None:
                credits, source = credits + state.billed, "billed"
            elif state.ttl_credits is not None:
                credits, source = credits + state.ttl_credits, "computed"
            else:
                source = "unknown"
            sources.add(source)
        worst = next((s for s in ("unknown", "computed") if s in sources), "billed")
        out.append(
            McpSessionAudit(
                mcp_session_id=sid,
                user=facts.user,
                exchanges=facts.exchanges,
                tools=tuple(ToolStats(t, c, e) for t, (c, e) in sorted(facts.counts.items())),
                browser_sessions=tuple(facts.browser),
                credits=credits,
                credits_source=worst,
                captures=facts.captures,
            )
        )
    return tuple(out)


def mcp_audit_lines(audits: Iterable[McpSessionAudit]) -> list[str]:
    """The audit's text for MCP sessions."""
    lines = []
    for a in audits:
        lines.append(
            f"mcp session {a.mcp_session_id} (user {a.user or '(unknown)'}): {a.exchanges} "
            f"exchanges, {len(a.browser_sessions)} browser sessions, {a.credits} credits "
            f"({a.credits_source}), {a.captures} captures"
        )
        for t in a.tools:
            lines.append(f"    {t.tool:24} {t.count:>4} × tool errors {t.errors}")
    return lines

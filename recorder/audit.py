"""Audit of recorded traffic: per user and session, duration, credits, actions by type (error rate,
latency p50/p95) and 4xx/5xx counts; plus a secret scan for token-shaped strings or given literals.

Sessions are those a create answered (2xx with a `session.id`); exchanges naming any other session
id (a 404 for an unknown id, a session created before the recording began) are counted apart,
never billed. Credits: the API's `billedCredits` from a GET/DELETE answer when present, otherwise
`recorder.contract`'s billing rule from create to close (or to expiry).
A finding of the secret scan names where the secret is, never the secret itself. Each session
also lists the warnings kept in the recorded answers (`X-Capture-Replay-Warning`: an emulator
upstream's own, or those the recorder worked out for an upstream that sends none, the real API):
the fields and selectors the real API may not know, with counts.

Must not import `mock_server`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from recorder.bodies import decoded_or_raw
from recorder.cassette import Cassette
from recorder.contract import credits_between, decode_credentials, is_create
from recorder.mcp_audit import McpSessionAudit, audit_mcp
from recorder.mcp_tools import is_mcp_path
from recorder.records import Interaction
from recorder.redaction import encodings_of

_TOKEN = re.compile(rb"\b(Bearer|Basic)\s+([A-Za-z0-9+/_-]{6,}={0,2})", re.IGNORECASE)


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile of `values` (0 for none)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


@dataclass(frozen=True, slots=True)
class ActionStats:
    type: str
    count: int
    errors: int
    error_rate: float
    p50_ms: float
    p95_ms: float


@dataclass(frozen=True, slots=True)
class WarningCount:
    """A warning recorded in a session's answers, and how many answers carried it."""

    warning: str
    count: int


@dataclass(frozen=True, slots=True)
class SessionAudit:
    session_id: str
    user: str | None
    status: str
    duration_seconds: float
    credits: int
    credits_source: str  # "billed" (the API's billedCredits) or "computed"
    exchanges: int
    actions: tuple[ActionStats, ...]
    client_errors: int  # 4xx answers
    server_errors: int  # 5xx answers
    # fields the real API may not know: recorded X-Capture-Replay-Warning values, in order met
    warnings: tuple[WarningCount, ...] = ()


@dataclass(frozen=True, slots=True)
class UserAudit:
    user: str | None
    sessions: int
    credits: int
    actions: int
    action_errors: int
    client_errors: int
    server_errors: int


@dataclass(frozen=True, slots=True)
class SecretFinding:
    cassette: str
    seq: int
    where: str  # e.g. "request header Authorization", "response body"
    kind: str


@dataclass(frozen=True, slots=True)
class AuditReport:
    sessions: tuple[SessionAudit, ...]
    users: tuple[UserAudit, ...]
    findings: tuple[SecretFinding, ...]
    # exchanges naming a session no recorded create answered (never billed)
    uncreated_exchanges: int = 0
    # MCP sessions (`/mcp/v1`): their tool calls and the credits of the browser sessions they made
    mcp_sessions: tuple[McpSessionAudit, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "users": [asdict(u) for u in self.users],
            "sessions": [asdict(s) for s in self.sessions],
            "findings": [asdict(f) for f in self.findings],
            "uncreatedExchanges": self.uncreated_exchanges,
            "mcpSessions": [m.to_json() for m in self.mcp_sessions],
        }


@dataclass(slots=True)
class _SessionFacts:
    session_id: str
    user: str | None = None
    created: float | None = None
    first: float | None = None
    last_end: float = 0.0
    closed: float | None = None
    ttl: float | None = None
    billed: int | None = None
    duration: float | None = None
    status: str = "unknown"
    exchanges: int = 0
    client_errors: int = 0
    server_errors: int = 0
    latencies: dict[str, list[float]] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    warnings: dict[str, int] = field(default_factory=dict)


def _failed(item: Interaction) -> bool:
    if item.response.status >= 400:
        return True
    body = item.response.json()
    return isinstance(body, dict) and body.get("success") is False


def _observe(facts: _SessionFacts, item: Interaction) -> None:
    req, resp = item.request, item.response
    facts.exchanges += 1
    facts.user = facts.user or item.user
    facts.first = item.start if facts.first is None else min(facts.first, item.start)
    facts.last_end = max(facts.last_end, item.start + item.duration)
    for warning in resp.warnings:
        facts.warnings[warning] = facts.warnings.get(warning, 0) + 1
    if 400 <= resp.status < 500:
        facts.client_errors += 1
    elif resp.status >= 500:
        facts.server_errors += 1
    body = resp.json() if resp.status < 300 else None
    session = body.get("session") if isinstance(body, dict) else None
    if isinstance(session, dict):
        if isinstance(session.get("billedCredits"), int) and req.method in ("GET", "DELETE"):
            facts.billed = session["billedCredits"]
        if isinstance(session.get("durationSeconds"), int | float):
            facts.duration = float(session["durationSeconds"])
        if isinstance(session.get("status"), str):
            facts.status = session["status"]
        ttl = session.get("maxTtlSeconds") or (session.get("options") or {}).get("maxTtlSeconds")
        if isinstance(ttl, int | float) and facts.ttl is None:
            facts.ttl = float(ttl)
    if is_create(req.method, req.path) and resp.status < 300:
        facts.created = item.start
    elif req.method == "DELETE" and resp.status < 300 and facts.closed is None:
        facts.closed = item.start + item.duration
        facts.status = facts.status if facts.status != "active" else "closed"
    if item.action_type is not None:
        facts.latencies.setdefault(item.action_type, []).append(item.duration * 1000)
        facts.errors[item.action_type] = facts.errors.get(item.action_type, 0) + _failed(item)


def _session_audit(facts: _SessionFacts) -> SessionAudit:
    begin = facts.created if facts.created is not None else (facts.first or 0.0)
    if facts.closed is not None:
        end = facts.closed
    elif facts.ttl is not None:
        end = begin + facts.ttl  # never closed in the recording: billed at expiry
    else:
        end = facts.last_end
    seconds = facts.duration if facts.duration is not None else max(0.0, end - begin)
    if facts.billed is not None:
        credits, source = facts.billed, "billed"
    else:
        credits, source = credits_between(begin, max(begin, end)), "computed"
    actions = tuple(
        ActionStats(
            type=kind,
            count=len(lat),
            errors=facts.errors[kind],
            error_rate=round(facts.errors[kind] / len(lat), 4),
            p50_ms=round(percentile(lat, 0.50), 3),
            p95_ms=round(percentile(lat, 0.95), 3),
        )
        for kind, lat in sorted(facts.latencies.items())
    )
    return SessionAudit(
        session_id=facts.session_id,
        user=facts.user,
        status=facts.status,
        duration_seconds=round(seconds, 3),
        credits=credits,
        credits_source=source,
        exchanges=facts.exchanges,
        actions=actions,
        client_errors=facts.client_errors,
        server_errors=facts.server_errors,
        warnings=tuple(WarningCount(w, n) for w, n in facts.warnings.items()),
    )


def _is_credential(token: bytes) -> bool:
    creds = decode_credentials(token.decode("ascii"), padded=True)
    return creds is not None and f"{creds[0]}:{creds[1]}".isprintable()


def _fields(item: Interaction) -> Iterable[tuple[str, bytes]]:
    req, resp = item.request, item.response
    for name, value in req.headers:
        yield f"request header {name}", value.encode("utf-8", "surrogateescape")
    yield "request path", req.path.encode("utf-8", "surrogateescape")
    yield "request query", req.query.encode("utf-8", "surrogateescape")
    yield "request body", req.body
    for name, value in resp.headers:
        yield f"response header {name}", value.encode("utf-8", "surrogateescape")
    yield "response body", decoded_or_raw(resp.headers, resp.body)


def scan_secrets(
    item: Interaction, cassette: str, secrets: Iterable[str] = ()
) -> list[SecretFinding]:
    needles = [(s, n) for s in secrets for n in encodings_of(s)]
    found: list[SecretFinding] = []
    for where, data in _fields(item):
        if not data:
            continue
        for match in _TOKEN.finditer(data):
            if _is_credential(match.group(2)):
                kind = f"{match.group(1).decode().title()} token of base64(user:secret)"
                found.append(SecretFinding(cassette, item.seq, where, kind))
        if any(needle in data for _, needle in needles):
            found.append(SecretFinding(cassette, item.seq, where, "a given secret"))
    return found


def audit_cassettes(cassettes: Iterable[Cassette], secrets: Iterable[str] = ()) -> AuditReport:
    secrets = tuple(secrets)
    facts: dict[tuple[str, str], _SessionFacts] = {}
    findings: list[SecretFinding] = []
    mcp: list[Interaction] = []
    for cassette in cassettes:
        for item in cassette.interactions():
            findings += scan_secrets(item, str(cassette.path), secrets)
            if item.session_id is None:
                if is_mcp_path(item.request.path):
                    mcp.append(item)
                continue
            key = (str(cassette.path), item.session_id)
            _observe(facts.setdefault(key, _SessionFacts(item.session_id)), item)
    created = [f for f in facts.values() if f.created is not None]
    uncreated = sum(f.exchanges for f in facts.values() if f.created is None)
    sessions = tuple(_session_audit(f) for f in created)
    users: dict[str | None, list[SessionAudit]] = {}
    for s in sessions:
        users.setdefault(s.user, []).append(s)
    user_audits = tuple(
        UserAudit(
            user=user,
            sessions=len(group),
            credits=sum(s.credits for s in group),
            actions=sum(a.count for s in group for a in s.actions),
            action_errors=sum(a.errors for s in group for a in s.actions),
            client_errors=sum(s.client_errors for s in group),
            server_errors=sum(s.server_errors for s in group),
        )
        for user, group in sorted(users.items(), key=lambda kv: kv[0] or "")
    )
    return AuditReport(sessions, user_audits, tuple(findings), uncreated, audit_mcp(mcp))


@dataclass(frozen=True, slots=True)
class BudgetCheck:
    """Credits billed across the audited cassettes against a budget, with the costliest sessions."""

    budget: int
    total: int
    top: tuple[SessionAudit, ...]  # by credits, highest first

    @property
    def exceeded(self) -> bool:
        return self.total > self.budget

    def to_json(self) -> dict[str, Any]:
        return {
            "budget": self.budget,
            "total": self.total,
            "exceeded": self.exceeded,
            "top": [
                {"sessionId": s.session_id, "user": s.user, "credits": s.credits} for s in self.top
            ],
        }


def check_budget(report: AuditReport, budget: int, top: int = 5) -> BudgetCheck:
    """Sum the credits of every session in `report`; the `top` costliest sessions come along."""
    ranked = sorted(report.sessions, key=lambda s: (-s.credits, s.session_id))
    total = sum(s.credits for s in report.sessions) + sum(m.credits for m in report.mcp_sessions)
    return BudgetCheck(budget, total, tuple(ranked[:top]))

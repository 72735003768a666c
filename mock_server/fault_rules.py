"""Fault rules: what a rule is (validated field by field), which requests it matches, when it
fires, and the book of rules a server holds (with how often each matched and fired).

A rule matches on `method`, `path` (a glob, `pathlib`'s segment-wise match: `*` stays within one
path segment, a relative pattern matches from the right), `action` (an action type), `session`
(an id), `user` and `endpoint` (a one-shot endpoint); omitted fields match anything. It fires
after `after` matching requests went through, at most `times` times, each time with
`probability` drawn from the rule's own generator, seeded by the server's fault seed and the
rule id (a run is reproducible, and one rule's draws do not depend on other rules' traffic). What
it does: answer `status` (with `body`), wait `delay_ms`, end the session (`end_session`), or
drop the connection (`reset`). A `status` must be one the contract documents for every route the
rule can match (`recorder.statuses`); anything else is a 400 naming the field.

The answering (an aiohttp middleware) and the admin routes are `mock_server.faults`'; this module
imports no aiohttp.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from mock_server.actions import ActionType
from mock_server.errors import BadRequestError, NotFoundError
from recorder.contract import ONESHOT_ENDPOINTS
from recorder.mcp_tools import MCP_PATH, is_mcp_path
from recorder.statuses import (
    ROUTE_CALLS,
    SESSION_ROUTES,
    STATUSES,
    Route,
    route_of,
)

MATCH_FIELDS = ("method", "path", "action", "session", "user", "endpoint")
WHEN_FIELDS = ("after", "times", "probability")
WHAT_FIELDS = ("status", "body", "delay_ms", "end_session", "reset")
RULE_FIELDS = ("id", *MATCH_FIELDS, *WHEN_FIELDS, *WHAT_FIELDS)
MAX_DELAY_MS = 600_000
_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
_METHOD = re.compile(r"^[A-Za-z]{1,16}$")


class EndSession(StrEnum):
    EXPIRE = "expire"  # the session expires now: billed, slot freed, 409 from then on
    CRASH = "crash"  # the session ends with status `error`, as when its browser crashes


class FaultRuleError(BadRequestError):
    """A malformed rule (400); `field` names the offending field."""

    def __init__(self, name: str, problem: str) -> None:
        super().__init__(f"Invalid fault rule: {name}: {problem}", field=name)
        self.field = name


@dataclass(frozen=True, slots=True)
class Call:
    """What a rule can match in a request."""

    method: str
    path: str
    template: str | None = None  # the route's path template, e.g. /v1/sessions/{session_id}
    action: str | None = None
    session: str | None = None
    user: str | None = None
    endpoint: str | None = None

    @property
    def route(self) -> Route | None:
        return route_of(self.method, self.path)


@dataclass(slots=True)
class FaultRule:
    id: str
    given: dict[str, Any]  # the rule as posted (validated), for listing
    routes: frozenset[Route]  # the documented routes it may match
    route_bound: bool  # only requests on `routes` (status and end_session rules)
    after: int = 0
    times: int | None = None
    probability: float = 1.0
    status: int | None = None
    body: Any = None
    delay_ms: float = 0.0
    end_session: EndSession | None = None
    reset: bool = False
    rng: random.Random = field(default_factory=random.Random)
    matched: int = 0
    fired: int = 0

    def matches(self, call: Call) -> bool:
        g = self.given
        if self.route_bound and call.route not in self.routes:
            return False
        if "method" in g and g["method"] != call.method.upper():
            return False
        if "path" in g and not path_matches(g["path"], call.path, call.template):
            return False
        return all(g[name] == getattr(call, name) for name in MATCH_FIELDS[2:] if name in g)

    def draw(self) -> bool:
        """Whether this matching request fires (counts it; `after`, `times`, `probability`)."""
        self.matched += 1
        if self.matched <= self.after:
            return False
        if self.times is not None and self.fired >= self.times:
            return False
        if self.probability < 1 and self.rng.random() >= self.probability:
            return False
        self.fired += 1
        return True

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, **self.given, "matched": self.matched, "fired": self.fired}


def path_matches(pattern: str, path: str, template: str | None = None) -> bool:
    """`pattern` matches the request path or its route's template, segment by segment."""
    return PurePosixPath(path).match(pattern) or (
        template is not None and PurePosixPath(template).match(pattern)
    )


# -- validation ---------------------------------------------------------------------------------


def _string(rule: dict[str, Any], name: str) -> str | None:
    value = rule.get(name)
    if value is None and name not in rule:
        return None
    if not isinstance(value, str) or not value:
        raise FaultRuleError(name, "must be a non-empty string")
    return value


def _count(rule: dict[str, Any], name: str) -> int | None:
    if name not in rule:
        return None
    value = rule[name]
    if isinstance(value, bool) or not isinstance(value, int):
        raise FaultRuleError(name, f"must be an integer (got {json.dumps(value)})")
    if value < 0:
        raise FaultRuleError(name, f"must not be negative (got {value})")
    return value


def _number(rule: dict[str, Any], name: str, low: float, high: float) -> float | None:
    if name not in rule:
        return None
    value = rule[name]
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise FaultRuleError(name, f"must be a number from {low:g} to {high:g} (got {value!r})")
    return float(value)


def _candidate_routes(rule: dict[str, Any]) -> frozenset[Route]:
    """The documented routes a rule's match fields leave open."""
    routes = set(Route)
    if "method" in rule:
        routes = {r for r in routes if ROUTE_CALLS[r][0] == rule["method"]}
    if "path" in rule:
        pattern = rule["path"]
        routes = {
            r
            for r in routes
            if path_matches(pattern, ROUTE_CALLS[r][1]) or route_of(ROUTE_CALLS[r][0], pattern) is r
        }
    if "action" in rule:
        routes &= {Route.ACTION}
    if "session" in rule:
        routes &= SESSION_ROUTES
    if "endpoint" in rule:
        routes &= {Route.ONESHOT}
    return frozenset(routes)


def _names(routes: set[Route] | frozenset[Route]) -> str:
    return ", ".join(f"{r.value} ({' '.join(ROUTE_CALLS[r])})" for r in Route if r in routes)


def parse_rule(data: Any, rule_id: str, seed: int) -> FaultRule:
    """A validated rule; `FaultRuleError` (400, naming the field) when it is not one."""
    if not isinstance(data, dict):
        raise FaultRuleError("rule", "a fault rule is a JSON object")
    unknown = sorted(set(data) - set(RULE_FIELDS))
    if unknown:
        raise FaultRuleError(unknown[0], f"unknown field; allowed: {', '.join(RULE_FIELDS)}")
    given: dict[str, Any] = {}
    for name in ("method", "path", "action", "session", "user", "endpoint"):
        value = _string(data, name)
        if value is not None:
            given[name] = value
    if "method" in given:
        if not _METHOD.match(given["method"]):
            raise FaultRuleError("method", f"not an HTTP method: {given['method']!r}")
        given["method"] = given["method"].upper()
    if "path" in given and is_mcp_path(given["path"]):
        raise FaultRuleError(
            "path",
            f"{MCP_PATH} itself is never matched: an MCP tool call is matched as the REST request "
            "it runs (browser_session_act as POST /v1/sessions/*/actions, capture_pdf as "
            "endpoint pdf, ...)",
        )
    if "action" in given and given["action"] not in set(ActionType):
        raise FaultRuleError(
            "action", f"unknown action type {given['action']!r}; one of {', '.join(ActionType)}"
        )
    if "endpoint" in given and given["endpoint"] not in ONESHOT_ENDPOINTS:
        raise FaultRuleError(
            "endpoint",
            f"unknown one-shot endpoint {given['endpoint']!r}; one of "
            f"{', '.join(ONESHOT_ENDPOINTS)}",
        )
    after, times = _count(data, "after"), _count(data, "times")
    probability = _number(data, "probability", 0, 1)
    delay = _number(data, "delay_ms", 0, MAX_DELAY_MS)
    for name, value in (("after", after), ("times", times), ("probability", probability)):
        if value is not None:
            given[name] = data[name]
    if delay is not None:
        given["delay_ms"] = data["delay_ms"]

    routes = _candidate_routes(given)
    status = data.get("status")
    end = data.get("end_session")
    reset = data.get("reset")
    if "status" in data:
        if isinstance(status, bool) or not isinstance(status, int):
            raise FaultRuleError("status", f"must be an integer status (got {status!r})")
        if not routes:
            raise FaultRuleError("status", "the rule matches no route of the contract")
        refused = {r for r in routes if status not in STATUSES[r]}
        if refused:
            raise FaultRuleError(
                "status",
                f"{status} is not documented for {_names(refused)}; narrow the rule with "
                "method, path, action or endpoint, or see the table of documented statuses",
            )
        given["status"] = status
    if "body" in data:
        if "status" not in data:
            raise FaultRuleError("body", "a body goes with a status")
        given["body"] = data["body"]
    if "end_session" in data:
        if end not in set(EndSession):
            raise FaultRuleError("end_session", f"must be expire or crash (got {end!r})")
        routes &= SESSION_ROUTES
        if not routes:
            raise FaultRuleError("end_session", "the rule matches no request on a session")
        given["end_session"] = end
    if "reset" in data:
        if reset is not True:
            raise FaultRuleError("reset", "must be true (drop the connection without an answer)")
        given["reset"] = True
    chosen = [name for name in ("status", "end_session", "reset") if name in data]
    if len(chosen) > 1:
        raise FaultRuleError(chosen[1], f"a rule does one of status, end_session, reset: {chosen}")
    if not chosen and delay is None:
        raise FaultRuleError("rule", "say what it does: status, delay_ms, end_session or reset")
    return FaultRule(
        id=rule_id,
        given=given,
        routes=routes,
        route_bound="status" in data or "end_session" in data,
        after=after or 0,
        times=times,
        probability=1.0 if probability is None else probability,
        status=status if "status" in data else None,
        body=data.get("body"),
        delay_ms=delay or 0.0,
        end_session=EndSession(end) if "end_session" in data else None,
        reset=bool(reset),
        rng=random.Random(f"{seed}:{rule_id}"),
    )


# -- the book -----------------------------------------------------------------------------------


class FaultBook:
    """The rules of one server, in the order they were added; the first that fires wins."""

    def __init__(self, seed: int = 0, rules: tuple[Any, ...] | list[Any] = ()) -> None:
        self.seed = seed
        self.rules: dict[str, FaultRule] = {}
        self._next = 0
        for rule in rules:
            self.add(rule)

    def add(self, data: Any) -> FaultRule:
        given_id = data.get("id") if isinstance(data, dict) else None
        if given_id is not None:
            if not isinstance(given_id, str) or not _ID.match(given_id):
                raise FaultRuleError("id", "1 to 64 letters, digits, '_', '.', ':' or '-'")
            if given_id in self.rules:
                raise FaultRuleError("id", f"a rule {given_id!r} exists already")
            rule_id = given_id
        else:
            n = self._next + 1
            while f"fault_{n}" in self.rules:
                n += 1
            rule_id = f"fault_{n}"
        fields = {k: v for k, v in data.items() if k != "id"} if isinstance(data, dict) else data
        rule = parse_rule(fields, rule_id, self.seed)
        if given_id is None:
            self._next = n
        self.rules[rule_id] = rule
        return rule

    def remove(self, rule_id: str) -> FaultRule:
        rule = self.rules.pop(rule_id, None)
        if rule is None:
            raise NotFoundError(f"No fault rule {rule_id!r}")
        return rule

    def clear(self) -> int:
        count = len(self.rules)
        self.rules.clear()
        self._next = 0
        return count

    def needs_action(self) -> bool:
        """Whether a rule matches on the action type (the body must then be read)."""
        return any("action" in r.given for r in self.rules.values())

    def fire(self, call: Call) -> FaultRule | None:
        """The rule that fires on this request, if any; every matching rule counts it."""
        for rule in self.rules.values():
            if rule.matches(call) and rule.draw():
                return rule
        return None


# -- rule files ---------------------------------------------------------------------------------


class FaultFileError(ValueError):
    """A rule file that cannot be read or parsed, or holds a bad rule: one line naming the file
    and the line."""


def load_rules_file(path: Path, seed: int = 0) -> list[Any]:
    """The rules of a JSON or YAML file (a list of rules), each validated."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise FaultFileError(f"{path}: cannot read the fault rules: {err}") from err
    lines: list[int | None] = []
    try:
        if path.suffix.lower() == ".json":
            rules = json.loads(text)
        else:
            rules = yaml.safe_load(text)
    except json.JSONDecodeError as err:
        raise FaultFileError(f"{path}:{err.lineno}: not valid JSON: {err.msg}") from err
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise FaultFileError(f"{where}: not valid YAML: {problem}") from err
    if not isinstance(rules, list):
        raise FaultFileError(f"{path}:1: expected a list of fault rules")
    try:
        node = yaml.compose(text)
        lines = [item.start_mark.line + 1 for item in node.value]  # type: ignore[union-attr]
    except (yaml.YAMLError, AttributeError, TypeError):
        lines = []
    book = FaultBook(seed)
    for n, rule in enumerate(rules):
        try:
            book.add(rule)
        except FaultRuleError as err:
            line = lines[n] if n < len(lines) else None
            where = f"{path}:{line}" if line else f"{path}"
            raise FaultFileError(f"{where}: rule {n + 1}: {err.message}") from err
    return rules

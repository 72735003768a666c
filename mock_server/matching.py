"""How a live request is compared with recorded ones: named matchers that say why they failed.

A request is reduced to a `RequestKey` (method, path with the session id mapped, query, canonical
JSON body with ignored fields dropped); matchers compare two keys field by field and return the
differences, which a replay miss reports as its near-miss diagnostics (WireMock style). Values a
secret may hide in (typed text, passwords) are never echoed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import parse_qsl

from recorder.diff import SECRET_FIELDS
from recorder.diff import canonical_body as recorded_canonical_body
from recorder.diff import diff_values as field_differences

# The signed one-shot URLs: /{key}/{hash}/{endpoint}; the hash is ignored when matching.
SIGNED_PATH = re.compile(r"^/([^/]+)/([^/]+)/(image|pdf|content|metadata|animated)/?$")
SESSION_PATH = re.compile(r"^/v1/sessions/([^/?]+)(/actions)?/?$")
HIDDEN_FIELDS = SECRET_FIELDS | {"text"}


class Matcher(StrEnum):
    METHOD = "method"
    PATH = "path"
    QUERY = "query"
    BODY = "body"
    ACTION_TYPE = "action_type"


DEFAULT_MATCHERS: tuple[Matcher, ...] = (Matcher.METHOD, Matcher.PATH, Matcher.QUERY, Matcher.BODY)


def parse_matchers(names: Iterable[str]) -> tuple[Matcher, ...]:
    """Named matchers from `--match-on`; an unknown name fails with the valid list."""
    chosen = []
    for name in names:
        try:
            chosen.append(Matcher(name))
        except ValueError:
            valid = ", ".join(m.value for m in Matcher)
            raise ValueError(f"unknown matcher {name!r}; valid matchers: {valid}") from None
    return tuple(chosen) or DEFAULT_MATCHERS


def normalize_path(path: str, session_ids: dict[str, str] | None = None) -> str:
    """Map a session id to its counterpart (recorded <-> live) and blank a signed URL's hash."""
    signed = SIGNED_PATH.match(path)
    if signed:
        return f"/{signed.group(1)}/*/{signed.group(3)}"
    session = SESSION_PATH.match(path)
    if session and session_ids:
        sid = session.group(1)
        mapped = session_ids.get(sid, sid)
        return f"/v1/sessions/{mapped}{session.group(2) or ''}"
    return path.rstrip("/") or "/"


def drop_path(body: Any, dotted: str) -> Any:
    """A copy of `body` without the field at `dotted` (e.g. `payload.url`); lists are walked."""
    head, _, rest = dotted.partition(".")
    if isinstance(body, list):
        return [drop_path(item, dotted) for item in body]
    if not isinstance(body, dict) or head not in body:
        return body
    copy = dict(body)
    if rest:
        copy[head] = drop_path(copy[head], rest)
    else:
        del copy[head]
    return copy


def canonical_body(raw: bytes, ignore: Iterable[str] = ()) -> Any:
    """The JSON body as a comparable value (key order and whitespace do not matter, an empty
    body, `{}` and PHP's `[]` alike; see `recorder.diff`), minus the ignored fields."""
    body = recorded_canonical_body(raw)
    for dotted in ignore:
        body = drop_path(body, dotted)
    return body


@dataclass(frozen=True, slots=True)
class RequestKey:
    method: str
    path: str
    query: tuple[tuple[str, str], ...]
    body: Any
    action_type: str | None

    @property
    def hashable(self) -> tuple[str, str, tuple[tuple[str, str], ...], str, str | None]:
        body = self.body
        text = body.hex() if isinstance(body, bytes) else json.dumps(body, sort_keys=True)
        return (self.method, self.path, self.query, text, self.action_type)


def request_key(
    method: str,
    path: str,
    query: str,
    body: bytes,
    *,
    session_ids: dict[str, str] | None = None,
    ignore: Iterable[str] = (),
) -> RequestKey:
    canonical = canonical_body(body, ignore)
    action_type = None
    if isinstance(canonical, dict) and path.rstrip("/").endswith("/actions"):
        value = canonical.get("type")
        action_type = value if isinstance(value, str) else None
    return RequestKey(
        method=method.upper(),
        path=normalize_path(path, session_ids),
        query=tuple(sorted(parse_qsl(query, keep_blank_values=True))),
        body=canonical,
        action_type=action_type,
    )


def diff_values(recorded: Any, live: Any, where: str) -> list[str]:
    """Field-by-field differences, `body.payload.url: "recorded" -> "asked"`. Typed text is
    hidden too: in a request body it may be a password."""
    return field_differences(recorded, live, where, HIDDEN_FIELDS)


Comparison = Callable[[RequestKey, RequestKey], list[str]]


def _same(field: str, recorded: object, live: object) -> list[str]:
    return [] if recorded == live else [f"{field}: {recorded} -> {live}"]


COMPARISONS: dict[Matcher, Comparison] = {
    Matcher.METHOD: lambda rec, live: _same("method", rec.method, live.method),
    Matcher.PATH: lambda rec, live: _same("path", rec.path, live.path),
    Matcher.QUERY: lambda rec, live: diff_values(dict(rec.query), dict(live.query), "query"),
    Matcher.BODY: lambda rec, live: diff_values(rec.body, live.body, "body"),
    Matcher.ACTION_TYPE: lambda rec, live: _same("type", rec.action_type, live.action_type),
}


def differences(recorded: RequestKey, live: RequestKey, matchers: Iterable[Matcher]) -> list[str]:
    """Why `recorded` does not answer `live` under `matchers`; empty when it does."""
    out: list[str] = []
    for matcher in matchers:
        out.extend(COMPARISONS[matcher](recorded, live))
    return out


def match_key(key: RequestKey, matchers: Iterable[Matcher]) -> tuple[Any, ...]:
    """The part of a key the chosen matchers look at: equal keys match."""
    full = key.hashable
    return tuple(full[FIELD_INDEX[matcher]] for matcher in matchers)


FIELD_INDEX = {
    Matcher.METHOD: 0,
    Matcher.PATH: 1,
    Matcher.QUERY: 2,
    Matcher.BODY: 3,
    Matcher.ACTION_TYPE: 4,
}

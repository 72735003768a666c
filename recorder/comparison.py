"""How two requests or two JSON values are compared: canonical request keys and field diffs.

One rule serves replay's matching (and its near-miss diagnostics), `diff` and `verify`: a request
is reduced to a `RequestKey` (method, path with the signed hash blanked and the session id mapped,
sorted query, canonical JSON body minus ignored fields, action type); values are compared field by
field, and fields that may hold a secret are named, never shown.

Plain functions: imports no aiohttp, click or Pillow; never `mock_server`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from recorder.contract import action_type_in, canonical_path, is_action_path

# Fields that may carry what a user typed (an input's value) or a credential: differences name
# them, never show them. Page text (`text`) is shown in answers: it is what drift is about.
SECRET_FIELDS = frozenset({"value", "password", "secret", "token"})
MAX_SHOWN = 60


def canonical_body(raw: bytes) -> Any:
    """A request body as a comparable value: JSON with key order and whitespace gone (an empty
    body, `{}` and PHP's `[]` alike, `payload: []` as `{}`), anything else as bytes."""
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, ValueError):
        return bytes(raw)
    if body == []:
        return {}
    if isinstance(body, dict) and body.get("payload") == []:
        body = {**body, "payload": {}}
    return body


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


def body_text(body: Any) -> str:
    """A canonical body as one hashable string (bytes as hex, JSON with sorted keys)."""
    return body.hex() if isinstance(body, bytes) else json.dumps(body, sort_keys=True)


@dataclass(frozen=True, slots=True)
class RequestKey:
    """A request as matching compares it."""

    method: str
    path: str
    query: tuple[tuple[str, str], ...]
    body: Any
    action_type: str | None

    @property
    def hashable(self) -> tuple[str, str, tuple[tuple[str, str], ...], str, str | None]:
        return (self.method, self.path, self.query, body_text(self.body), self.action_type)

    def describe(self) -> str:
        text = f"{self.method} {self.path}"
        return f"{text} ({self.action_type})" if self.action_type else text


def request_key(
    method: str,
    path: str,
    query: str,
    body: bytes,
    *,
    session_ids: dict[str, str] | None = None,
    ignore: Iterable[str] = (),
) -> RequestKey:
    """The key of a request; `session_ids` maps its session id (recorded <-> live, or to an
    alias), `ignore` lists dotted JSON paths dropped from the body."""
    canonical = canonical_body(body)
    for dotted in ignore:
        canonical = drop_path(canonical, dotted)
    action_type = action_type_in(canonical) if is_action_path(path) else None
    return RequestKey(
        method=method.upper(),
        path=canonical_path(path, session_ids),
        query=tuple(sorted(parse_qsl(query, keep_blank_values=True))),
        body=canonical,
        action_type=action_type,
    )


def shown(value: Any, where: str, hidden: frozenset[str] = SECRET_FIELDS) -> str:
    """A value as a difference may show it: secrets (fields named in `hidden`) never, long
    values cut."""
    if where.rsplit(".", 1)[-1] in hidden:
        return "<hidden>"
    text = value.hex() if isinstance(value, bytes) else json.dumps(value, sort_keys=True)
    return text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 1] + "…"


def diff_values(a: Any, b: Any, where: str, hidden: frozenset[str] = SECRET_FIELDS) -> list[str]:
    """Field-by-field differences, as `body.title: "Old" -> "New"` (`a` the recorded value)."""
    if isinstance(a, dict) and isinstance(b, dict):
        out: list[str] = []
        for key in sorted(set(a) | set(b), key=str):
            sub = f"{where}.{key}"
            if key not in b:
                out.append(f"{sub}: {shown(a[key], sub, hidden)} -> missing")
            elif key not in a:
                out.append(f"{sub}: missing -> {shown(b[key], sub, hidden)}")
            else:
                out.extend(diff_values(a[key], b[key], sub, hidden))
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [
            d
            for i, (x, y) in enumerate(zip(a, b, strict=True))
            for d in diff_values(x, y, f"{where}[{i}]", hidden)
        ]
    if a != b:
        return [f"{where}: {shown(a, where, hidden)} -> {shown(b, where, hidden)}"]
    return []

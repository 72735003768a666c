"""How a live request is compared with recorded ones: named matchers that say why they failed.

A request is reduced to a `recorder.comparison.RequestKey` (the rule diff and verify share);
matchers compare two keys field by field and return the differences, which a replay miss reports
as its near-miss diagnostics (WireMock style). Values a secret may hide in (typed text,
passwords) are never echoed. Part of `mock_server.replay`: never imports the app, routes, admin
or http modules.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from enum import StrEnum
from typing import Any

from recorder.comparison import SECRET_FIELDS, RequestKey, diff_values

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


def hidden_differences(recorded: Any, live: Any, where: str) -> list[str]:
    """Field-by-field differences, `body.payload.url: "recorded" -> "asked"`. Typed text is
    hidden too: in a request body it may be a password."""
    return diff_values(recorded, live, where, HIDDEN_FIELDS)


Comparison = Callable[[RequestKey, RequestKey], list[str]]


def _same(field: str, recorded: object, live: object) -> list[str]:
    return [] if recorded == live else [f"{field}: {recorded} -> {live}"]


COMPARISONS: dict[Matcher, Comparison] = {
    Matcher.METHOD: lambda rec, live: _same("method", rec.method, live.method),
    Matcher.PATH: lambda rec, live: _same("path", rec.path, live.path),
    Matcher.QUERY: lambda rec, live: hidden_differences(dict(rec.query), dict(live.query), "query"),
    Matcher.BODY: lambda rec, live: hidden_differences(rec.body, live.body, "body"),
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

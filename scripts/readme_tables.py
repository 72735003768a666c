#!/usr/bin/env python3
"""Write the README's field tables from `recorder.fields`, the one owner of those names.

Each table sits between `<!-- fields:BEGIN NAME -->` and `<!-- fields:END NAME -->` in README.md
(NAME: create, actions, oneshot, selectors); this rewrites what is between them and leaves the
rest alone. `--check` changes nothing and exits 1 when the README differs from the code
(tests/recorder/test_fields.py runs it).

    scripts/readme_tables.py            # rewrite README.md
    scripts/readme_tables.py --check    # exit 1 when README.md and recorder.fields disagree
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from recorder.fields import (  # noqa: E402
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
)

README = ROOT / "README.md"
_BLOCK = re.compile(
    r"(<!-- fields:BEGIN (?P<name>[a-z]+) -->\n).*?(<!-- fields:END (?P=name) -->)", re.DOTALL
)


def _code(names: tuple[str, ...] | list[str]) -> str:
    return ", ".join(f"`{n}`" for n in names) or "—"


def _chosen(fields: Fields) -> str:
    shown = []
    for name, note in fields.chosen.items():
        alias = re.match(r"alias of (\w+)", note)
        shown.append(f"`{name}` (= `{alias.group(1)}`)" if alias else f"`{name}`")
    return ", ".join(shown) or "—"


def _row(*cells: str) -> str:
    return "| " + " | ".join(cells) + " |"


def create_table() -> str:
    return "\n".join(
        [
            _row("request", "documented", "chosen by capture-replay"),
            _row("---", "---", "---"),
            _row("create body", _code(CREATE.documented), "none (any other name is a 400)"),
            _row(
                "action request",
                _code(ACTION_REQUEST.documented),
                "none (any other name is a 400)",
            ),
        ]
    )


def actions_table() -> str:
    lines = [
        _row("action", "documented payload fields", "chosen by capture-replay"),
        _row("---", "---", "---"),
        _row("every action", _code(ANY_ACTION.documented), _chosen(ANY_ACTION)),
    ]
    lines += [
        _row(f"`{kind}`", _code(fields.documented), _chosen(fields))
        for kind, fields in ACTIONS.items()
    ]
    return "\n".join(lines)


def oneshot_table() -> str:
    lines = [
        _row("endpoint", "documented options", "chosen by capture-replay"),
        _row("---", "---", "---"),
    ]
    lines += [
        _row(f"`{endpoint}`", _code(fields.documented), _chosen(fields))
        for endpoint, fields in ONESHOT.items()
    ]
    return "\n".join(lines)


def selectors_list() -> str:
    return (
        f"Selector fields: payload {_code(SELECTOR_FIELDS)}; one-shot "
        f"{_code(ONESHOT_SELECTOR_FIELDS)}. Playwright-only syntax: a selector starting with "
        f"{_code(PLAYWRIGHT_ENGINES)} or {_code(PLAYWRIGHT_STARTS)}, or containing "
        f"{_code(PLAYWRIGHT_SYNTAX)} outside quotes."
    )


RENDERERS: dict[str, Callable[[], str]] = {
    "create": create_table,
    "actions": actions_table,
    "oneshot": oneshot_table,
    "selectors": selectors_list,
}


def rewrite(text: str) -> str:
    """`text` with every marked block rendered afresh; an unknown block name is an error."""

    def render(match: re.Match[str]) -> str:
        name = match.group("name")
        if name not in RENDERERS:
            raise SystemExit(f"README.md: unknown fields block {name!r}")
        return f"{match.group(1)}{RENDERERS[name]()}\n{match.group(3)}"

    found = {m.group("name") for m in _BLOCK.finditer(text)}
    missing = sorted(set(RENDERERS) - found)
    if missing:
        raise SystemExit(f"README.md: no fields block for {', '.join(missing)}")
    return _BLOCK.sub(render, text)


def main(argv: list[str]) -> int:
    current = README.read_text(encoding="utf-8")
    wanted = rewrite(current)
    if "--check" in argv:
        if wanted != current:
            print(
                "README.md's field tables differ from recorder/fields.py: run "
                "scripts/readme_tables.py",
                file=sys.stderr,
            )
            return 1
        return 0
    if wanted != current:
        README.write_text(wanted, encoding="utf-8")
        print("README.md: field tables rewritten")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Which recorded exchanges replay served, per loaded cassette: what `GET /__admin/unused`
lists, what `serve` sums up on shutdown, and what the pytest plugin's `--capture-report-unused`
and `--capture-prune` gather across a run.

An exchange counts as served when its recorded answer was sent (a create, an action, a GET or
DELETE answered from the recording, a one-shot); GET and DELETE answered from the server's own
view of a session, and requests the emulator answers by its own rules (bad credentials, an
unknown session), serve nothing. Since start or the last reset. Never imports the app, routes,
admin or http modules.
"""

from __future__ import annotations

from typing import Any

from recorder.contract import SESSION_PATH
from recorder.errors import CassetteError
from recorder.mcp_audit import mcp_label
from recorder.mcp_tools import is_mcp_path
from recorder.reader import Cassette
from recorder.records import IndexEntry


def _mcp_label(cassette: Cassette, entry: IndexEntry) -> str | None:
    """An MCP exchange's tool call as `inspect` names it (`browser_session_act goto`)."""
    try:
        return mcp_label(cassette.load(entry).request.body)
    except CassetteError:
        return None


class Usage:
    """The recorded exchanges served so far, by cassette (record offsets). MCP exchanges are
    named by their tool call, read while the cassettes are open (the names outlive them: the
    shutdown summary and the pytest plugin list them after the server stopped)."""

    def __init__(self, cassettes: list[Cassette]) -> None:
        self.cassettes = cassettes
        self._served: dict[int, set[int]] = {id(c): set() for c in cassettes}
        self._mcp_labels = {
            (id(c), e.offset): _mcp_label(c, e)
            for c in cassettes
            for e in c.entries
            if e.method == "POST" and is_mcp_path(e.path)
        }

    def action_of(self, cassette: Cassette, entry: IndexEntry) -> str | None:
        """The action type of a sessions exchange, the tool call of an MCP one."""
        return entry.action_type or self._mcp_labels.get((id(cassette), entry.offset))

    def describe(self, cassette: Cassette, entry: IndexEntry) -> dict[str, Any]:
        """How an exchange is listed: cassette, sequence, method, path, action."""
        return {
            "cassette": str(cassette.path),
            "seq": entry.seq,
            "method": entry.method,
            "path": entry.path,
            "action": self.action_of(cassette, entry),
        }

    def served(self, cassette: Cassette, entry: IndexEntry) -> None:
        self._served.setdefault(id(cassette), set()).add(entry.offset)

    def reset(self) -> None:
        for offsets in self._served.values():
            offsets.clear()

    def served_seqs(self, cassette: Cassette) -> set[int]:
        offsets = self._served.get(id(cassette), set())
        return {e.seq for e in cassette.entries if e.offset in offsets}

    def unused_entries(self, cassette: Cassette) -> list[IndexEntry]:
        offsets = self._served.get(id(cassette), set())
        return [e for e in cassette.entries if e.offset not in offsets]

    def unused(self) -> list[dict[str, Any]]:
        """Every recorded exchange never served, cassette by cassette, in file order."""
        return [self.describe(c, e) for c in self.cassettes for e in self.unused_entries(c)]

    def summary(self) -> list[str]:
        """One line per cassette: how many exchanges were served, and which never were."""
        lines = []
        for cassette in self.cassettes:
            unused = self.unused_entries(cassette)
            total = len(cassette.entries)
            line = f"{cassette.path.name}: {total - len(unused)} of {total} exchanges served"
            if unused:
                listed = ", ".join(self._short(cassette, e) for e in unused[:10])
                more = f" and {len(unused) - 10} more" if len(unused) > 10 else ""
                line += f"; never served: {listed}{more}"
            lines.append(line)
        return lines

    def _short(self, cassette: Cassette, entry: IndexEntry) -> str:
        action = self.action_of(cassette, entry)
        if action:
            return f"#{entry.seq} {action}"
        where = "session" if SESSION_PATH.match(entry.path) else entry.path
        return f"#{entry.seq} {entry.method} {where}"

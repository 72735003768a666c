"""The pytest plugin's account of the recorded exchanges a test run never used:
`--capture-report-unused` prints them at the end of the run, cassette by cassette;
`--capture-prune` also rewrites those cassettes without them (`recorder.pruning`: through a temp
file and `os.replace`, the kept records byte for byte and with their sequence numbers).

Each replaying `capture_mock` hands over, when it stops, which exchanges its server served
(`mock_server.replay.usage`); an exchange is unused when no test of the run was served it.
Pruning is careful: a cassette is rewritten only when every test that used it passed (a failed,
skipped or xfailed test may have stopped before using what it needs), never down to nothing (a
cassette no test used at all is reported, not emptied), only when the whole
collected run took place (nothing deselected with `-k`/`-m`, no stop at the first failure), and
never while a recorder holds it. A test that records does not count. Run the whole suite, without
`-n`, before pruning: a cassette shared with a test that did not run would lose its exchanges.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from recorder.errors import RecorderError
from recorder.pruning import prune_cassette

PLUGIN_NAME = "capture-replay-unused"


def add_options(group: Any) -> None:
    group.addoption(
        "--capture-report-unused",
        action="store_true",
        default=False,
        help="At the end of the run, list each replayed cassette's exchanges that no test used.",
    )
    group.addoption(
        "--capture-prune",
        action="store_true",
        default=False,
        help="Rewrite replayed cassettes without the exchanges no test used (only cassettes "
        "whose tests all passed, and only after a whole run).",
    )


def register(config: pytest.Config) -> None:
    """Track usage when either option is given."""
    prune = config.getoption("--capture-prune")
    if prune or config.getoption("--capture-report-unused"):
        config.pluginmanager.register(UnusedTracker(prune=prune), PLUGIN_NAME)


def note_usage(config: pytest.Config, nodeid: str, app: Any) -> None:
    """Called by `capture_mock` when a replaying server stops: what it served."""
    tracker = config.pluginmanager.get_plugin(PLUGIN_NAME)
    if isinstance(tracker, UnusedTracker):
        tracker.note(nodeid, app)


@dataclass
class CassetteUse:
    """One cassette across the run: its exchanges, those served, the tests that used it."""

    exchanges: dict[int, dict[str, Any]]  # seq -> cassette, seq, method, path, action
    offsets: tuple[tuple[int, int], ...]  # (seq, offset) of every record, to notice a change
    used: set[int] = field(default_factory=set)
    tests: set[str] = field(default_factory=set)


class UnusedTracker:
    """Gathers what each replaying server served; reports (and prunes) at the end."""

    def __init__(self, *, prune: bool) -> None:
        self.prune = prune
        self.cassettes: dict[Path, CassetteUse] = {}
        self.not_passed: set[str] = set()
        self.ran: set[str] = set()
        self.deselected = 0
        self.stopped = False
        self.collected = 0

    def note(self, nodeid: str, app: Any) -> None:
        from mock_server.state import REPLAY

        engine = app[REPLAY].engine
        if engine is None:
            return
        usage = engine.player.usage
        for cassette in usage.cassettes:
            path = cassette.path.resolve()
            use = self.cassettes.get(path)
            if use is None:
                use = self.cassettes[path] = CassetteUse(
                    {e.seq: usage.describe(cassette, e) for e in cassette.entries},
                    tuple((e.seq, e.offset) for e in cassette.entries),
                )
            use.used |= usage.served_seqs(cassette)
            use.tests.add(nodeid)

    # -- hooks -------------------------------------------------------------------------------

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
        report = yield
        self.ran.add(item.nodeid)
        if report.failed or report.skipped:
            self.not_passed.add(item.nodeid)
        return report

    def pytest_deselected(self, items: list[pytest.Item]) -> None:
        self.deselected += len(items)

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.collected = len(session.items)

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        self.stopped = bool(session.shouldstop or session.shouldfail)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        write = terminalreporter.write_line
        terminalreporter.write_sep("=", "capture-replay: recorded exchanges no test used")
        if not self.cassettes:
            write("no test replayed a cassette")
            return
        partial = self._partial_run()
        for path, use in sorted(self.cassettes.items()):
            unused = sorted(set(use.exchanges) - use.used)
            name = _shown(path)
            if not unused:
                write(f"{name}: all {len(use.exchanges)} exchanges used")
                continue
            write(f"{name}: {len(unused)} of {len(use.exchanges)} exchanges unused")
            for seq in unused:
                ex = use.exchanges[seq]
                action = f" ({ex['action']})" if ex["action"] else ""
                write(f"  #{seq} {ex['method']} {ex['path']}{action}")
            if self.prune:
                write(f"  {self._prune(path, use, unused, partial)}")

    # -- pruning -----------------------------------------------------------------------------

    def _partial_run(self) -> str | None:
        if self.deselected:
            return f"{self.deselected} tests were deselected"
        if self.stopped or len(self.ran) < self.collected:
            return "the run stopped before every test ran"
        return None

    def _prune(self, path: Path, use: CassetteUse, unused: list[int], partial: str | None) -> str:
        if partial is not None:
            return f"not pruned: {partial} (prune after a whole run)"
        failed = sorted(use.tests & self.not_passed)
        if failed:
            return f"not pruned: used by a test that did not pass ({failed[0]})"
        if not use.used:
            return "not pruned: no test used any of it (delete it if it is stale)"
        try:
            report = prune_cassette(path, unused, expect=use.offsets)
        except RecorderError as err:
            return f"not pruned: {err}"
        dropped = ", ".join(f"#{s}" for s in report.dropped)
        return f"pruned: dropped {dropped}; {report.kept} exchanges kept"


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)

"""pytest plugin: a `capture_mock` fixture that replays (or records) one cassette per test.

Loaded through the `pytest11` entry point. Each test gets a Capture stand-in at
`capture_mock.url`: in the default record mode `none` it replays
`cassettes/<test module>/<test name>.msgpack` and never reaches the network, so CI is
deterministic and free; `once`, `new_episodes` and `all` record through the recording proxy in
front of `--capture-upstream` (the real Capture API by default), as vcrpy's record modes do.

The server runs on its own event loop in a thread, so sync and async tests can use it alike.
`capture_mock.warnings()` lists what the test sent that the real API may not know
(`mock_server.field_warnings`); `--capture-strict[=documented]` fails a test that sent any such
thing `serve --strict[=documented]` would refuse, at its teardown, listing them (the test's own
assertions run first, and the cassette is still written).
"""

from __future__ import annotations

import asyncio
import base64
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from mock_server.config import (
    ClockMode,
    Mode,
    RecordMode,
    RecordPlan,
    ServerConfig,
    StrictLevel,
    plan_recording,
)
from mock_server.serving import listen_on_loopback
from mock_server.unused_report import add_options as add_unused_options
from mock_server.unused_report import note_usage
from mock_server.unused_report import register as register_unused_tracker

DEFAULT_UPSTREAM = "https://api.capture.page"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("capture-replay")
    group.addoption(
        "--capture-record-mode",
        choices=[m.value for m in RecordMode],
        default=None,
        help="capture_mock record mode (default: none = replay only, never the network).",
    )
    group.addoption(
        "--capture-upstream",
        default=None,
        help=f"Upstream that recording modes forward to (default {DEFAULT_UPSTREAM}).",
    )
    group.addoption(
        "--capture-cassette-dir",
        default=None,
        help="Folder of the per-test cassettes (default: cassettes/ under the rootdir).",
    )
    group.addoption(
        "--capture-strict",
        nargs="?",
        const=StrictLevel.UNKNOWN.value,
        default=None,
        choices=[level.value for level in StrictLevel],
        help="Fail a test that sent fields or selectors the real API may not know: unknown "
        "ones (--capture-strict), or also capture-replay's chosen names (=documented).",
    )
    add_unused_options(group)
    parser.addini("capture_record_mode", "default --capture-record-mode", default="none")
    parser.addini("capture_upstream", "default --capture-upstream", default=DEFAULT_UPSTREAM)
    parser.addini("capture_cassette_dir", "default --capture-cassette-dir", default="cassettes")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "capture(cassette=None, mode=None): the cassette (a path, relative to the cassette "
        "folder) and record mode of this test's capture_mock.",
    )
    register_unused_tracker(config)


class ThreadedServer:
    """An aiohttp app on 127.0.0.1 (ephemeral port) served by an event loop in a thread."""

    def __init__(self, make: Callable[[], web.Application]) -> None:
        self._make = make
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None
        self.url = ""

    def start(self) -> ThreadedServer:
        self._thread.start()
        self.url = self.run(self._start())
        return self

    async def _start(self) -> str:
        self._runner = web.AppRunner(self._make(), access_log=None, shutdown_timeout=5)
        return await listen_on_loopback(self._runner)

    def run(self, coro: Any, timeout: float = 60) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    @property
    def app(self) -> web.Application:
        assert self._runner is not None
        return self._runner.app

    def stop(self) -> None:
        try:
            if self._runner is not None:
                self.run(self._runner.cleanup())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(30)
            self._loop.close()


@dataclass
class CaptureMock:
    """What a test sees: where to send requests, tokens, and the manual clock."""

    url: str
    cassette: Path
    record_mode: RecordMode
    recording: bool
    _server: ThreadedServer
    # Records in the cassette before this test (recording: only later ones are this test's).
    _recorded_before: int = 0

    def token(self, user: str = "user_123", secret: str = "secret") -> str:
        """The Bearer token (base64 of `user:secret`) to send as `Authorization: Bearer <token>`."""
        return base64.b64encode(f"{user}:{secret}".encode()).decode()

    def headers(self, user: str = "user_123", secret: str = "secret") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(user, secret)}"}

    def advance(self, seconds: float) -> None:
        """Move the replaying server's manual clock (expiry happens on the advance)."""
        if self.recording:
            raise RuntimeError(
                "capture_mock.advance() works while replaying; a recording talks to the real "
                "upstream, whose clock cannot be moved"
            )
        from mock_server.clock import ManualClock
        from mock_server.state import CLOCK

        clock = self._server.app[CLOCK]
        assert isinstance(clock, ManualClock)
        self._server.run(clock.advance(seconds))

    def unmatched(self) -> list[dict[str, Any]]:
        """The requests replay could not answer, with their near misses."""
        if self.recording:
            return []
        from mock_server.state import REPLAY

        engine = self._server.app[REPLAY].engine
        return engine.misses() if engine else []

    def warnings(self) -> list[dict[str, Any]]:
        """What this test sent that the real API may not know, as `GET /__admin/warnings` lists
        it: `{"warning", "level", "count", "first": {"method", "path", "journal"}}`. While
        recording, the findings of the requests recorded in this test (`journal`: their
        sequence in the cassette)."""
        from mock_server.field_warnings import WARNINGS, WarningLog

        if not self.recording:
            book = self._server.app[WARNINGS]

            async def entries() -> list[dict[str, Any]]:
                return book.entries()

            return self._server.run(entries())
        from recorder.cassette import open_cassette
        from recorder.findings import request_findings

        book = WarningLog()
        with open_cassette(self.cassette, allow_damage=True) as cassette:
            for entry in cassette.entries[self._recorded_before :]:
                req = cassette.load(entry).request
                found = request_findings(req.method, req.path, req.query, req.body)
                book.note(found, req.method, req.path, entry.seq)
        return book.entries()

    def fault(self, **rule: Any) -> FaultHandle:
        """Add a fault rule to the replaying server (the fields of `POST /__admin/faults`); the
        handle removes it on `remove()` or when its `with` block ends. A malformed rule raises
        ValueError naming the field."""
        book = self._fault_book()

        async def add() -> str:
            return book.add(rule).id

        from mock_server.errors import CaptureError

        try:
            return FaultHandle(self._server.run(add()), self)
        except CaptureError as err:
            raise ValueError(err.message) from None

    def faults(self) -> list[dict[str, Any]]:
        """The server's fault rules, each with how often it matched and fired."""
        book = self._fault_book()

        async def listed() -> list[dict[str, Any]]:
            return [r.as_json() for r in book.rules.values()]

        return self._server.run(listed())

    def _fault_book(self) -> Any:
        if self.recording:
            raise RuntimeError(
                "capture_mock faults work while replaying; a recording forwards to the real "
                "upstream unchanged"
            )
        from mock_server.state import FAULTS

        return self._server.app[FAULTS]


@dataclass
class FaultHandle:
    """A fault rule added by `capture_mock.fault(...)`; a context manager removing it on exit."""

    id: str
    _mock: CaptureMock

    @property
    def fired(self) -> int:
        return next((r["fired"] for r in self._mock.faults() if r["id"] == self.id), 0)

    def remove(self) -> None:
        book = self._mock._fault_book()

        async def remove() -> None:
            book.rules.pop(self.id, None)

        self._mock._server.run(remove())

    def __enter__(self) -> FaultHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()


def cassette_for(item: pytest.Item, folder: Path, marker: pytest.Mark | None) -> Path:
    named = marker.kwargs.get("cassette") if marker else None
    if named:
        path = Path(named)
        return path if path.is_absolute() else folder / path
    module = Path(item.location[0]).stem
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", item.name).strip("_")
    return folder / module / f"{name}.msgpack"


def record_mode_for(config: pytest.Config, marker: pytest.Mark | None) -> RecordMode:
    value = (
        (marker.kwargs.get("mode") if marker else None)
        or config.getoption("--capture-record-mode")
        or config.getini("capture_record_mode")
    )
    try:
        return RecordMode(value)
    except ValueError:
        valid = ", ".join(m.value for m in RecordMode)
        raise pytest.UsageError(f"capture record mode {value!r} is not one of {valid}") from None


@pytest.fixture
def capture_mock(request: pytest.FixtureRequest) -> Iterator[CaptureMock]:
    """A Capture stand-in for this test: replaying its cassette, or recording it."""
    config = request.config
    marker = request.node.get_closest_marker("capture")
    folder_opt = config.getoption("--capture-cassette-dir") or config.getini("capture_cassette_dir")
    folder = Path(folder_opt)
    if not folder.is_absolute():
        folder = config.rootpath / folder
    cassette = cassette_for(request.node, folder, marker)
    mode = record_mode_for(config, marker)
    upstream = config.getoption("--capture-upstream") or config.getini("capture_upstream")
    exists = cassette.exists()

    if mode is RecordMode.NONE and not exists:
        pytest.fail(
            f"capture_mock: no cassette at {cassette}; record it once with "
            "--capture-record-mode=once (it talks to --capture-upstream)",
            pytrace=False,
        )
    plan = plan_recording(mode, exists)
    recording = plan is not RecordPlan.REPLAY
    if recording:
        server = ThreadedServer(lambda: _proxy_app(cassette, upstream, plan))
    else:
        server = ThreadedServer(lambda: _replay_app(cassette))
    server.start()
    mock = CaptureMock(server.url, cassette, mode, recording, server, _records_in(cassette))
    try:
        yield mock
        _check_strict(config, mock)
    finally:
        server.stop()
        if not recording:
            note_usage(config, request.node.nodeid, server.app)


def _records_in(cassette: Path) -> int:
    from recorder.cassette import open_cassette

    try:
        with open_cassette(cassette, allow_damage=True) as opened:
            return len(opened.entries)
    except Exception:  # not there yet, or not readable: the recording starts it
        return 0


def _check_strict(config: pytest.Config, mock: CaptureMock) -> None:
    """Under --capture-strict, fail the test (at teardown) on what that level refuses."""
    value = config.getoption("--capture-strict")
    if value is None:
        return
    from mock_server.field_warnings import REFUSED

    level = StrictLevel(value)
    refused = [w for w in mock.warnings() if w["level"] in REFUSED[level]]
    if refused:
        lines = "\n".join(f"  {w['count']} × {w['warning']}" for w in refused)
        pytest.fail(
            f"capture_mock: this test sent what the real Capture API may not know "
            f"(--capture-strict={level.value}):\n{lines}",
            pytrace=False,
        )


def _replay_app(cassette: Path) -> web.Application:
    from mock_server.app import make_app

    return make_app(
        ServerConfig(port=0, clock=ClockMode.MANUAL, mode=Mode.REPLAY, cassettes=(cassette,))
    )


def _proxy_app(cassette: Path, upstream: str, plan: RecordPlan) -> web.Application:
    from mock_server.replay.episodes import recording_app

    cassette.parent.mkdir(parents=True, exist_ok=True)
    return recording_app(cassette, upstream, plan)

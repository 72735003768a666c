"""What the emulator's handlers share, one typed `web.AppKey` per resource.

The browser, registry, live runner and replay slot are created and closed by `mock_server.app`'s
`cleanup_ctx`; handlers only read them here.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web

from mock_server.browser import BrowserManager
from mock_server.clock import Clock
from mock_server.config import Mode, ServerConfig
from mock_server.fault_rules import FaultBook
from mock_server.live import LiveRunner
from mock_server.replay.engine import ReplayEngine
from mock_server.sessions import SessionRegistry

if TYPE_CHECKING:  # the one-shot package imports this module
    from mock_server.oneshot.batch import BatchRunner
    from mock_server.oneshot.cache import OneshotCache
    from mock_server.oneshot.storage import ObjectStore

JOURNAL_SIZE = 10_000


@dataclass(slots=True)
class ReplaySlot:
    """The replay engine in use, if any (`POST /__admin/cassettes` swaps it at runtime)."""

    engine: ReplayEngine | None = None

    @property
    def mode(self) -> Mode:
        return self.engine.mode if self.engine is not None else Mode.LIVE


@dataclass(slots=True)
class Journal:
    """The requests of this run (`GET /__admin/requests`), the newest `JOURNAL_SIZE` kept."""

    entries: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=JOURNAL_SIZE))
    seen: int = 0

    def add(self, **entry: Any) -> None:
        self.seen += 1
        self.entries.append({"n": self.seen, **entry})

    def clear(self) -> None:
        self.entries.clear()
        self.seen = 0


CONFIG = web.AppKey("capture_config", ServerConfig)
CLOCK = web.AppKey("capture_clock", Clock)
BROWSER = web.AppKey("capture_browser", BrowserManager)
REGISTRY = web.AppKey("capture_registry", SessionRegistry)
LIVE = web.AppKey("capture_live", LiveRunner)
REPLAY = web.AppKey("capture_replay", ReplaySlot)
JOURNAL = web.AppKey("capture_journal", Journal)
FAULTS = web.AppKey("capture_faults", FaultBook)
ONESHOT_CACHE: web.AppKey[OneshotCache] = web.AppKey("capture_oneshot_cache")
OBJECT_STORE: web.AppKey[ObjectStore] = web.AppKey("capture_object_store")
BATCHES: web.AppKey[BatchRunner] = web.AppKey("capture_batches")
# What builds the registry and the live runner (cluster mode swaps in its own; default: the
# single-instance classes).
REGISTRY_FACTORY = web.AppKey("capture_registry_factory", Callable[..., SessionRegistry])
LIVE_FACTORY = web.AppKey("capture_live_factory", Callable[..., LiveRunner])
ENGINE_FACTORY = web.AppKey("capture_engine_factory", Callable[..., ReplayEngine])
# Where an answer came from (replay, live, miss...), for the journal.
SOURCE = web.RequestKey("capture_source", str)
# Fields a fired fault rule adds to the request's journal entry (its id; a dropped connection).
FAULT_JOURNAL = web.RequestKey("capture_fault_journal", dict)

"""The one frozen configuration object of the mock server, built by the CLI (or a test) and
handed to `make_app(config)`. Nothing below the CLI reads `os.environ`."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

DEFAULT_PORT = 8790
DEFAULT_TTL_SECONDS = 300
MAX_TTL_SECONDS = 900
DEFAULT_MAX_SESSIONS = 5
DEFAULT_KEEP_CLOSED_SECONDS = 3600.0
DEFAULT_CDP_TOKEN_TTL_SECONDS = 60.0
# What one live session holds in the browser (a context and a page), for sizing the global cap.
SESSION_MEMORY_BYTES = 150 * 1024 * 1024


def default_max_total_sessions() -> int:
    """Live sessions for all users together: half the machine's memory at ~150 MB a session,
    between 5 and 200 (2 GB: 6, 24 GB: 81)."""
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 20
    return max(DEFAULT_MAX_SESSIONS, min(200, memory // 2 // SESSION_MEMORY_BYTES))


class ClockMode(StrEnum):
    REAL = "real"
    MANUAL = "manual"


class Mode(StrEnum):
    """live: everything on local Chromium. replay: only from cassettes, never a browser.
    hybrid: replay what matches; a session continues live from its first miss."""

    LIVE = "live"
    REPLAY = "replay"
    HYBRID = "hybrid"


class RecordMode(StrEnum):
    """Record modes as vcrpy users know them."""

    NONE = "none"  # replay only (the pytest plugin's default): never the network
    ONCE = "once"  # record when the cassette does not exist, else replay only
    NEW_EPISODES = "new_episodes"  # answer what the cassette has, forward and append the rest
    ALL = "all"  # forward everything and write the cassette


class RecordPlan(StrEnum):
    """What a recording run does (`plan_recording`)."""

    REPLAY = "replay"  # serve the cassette, forward nothing
    RECORD = "record"  # forward everything and write the cassette
    EPISODES = "episodes"  # answer what the cassette has, forward and append the rest


def plan_recording(mode: RecordMode, exists: bool) -> RecordPlan:
    """The one record-mode decision (`record` and the pytest plugin): `none` replays only;
    `once` records a missing cassette and replays an existing one; `new_episodes` on an existing
    cassette answers what it has and forwards and appends the rest; `all` forwards everything."""
    if mode is RecordMode.NONE or (mode is RecordMode.ONCE and exists):
        return RecordPlan.REPLAY
    if mode is RecordMode.NEW_EPISODES and exists:
        return RecordPlan.EPISODES
    return RecordPlan.RECORD


class StrictLevel(StrEnum):
    """What `serve --strict` refuses (400) instead of warning about (`mock_server.field_warnings`):
    nothing; unknown fields and undocumented selector syntax; or also capture-replay's chosen
    names and aliases."""

    OFF = "off"
    UNKNOWN = "unknown"
    DOCUMENTED = "documented"


class Exhausted(StrEnum):
    """What a request gets once its recorded answers are used up."""

    REPEAT = "repeat"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    clock: ClockMode = ClockMode.REAL
    # Resolved browser executable, or None to let the backend discover one.
    browser: str | None = None
    default_ttl: int = DEFAULT_TTL_SECONDS
    max_sessions: int = DEFAULT_MAX_SESSIONS
    # userId -> its secret, or a tuple of its secrets; None accepts any well-formed token.
    users: dict[str, str | tuple[str, ...]] | None = None
    allow_file_urls: bool = False
    # Time budget of one action (a whole batch included), seconds; over it -> 504.
    action_timeout: float = 30.0
    # Ready browser contexts kept for fast session creation.
    context_pool: int = 1
    # Largest request body accepted, bytes.
    max_body_bytes: int = 8 * 1024 * 1024
    # Start time of the manual clock (epoch seconds).
    manual_clock_start: float = 1_767_225_600.0  # 2026-01-01T00:00:00Z
    # Launch the browser at start-up (serve does; tests may not).
    warm_browser: bool = False
    mode: Mode = Mode.LIVE
    cassettes: tuple[Path, ...] = ()
    # Named matchers (mock_server.replay.matching.Matcher values); empty = the defaults.
    match_on: tuple[str, ...] = ()
    # Dotted JSON paths dropped from request bodies before matching.
    ignore: tuple[str, ...] = ()
    exhausted: Exhausted = Exhausted.REPEAT
    # The k-th create beyond the recorded sessions with its body cycles back to the first;
    # off (record mode new_episodes), it is a miss.
    cycle_sessions: bool = True
    # None: answer at once; "recorded": after the recorded duration; a number: fixed ms.
    latency: str | float | None = None
    # Refuse (400) requests whose fields or selectors the real API may not know, instead of
    # answering them with an X-Capture-Replay-Warning header.
    strict: StrictLevel = StrictLevel.OFF
    # Live sessions for all users together (the local machine's limit); over it, 429.
    max_total_sessions: int = field(default_factory=default_max_total_sessions)
    # Seconds (server clock) a closed or expired session stays readable before it is forgotten.
    keep_closed: float = DEFAULT_KEEP_CLOSED_SECONDS
    # When set, /__admin/ requests need `Authorization: Bearer <admin_token>`.
    admin_token: str | None = None
    # The folder `POST /__admin/cassettes` may load from; None: the working directory.
    cassette_dir: Path | None = None
    # One-shot captures running at once; more wait in a FIFO queue of at most `oneshot_queue`,
    # each for at most `oneshot_wait` seconds (then, or when the queue is full: 503).
    oneshot_slots: int = 4
    oneshot_queue: int = 16
    oneshot_wait: float = 30.0
    # Fault rules loaded at start (mock_server.fault_rules), and the seed of their draws.
    faults: tuple[Any, ...] = ()
    fault_seed: int = 0
    # Seconds (server clock) a CDP connectUrl's token may open a connection after being minted.
    cdp_token_ttl: float = DEFAULT_CDP_TOKEN_TTL_SECONDS
    # Identical one-shots within this many seconds (server clock) are answered from the cache
    # (0: no cache), whose bodies hold at most `oneshot_cache_bytes`, least recently used out.
    oneshot_cache_ttl: float = 7 * 24 * 3600.0
    oneshot_cache_bytes: int = 256 * 1024 * 1024
    # The local object store standing in for S3; None: a temporary folder, removed at stop.
    storage_dir: Path | None = None
    # Items per batch request at most; hosts besides loopback a notification_uri may target.
    batch_max: int = 100
    allow_webhook_hosts: tuple[str, ...] = ()
    # Cluster mode (`mock_server.cluster`): the shared Redis, the heartbeat's TTL in seconds and
    # the address other instances list for this one (default http://host:port).
    redis_url: str | None = None
    heartbeat_ttl: float = 10.0
    advertise: str | None = None
    # A Playwright browser server (ws://...) to connect to instead of launching Chromium.
    browser_endpoint: str | None = None


def read_users_file(path: Path) -> dict[str, str | tuple[str, ...]]:
    """Parse `userId:secret` lines (a user may have several lines, one per secret); blank lines
    and `#` comments are skipped. A malformed line is a ValueError naming the file and the line
    number (never the line itself: it may hold a secret)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as err:
        raise ValueError(f"{path}: not UTF-8 text (byte {err.start})") from err
    users: dict[str, tuple[str, ...]] = {}
    for lineno, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        user, sep, secret = line.partition(":")
        if not sep or not user or not secret or any(c.isspace() for c in user):
            raise ValueError(
                f"{path}, line {lineno}: expected 'userId:secret' (a userId without spaces, "
                "a colon, a non-empty secret)"
            )
        known = users.get(user, ())
        if secret not in known:
            users[user] = (*known, secret)
    return dict(users)

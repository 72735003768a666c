"""Sessions as the cloud keeps them: lifetime (TTL), the per-user concurrency limit, action
counters and duration billing, all on the injected clock.

The registry knows nothing of Playwright: it is handed an opener that returns a page object
with an async `close()` (live mode), or none at all (replay keeps sessions without a page).
"""

from __future__ import annotations

import asyncio
import logging
import math
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from mock_server.clock import Clock
from mock_server.config import MAX_TTL_SECONDS
from mock_server.errors import BadRequestError, NotFoundError, SessionLimitError
from mock_server.json_body import parse_json
from recorder.contract import credits_for, duration_seconds, format_time
from recorder.fields import CREATE
from recorder.statuses import NOT_FOUND, SESSION_LIMIT

log = logging.getLogger(__name__)

CREATE_FIELDS = CREATE.documented


class SessionStatus(StrEnum):
    ACTIVE = "active"
    CLOSED = "closed"
    EXPIRED = "expired"
    ERROR = "error"


class PageHandle(Protocol):
    async def close(self) -> None: ...


PageOpener = Callable[[str, bool], Awaitable[PageHandle]]


@dataclass(frozen=True, slots=True)
class SessionOptions:
    max_ttl_seconds: int
    proxy: bool = False
    bypass_bot_detection: bool = False
    cdp: bool = False

    def as_json(self) -> dict[str, Any]:
        return {
            "maxTtlSeconds": self.max_ttl_seconds,
            "proxy": self.proxy,
            "bypassBotDetection": self.bypass_bot_detection,
            "cdp": self.cdp,
        }


def parse_create_request(raw: bytes, default_ttl: int) -> SessionOptions:
    """A create request's body: none at all means the defaults; JSON `null` is no object (400)."""
    body = parse_json(raw, optional=True)
    if body is None and raw.strip():
        raise BadRequestError("Invalid session options: the body must be a JSON object")
    return parse_create_options(body, default_ttl)


def parse_create_options(body: Any, default_ttl: int) -> SessionOptions:
    """Validate a create body (`CreateSessionRequest`, additionalProperties false)."""
    if body is None or body == []:  # no body, or PHP's json_encode of an empty array
        body = {}
    if not isinstance(body, dict):
        raise BadRequestError("Invalid session options: the body must be a JSON object")
    unknown = sorted(set(body) - set(CREATE_FIELDS))
    if unknown:
        raise BadRequestError(
            f"Invalid session options: unknown field(s) {', '.join(unknown)}; "
            f"allowed: {', '.join(CREATE_FIELDS)}"
        )
    ttl = body.get("maxTtlSeconds", default_ttl)
    if isinstance(ttl, bool) or not isinstance(ttl, int):
        raise BadRequestError("Invalid session options: maxTtlSeconds must be an integer")
    if ttl < 1:
        raise BadRequestError("Invalid session options: maxTtlSeconds must be at least 1")
    flags = {}
    for name in ("proxy", "bypassBotDetection", "cdp"):
        value = body.get(name, False)
        if not isinstance(value, bool):
            raise BadRequestError(f"Invalid session options: {name} must be a boolean")
        flags[name] = value
    if flags["cdp"] and flags["bypassBotDetection"]:
        raise BadRequestError("cdp cannot be combined with bypassBotDetection")
    return SessionOptions(
        max_ttl_seconds=min(ttl, MAX_TTL_SECONDS),
        proxy=flags["proxy"],
        bypass_bot_detection=flags["bypassBotDetection"],
        cdp=flags["cdp"],
    )


@dataclass(slots=True)
class Session:
    id: str
    user: str
    options: SessionOptions
    started_at: float
    status: SessionStatus = SessionStatus.ACTIVE
    close_reason: str | None = None
    closed_at: float | None = None
    billed_credits: int | None = None
    action_count: int = 0
    action_success_count: int = 0
    action_error_count: int = 0
    breakdown: dict[str, dict[str, int]] = field(default_factory=dict)
    page: PageHandle | None = None

    @property
    def expires_at(self) -> float:
        return self.started_at + self.options.max_ttl_seconds

    @property
    def active(self) -> bool:
        return self.status is SessionStatus.ACTIVE

    def expires_in(self, now: float) -> int:
        if not self.active:
            return 0
        return max(0, math.ceil(round(self.expires_at - now, 6)))

    def usage(self) -> tuple[str, int, int]:
        """(user, credits billed, actions) for the usage totals."""
        return self.user, self.billed_credits or 0, self.action_count

    def count_action(self, action_type: str, ok: bool) -> None:
        entry = self.breakdown.setdefault(action_type, {"total": 0, "success": 0, "error": 0})
        entry["total"] += 1
        self.action_count += 1
        if ok:
            entry["success"] += 1
            self.action_success_count += 1
        else:
            entry["error"] += 1
            self.action_error_count += 1

    def created_json(self) -> dict[str, Any]:
        """The `session` object of the 201 create answer (`CreateSessionResponse`); a CDP
        session's `connectUrl` is added by the route (`mock_server.cdp`): fresh per answer."""
        body: dict[str, Any] = {
            "id": self.id,
            "status": self.status.value,
            "expiresAt": format_time(self.expires_at),
            "maxTtlSeconds": self.options.max_ttl_seconds,
            "proxy": self.options.proxy,
            "bypassBotDetection": self.options.bypass_bot_detection,
            "cdp": self.options.cdp,
        }
        return body

    def snapshot(self) -> dict[str, Any]:
        """The `BrowserSession` object of get/close answers and 409s."""
        duration = (
            duration_seconds(self.started_at, self.closed_at)
            if self.closed_at is not None
            else None
        )
        body: dict[str, Any] = {
            "id": self.id,
            "status": self.status.value,
            "closeReason": self.close_reason,
            "createdAt": format_time(self.started_at),
            "startedAt": format_time(self.started_at),
            "expiresAt": format_time(self.expires_at),
            "closedAt": format_time(self.closed_at) if self.closed_at is not None else None,
            "durationSeconds": duration,
            "billedCredits": self.billed_credits,
            "actionCount": self.action_count,
            "actionSuccessCount": self.action_success_count,
            "actionErrorCount": self.action_error_count,
            "actionBreakdown": {k: dict(v) for k, v in sorted(self.breakdown.items())},
            "options": self.options.as_json(),
        }
        return body


class SessionRegistry:
    """Every session of this server, by id; enforces the per-user limit and expires on time."""

    def __init__(
        self,
        clock: Clock,
        *,
        max_sessions: int,
        max_total: int | None = None,
        keep_closed: float | None = None,
        opener: PageOpener | None = None,
        id_factory: Callable[[], str] | None = None,
    ) -> None:
        self.clock = clock
        self.max_sessions = max_sessions
        # All users together (the local machine's limit, not Capture's); None: no limit.
        self.max_total = max_total
        # Seconds a finished session stays readable (GET, 409) before it is forgotten.
        self.keep_closed = keep_closed
        self.opener = opener
        self._sessions: dict[str, Session] = {}
        self._active: dict[str, Session] = {}  # the sessions whose status is active
        self._reserved: dict[str, int] = {}
        self._new_id = id_factory or (lambda: f"sess_{uuid.uuid4()}")
        self._changed = asyncio.Event()
        self._closing: set[asyncio.Task[None]] = set()
        # Usage of sessions forgotten after the retention window (usage totals keep them).
        self._forgotten: list[tuple[str, int, int]] = []

    # -- queries -------------------------------------------------------------------------

    def get(self, session_id: str, user: str) -> Session:
        session = self._sessions.get(session_id)
        if session is None or session.user != user:
            raise NotFoundError(NOT_FOUND)
        return session

    def find(self, session_id: str) -> Session | None:
        """The session of that id (any user, any status), or None."""
        return self._sessions.get(session_id)

    async def lookup(self, session_id: str, user: str) -> Session:
        """`get` for the routes; a shared registry (`mock_server.cluster`) reads its store."""
        return self.get(session_id, user)

    def find_active(self, session_id: str) -> Session | None:
        """The active session of that id (any user), or None."""
        return self._active.get(session_id)

    def all(self) -> list[Session]:
        return list(self._sessions.values())

    def active_count(self, user: str) -> int:
        return sum(1 for s in self._active.values() if s.user == user)

    def usage(self) -> dict[str, dict[str, int]]:
        per_user: dict[str, dict[str, int]] = {}
        kept = [(*s.usage(), int(s.active)) for s in self._sessions.values()]
        for user, credits, actions, active in [*kept, *((*u, 0) for u in self._forgotten)]:
            u = per_user.setdefault(
                user, {"sessions": 0, "active": 0, "creditsBilled": 0, "actions": 0}
            )
            u["sessions"] += 1
            u["active"] += active
            u["creditsBilled"] += credits
            u["actions"] += actions
        return per_user

    def next_expiry(self) -> float | None:
        return min((s.expires_at for s in self._active.values()), default=None)

    # -- lifecycle -----------------------------------------------------------------------

    async def create(
        self,
        user: str,
        options: SessionOptions,
        session_id: str | None = None,
        *,
        with_page: bool = True,
    ) -> Session:
        await self.sweep()
        self.check_total(user)
        in_use = self.active_count(user) + self._reserved.get(user, 0)
        if in_use >= self.max_sessions:
            raise self.limit_error(in_use)
        sid = session_id or self._new_id()
        page = await self.open_page(user, sid, options) if with_page else None
        session = Session(
            id=sid, user=user, options=options, started_at=self.clock.now(), page=page
        )
        self._sessions[sid] = session
        self._active[sid] = session
        self._changed.set()
        return session

    async def open_page(self, user: str, sid: str, options: SessionOptions) -> PageHandle | None:
        """The new session's page (None without an opener), its slot held while it opens so
        concurrent creates cannot overshoot."""
        if self.opener is None:
            return None
        self._reserved[user] = self._reserved.get(user, 0) + 1
        try:
            return await self.opener(sid, options.cdp)
        finally:
            self._reserved[user] -= 1

    def check_total(self, user: str) -> None:
        """429 when this machine already runs `max_total` live sessions (all users)."""
        if self.max_total is not None:
            total = len(self._active) + sum(self._reserved.values())
            if total >= self.max_total:
                raise SessionLimitError(
                    f"This local capture-replay server already runs {total} sessions, its limit "
                    f"for all users together (--max-total-sessions {self.max_total}); close a "
                    "session or wait for one to expire",
                    activeSessionCount=self.active_count(user),
                    maxConcurrentSessions=self.max_sessions,
                )

    def limit_error(self, in_use: int) -> SessionLimitError:
        """The 429 of the per-user limit (`in_use` sessions active or being opened)."""
        return SessionLimitError(
            f"{SESSION_LIMIT} ({self.max_sessions} active sessions at most); close a session "
            "or wait for one to expire",
            activeSessionCount=in_use,
            maxConcurrentSessions=self.max_sessions,
        )

    async def close(self, session: Session) -> Session:
        """Close and bill once; closing a finalized session changes nothing (idempotent)."""
        if session.active:
            now = self.clock.now()
            if now >= session.expires_at:
                self._finalize(session, SessionStatus.EXPIRED, session.expires_at)
            else:
                self._finalize(session, SessionStatus.CLOSED, now)
            await self._release_page(session)
        return session

    async def expire(self, session: Session) -> None:
        """Expire the session now, before its TTL (fault injection): status `expired`, billed up
        to now, slot freed."""
        if session.active:
            now = min(self.clock.now(), session.expires_at)
            self._finalize(session, SessionStatus.EXPIRED, now)
            await self._release_page(session)

    async def fail(self, session: Session) -> None:
        """The session's browser is gone: status `error`, billed up to now, slot freed."""
        if session.active:
            self._finalize(session, SessionStatus.ERROR, min(self.clock.now(), session.expires_at))
            await self._release_page(session)

    async def sweep(self) -> None:
        """Expire every active session whose TTL has passed, billed up to its TTL; forget
        finished sessions older than the retention window."""
        now = self.clock.now()
        due = [s for s in self._active.values() if s.expires_at <= now]
        for session in due:
            self._finalize(session, SessionStatus.EXPIRED, session.expires_at)
        for session in due:
            await self._release_page(session)
        if self.keep_closed is not None and len(self._sessions) > len(self._active):
            horizon = now - self.keep_closed
            for sid, session in list(self._sessions.items()):
                if session.closed_at is not None and session.closed_at <= horizon:
                    del self._sessions[sid]
                    self._forgotten.append(session.usage())

    def _finalize(self, session: Session, status: SessionStatus, at: float) -> None:
        self._active.pop(session.id, None)
        session.status = status
        session.close_reason = status.value
        session.closed_at = at
        session.billed_credits = credits_for(duration_seconds(session.started_at, at))
        self._changed.set()

    async def _release_page(self, session: Session) -> None:
        page, session.page = session.page, None
        if page is not None:
            try:
                await page.close()
            except Exception:  # a crashed browser must not keep the slot busy
                log.warning("closing the page of %s failed", session.id, exc_info=True)

    async def close_all(self) -> None:
        for session in list(self._sessions.values()):
            await self._release_page(session)

    async def reset(self) -> None:
        await self.close_all()
        self._forgotten.clear()
        self._sessions.clear()
        self._active.clear()
        self._reserved.clear()

    async def run_expiry(self) -> None:
        """Background task for the real clock: wake at the next TTL and expire on time."""
        while True:
            self._changed.clear()
            deadline = self.next_expiry()
            timeout = None if deadline is None else max(0.0, deadline - self.clock.now())
            try:
                await asyncio.wait_for(self._changed.wait(), timeout)
            except TimeoutError:
                pass
            await self.sweep()

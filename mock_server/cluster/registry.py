"""The session registry shared by every instance of a cluster, through `ClusterStore` (Redis).

`ClusterRegistry` keeps `SessionRegistry`'s interface (the routes, the live runner and the replay
engine call it unchanged) and its rules (TTL, the per-user limit, billing once), with the records
in Redis: any instance answers GET and DELETE for any session; the per-user limit is admitted in
one Lua script across instances; ending a session is a compare-and-set, so it is billed once
whoever ends it. Locally it holds only the active sessions this instance owns (their browser
pages), and expires them on time; a session ended elsewhere (DELETE on another instance, expiry
on the shared manual clock) has its page released by a message on the owner's queue. When an
owner is gone (its heartbeat key expired), any instance ends its sessions with status `error`.

Action counters of a session are counted where the action ran and added to the record with
`HINCRBY` (`flush_pending`), so counts from several instances never overwrite each other.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass, field
from typing import Any, Protocol

from mock_server.cluster.clock import SharedClock
from mock_server.cluster.store import UNREACHABLE, ClusterStore
from mock_server.errors import NotFoundError
from mock_server.sessions import Session, SessionOptions, SessionRegistry, SessionStatus
from recorder.contract import credits_for, duration_seconds

log = logging.getLogger(__name__)


@dataclass(slots=True)
class ClusterSession(Session):
    """A session as the cluster knows it: its owner instance and, on other instances, no page."""

    owner: str = ""
    # Unused since connectUrls are minted per answer by the owner (`mock_server.cdp`); kept so
    # records written by an older instance still load.
    connect_url: str | None = None
    # Actions counted here and not yet added to the record: (type, ok).
    counted: list[tuple[str, bool]] = field(default_factory=list)
    dirty: dict[str, ClusterSession] | None = None

    def count_action(self, action_type: str, ok: bool) -> None:
        Session.count_action(self, action_type, ok)
        self.counted.append((action_type, ok))
        if self.dirty is not None:
            self.dirty[self.id] = self


def to_record(session: ClusterSession) -> dict[str, str]:
    return {
        "user": session.user,
        "owner": session.owner,
        "status": session.status.value,
        "startedAt": repr(session.started_at),
        "options": json.dumps(session.options.as_json()),
        "connectUrl": session.connect_url or "",
        "actionCount": "0",
        "actionSuccessCount": "0",
        "actionErrorCount": "0",
    }


def apply_record(session: ClusterSession, record: dict[str, str]) -> None:
    """Copy the record's status, billing and counters onto `session`."""
    session.status = SessionStatus(record["status"])
    reason = record.get("closeReason")
    session.close_reason = reason or None
    closed = record.get("closedAt")
    session.closed_at = float(closed) if closed else None
    billed = record.get("billedCredits")
    session.billed_credits = int(billed) if billed else None
    session.action_count = int(record.get("actionCount", 0))
    session.action_success_count = int(record.get("actionSuccessCount", 0))
    session.action_error_count = int(record.get("actionErrorCount", 0))
    breakdown: dict[str, dict[str, int]] = {}
    for name, value in record.items():
        if name.startswith("b:"):
            action_type, _, outcome = name[2:].rpartition(":")
            entry = breakdown.setdefault(action_type, {"total": 0, "success": 0, "error": 0})
            entry[outcome] = int(value)
    session.breakdown = breakdown


def from_record(sid: str, record: dict[str, str]) -> ClusterSession:
    options = json.loads(record["options"])
    session = ClusterSession(
        id=sid,
        user=record["user"],
        options=SessionOptions(
            max_ttl_seconds=options["maxTtlSeconds"],
            proxy=options["proxy"],
            bypass_bot_detection=options["bypassBotDetection"],
            cdp=options["cdp"],
        ),
        started_at=float(record["startedAt"]),
        owner=record["owner"],
        connect_url=record.get("connectUrl") or None,
    )
    apply_record(session, record)
    return session


class ReplayHook(Protocol):
    """What the shared registry asks of the cluster's replay engine."""

    has_pushes: bool

    async def pull(self, session_id: str) -> None: ...

    def push(self, pipe: Any) -> None: ...


class ClusterRegistry(SessionRegistry):
    """`SessionRegistry` over the cluster's shared records; see the module docstring."""

    def __init__(self, *args: Any, store: ClusterStore, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.store = store
        self.instance_id = store.instance_id
        self._dirty: dict[str, ClusterSession] = {}
        # The replay engine's shared cursors (`mock_server.cluster.replay`), when replaying.
        self.replay_hook: ReplayHook | None = None

    # -- queries -------------------------------------------------------------------------------

    def local(self, session_id: str) -> ClusterSession | None:
        """The active session of that id that this instance owns, or None."""
        found = self._active.get(session_id)
        return found if isinstance(found, ClusterSession) else None

    async def lookup(self, session_id: str, user: str) -> Session:
        record = await self.store.load(session_id)
        if record is None:
            self.released(session_id, SessionStatus.CLOSED.value)  # forgotten (admin reset)
        if record is None or record["user"] != user:
            raise NotFoundError("Session not found")
        if self.replay_hook is not None:
            await self.replay_hook.pull(session_id)
        session = self.local(session_id)
        if session is None:
            session = from_record(session_id, record)
            session.dirty = self._dirty
        else:
            pending = list(session.counted)
            apply_record(session, record)
            for action_type, ok in pending:  # counted here, not yet in the record
                Session.count_action(session, action_type, ok)
            if not session.active:  # ended elsewhere; the message to free the page is late
                self.released(session_id, session.status.value)
        if session.active and self.clock.now() >= session.expires_at:
            await self.end(session, SessionStatus.EXPIRED, session.expires_at)
        return session

    async def cluster_usage(self) -> dict[str, dict[str, int]]:
        per_user: dict[str, dict[str, int]] = {}
        for record in await self.store.load_many(await self.store.all_ids()):
            u = per_user.setdefault(
                record["user"], {"sessions": 0, "active": 0, "creditsBilled": 0, "actions": 0}
            )
            u["sessions"] += 1
            u["active"] += int(record["status"] == SessionStatus.ACTIVE)
            u["creditsBilled"] += int(record.get("billedCredits") or 0)
            u["actions"] += int(record.get("actionCount", 0))
        for user, kept in (await self.store.forgotten_usage()).items():
            u = per_user.setdefault(
                user, {"sessions": 0, "active": 0, "creditsBilled": 0, "actions": 0}
            )
            for name, value in kept.items():
                u[name] += value
        return per_user

    async def cluster_sessions(self) -> list[dict[str, Any]]:
        ids = await self.store.all_ids()
        found = []
        for sid, record in zip(ids, await self.store.load_many(ids), strict=False):
            session = from_record(sid, record)
            found.append(dict(session.snapshot(), user=session.user, owner=session.owner))
        return found

    # -- lifecycle -----------------------------------------------------------------------------

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
        sid = session_id or self._new_id()
        now = self.clock.now()
        held = await self.store.reserve(
            user, sid, now, now + options.max_ttl_seconds, self.max_sessions
        )
        if held is not None:
            raise self.limit_error(held)
        page = None
        try:
            if with_page:
                page = await self.open_page(user, sid, options)
            session = ClusterSession(
                id=sid,
                user=user,
                options=options,
                started_at=self.clock.now(),
                page=page,
                owner=self.instance_id,
                dirty=self._dirty,
            )
            await self.store.save_new(
                sid, to_record(session), session.expires_at, session.started_at
            )
        except BaseException:
            if page is not None:
                with contextlib.suppress(Exception):
                    await page.close()
            with contextlib.suppress(*UNREACHABLE):
                await self.store.unreserve(user, sid)
            raise
        self._sessions[sid] = session
        self._active[sid] = session
        self._changed.set()
        return session

    async def close(self, session: Session) -> Session:
        if session.active:
            now = self.clock.now()
            if now >= session.expires_at:
                await self.end(session, SessionStatus.EXPIRED, session.expires_at)
            else:
                await self.end(session, SessionStatus.CLOSED, now)
        return session

    async def fail(self, session: Session) -> None:
        if session.active:
            at = min(self.clock.now(), session.expires_at)
            await self.end(session, SessionStatus.ERROR, at)

    async def end(self, session: Session, status: SessionStatus, at: float) -> None:
        """End `session` once cluster-wide (billed here if this call wins), and free its page:
        here when this instance owns it, else by a message to its owner."""
        assert isinstance(session, ClusterSession)
        credits = credits_for(duration_seconds(session.started_at, at))
        won = await self.store.finalize(
            session.id, session.user, session.owner, status.value, at, credits
        )
        if won:
            self._finalize(session, status, at)
        else:  # someone else ended it first: answer their outcome
            record = await self.store.load(session.id)
            if record is not None:
                apply_record(session, record)
            self._active.pop(session.id, None)
        self._sessions.pop(session.id, None)
        if session.page is not None:
            await self._release_page(session)
        elif won and session.owner != self.instance_id:
            with contextlib.suppress(*UNREACHABLE):
                message = {"k": "release", "sid": session.id, "status": status.value}
                await self.store.push_request(session.owner, message)

    def released(self, session_id: str, status: str) -> None:
        """The owner's side of a session ended elsewhere: stop it now, free the page soon."""
        session = self.local(session_id)
        if session is None:
            return
        self._active.pop(session_id, None)
        self._sessions.pop(session_id, None)
        if session.active:  # the rest is read from the record when asked
            session.status = SessionStatus(status)
        self._track(self._release_page(session))

    def _track(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def sweep(self) -> None:
        """Expire this instance's own sessions whose TTL has passed (no Redis call otherwise)."""
        now = self.clock.now()
        for session in [s for s in self._active.values() if s.expires_at <= now]:
            await self.end(session, SessionStatus.EXPIRED, session.expires_at)

    async def sweep_cluster(self) -> None:
        """Expire every session of the cluster whose TTL has passed (the shared clock moved);
        forget the finished ones older than the retention window, their usage kept."""
        await self.sweep()
        now = self.clock.now()
        for sid in await self.store.due(now):
            record = await self.store.load(sid)
            if record is None or record["status"] != SessionStatus.ACTIVE:
                continue
            session = from_record(sid, record)
            await self.end(session, SessionStatus.EXPIRED, session.expires_at)
        if self.keep_closed is not None:
            await self.store.forget_closed(now - self.keep_closed)

    async def reap(self, instance_id: str) -> int:
        """The instance is gone: its active sessions end with status `error`, billed up to now
        (once, whoever reaps), their slots freed; the instance is forgotten."""
        ended = 0
        for record_sid in await self.store.owned(instance_id):
            record = await self.store.load(record_sid)
            if record is None or record["status"] != SessionStatus.ACTIVE:
                continue
            session = from_record(record_sid, record)
            at = min(self.clock.now(), session.expires_at)
            credits = credits_for(duration_seconds(session.started_at, at))
            ended += await self.store.finalize(
                record_sid, session.user, instance_id, SessionStatus.ERROR.value, at, credits
            )
        await self.store.forget_instance(instance_id)
        if ended:
            log.warning("instance %s is gone: %d session(s) ended in error", instance_id, ended)
        return ended

    async def flush_pending(self, pipe: Any = None) -> None:
        """Add the actions counted here to the records (one round trip; `pipe` to join one)."""
        hook = self.replay_hook
        if not self._dirty and (hook is None or not hook.has_pushes):
            return
        if pipe is None:
            async with self.store.redis.pipeline(transaction=False) as own:
                self._queue_pending(own)
                await own.execute()
        else:
            self._queue_pending(pipe)

    def _queue_pending(self, pipe: Any) -> None:
        sessions = list(self._dirty.values())
        self._dirty.clear()
        for session in sessions:
            self.store.count_actions(pipe, session.id, session.counted)
            session.counted = []
        if self.replay_hook is not None:
            self.replay_hook.push(pipe)

    async def close_all(self) -> None:
        """Shutting down: this instance's sessions lose their pages, so they end in `error`."""
        for session in list(self._active.values()):
            try:
                await self.fail(session)
            except UNREACHABLE:
                await self._release_page(session)
        await super().close_all()

    async def reset(self) -> None:
        """`POST /__admin/reset`: every session of the cluster forgotten, the shared clock back
        to its start; other instances free their pages when they next meet those sessions."""
        await super().reset()
        self._dirty.clear()
        await self.store.clear_sessions()
        if isinstance(self.clock, SharedClock):
            await self.clock.reset_shared()

"""Actions routed to the instance that owns the session's browser page, through Redis.

The instance the client called (`ClusterLive.act`) pushes the request, as one msgpack message,
on the owner's list `instance:OWNER:requests` (only while the owner's heartbeat key exists: one
Lua script), then waits on its own reply key with `BLPOP`. The owner (`RequestWorker`) pops its
list in order with `BRPOP`: messages are handled in the order they were queued, and each action
takes the session page's lock at once, so a session's actions run in the order they arrived. The
answer (the result, or the error's status and body) goes back on the reply key in the same round
trip as the session's counters. Over the action budget the owner answers 504 as a local action
does; the caller keeps its own bound (budget plus a margin) in case the owner dies meanwhile:
checked every heartbeat TTL, a dead owner's sessions end in `error` and the request gets the
contract's 409 "Session is unavailable or not active" with the session snapshot.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

from mock_server.cluster.clock import SharedClock
from mock_server.cluster.registry import ClusterRegistry, ClusterSession, apply_record
from mock_server.cluster.store import UNREACHABLE, ClusterStore
from mock_server.errors import ActionTimeoutError, CaptureError, SessionInactiveError
from mock_server.live import LiveRunner, inactive_error
from mock_server.sessions import Session
from recorder.statuses import BACKING_SERVICE as BACKING_SERVICE_UNAVAILABLE
from recorder.statuses import INACTIVE as SESSION_UNAVAILABLE

log = logging.getLogger(__name__)

# The caller's own bound past the action budget (the owner answers 504 at the budget).
MARGIN_SECONDS = 10.0


def unavailable_error(session: Session) -> SessionInactiveError:
    return SessionInactiveError(SESSION_UNAVAILABLE, expiresInSeconds=0, session=session.snapshot())


def error_from(reply: dict[str, Any]) -> CaptureError:
    err = CaptureError(reply["error"], **reply["extra"])
    err.status = int(reply["status"])
    return err


class ClusterLive(LiveRunner):
    """`LiveRunner` that runs an action here when this instance owns the session, and routes it
    to the owner otherwise."""

    def __init__(self, *args: Any, store: ClusterStore, heartbeat_ttl: float, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.store = store
        self.heartbeat_ttl = heartbeat_ttl

    async def act(self, session: Session, raw: bytes) -> dict[str, Any]:
        if not isinstance(session, ClusterSession) or session.owner == self.store.instance_id:
            return await super().act(session, raw)
        return await self.route(session, raw)

    async def route(self, session: ClusterSession, raw: bytes) -> dict[str, Any]:
        registry = self.registry
        assert isinstance(registry, ClusterRegistry)
        reply_id = uuid.uuid4().hex
        message = {
            "k": "act",
            "sid": session.id,
            "user": session.user,
            "raw": raw,
            "reply": reply_id,
            "now": self.clock.now(),
        }
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.action_timeout + MARGIN_SECONDS
        # The common case in one round trip: queued, and the answer soon (else waited below).
        pushed, reply = await self.store.push_and_wait(
            session.owner, message, reply_id, self.heartbeat_ttl / 3
        )
        if not pushed and not await self._push(session.owner, message):
            raise await self._owner_gone(registry, session)
        while reply is None:
            left = deadline - loop.time()
            if left <= 0:
                raise ActionTimeoutError(
                    f"Action timed out after {self.action_timeout:g} s",
                    expiresInSeconds=self.expires_in(session),
                )
            reply = await self.store.wait_reply(reply_id, min(left, self.heartbeat_ttl))
            if reply is None and not await self.store.is_alive(session.owner):
                raise await self._owner_gone(registry, session)
        if reply["status"] == 200:
            return reply["result"]
        raise error_from(reply)

    async def _push(self, owner: str, message: dict[str, Any]) -> bool:
        """Queue for `owner`; an owner whose heartbeat key is missing gets one more TTL to renew
        it (after a Redis outage every key may have expired) before it counts as gone."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.heartbeat_ttl
        while not await self.store.push_request(owner, message):
            if loop.time() >= deadline:
                return False
            await asyncio.sleep(self.heartbeat_ttl / 6)
        return True

    async def _owner_gone(
        self, registry: ClusterRegistry, session: ClusterSession
    ) -> SessionInactiveError:
        await registry.reap(session.owner)
        found = await registry.store.load(session.id)
        if found is not None:
            apply_record(session, found)
        return unavailable_error(session)


class RequestWorker:
    """The owner's side: pops the requests routed to this instance and answers them."""

    def __init__(self, store: ClusterStore, registry: ClusterRegistry, live: LiveRunner) -> None:
        self.store = store
        self.registry = registry
        self.live = live
        self._tasks: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        while True:
            try:
                message = await self.store.pop_request(timeout=1.0)
            except UNREACHABLE:
                await asyncio.sleep(0.5)  # Redis is down: try again shortly
                continue
            if message is None:
                continue
            if message["k"] == "release":
                self.registry.released(message["sid"], message["status"])
                continue
            # One task per action; each takes its page's lock before its first pause, so a
            # session's actions keep the order in which they were queued.
            task = asyncio.create_task(self._answer(message))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _answer(self, message: dict[str, Any]) -> None:
        reply: dict[str, Any]
        clock = self.live.clock
        if isinstance(clock, SharedClock):  # the caller's clock may be a publish ahead of ours
            clock.catch_up(message["now"])
        try:
            session = self.registry.local(message["sid"])
            if session is None:
                found = await self.registry.lookup(message["sid"], message["user"])
                if not found.active:
                    raise inactive_error(found)
                session = found  # active but no page here: answered as a local action is
            result = await LiveRunner.act(self.live, session, message["raw"])
            reply = {"status": 200, "result": result}
        except CaptureError as err:
            reply = {"status": err.status, "error": err.message, "extra": err.extra}
        except UNREACHABLE:
            reply = {"status": 503, "error": BACKING_SERVICE_UNAVAILABLE, "extra": {}}
        except Exception:
            log.exception("a routed action failed unexpectedly")
            reply = {"status": 500, "error": "Internal error", "extra": {}}
        try:
            async with self.store.redis.pipeline(transaction=False) as pipe:
                await self.registry.flush_pending(pipe)
                self.store.queue_reply(pipe, message["reply"], reply)
                await pipe.execute()
        except UNREACHABLE:
            log.warning("could not answer a routed action: Redis is unreachable")

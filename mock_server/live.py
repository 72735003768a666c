"""Running a session's actions on its live browser page: the one rule for what counts as an
action, the session's lock, the time budget, and what a failure does to the session.

An action counts (in `actionCount` and `actionBreakdown`) when its request is a valid action
request: a known `type` with a `payload` object. A request refused before that (`{"type":
"fly"}`, a body that is not JSON) is a 400 that counts nothing; this holds live and in replay
(`counted_action`). Every error answered here carries `expiresInSeconds`; a page that crashed (its
renderer, or the browser under it) ends the session with status `error` (billed, slot freed) at
once, whether or not an action was running; the action in flight answers 503.

Below the HTTP layer and the replay engine (both call down into it); imports neither.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from mock_server.actions import ActionType, parse_action_request, run_action
from mock_server.browser import BrowserManager, SessionPage
from mock_server.clock import Clock
from mock_server.errors import (
    ActionTimeoutError,
    BadRequestError,
    BrowserUnavailableError,
    CaptureError,
    SessionInactiveError,
)
from mock_server.json_body import parse_json
from mock_server.sessions import Session, SessionRegistry

log = logging.getLogger(__name__)

NO_BROWSER = (
    "This session has no browser (replay mode); restart with --mode hybrid to run "
    "unrecorded actions live"
)


_CRASHED = "the session's page crashed"
GONE = "The session's page crashed (its renderer or the browser died)"


def parse_action(raw: bytes) -> tuple[ActionType, dict[str, Any]]:
    """An action request's type and payload; a 400 (`BadRequestError`) when it is not one."""
    return parse_action_request(parse_json(raw))


def counted_action(raw: bytes) -> ActionType | None:
    """The action type an answered request counts as, or None when it counts as no action."""
    try:
        return parse_action(raw)[0]
    except BadRequestError:
        return None


def inactive_error(session: Session) -> SessionInactiveError:
    return SessionInactiveError(
        f"Session is not active (status: {session.status.value})",
        expiresInSeconds=0,
        session=session.snapshot(),
    )


def in_session(err: CaptureError, **extra: Any) -> CaptureError:
    """The same error answered with the session's fields (a new exception: raise it `from`)."""
    return type(err)(err.message, **{**err.extra, **extra})


class LiveRunner:
    """Runs actions on sessions' pages; opens a page for a replayed session that goes live."""

    def __init__(
        self,
        browser: BrowserManager,
        registry: SessionRegistry,
        clock: Clock,
        action_timeout: float,
    ) -> None:
        self.browser = browser
        self.registry = registry
        self.clock = clock
        self.action_timeout = action_timeout
        # The task running an action on each page, so a crash can interrupt it.
        self._running: dict[SessionPage, asyncio.Task[Any]] = {}
        self._failing: set[asyncio.Task[None]] = set()
        browser.on_page_crash = self._page_crashed

    def _page_crashed(self, page: SessionPage) -> None:
        """A session's page crashed: interrupt its action in flight (which then fails the
        session and answers 503), or end the idle session now."""
        task = self._running.get(page)
        if task is not None:
            task.cancel(_CRASHED)
            return
        session = self.registry.find_active(page.session_id)
        if session is not None and session.page is page:
            failing = asyncio.create_task(self.registry.fail(session))
            self._failing.add(failing)
            failing.add_done_callback(self._failing.discard)

    def expires_in(self, session: Session) -> int:
        return session.expires_in(self.clock.now())

    async def act(self, session: Session, raw: bytes) -> dict[str, Any]:
        """Parse and run one action request; the answer's fields (without `success`)."""
        try:
            action_type, payload = parse_action(raw)
        except BadRequestError as err:
            raise in_session(err, expiresInSeconds=self.expires_in(session)) from err
        result = await self.run(session, action_type, payload)
        return {"expiresInSeconds": self.expires_in(session), **result}

    async def run(
        self, session: Session, action_type: ActionType, payload: dict[str, Any]
    ) -> dict[str, Any]:
        """Run one action under the session's lock and count it."""
        page = session.page
        if not isinstance(page, SessionPage):
            raise CaptureError(NO_BROWSER, expiresInSeconds=self.expires_in(session))
        budget = self.action_timeout
        try:
            async with page.lock:
                if not session.active:
                    raise inactive_error(session)
                result = await self._interruptible(page, action_type, payload, budget)
        except SessionInactiveError:
            raise
        except BrowserUnavailableError as err:
            # The page crashed or died with its browser: like the cloud's `error` status, the
            # session ends (billed so far, slot freed); the next create gets a fresh page.
            session.count_action(action_type.value, ok=False)
            await self.registry.fail(session)
            raise in_session(err, expiresInSeconds=0, session=session.snapshot()) from err
        except CaptureError as err:
            session.count_action(action_type.value, ok=False)
            raise in_session(err, expiresInSeconds=self.expires_in(session)) from err
        except TimeoutError as err:
            session.count_action(action_type.value, ok=False)
            raise ActionTimeoutError(
                f"Action {action_type.value} timed out after {budget:g} s",
                expiresInSeconds=self.expires_in(session),
            ) from err
        except Exception as err:
            session.count_action(action_type.value, ok=False)
            log.exception("action %s failed unexpectedly", action_type.value)
            if not session.active:
                raise inactive_error(session) from err
            raise CaptureError(
                f"Action {action_type.value} failed: {type(err).__name__}",
                expiresInSeconds=self.expires_in(session),
            ) from err
        session.count_action(action_type.value, ok=True)
        return result

    async def _interruptible(
        self, page: SessionPage, action_type: ActionType, payload: dict[str, Any], budget: float
    ) -> dict[str, Any]:
        """Run the action; a crash of the page while it runs ends it with
        BrowserUnavailableError (Playwright may otherwise wait on a dead renderer)."""
        task = asyncio.current_task()
        assert task is not None
        if page.gone:
            raise BrowserUnavailableError(GONE)
        self._running[page] = task
        try:
            # The backend enforces the budget; the outer bound guarantees no request hangs.
            async with asyncio.timeout(budget + 5):
                return await run_action(page, action_type, payload, timeout_s=budget)
        except (ActionTimeoutError, TimeoutError):
            # Whatever kept the page busy (a script in a loop) must not outlive the 504: stop
            # it so the session's next action (a goto elsewhere) runs. A crash meanwhile ends
            # the session through the idle path, not by interrupting this.
            self._running.pop(page, None)
            if not page.gone:
                await page.stop_scripts()
            raise
        except asyncio.CancelledError as err:
            crashed = err.args[:1] == (_CRASHED,) or page.crashed
            if not crashed or task.cancelling() != 1:
                raise
            task.uncancel()
            raise BrowserUnavailableError(GONE) from err
        finally:
            self._running.pop(page, None)

    async def take_over(self, session: Session, applied: list[tuple[str, dict[str, Any]]]) -> None:
        """Give a replayed session a live page, rebuilt by running its state-changing actions
        replayed so far (screenshots dropped); a failed step is logged, the rest still run."""
        page = await self.browser.open_session_page(session.id)
        session.page = page
        async with page.lock:
            for action_type, payload in applied:
                payload = {k: v for k, v in payload.items() if k != "screenshot"}
                try:
                    await run_action(
                        page, ActionType(action_type), payload, timeout_s=self.action_timeout
                    )
                except Exception as err:  # keep rebuilding: a later step may not depend on it
                    log.warning("rebuilding %s: %s failed: %s", session.id, action_type, err)

"""CDP connections as Capture hands them out: a CDP session's `connectUrl` is
`ws://<host>:<port>/cdp?token=<token>` on the emulator's own port (the host the client used), and
the emulator relays that WebSocket to the session's own browser.

- **Tokens**: each create answer and each GET of an active CDP session mints a new token
  (`secrets.token_urlsafe`); a token opens a connection only within `cdp_token_ttl` seconds of
  being minted, on the server's clock (the manual clock ages it). It may open several within
  that time; a connection once open stays open until the session ends.
- **Refusals**, before any upgrade, as 401 in the contract's error shape: no token, an unknown
  (forged) one, a stale one, one whose session has ended, or an upgrade whose `Authorization`
  names another user (or a wrong secret). Another user's token is not told apart from a forged
  one, as another user's session is a 404 like an unknown one.
- **Relay**: aiohttp's `WebSocketResponse` towards the client and `ClientSession.ws_connect` to
  the browser's own DevTools endpoint, every message passed on in both directions, no size
  limit. When either side closes, the other is closed.
- **Closure**: when the session ends (close, expiry, a crash: each closes its browser context),
  every connection of the session is closed (code 1001).

Hand-written because aiohttp has no WebSocket proxy; the relay is two loops over its public API.
Registered by `setup_cdp(app)`; owns its `ClientSession` through `app.cleanup_ctx`, and closes every
connection on `app.on_shutdown` (else stopping the server would wait for them). Imports no routes,
admin or replay module.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import WSCloseCode, WSMsgType, web

from mock_server.auth import Users, authenticate
from mock_server.browser import SessionPage
from mock_server.clock import Clock
from mock_server.errors import BadRequestError, BrowserUnavailableError, UnauthorizedError
from mock_server.sessions import Session
from mock_server.state import CLOCK, CONFIG, REGISTRY
from recorder.contract import CDP_PATH, CDP_TOKEN_PARAM

log = logging.getLogger(__name__)

MISSING_TOKEN = (
    f"Missing CDP token: connect with the connectUrl of an active CDP session "
    f"({CDP_PATH}?{CDP_TOKEN_PARAM}=...)"
)
INVALID_TOKEN = "Invalid CDP token"
ENDED = "Invalid CDP token: its session is no longer active"
NOT_WEBSOCKET = f"{CDP_PATH} is a WebSocket endpoint: connect to the connectUrl with a CDP client"
SESSION_ENDED = b"session ended"
SERVER_STOPPING = b"server stopping"
# Grants kept before stale ones are dropped (a stale token then reads as unknown).
_MAX_GRANTS = 10_000
# How long closing a connection waits for the other side's close frame.
_CLOSE_TIMEOUT_S = 2.0
_CONNECT_TIMEOUT_S = 10.0


def stale_message(ttl: float) -> str:
    return (
        f"CDP token expired: a token opens a connection within {ttl:g} s of being minted; "
        "GET the session for a fresh connectUrl"
    )


@dataclass(frozen=True, slots=True)
class Grant:
    """What a token was minted for."""

    session_id: str
    user: str
    minted_at: float


@dataclass(eq=False, slots=True)
class _Link:
    """One relayed connection: the client's WebSocket and the browser's."""

    client: web.WebSocketResponse
    upstream: aiohttp.ClientWebSocketResponse

    async def close(self, reason: bytes = SESSION_ENDED) -> None:
        for ws in (self.client, self.upstream):
            with contextlib.suppress(Exception):
                await ws.close(code=WSCloseCode.GOING_AWAY, message=reason)


@dataclass(slots=True)
class CdpGate:
    """The tokens minted for CDP sessions and the connections they opened."""

    clock: Clock
    ttl: float
    http: aiohttp.ClientSession | None = None
    _grants: dict[str, Grant] = field(default_factory=dict)
    _links: dict[str, set[_Link]] = field(default_factory=dict)
    _watched: set[str] = field(default_factory=set)
    _closers: set[asyncio.Task[None]] = field(default_factory=set)

    def mint(self, session: Session) -> str:
        """A fresh token for `session` (which must be an active CDP session)."""
        now = self.clock.now()
        if len(self._grants) >= _MAX_GRANTS:
            self._grants = {t: g for t, g in self._grants.items() if now - g.minted_at <= self.ttl}
        token = secrets.token_urlsafe(32)
        self._grants[token] = Grant(session.id, session.user, now)
        if isinstance(session.page, SessionPage):
            self._watch(session.id, session.page)
        return token

    def admit(self, token: str | None, authorization: str | None, users: Users | None) -> Grant:
        """The grant of a token that may open a connection now; else UnauthorizedError."""
        if not token:
            raise UnauthorizedError(MISSING_TOKEN)
        grant = self._grants.get(token)
        if grant is None:
            raise UnauthorizedError(INVALID_TOKEN)
        if authorization is not None and authenticate(authorization, users) != grant.user:
            raise UnauthorizedError(INVALID_TOKEN)
        if self.clock.now() - grant.minted_at > self.ttl:
            raise UnauthorizedError(stale_message(self.ttl))
        return grant

    def links(self, session_id: str) -> int:
        """Open connections of a session."""
        return len(self._links.get(session_id, ()))

    async def relay(
        self,
        session_id: str,
        client: web.WebSocketResponse,
        upstream: aiohttp.ClientWebSocketResponse,
    ) -> None:
        """Pass every message both ways until either side closes, then close both."""
        link = _Link(client, upstream)
        self._links.setdefault(session_id, set()).add(link)
        log.info("CDP connection to %s opened", session_id)  # never the token: a credential
        pumps = [
            asyncio.create_task(_pump(client, upstream)),
            asyncio.create_task(_pump(upstream, client)),
        ]
        try:
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            await link.close()
            for pump in pumps:
                pump.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)
            links = self._links.get(session_id)
            if links is not None:
                links.discard(link)
            log.info("CDP connection to %s closed", session_id)

    async def end(self, session_id: str, reason: bytes = SESSION_ENDED) -> None:
        """The session ended: forget its tokens and close its connections."""
        self._grants = {t: g for t, g in self._grants.items() if g.session_id != session_id}
        self._watched.discard(session_id)
        links = self._links.pop(session_id, set())
        await asyncio.gather(*(link.close(reason) for link in links))

    async def close(self) -> None:
        """The server stops: close every connection."""
        for session_id in list(self._links):
            await self.end(session_id, SERVER_STOPPING)
        await asyncio.gather(*self._closers, return_exceptions=True)

    def _watch(self, session_id: str, page: SessionPage) -> None:
        """End the session's connections when its browser context closes (the session closed,
        expired or failed, or its browser died)."""
        if session_id in self._watched:
            return
        self._watched.add(session_id)

        def closed(_context: object) -> None:
            task = asyncio.create_task(self.end(session_id))
            self._closers.add(task)
            task.add_done_callback(self._closers.discard)

        page.context.on("close", closed)


async def _pump(
    source: web.WebSocketResponse | aiohttp.ClientWebSocketResponse,
    sink: web.WebSocketResponse | aiohttp.ClientWebSocketResponse,
) -> None:
    """Every message of `source` to `sink`, until `source` closes or fails."""
    async for message in source:  # ends at a close frame
        if message.type is WSMsgType.TEXT:
            await sink.send_str(message.data)
        elif message.type is WSMsgType.BINARY:
            await sink.send_bytes(message.data)
        elif message.type is WSMsgType.ERROR:
            return


CDP_GATE = web.AppKey("capture_cdp", CdpGate)


def connect_url(request: web.Request, session: Session) -> str | None:
    """A fresh `connectUrl` for an active CDP session (None for any other), on the host and
    port the client used."""
    page = session.page
    if not session.active or not isinstance(page, SessionPage) or not page.devtools_url:
        return None
    token = request.app[CDP_GATE].mint(session)
    scheme = "wss" if request.secure else "ws"
    return f"{scheme}://{request.host}{CDP_PATH}?{CDP_TOKEN_PARAM}={token}"


def with_connect_url(
    request: web.Request, session: Session, body: dict[str, Any]
) -> dict[str, Any]:
    """`body` (a session object) with a fresh `connectUrl` when the session is an active CDP one."""
    url = connect_url(request, session)
    if url is not None:
        body["connectUrl"] = url
    return body


def admin_fields(app: web.Application, session: Session) -> dict[str, int]:
    """What `GET /__admin/sessions` adds for a CDP session: `cdpConnections`, its open
    connections. Never a `connectUrl`: a token is a credential, minted only for its owner's
    create or GET (the admin routes know no user)."""
    gate = app.get(CDP_GATE)
    if not session.options.cdp or gate is None:
        return {}
    return {"cdpConnections": gate.links(session.id)}


async def open_cdp(request: web.Request) -> web.StreamResponse:
    """`GET /cdp?token=...`: admit, connect to the session's browser, upgrade, relay."""
    app = request.app
    gate = app[CDP_GATE]
    registry = app[REGISTRY]
    await registry.sweep()
    grant = gate.admit(
        request.query.get(CDP_TOKEN_PARAM),
        request.headers.get("Authorization"),
        app[CONFIG].users,
    )
    session = registry.find_active(grant.session_id)
    page = session.page if session is not None else None
    if not isinstance(page, SessionPage) or not page.devtools_url or page.gone:
        raise UnauthorizedError(ENDED)
    client = web.WebSocketResponse(
        max_msg_size=0, compress=False, autoping=True, timeout=_CLOSE_TIMEOUT_S
    )
    if not client.can_prepare(request).ok:
        raise BadRequestError(NOT_WEBSOCKET)
    assert gate.http is not None, "the gate's ClientSession lives as long as the app"
    try:
        upstream = await gate.http.ws_connect(
            page.devtools_url,
            max_msg_size=0,
            timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=_CLOSE_TIMEOUT_S),
        )
    except (aiohttp.ClientError, OSError, TimeoutError) as err:
        raise BrowserUnavailableError(
            f"The session's browser refused the CDP connection: {err}"
        ) from err
    try:
        await client.prepare(request)
    except BaseException:  # the client went away during the upgrade: leave no browser socket open
        await upstream.close()
        raise
    await gate.relay(grant.session_id, client, upstream)
    return client


def setup_cdp(app: web.Application) -> None:
    """Register `GET /cdp` and the gate (its HTTP client owned by `app.cleanup_ctx`)."""
    config = app[CONFIG]
    gate = app[CDP_GATE] = CdpGate(app[CLOCK], config.cdp_token_ttl)

    async def client_session(_app: web.Application) -> AsyncIterator[None]:
        gate.http = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=None, connect=_CONNECT_TIMEOUT_S)
        )
        try:
            yield
        finally:
            await gate.close()
            await gate.http.close()

    async def close_connections(_app: web.Application) -> None:
        # Before aiohttp waits for handlers to finish: an open relay would hold the stop.
        await gate.close()

    app.cleanup_ctx.append(client_session)
    app.on_shutdown.append(close_connections)
    app.router.add_get(CDP_PATH, open_cdp)

"""Drift verification: re-run a cassette's recorded requests, in order, against a live target (the
local emulator or the real API) and compare the answers with the recorded ones as `diff` does.

Session ids are mapped as they are created (the recorded id of the k-th create becomes the live
id it got); signed one-shot URLs are re-signed with the given credentials. The token is only ever
put in the Authorization header: never logged, never in a report. Sessions the run opened and
left open are closed at the end, also after a stop request (Ctrl-C), so a partial run does not
keep billing.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import ipaddress
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import aiohttp

from mock_server.matching import SESSION_PATH, SIGNED_PATH
from mock_server.signing import sign
from recorder.cassette import Cassette
from recorder.diff import (
    DEFAULT_IMAGE_THRESHOLD,
    DiffReport,
    Exchange,
    diff_exchanges,
    exchanges_of,
)
from recorder.records import Interaction, RecordedRequest, RecordedResponse, session_id_of

LOCAL_SECRET = "local"  # default secret of the token built for a loopback target
_BEARER = re.compile(r"^\s*bearer\s+", re.IGNORECASE)
_KEPT_REQUEST_HEADERS = frozenset({"content-type", "accept"})
ProgressCallback = Callable[[int, int], None]


class VerifyError(Exception):
    """A verification that cannot start (no credentials for a remote target, a bad URL)."""


@dataclass(frozen=True, slots=True)
class VerifyResult:
    report: DiffReport
    sent: int
    total: int
    interrupted: bool
    closed_leftovers: int  # live sessions the run opened, left open, and closed at the end


def is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _credentials(token: str) -> tuple[str, str] | None:
    """(user, secret) from a base64 `user:secret` token, or None when it is not one."""
    try:
        text = base64.b64decode(token + "=" * (-len(token) % 4), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    user, sep, secret = text.partition(":")
    return (user, secret) if sep and user else None


@dataclass(slots=True)
class _Run:
    target: str
    token: str | None
    http: aiohttp.ClientSession
    live_ids: dict[str, str]  # recorded session id -> live one
    open_live: dict[str, str]  # live session id -> token that opened it

    def token_for(self, item: Interaction) -> str:
        if self.token is not None:
            return self.token
        user = item.user or "verify"
        return base64.b64encode(f"{user}:{LOCAL_SECRET}".encode()).decode()

    def live_target(self, item: Interaction, token: str) -> tuple[str, bool]:
        """The path to send and whether it is a signed one-shot URL (no Authorization header)."""
        path, query = item.request.path, item.request.query
        signed = SIGNED_PATH.match(path)
        if signed:
            # Re-signed with the caller's own key when the token is theirs (the real API checks
            # it); otherwise the recorded key, which a local emulator without users accepts.
            creds = _credentials(token) if self.token is not None else None
            key, secret = creds if creds is not None else (signed.group(1), LOCAL_SECRET)
            path = f"/{key}/{sign(secret, query)}/{signed.group(3)}"
            return path, True
        session = SESSION_PATH.match(path)
        if session:
            sid = session.group(1)
            path = f"/v1/sessions/{self.live_ids.get(sid, sid)}{session.group(2) or ''}"
        return path, False

    async def send(self, item: Interaction) -> tuple[RecordedRequest, RecordedResponse]:
        token = self.token_for(item)
        path, signed = self.live_target(item, token)
        headers = {k: v for k, v in item.request.headers if k.lower() in _KEPT_REQUEST_HEADERS}
        if not signed:
            headers["Authorization"] = f"Bearer {token}"
        url = self.target + path + (f"?{item.request.query}" if item.request.query else "")
        request = RecordedRequest(
            item.request.method,
            path,
            item.request.query,
            tuple((k, v) for k, v in headers.items() if k != "Authorization"),
            item.request.body,
        )
        try:
            async with self.http.request(
                item.request.method,
                url,
                data=item.request.body or None,
                headers=headers,
                allow_redirects=False,
            ) as resp:
                body = await resp.read()
                response = RecordedResponse(
                    resp.status, tuple(resp.headers.items()), body, resp.reason or ""
                )
        except (aiohttp.ClientError, TimeoutError) as err:
            error = {
                "success": False,
                "error": f"verify could not reach the target: {type(err).__name__}",
            }
            response = RecordedResponse(
                502,
                (("Content-Type", "application/json"),),
                json.dumps(error).encode(),
                "Bad Gateway",
            )
        live_sid = session_id_of(request, response)
        if request.method == "POST" and request.path.rstrip("/") == "/v1/sessions":
            if response.status < 300 and live_sid:
                self.open_live[live_sid] = token  # closed at the end if the flow does not
                if item.session_id:
                    self.live_ids[item.session_id] = live_sid
        elif request.method == "DELETE" and live_sid and response.status < 300:
            self.open_live.pop(live_sid, None)
        return request, response

    async def close_leftovers(self) -> int:
        closed = 0
        for sid, token in list(self.open_live.items()):
            try:
                async with self.http.delete(
                    f"{self.target}/v1/sessions/{sid}", headers={"Authorization": f"Bearer {token}"}
                ) as resp:
                    await resp.read()
                    closed += resp.status < 300
            except (aiohttp.ClientError, TimeoutError):
                pass
        self.open_live.clear()
        return closed


async def verify_cassette(
    cassette: Cassette,
    target: str,
    *,
    token: str | None = None,
    threshold: float = DEFAULT_IMAGE_THRESHOLD,
    timeout: float = 120.0,
    stop: asyncio.Event | None = None,
    on_progress: ProgressCallback | None = None,
) -> VerifyResult:
    """Send every recorded request of `cassette` to `target` in recorded order and diff the
    answers. `token` (base64 `user:secret`, "Bearer " optional) is required unless `target` is
    loopback, where base64(recordedUser:local) is used. Setting `stop` ends the run after the
    exchange in flight; the result then covers what was sent and says `interrupted`."""
    target = target.rstrip("/")
    if urlsplit(target).scheme not in ("http", "https"):
        raise VerifyError(f"--against must be an http(s) URL, got {target!r}")
    if token is not None:
        token = _BEARER.sub("", token).strip()
    if not token and not is_loopback(target):
        raise VerifyError(
            "a token is needed for a non-local target: pass --token or set CAPTURE_REPLAY_TOKEN"
        )
    recorded = exchanges_of(cassette)
    entries = sorted(cassette.entries, key=lambda e: e.seq)
    live: list[Exchange] = []
    interrupted = False
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as http:
        run = _Run(target, token or None, http, {}, {})
        try:
            for done, entry in enumerate(entries):
                if stop is not None and stop.is_set():
                    interrupted = True
                    break
                item = cassette.load(entry)
                request, response = await run.send(item)
                signed = SIGNED_PATH.match(request.path) is not None
                live.append(
                    Exchange(
                        label=f"live#{entry.seq}",
                        method=request.method,
                        # a re-signed URL pairs with its recording whatever key signed it
                        path=item.request.path if signed else request.path,
                        query=request.query,
                        request_body=request.body,
                        session_id=session_id_of(request, response),
                        action_type=item.action_type,
                        status=response.status,
                        load_response=lambda r=response: r,  # type: ignore[misc]
                    )
                )
                if on_progress is not None:
                    on_progress(done + 1, len(entries))
        finally:
            closed = await asyncio.shield(run.close_leftovers())
    report = diff_exchanges(
        recorded[: len(live)], live, name_a=str(cassette.path), name_b=target, threshold=threshold
    )
    return VerifyResult(report, len(live), len(entries), interrupted, closed)

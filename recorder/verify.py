"""Drift verification: re-run a cassette's recorded requests, in order, against a live target (the
local emulator or the real API) and compare the answers with the recorded ones as `diff` does.

Session ids are mapped as they are created (the recorded id of the k-th create becomes the live
id it got); signed one-shot URLs are re-signed with the given credentials. The token is only ever
put in the Authorization header: never logged, never in a report. Sessions the run opened and
left open are closed at the end, also after a stop request (Ctrl-C), so a partial run does not
keep billing.

Capture's wire rules come from `recorder.contract`; drift is computed by `recorder.diff`. Errors
are `recorder.errors.VerifyError` and name no CLI flag; a target that cannot be connected to
(at any exchange) stops the run with `TargetUnreachableError`, it is not drift. Must not import
`mock_server` or click.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import aiohttp

from recorder.cassette import Cassette
from recorder.contract import (
    BATCH_SIGNATURE_HEADER,
    batch_parts,
    batch_path,
    bearer_token,
    decode_credentials,
    is_create,
    map_session_path,
    session_id_of,
    session_path,
    sign,
    sign_body,
    signed_parts,
    signed_path,
)
from recorder.diff import (
    DEFAULT_IMAGE_THRESHOLD,
    DiffReport,
    Exchange,
    diff_exchanges,
    exchanges_of,
)
from recorder.errors import TargetUnreachableError, VerifyError
from recorder.records import Interaction, RecordedRequest, RecordedResponse

_CONNECT_TIMEOUT = 10.0
LOCAL_SECRET = "local"  # default secret of the token built for a loopback target
_KEPT_REQUEST_HEADERS = frozenset({"content-type", "accept"})
ProgressCallback = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class VerifyResult:
    report: DiffReport
    sent: int
    total: int
    interrupted: bool
    closed_leftovers: int  # live sessions the run opened, left open, and closed at the end


def is_loopback(url: str) -> bool:
    return is_loopback_host(urlsplit(url).hostname or "")


def is_loopback_host(host: str) -> bool:
    """Whether `host` (a name or an address) is this machine's loopback."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def target_url(url: str) -> str:
    """The target's base URL (no trailing slash); `VerifyError` when it is not http(s)."""
    if urlsplit(url).scheme not in ("http", "https"):
        raise VerifyError(f"the target must be an http(s) URL, got {url!r}")
    return url.rstrip("/")


def bare_token(token: str) -> str:
    """`token` without a leading `Bearer ` (users paste either form)."""
    scheme, _, rest = token.strip().partition(" ")
    return rest.strip() if scheme.lower() == "bearer" and rest.strip() else token.strip()


def _reason(err: Exception) -> str:
    """Why a connection failed, without aiohttp's wording around it."""
    cause = getattr(err, "os_error", None)
    if isinstance(cause, OSError) and cause.strerror:
        return cause.strerror
    return str(err) or type(err).__name__


@dataclass(slots=True)
class _Run:
    target: str
    token: str | None
    http: aiohttp.ClientSession
    live_ids: dict[str, str]  # recorded session id -> live one
    open_live: dict[str, str]  # live session id -> Authorization value that opened it

    def authorization_for(self, item: Interaction) -> str:
        if self.token is not None:
            return f"Bearer {self.token}"
        return bearer_token(item.user or "verify", LOCAL_SECRET)

    def credentials(self, recorded_key: str) -> tuple[str, str]:
        """The key and secret a signed request is re-signed with: the caller's own when the
        token is theirs (the real API checks it); otherwise the recorded key, which a local
        emulator without users accepts."""
        creds = decode_credentials(self.token, padded=True) if self.token else None
        return creds if creds is not None else (recorded_key, LOCAL_SECRET)

    def live_target(self, item: Interaction) -> tuple[str, bool]:
        """The path to send and whether it is signed (a one-shot URL or a batch: no
        Authorization header)."""
        path, query = item.request.path, item.request.query
        signed = signed_parts(path)
        if signed is not None:
            key, secret = self.credentials(signed[0])
            return signed_path(key, sign(secret, query), signed[2]), True
        batch = batch_parts(path)
        if batch is not None:
            return batch_path(batch[0], self.credentials(batch[1])[0]), True
        return map_session_path(path, self.live_ids), False

    async def send(self, item: Interaction) -> tuple[RecordedRequest, RecordedResponse]:
        authorization = self.authorization_for(item)
        path, signed = self.live_target(item)
        headers = {k: v for k, v in item.request.headers if k.lower() in _KEPT_REQUEST_HEADERS}
        request = RecordedRequest(
            item.request.method,
            path,
            item.request.query,
            tuple(headers.items()),
            item.request.body,
        )
        if not signed:
            headers["Authorization"] = authorization
        batch = batch_parts(item.request.path)
        if batch is not None:  # the recorded signature is redacted: sign the body again
            secret = self.credentials(batch[1])[1]
            headers[BATCH_SIGNATURE_HEADER] = sign_body(secret, item.request.body)
        url = self.target + path + (f"?{item.request.query}" if item.request.query else "")
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
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as err:
            raise TargetUnreachableError(self.target, _reason(err)) from err
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
        if is_create(request.method, request.path):
            if response.status < 300 and live_sid:
                self.open_live[live_sid] = authorization  # closed at the end if the flow does not
                if item.session_id:
                    self.live_ids[item.session_id] = live_sid
        elif request.method == "DELETE" and live_sid and response.status < 300:
            self.open_live.pop(live_sid, None)
        return request, response

    async def close_leftovers(self) -> int:
        closed = 0
        for sid, authorization in list(self.open_live.items()):
            try:
                async with self.http.delete(
                    self.target + session_path(sid),
                    headers={"Authorization": authorization},
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
    target = target_url(target)
    token = bare_token(token) if token is not None else None
    if not token and not is_loopback(target):
        raise VerifyError(f"a token is needed for a non-local target ({target})")
    recorded = exchanges_of(cassette)
    entries = sorted(cassette.entries, key=lambda e: e.seq)
    live: list[Exchange] = []
    interrupted = False
    # a connect that hangs says "unreachable" within seconds, not after the exchange's budget
    limits = aiohttp.ClientTimeout(total=timeout, sock_connect=min(timeout, _CONNECT_TIMEOUT))
    async with aiohttp.ClientSession(timeout=limits) as http:
        run = _Run(target, token or None, http, {}, {})
        try:
            for done, entry in enumerate(entries):
                if stop is not None and stop.is_set():
                    interrupted = True
                    break
                item = cassette.load(entry)
                request, response = await run.send(item)
                signed = signed_parts(request.path) or batch_parts(request.path)
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

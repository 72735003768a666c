"""Capture on the wire: the one owner of every fact about the API that more than one module needs.

Paths (sessions, actions, signed one-shot URLs and their endpoints), what an exchange is (a create,
its session id, its action type, its user, its main argument), credentials (`Bearer
base64(userId:secret)`), the one-shot signature, billing (duration -> credits) and the time
format. The recorder, replay, audit, diff, verify and the emulator all import these; none writes
its own copy. Plain functions over strings and bytes: imports no aiohttp, click or Pillow, and
never `mock_server`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import math
import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, unquote

from recorder.bodies import Headers, header_value, json_or_none
from recorder.records import RecordedRequest, RecordedResponse

DEFAULT_UPSTREAM = "https://api.capture.page"

# -- paths ----------------------------------------------------------------------------------------

SESSIONS_PATH = "/v1/sessions"
DEVICES_PATH = "/screenshot/devices"
# A CDP session's `connectUrl` (`wss://connect.capture.page/cdp?token=…`): its path and the query
# parameter that carries its token (a credential: redacted in cassettes).
CDP_PATH = "/cdp"
CDP_TOKEN_PARAM = "token"
ONESHOT_ENDPOINTS: tuple[str, ...] = ("image", "pdf", "content", "metadata", "animated")
SESSION_PATH = re.compile(r"^/v1/sessions/([^/?]+)(/actions)?/?$")
# /{key}/{hash}/{endpoint}: group 1 the API key, 2 the hash, 3 the endpoint.
SIGNED_PATH = re.compile(rf"^/([^/]+)/([^/]+)/({'|'.join(ONESHOT_ENDPOINTS)})/?$")
# POST /batch-{image|pdf}/{apiKey} (reference 6.9): group 1 the endpoint, 2 the API key (a key,
# not a secret); the body is signed in the header BATCH_SIGNATURE_HEADER (a secret).
BATCH_ENDPOINTS: tuple[str, ...] = ("image", "pdf")
BATCH_PATH = re.compile(rf"^/batch-({'|'.join(BATCH_ENDPOINTS)})/([^/]+)/?$")
BATCH_SIGNATURE_HEADER = "x-req-signature"


def is_create(method: str, path: str) -> bool:
    """`POST /v1/sessions`: the request that opens a session."""
    return method.upper() == "POST" and path.rstrip("/") == SESSIONS_PATH


def is_action_path(path: str) -> bool:
    match = SESSION_PATH.match(path)
    return bool(match and match.group(2))


def session_id_from_path(path: str) -> str | None:
    match = SESSION_PATH.match(path)
    return unquote(match.group(1)) if match else None


def session_path(session_id: str, actions: bool = False) -> str:
    return f"{SESSIONS_PATH}/{session_id}" + ("/actions" if actions else "")


def map_session_path(path: str, ids: dict[str, str]) -> str:
    """`path` with its session id replaced by `ids[id]` (unchanged when not a session path)."""
    match = SESSION_PATH.match(path)
    if not match:
        return path
    sid = match.group(1)
    return f"{SESSIONS_PATH}/{ids.get(sid, sid)}{match.group(2) or ''}"


def signed_parts(path: str) -> tuple[str, str, str] | None:
    """(key, hash, endpoint) of a signed one-shot path, else None."""
    match = SIGNED_PATH.match(path)
    return (match.group(1), match.group(2), match.group(3)) if match else None


def blank_signature(path: str, placeholder: str) -> str:
    """A signed one-shot path with its hash replaced by `placeholder`; other paths unchanged."""
    parts = signed_parts(path)
    if parts is None:
        return path
    key, _, endpoint = parts
    return f"/{key}/{placeholder}/{endpoint}"


def batch_parts(path: str) -> tuple[str, str] | None:
    """(endpoint, API key) of a batch path (`/batch-image/{apiKey}`), else None."""
    match = BATCH_PATH.match(path)
    return (match.group(1), unquote(match.group(2))) if match else None


def batch_path(endpoint: str, key: str) -> str:
    return f"/batch-{endpoint}/{key}"


def signed_path(key: str, signature: str, endpoint: str) -> str:
    return f"/{key}/{signature}/{endpoint}"


def canonical_path(path: str, ids: dict[str, str] | None = None) -> str:
    """The path as matching and diffs compare it: a signed URL's hash blanked to `*`, the session
    id mapped through `ids`, a trailing slash dropped."""
    if SIGNED_PATH.match(path):
        return blank_signature(path, "*")
    if ids and SESSION_PATH.match(path):
        return map_session_path(path, ids)
    return path.rstrip("/") or "/"


# -- what an exchange is --------------------------------------------------------------------------


def created_session_id(body: bytes) -> str | None:
    """`session.id` of a create answer's JSON body."""
    data = json_or_none(body)
    session = data.get("session") if isinstance(data, dict) else None
    value = session.get("id") if isinstance(session, dict) else None
    return value if isinstance(value, str) else None


def session_id_of(request: RecordedRequest, response: RecordedResponse) -> str | None:
    """The session an exchange belongs to: from the path, or from a create answer's `session.id`."""
    sid = session_id_from_path(request.path)
    if sid is not None:
        return sid
    if is_create(request.method, request.path):
        return created_session_id(response.body)
    return None


def action_type_in(body: Any) -> str | None:
    """`type` of a parsed action request body, when it is a string."""
    value = body.get("type") if isinstance(body, dict) else None
    return value if isinstance(value, str) else None


def action_type_of(method: str, path: str, body: bytes) -> str | None:
    """`type` of the JSON body of POST /v1/sessions/{id}/actions, else None."""
    if method.upper() != "POST" or not is_action_path(path):
        return None
    return action_type_in(json_or_none(body))


_REDACTED_USER = re.compile(r"<redacted user=([^>]*)>")


def redacted_user_value(scheme: str, user: str) -> str:
    """How a stored Authorization header keeps its user: `Bearer <redacted user=user_123>`."""
    return f"{scheme} <redacted user={user}>"


def user_of(headers: Headers) -> str | None:
    """The userId kept in a redacted Authorization header."""
    value = header_value(headers, "authorization")
    if value is None:
        return None
    match = _REDACTED_USER.search(value)
    return match.group(1) if match else None


_MAIN_FIELDS = ("url", "selector", "format", "key", "direction")


def main_argument(path: str, query: str, body: bytes) -> str | None:
    """The argument worth showing: an action's URL or selector, a signed URL's target."""
    if is_action_path(path):
        data = json_or_none(body)
        payload = data.get("payload") if isinstance(data, dict) else None
        if not isinstance(payload, dict):
            return None
        for key in _MAIN_FIELDS:
            if isinstance(payload.get(key), str):
                return payload[key]
        if isinstance(payload.get("actions"), list):
            return f"{len(payload['actions'])} actions"
        return None
    if SIGNED_PATH.match(path):
        for key, value in parse_qsl(query, keep_blank_values=True):
            if key == "url":
                return value
    if BATCH_PATH.match(path):
        data = json_or_none(body)
        items = data.get("data") if isinstance(data, dict) else None
        return f"{len(items)} items" if isinstance(items, list) else None
    return None


# -- credentials and signatures -------------------------------------------------------------------


def decode_credentials(token: str, *, padded: bool = False) -> tuple[str, str] | None:
    """(userId, secret) of a `base64(userId:secret)` token, or None when it is not one.

    `padded=False` is strict (what the API checks); `padded=True` also accepts missing padding
    and the URL-safe alphabet (what a scan of recorded bytes must recognise).
    """
    token = token.strip()
    if padded:
        token += "=" * (-len(token) % 4)
        decoders = (base64.b64decode, base64.urlsafe_b64decode)
    else:
        decoders = (lambda t: base64.b64decode(t, validate=True),)
    for decoder in decoders:
        try:
            text = decoder(token).decode("utf-8")
        except (binascii.Error, ValueError):
            continue
        user, sep, secret = text.partition(":")
        if sep and user and secret:
            return user, secret
    return None


def bearer_token(user: str, secret: str) -> str:
    """The Authorization value a client sends for `user`/`secret`."""
    return "Bearer " + base64.b64encode(f"{user}:{secret}".encode()).decode()


def sign(secret: str, raw_query: str) -> str:
    """A one-shot URL's hash: lowercase hex md5 of `secret + raw_query`, the query exactly as
    sent (official clients order and encode parameters differently, so it is never rebuilt)."""
    return hashlib.md5((secret + raw_query).encode("utf-8")).hexdigest()


def sign_body(secret: str, body: bytes) -> str:
    """A batch request's `x-req-signature`: lowercase hex HMAC-SHA256 of the raw body keyed with
    the API secret (reference 6.9; the docs do not say hex or base64, so both are accepted)."""
    return hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def body_signature_matches(secret: str, body: bytes, received: str) -> bool:
    """Whether `received` is the body's HMAC-SHA256 under `secret`, written in hex (any case) or
    base64 (standard or URL-safe, padding optional)."""
    expected = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).digest()
    text = received.strip()
    digest: bytes | None = None
    if re.fullmatch(r"[0-9a-fA-F]{64}", text):
        digest = bytes.fromhex(text)
    else:
        padded = text + "=" * (-len(text) % 4)
        for altchars in (None, b"-_"):
            try:
                digest = base64.b64decode(padded, altchars=altchars, validate=True)
                break
            except (binascii.Error, ValueError):
                continue
    return digest is not None and hmac.compare_digest(digest, expected)


# -- billing and time -----------------------------------------------------------------------------


def duration_seconds(started_at: float, ended_at: float) -> int:
    """`durationSeconds`: whole seconds rounded up (float noise below a microsecond ignored)."""
    return max(0, math.ceil(round(ended_at - started_at, 6)))


def credits_for(duration: int) -> int:
    """1 credit per started minute, at least 1 (a session that opened started its first minute)."""
    return max(1, math.ceil(duration / 60))


def credits_between(started_at: float, ended_at: float) -> int:
    """What a session open from `started_at` to `ended_at` is billed."""
    return credits_for(duration_seconds(started_at, ended_at))


def format_time(ts: float) -> str:
    """ISO-8601 UTC with milliseconds, as the contract's examples write it."""
    return (
        datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.")
        + f"{int(ts * 1000) % 1000:03d}Z"
    )

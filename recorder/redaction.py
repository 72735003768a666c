"""Redaction: the one place where a live exchange is made safe to store (go-vcr's before-save hook).

`Redactor.redact(interaction)` runs on every exchange before the writer sees it:

1. `Authorization` keeps its scheme and userId, never the secret: `Bearer <redacted user=user_123>`.
   Headers named by the rules (and cookies) become `<redacted>`.
2. The hash segment of signed one-shot URLs `/{key}/{hash}/{endpoint}` becomes `<redacted>`,
   and so does a batch request's body signature header (`x-req-signature`); the API key in a
   batch path `/batch-image/{apiKey}` is a key, not a secret, and stays.
3. In request JSON bodies: the dotted `json_paths`, and by default the text of `fill` / `type` /
   `type_text` actions aimed at password, secret, token or OTP fields.
4. Fail closed: the whole record (headers, path, query, bodies, encoded bodies decoded) is
   scanned for the request's own credentials, the literal `secrets`, the hash, the tokens of
   CDP `connectUrl`s and every value redacted so far, raw, base64 and URL-encoded; what is found
   is replaced and counted.

Must not import `mock_server`.
"""

from __future__ import annotations

import base64
import json
import re
import threading
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import quote, quote_plus

from recorder.bodies import BodyDecodeError, codings_of, decode, header_value
from recorder.contract import (
    BATCH_SIGNATURE_HEADER,
    CDP_TOKEN_PARAM,
    blank_signature,
    decode_credentials,
    redacted_user_value,
    signed_parts,
)
from recorder.errors import RedactionRuleError
from recorder.records import Headers, Interaction, RecordedRequest, RecordedResponse

REDACTED = "<redacted>"
_REDACTED_B = REDACTED.encode()
# A batch request's body signature (`x-req-signature`) is a secret too: with the body it would
# let anyone replay that batch.
DEFAULT_REDACTED_HEADERS = frozenset(
    {"proxy-authorization", "cookie", "set-cookie", BATCH_SIGNATURE_HEADER}
)
TEXT_ACTIONS = frozenset({"fill", "type", "type_text"})
TEXT_FIELDS = ("value", "text")
SECRET_SELECTOR = re.compile(
    r"pass(?:word|wd)?|pwd|secret|token|otp|one[-_]?time|api[-_ ]?key|apikey|credential|"
    r"\bpin\b|cvv|cvc|mfa|2fa",
    re.IGNORECASE,
)
_TEXT_ACTION_VALUE = re.compile(rb':\s*"(?:fill|type|type_text)"')
# The token in a CDP `connectUrl` (`wss://connect.capture.page/cdp?token=...`): a credential.
_CONNECT_TOKEN = re.compile(
    rb'"connectUrl"\s*:\s*"[^"]*?[?&]' + re.escape(CDP_TOKEN_PARAM.encode()) + rb'=([^"&#\\]+)'
)
_MIN_RAW_SECRET = 3  # shorter literals would scrub ordinary text
# A base64 core of fewer groups would match by chance inside large blobs (screenshots).
_MIN_CORE_GROUPS = 3
_PERCENT = re.compile(r"%[0-9A-F]{2}")
WITHHELD_HEADER = "X-Capture-Replay-Withheld"
DEFAULT_MAX_DECODED = 64 * 1024 * 1024
_MAX_LEARNED = 1024
_JOIN_LIMIT = 1 << 16  # below this, the fields are scanned as one joined buffer


@dataclass(frozen=True, slots=True)
class RedactionRules:
    headers: frozenset[str] = frozenset()  # extra header names (any case) whose values are blanked
    json_paths: tuple[str, ...] = ()  # dotted paths into request JSON bodies, e.g. payload.value
    secrets: tuple[str, ...] = ()  # literals removed wherever they occur
    password_fields: bool = True  # the default rule for text typed into secret-looking fields
    # An encoded answer is decoded to be scanned; past this size it is withheld, not stored.
    max_decoded_bytes: int = DEFAULT_MAX_DECODED

    def __post_init__(self) -> None:
        for path in self.json_paths:
            if not path or any(not part for part in path.split(".")):
                raise RedactionRuleError(f"invalid JSON path {path!r}: expected e.g. payload.value")
        object.__setattr__(self, "headers", frozenset(h.lower() for h in self.headers))


@dataclass(slots=True)
class RedactionStats:
    records: int = 0
    leaks_caught: int = 0  # request credentials found outside Authorization (fail-closed scan)
    secrets_scrubbed: int = 0  # occurrences of literal / learned secrets removed


def _aligned_base64_cores(raw: bytes) -> set[bytes]:
    """What `raw` looks like inside a longer base64 blob: for each of the three alignments, the
    base64 characters that only its bytes determine (std and url-safe alphabets)."""
    cores: set[bytes] = set()
    for skip in range(3):
        data = b"\0" * skip + raw
        first = -(-skip // 3)  # the first 3-byte group made of `raw`'s bytes only
        last = len(data) // 3  # groups past this one hold bytes after `raw`
        if last - first < _MIN_CORE_GROUPS:
            continue
        for b64 in (base64.b64encode(data), base64.urlsafe_b64encode(data)):
            cores.add(b64[4 * first : 4 * last])
    return cores


def _json_escapes(secret: str) -> set[bytes]:
    """A secret as JSON encoders write it inside a string: Python's and PHP's escapes
    (`\\uXXXX` for non-ASCII, `\\/`), and every character as `\\uXXXX`."""
    plain = json.dumps(secret)[1:-1]
    every = "".join(f"\\u{ord(c):04x}" for c in secret if ord(c) < 0x10000)
    return {
        plain.encode(),
        plain.replace("/", "\\/").encode(),
        every.encode(),
        every.upper().replace("\\U", "\\u").encode(),
    }


def encodings_of(secret: str) -> list[bytes]:
    """The wire forms of a secret, longest first: raw, percent-encoded (upper- and lower-case
    hex), JSON-escaped, hex, and base64 (std and url-safe, padded or not, whole or at any of the
    three alignments inside a longer blob)."""
    raw = secret.encode()
    forms: set[bytes] = set()
    if len(secret) >= _MIN_RAW_SECRET:
        quoted = {quote(secret, safe=""), quote_plus(secret)}
        forms.update(q.encode() for q in quoted)
        forms.update(_PERCENT.sub(lambda m: m.group(0).lower(), q).encode() for q in quoted)
        forms.update(_json_escapes(secret))
        forms.update({raw, raw.hex().encode(), raw.hex().upper().encode()})
    for b64 in (base64.b64encode(raw), base64.urlsafe_b64encode(raw)):
        if len(b64) >= 4:
            forms.update({b64, b64.rstrip(b"="), quote(b64.decode(), safe="").encode()})
    forms.update(_aligned_base64_cores(raw))
    forms.discard(b"")
    return sorted(forms, key=len, reverse=True)


def redact_authorization(value: str) -> tuple[str, str | None, list[str]]:
    """(stored value, userId or None, secrets to scan for) of one Authorization header value."""
    scheme, _, credentials = value.strip().partition(" ")
    credentials = credentials.strip()
    if not credentials:
        return REDACTED, None, [value] if value else []
    decoded = decode_credentials(credentials) if scheme.lower() in ("bearer", "basic") else None
    if decoded is None:
        return f"{scheme} {REDACTED}", None, [credentials]
    user, secret = decoded
    return redacted_user_value(scheme, user), user, [credentials, f"{user}:{secret}", secret]


def connect_tokens(body: bytes) -> list[str]:
    """The tokens of the CDP `connectUrl`s in a JSON answer."""
    return [m.group(1).decode("utf-8", "replace") for m in _CONNECT_TOKEN.finditer(body)]


def _redact_path(value: Any, parts: list[str]) -> list[str]:
    """Blank `parts` inside `value` (lists are walked element-wise); returns the strings removed."""
    removed: list[str] = []
    if isinstance(value, list):
        for item in value:
            removed += _redact_path(item, parts)
        return removed
    if not isinstance(value, dict) or parts[0] not in value:
        return removed
    if len(parts) == 1:
        old = value[parts[0]]
        if old != REDACTED:
            value[parts[0]] = REDACTED
            removed.append(old if isinstance(old, str) else json.dumps(old))
        return removed
    return _redact_path(value[parts[0]], parts[1:])


def _redact_password_fields(action: Any) -> list[str]:
    if not isinstance(action, dict) or not isinstance(action.get("payload"), dict):
        return []
    payload = action["payload"]
    removed: list[str] = []
    if action.get("type") in TEXT_ACTIONS and SECRET_SELECTOR.search(
        str(payload.get("selector", ""))
    ):
        for name in TEXT_FIELDS:
            if isinstance(payload.get(name), str) and payload[name] != REDACTED:
                removed.append(payload[name])
                payload[name] = REDACTED
    nested = payload.get("actions")
    for inner in nested if isinstance(nested, list) else ():
        removed += _redact_password_fields(inner)
    return removed


class Redactor:
    """Applies `RedactionRules` to interactions; remembers what it redacted so that a password
    typed in one exchange is also scrubbed from later answers (a `query` of the field's value)."""

    def __init__(self, rules: RedactionRules | None = None) -> None:
        self.rules = rules or RedactionRules()
        self.stats = RedactionStats()
        self._header_names = DEFAULT_REDACTED_HEADERS | self.rules.headers
        self._json_parts = [p.split(".") for p in self.rules.json_paths]
        self._rule_needles = [n for s in self.rules.secrets for n in encodings_of(s)]
        self._learned: dict[bytes, None] = {}
        self._auth_cache: dict[str, tuple[str, str | None, list[bytes]]] = {}
        self._tables: dict[tuple[Any, ...], tuple[tuple[bytes, bool], ...]] = {}
        self._lock = threading.Lock()

    # -- pieces -------------------------------------------------------------------------------

    def _authorization(self, value: str) -> tuple[str, str | None, list[bytes]]:
        cached = self._auth_cache.get(value)
        if cached is None:
            stored, user, secrets = redact_authorization(value)
            needles = sorted({n for s in secrets for n in encodings_of(s)}, key=len, reverse=True)
            cached = (stored, user, needles)
            if len(self._auth_cache) > 256:
                self._auth_cache.clear()
            self._auth_cache[value] = cached
        return cached

    def _headers(self, headers: Headers, creds: list[bytes], user: list[str | None]) -> Headers:
        out = []
        for name, value in headers:
            lname = name.lower()
            if lname == "authorization":
                stored, who, needles = self._authorization(value)
                creds.extend(needles)
                user.append(who)
                value = stored
            elif lname in self._header_names:
                value = REDACTED
            out.append((name, value))
        return tuple(out)

    def _learn(self, values: list[str]) -> None:
        for value in values:
            for needle in encodings_of(value):
                if len(self._learned) < _MAX_LEARNED:
                    self._learned[needle] = None

    def _request_body(self, body: bytes) -> bytes:
        if not body or not (self._json_parts or self.rules.password_fields):
            return body
        if body.lstrip()[:1] not in (b"{", b"["):
            return body
        if not self._json_parts and not _TEXT_ACTION_VALUE.search(body):
            return body  # no fill/type/type_text in it: nothing the default rule redacts
        try:
            data = json.loads(body)
        except ValueError:
            return body
        removed: list[str] = []
        targets = [data]
        if isinstance(data, dict) and isinstance(data.get("payload"), dict):
            nested = data["payload"].get("actions")
            if isinstance(nested, list):
                targets += nested  # JSON paths are relative to an action, nested ones included
        for parts in self._json_parts:
            for target in targets:
                removed += _redact_path(target, parts)
        if self.rules.password_fields:
            removed += _redact_password_fields(data)
        if not removed:
            return body
        self._learn(removed)
        return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()

    # -- the hook -----------------------------------------------------------------------------

    def redact(self, item: Interaction) -> Interaction:
        # The proxy redacts big records on worker threads; learned secrets and caches are shared.
        with self._lock:
            return self._redact(item)

    def _redact(self, item: Interaction) -> Interaction:
        req, resp = item.request, item.response
        creds: list[bytes] = []
        users: list[str | None] = []
        req_headers = self._headers(req.headers, creds, users)
        resp_headers = self._headers(resp.headers, [], [])
        path = req.path
        extra: list[bytes] = []
        signed = signed_parts(path)
        if signed:
            path = blank_signature(path, REDACTED)
            extra = encodings_of(signed[1])
        body_signature = header_value(req.headers, BATCH_SIGNATURE_HEADER)
        if body_signature and body_signature != REDACTED:
            extra += encodings_of(body_signature)
        req_body = self._request_body(req.body)
        encoded = bool(codings_of(resp_headers))
        decoded, withheld = resp.body, None
        if encoded:
            try:
                decoded = decode(resp_headers, resp.body, limit=self.rules.max_decoded_bytes)
            except BodyDecodeError as err:
                decoded, withheld = b"", f"body withheld, it could not be scanned: {err}"
        if b"connectUrl" in decoded:
            self._learn(connect_tokens(decoded))

        scrub = self._scrubber(creds, extra)
        # Fast path: one substring test per needle over the small fields joined, and per body.
        small = "\n".join(
            [
                path,
                req.query,
                resp.reason,
                item.error or "",
                *(v for _, v in req_headers),
                *(v for _, v in resp_headers),
            ]
        ).encode("utf-8", "surrogateescape")
        if len(req_body) + len(resp.body) < _JOIN_LIMIT:
            clean = not scrub.found(b"\n".join((small, req_body, resp.body)))
        else:
            clean = not (scrub.found(small) or scrub.found(req_body) or scrub.found(resp.body))
        if clean and not encoded:
            self.stats.records += 1
            return Interaction(
                seq=item.seq,
                start=item.start,
                duration=item.duration,
                session_id=item.session_id,
                action_type=item.action_type,
                user=next((u for u in users if u), item.user),
                request=RecordedRequest(req.method, path, req.query, req_headers, req_body),
                response=RecordedResponse(resp.status, resp_headers, resp.body, resp.reason),
                error=item.error,
            )
        req_headers = scrub.headers(req_headers)
        if withheld is not None:
            resp_headers, resp_body = (
                (*_without_coding(resp_headers), (WITHHELD_HEADER, withheld)),
                b"",
            )
        else:
            resp_headers, resp_body = scrub.encoded_body(resp_headers, resp.body, decoded)
        new_req = RecordedRequest(
            method=req.method,
            path=scrub.text(path),
            query=scrub.text(req.query),
            headers=req_headers,
            body=scrub.body(req_body),
        )
        new_resp = RecordedResponse(
            status=resp.status,
            headers=scrub.headers(resp_headers),
            body=resp_body,
            reason=scrub.text(resp.reason),
        )
        self.stats.records += 1
        self.stats.leaks_caught += scrub.leaks
        self.stats.secrets_scrubbed += scrub.others
        user = next((u for u in users if u), item.user)
        return replace(
            item,
            user=user,
            request=new_req,
            response=new_resp,
            error=scrub.text(item.error) if item.error else item.error,
        )

    def _scrubber(self, creds: list[bytes], extra: list[bytes]) -> Scrubber:
        """A fresh Scrubber (it counts), its needle table cached while the needles stay the same."""
        key = (tuple(creds), tuple(extra), len(self._learned))
        table = self._tables.get(key)
        if table is None:
            table = Scrubber.table(creds, [*self._rule_needles, *extra, *self._learned])
            if len(self._tables) > 256:
                self._tables.clear()
            self._tables[key] = table
        return Scrubber(table)


@dataclass(slots=True)
class Scrubber:
    """Replaces every needle in strings and bytes, counting credential leaks apart from the rest."""

    needles: tuple[tuple[bytes, bool], ...]  # (needle, is a credential leak), longest first
    leaks: int = 0
    others: int = 0

    @staticmethod
    def table(
        leak_needles: list[bytes], other_needles: list[bytes]
    ) -> tuple[tuple[bytes, bool], ...]:
        pairs = dict.fromkeys(leak_needles, True)
        for needle in other_needles:
            pairs.setdefault(needle, False)
        return tuple(sorted(pairs.items(), key=lambda p: len(p[0]), reverse=True))

    def found(self, data: bytes) -> bool:
        return any(needle in data for needle, _ in self.needles)

    def body(self, data: bytes) -> bytes:
        for needle, is_leak in self.needles:
            count = data.count(needle)
            if count:
                data = data.replace(needle, _REDACTED_B)
                if is_leak:
                    self.leaks += count
                else:
                    self.others += count
        return data

    def text(self, value: str) -> str:
        if not self.needles or not value:
            return value
        data = value.encode("utf-8", "surrogateescape")
        scrubbed = self.body(data)
        return value if scrubbed is data else scrubbed.decode("utf-8", "surrogateescape")

    def headers(self, headers: Headers) -> Headers:
        return tuple((name, self.text(value)) for name, value in headers)

    def encoded_body(self, headers: Headers, body: bytes, decoded: bytes) -> tuple[Headers, bytes]:
        """Scrub a body; an encoded body (gzip, deflate, br, zstd) holding a needle is stored
        decoded and scrubbed (`decoded` is its decoded form), without its Content-Encoding."""
        if decoded is body:
            return headers, self.body(body)
        scrubbed = self.body(decoded)
        if scrubbed is decoded:
            return headers, body
        return (*_without_coding(headers), ("Content-Length", str(len(scrubbed)))), scrubbed


def _without_coding(headers: Headers) -> Headers:
    drop = ("content-encoding", "content-length")
    return tuple((k, v) for k, v in headers if k.lower() not in drop)

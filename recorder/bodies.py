"""Bodies on the wire: content-coding (gzip, deflate, br, zstd), JSON-or-not, text-or-base64.

The one owner of "what is in these bytes": redaction scans what `decode` gives, audit and
export show it, the proxy asks the upstream only for the codings listed in `DECODABLE` (so that
nothing it stores is opaque to the secret scan). Decoding is bounded: a body that would inflate
past `limit` bytes is refused with `BodyTooLargeError` instead of filling memory.

The decoders are the ones aiohttp itself uses (`Brotli`, `backports.zstd` before Python 3.14).
The lowest layer of `recorder`: imports nothing of it, nor aiohttp, click, Pillow or `mock_server`.
"""

from __future__ import annotations

import base64
import binascii
import json
import zlib
from collections.abc import Callable
from typing import Any

import brotli

try:  # Python 3.14 ships zstd in the standard library
    from compression.zstd import ZstdDecompressor, ZstdError  # type: ignore[import-not-found]
except ImportError:
    from backports.zstd import ZstdDecompressor, ZstdError

Headers = tuple[tuple[str, str], ...]

# Content-codings the recorder can undo, in the order it prefers them.
DECODABLE: tuple[str, ...] = ("gzip", "deflate", "br", "zstd")
_ALIASES = {"x-gzip": "gzip", "identity": ""}
DEFAULT_DECODE_LIMIT = 64 * 1024 * 1024
_TEXT_TYPES = ("text/", "json", "xml", "javascript", "x-www-form-urlencoded", "html", "csv")


class BodyDecodeError(ValueError):
    """A body whose content-coding is unknown or whose bytes do not decode under it."""


class BodyTooLargeError(BodyDecodeError):
    """A body that would inflate past the decode limit (a decompression bomb)."""


def header_value(headers: Headers, name: str) -> str | None:
    """First value of header `name` (case-insensitive), or None."""
    lname = name.lower()
    for key, value in headers:
        if key.lower() == lname:
            return value
    return None


def codings_of(headers: Headers) -> list[str]:
    """The content-codings applied to a body, in the order they were applied (RFC 9110 8.4)."""
    value = header_value(headers, "content-encoding") or ""
    out = []
    for token in value.split(","):
        name = _ALIASES.get(token.strip().lower(), token.strip().lower())
        if name:
            out.append(name)
    return out


def accept_encoding(client_value: str | None) -> str:
    """What to ask the upstream for: the client's codings that the recorder can decode."""
    if client_value is None:
        return "identity"
    kept = []
    for token in client_value.split(","):
        name = token.split(";")[0].strip().lower()
        if _ALIASES.get(name, name) in DECODABLE or name == "identity":
            kept.append(token.strip())
    return ", ".join(kept) if kept else "identity"


def _inflate_zlib(body: bytes, wbits: int, limit: int) -> bytes:
    obj = zlib.decompressobj(wbits)
    out = obj.decompress(body, limit + 1)
    if len(out) > limit:
        raise BodyTooLargeError(f"decodes to more than {limit} bytes")
    return out


def _decode_one(coding: str, body: bytes, limit: int) -> bytes:
    try:
        if coding == "gzip":
            return _inflate_zlib(body, 31, limit)
        if coding == "deflate":
            try:
                return _inflate_zlib(body, 15, limit)
            except zlib.error:
                return _inflate_zlib(body, -15, limit)  # raw deflate, as some servers send
        if coding == "br":
            dec = brotli.Decompressor()
            out = dec.process(body, output_buffer_limit=limit + 1)
            if len(out) > limit:
                raise BodyTooLargeError(f"decodes to more than {limit} bytes")
            return out
        if coding == "zstd":
            zdec = ZstdDecompressor()
            out = zdec.decompress(body, limit + 1)
            if len(out) > limit:
                raise BodyTooLargeError(f"decodes to more than {limit} bytes")
            return out
    except (zlib.error, brotli.error, ZstdError, EOFError) as err:
        raise BodyDecodeError(f"not valid {coding}: {err}") from err
    raise BodyDecodeError(f"unknown content-coding {coding!r}")


def decode(headers: Headers, body: bytes, *, limit: int = DEFAULT_DECODE_LIMIT) -> bytes:
    """The body with its content-codings undone; raises BodyDecodeError when it cannot be."""
    for coding in reversed(codings_of(headers)):
        body = _decode_one(coding, body, limit)
    return body


def decoded_or_raw(headers: Headers, body: bytes, *, limit: int = DEFAULT_DECODE_LIMIT) -> bytes:
    """The decoded body for showing or comparing; the stored bytes when they do not decode."""
    try:
        return decode(headers, body, limit=limit)
    except BodyDecodeError:
        return body


def json_or_none(body: bytes) -> Any:
    """The body decoded as JSON, or None when it is not JSON."""
    if not body or body[:1] not in (b"{", b"[", b" ", b"\n"):
        return None
    try:
        return json.loads(body)
    except ValueError:
        return None


def is_text_type(content_type: str | None) -> bool:
    return content_type is not None and any(t in content_type.lower() for t in _TEXT_TYPES)


def map_base64_bodies(
    value: Any, replace: Callable[[str, bytes, str | None], Any], where: str = ""
) -> Any:
    """Parsed JSON `value` with every decodable `bodyBase64` string (a screenshot, a PDF), and
    every `data`/`blob` of an MCP content item (an object with a `mimeType`), replaced by
    `replace(where, data, content_type)`: `where` is the dotted path of the object that holds
    it, `content_type` that object's `contentType` (or `mimeType`) when it is a string."""
    if isinstance(value, dict):
        kind = value.get("contentType") or value.get("mimeType")
        out = {}
        for key, item in value.items():
            mcp_data = key in ("data", "blob") and "mimeType" in value
            if (key == "bodyBase64" or mcp_data) and isinstance(item, str):
                try:
                    data = base64.b64decode(item)
                except (binascii.Error, ValueError):
                    out[key] = item
                    continue
                out[key] = replace(where, data, kind if isinstance(kind, str) else None)
            else:
                out[key] = map_base64_bodies(item, replace, f"{where}.{key}")
        return out
    if isinstance(value, list):
        return [map_base64_bodies(v, replace, f"{where}[{i}]") for i, v in enumerate(value)]
    return value


def text_or_base64(body: bytes, content_type: str | None) -> tuple[str, str | None]:
    """(text, encoding): UTF-8 text for text types, else base64 with encoding "base64"."""
    if is_text_type(content_type) or (content_type is None and body[:1] in (b"{", b"[")):
        try:
            return body.decode("utf-8"), None
        except UnicodeDecodeError:
            pass
    return base64.b64encode(body).decode("ascii"), "base64"

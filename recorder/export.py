"""Exports of recorded exchanges: a plain JSON document and HAR 1.2 (for browser devtools and HAR
viewers). Text bodies are exported as text, binary ones as base64 with `encoding: base64`.

Must not import `mock_server`.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

from recorder import __version__
from recorder.bodies import Headers, decoded_or_raw, text_or_base64
from recorder.cassette import Cassette
from recorder.records import Interaction


def iso_time(epoch: float) -> str:
    return (
        datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )


def _body(body: bytes, content_type: str | None) -> dict[str, Any]:
    text, encoding = text_or_base64(body, content_type)
    return {"size": len(body), "encoding": encoding or "utf-8", "text": text}


def interaction_json(item: Interaction, cassette: str) -> dict[str, Any]:
    req, resp = item.request, item.response
    return {
        "cassette": cassette,
        "seq": item.seq,
        "startedAt": iso_time(item.start),
        "durationMs": round(item.duration * 1000, 3),
        "sessionId": item.session_id,
        "actionType": item.action_type,
        "user": item.user,
        "error": item.error,
        "request": {
            "method": req.method,
            "path": req.path,
            "query": req.query,
            "headers": [list(h) for h in req.headers],
            "body": _body(req.body, req.header("content-type")),
        },
        "response": {
            "status": resp.status,
            "reason": resp.reason,
            "headers": [list(h) for h in resp.headers],
            "body": _body(resp.body, resp.header("content-type")),
        },
    }


def export_json(cassettes: Iterable[Cassette]) -> dict[str, Any]:
    files, interactions = [], []
    for cassette in cassettes:
        header = cassette.header
        files.append(
            {
                "path": str(cassette.path),
                "formatVersion": header.version,
                "createdAt": iso_time(header.created_at),
                "toolVersion": header.tool_version,
                "upstream": header.upstream,
                "exchanges": len(cassette.entries),
            }
        )
        interactions += [interaction_json(i, str(cassette.path)) for i in cassette.interactions()]
    return {"cassettes": files, "interactions": interactions}


def _har_headers(headers: Headers) -> list[dict[str, str]]:
    return [{"name": k, "value": v} for k, v in headers]


def _har_entry(item: Interaction, upstream: str, cassette: str) -> dict[str, Any]:
    req, resp = item.request, item.response
    # "<redacted>" in a stored path is not valid in a URL; viewers want it percent-encoded.
    path = req.path.replace("<", "%3C").replace(">", "%3E")
    url = upstream.rstrip("/") + path + (f"?{req.query}" if req.query else "")
    request: dict[str, Any] = {
        "method": req.method,
        "url": url,
        "httpVersion": "HTTP/1.1",
        "cookies": [],
        "headers": _har_headers(req.headers),
        "queryString": [
            {"name": k, "value": v} for k, v in parse_qsl(req.query, keep_blank_values=True)
        ],
        "headersSize": -1,
        "bodySize": len(req.body),
    }
    if req.body:
        ctype = req.header("content-type")
        text, encoding = text_or_base64(req.body, ctype)
        request["postData"] = {
            "mimeType": ctype or "application/octet-stream",
            "params": [],
            "text": text,
        }
        if encoding:
            request["postData"]["_encoding"] = encoding
    ctype = resp.header("content-type") or ""
    decoded = decoded_or_raw(resp.headers, resp.body)
    text, encoding = text_or_base64(decoded, ctype or None)
    content: dict[str, Any] = {"size": len(decoded), "mimeType": ctype or "x-unknown", "text": text}
    if encoding:
        content["encoding"] = encoding
    if len(decoded) != len(resp.body):
        content["compression"] = len(decoded) - len(resp.body)
    wait = round(item.duration * 1000, 3)
    return {
        "startedDateTime": iso_time(item.start),
        "time": wait,
        "request": request,
        "response": {
            "status": resp.status,
            "statusText": resp.reason,
            "httpVersion": "HTTP/1.1",
            "cookies": [],
            "headers": _har_headers(resp.headers),
            "content": content,
            "redirectURL": resp.header("location") or "",
            "headersSize": -1,
            "bodySize": len(resp.body),
        },
        "cache": {},
        "timings": {
            "blocked": -1,
            "dns": -1,
            "connect": -1,
            "ssl": -1,
            "send": 0,
            "wait": wait,
            "receive": 0,
        },
        "_captureReplay": {
            "cassette": cassette,
            "seq": item.seq,
            "sessionId": item.session_id,
            "actionType": item.action_type,
            "user": item.user,
            "error": item.error,
        },
    }


def export_har(cassettes: Iterable[Cassette]) -> dict[str, Any]:
    entries = []
    for cassette in cassettes:
        entries += [
            _har_entry(i, cassette.header.upstream, str(cassette.path))
            for i in cassette.interactions()
        ]
    entries.sort(key=lambda e: e["startedDateTime"])
    return {
        "log": {
            "version": "1.2",
            "creator": {"name": "capture-replay", "version": __version__},
            "pages": [],
            "entries": entries,
        }
    }

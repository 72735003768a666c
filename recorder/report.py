"""The HTML timeline report of cassettes: one self-contained file (inline CSS and JS, images as
data URIs) that shows each session as a lane on a timeline, every exchange with its action, main
argument, status, latency, its warnings (fields the real API may not know, as recorded), collapsed
request and answer JSON, screenshots as thumbnails that open full size, and per session the
duration and credits (from `recorder.audit`). Filters by action
type, status and session run in the page; nothing is fetched over the network.

Thumbnails are downscaled with Pillow so large cassettes stay usable. Must not import
`mock_server`.
"""

from __future__ import annotations

import base64
import html
import io
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from PIL import Image, UnidentifiedImageError

from recorder.audit import SessionAudit, audit_cassettes
from recorder.bodies import decoded_or_raw, map_base64_bodies
from recorder.cassette import Cassette
from recorder.contract import main_argument
from recorder.mcp_audit import McpSessionAudit, mcp_label, mcp_session_key
from recorder.mcp_tools import is_mcp_path, messages_in
from recorder.records import Interaction

THUMB_WIDTH = 320
THUMB_MAX_HEIGHT = 640
# A larger picture is embedded re-encoded (JPEG, at most FULL_MAX_SIDE px a side) instead of as
# recorded, so a cassette of many full-page screenshots still gives a file a browser opens.
FULL_MAX_BYTES = 2 * 1024 * 1024
FULL_MAX_SIDE = 4096
MAX_JSON_CHARS = 20_000
ProgressCallback = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class Shot:
    """A picture found in an exchange: where it was, the thumbnail and the full image as URIs."""

    where: str
    thumb_uri: str
    full_uri: str
    width: int
    height: int


@dataclass(slots=True)
class _Row:
    item: Interaction
    argument: str | None
    shots: list[Shot]
    request_json: str
    answer_json: str
    failed: bool
    action: str | None = None  # the action type, or an MCP request's tool (or method)


@dataclass(slots=True)
class _Lane:
    key: str
    cassette: str
    session_id: str | None
    rows: list[_Row] = field(default_factory=list)
    audit: SessionAudit | None = None
    mcp: McpSessionAudit | None = None  # an MCP session's lane


def _data_uri(kind: str, data: bytes) -> str:
    return f"data:{kind};base64,{base64.b64encode(data).decode('ascii')}"


def make_shot(where: str, kind: str, data: bytes) -> Shot | None:
    """A thumbnail (JPEG, at most THUMB_WIDTH wide) and the original, or None if unreadable."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            width, height = image.size
            thumb = image.convert("RGB")
    except (UnidentifiedImageError, OSError, ValueError):
        return None
    full_uri = _data_uri(kind, data)
    if len(data) > FULL_MAX_BYTES:
        full = thumb.copy()
        full.thumbnail((FULL_MAX_SIDE, FULL_MAX_SIDE), Image.Resampling.LANCZOS)
        buffer = io.BytesIO()
        full.save(buffer, "JPEG", quality=85)
        full_uri = _data_uri("image/jpeg", buffer.getvalue())
    thumb.thumbnail((THUMB_WIDTH, THUMB_MAX_HEIGHT), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    thumb.save(out, "JPEG", quality=75)
    return Shot(where, _data_uri("image/jpeg", out.getvalue()), full_uri, width, height)


def _take_images(value: Any, where: str, found: list[tuple[str, str, bytes]]) -> Any:
    """`value` with image/PDF `bodyBase64` replaced by a note; images appended to `found`."""

    def note(at: str, data: bytes, kind: str | None) -> str:
        if kind is not None and kind.startswith("image/"):
            found.append((at, kind, data))
        return f"<{len(data)} bytes {kind or 'binary'}>"

    return map_base64_bodies(value, note, where)


def _pretty(data: Any) -> str:
    text = json.dumps(data, indent=2, ensure_ascii=False)
    if len(text) > MAX_JSON_CHARS:
        text = text[:MAX_JSON_CHARS] + f"\n… ({len(text) - MAX_JSON_CHARS} more characters)"
    return text


def _body_text(body: bytes, kind: str) -> str:
    if not body:
        return ""
    if kind.startswith(("text/", "application/json", "application/xml")):
        text = body.decode("utf-8", "replace")
        return text if len(text) <= MAX_JSON_CHARS else text[:MAX_JSON_CHARS] + "…"
    return f"<{len(body)} bytes {kind or 'binary'}>"


def _row(item: Interaction) -> _Row:
    req, resp = item.request, item.response
    request_data = req.json()
    request_json = (
        _pretty(request_data)
        if request_data is not None
        else _body_text(req.body, (req.header("content-type") or "").lower())
    )
    shots: list[Shot] = []
    found: list[tuple[str, str, bytes]] = []
    body = decoded_or_raw(resp.headers, resp.body)
    kind = (resp.header("content-type") or "").split(";")[0].strip().lower()
    answer = None
    if kind.startswith("image/"):
        found.append(("body", kind, body))
        answer_json = f"<{len(body)} bytes {kind}>"
    else:
        try:
            answer = json.loads(body) if body else None
        except (UnicodeDecodeError, ValueError):
            answer = None
        if is_mcp_path(req.path):  # JSON-RPC answers, maybe as server-sent events
            answer = messages_in(body, kind) or answer
        if answer is not None:
            answer_json = _pretty(_take_images(answer, "body", found))
        else:
            answer_json = _body_text(body, kind)
    for where, image_kind, data in found:
        shot = make_shot(where, image_kind, data)
        if shot is not None:
            shots.append(shot)
    failed = (
        resp.status >= 400
        or item.error is not None
        or (isinstance(answer, dict) and answer.get("success") is False)
    )
    label = mcp_label(req.body) if is_mcp_path(req.path) else None
    return _Row(
        item=item,
        argument=label or main_argument(req.path, req.query, req.body),
        shots=shots,
        request_json=request_json,
        answer_json=answer_json,
        failed=failed or bool(label and '"isError": true' in answer_json),
        action=item.action_type or (label.split(" ")[0] if label else None),
    )


def _status_class(row: _Row) -> str:
    if row.item.error is not None:
        return "error"
    return f"{row.item.response.status // 100}xx"


def _clock(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " UTC"


def _collect(
    cassettes: Sequence[Cassette], on_progress: ProgressCallback | None
) -> list[tuple[Cassette, list[_Lane]]]:
    total = sum(len(c.entries) for c in cassettes)
    done = 0
    out = []
    for index, cassette in enumerate(cassettes):
        audited = audit_cassettes([cassette])
        audits = {s.session_id: s for s in audited.sessions}
        mcp_audits = {f"mcp {m.mcp_session_id}": m for m in audited.mcp_sessions}
        lanes: dict[str | None, _Lane] = {}
        for entry in sorted(cassette.entries, key=lambda e: (e.start, e.seq)):
            item = cassette.load(entry)
            sid = mcp_session_key(item) or item.session_id
            if sid not in lanes:
                key = f"c{index}-{len(lanes)}"
                lanes[sid] = _Lane(
                    key,
                    str(cassette.path),
                    sid,
                    audit=audits.get(sid or ""),
                    mcp=mcp_audits.get(sid or ""),
                )
            lanes[sid].rows.append(_row(item))
            done += 1
            if on_progress is not None:
                on_progress(done, total)
        out.append((cassette, list(lanes.values())))
    return out


# -- rendering -----------------------------------------------------------------------------------

_CSS = """
*{box-sizing:border-box}
body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#1d2330;background:#f6f7f9}
header{padding:16px 24px;background:#1d2330;color:#fff}header h1{margin:0 0 4px;font-size:20px}
.summary span{margin-right:18px}.filters{position:sticky;top:0;z-index:2;background:#fff;
padding:10px 24px;border-bottom:1px solid #d8dce3;display:flex;gap:16px;align-items:center}
main{padding:16px 24px}.cassette{margin-bottom:32px}.cassette h2{font-size:16px;margin:8px 0}
.lane{display:grid;grid-template-columns:320px 1fr;gap:12px;align-items:center;margin:4px 0}
.lane-head{font-size:12px;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
.lane-head b{font-family:ui-monospace,monospace}
.track{position:relative;height:22px;background:#e9ecf1;border-radius:4px}
.mark{position:absolute;top:3px;height:16px;min-width:4px;border-radius:3px;background:#3b82f6;opacity:.85}
.mark.s4xx,.mark.s5xx,.mark.serror,.mark.failed{background:#dc2626}.mark.s3xx{background:#a855f7}
.detail{background:#fff;border:1px solid #d8dce3;border-radius:6px;margin:16px 0;padding:8px 12px}
.detail h3{font-size:14px;margin:4px 0 8px}.detail h3 .meta{font-weight:normal;color:#5b6475}
table{border-collapse:collapse;width:100%}th,td{text-align:left;vertical-align:top;padding:4px 6px;
border-top:1px solid #eceef2;font-size:13px}th{font-size:12px;color:#5b6475}
tr.failed td{background:#fdecec}tr.failed .status{color:#b91c1c;font-weight:bold}
td.arg{max-width:360px;overflow-wrap:anywhere;font-family:ui-monospace,monospace;font-size:12px}
pre{max-height:360px;overflow:auto;background:#f3f4f6;padding:6px;margin:4px 0;font-size:12px}
img.thumb{max-width:160px;border:1px solid #c5cad3;cursor:zoom-in;display:block;margin:2px 0}
dialog{max-width:95vw;max-height:95vh;padding:8px}dialog img{max-width:90vw;display:block}
ul.warnings{margin:2px 0;padding-left:16px;color:#92400e;font-size:12px}
.hidden{display:none!important}
"""

_JS = """
(function(){
  const rows = Array.from(document.querySelectorAll('tr.ex'));
  const marks = Array.from(document.querySelectorAll('.mark'));
  const fType = document.getElementById('f-type'), fStatus = document.getElementById('f-status'),
        fSession = document.getElementById('f-session'), shown = document.getElementById('shown');
  function ok(el){
    return (!fType.value || el.dataset.type === fType.value)
      && (!fStatus.value || el.dataset.status === fStatus.value
          || (fStatus.value === 'failed' && el.dataset.failed === '1'))
      && (!fSession.value || el.dataset.lane === fSession.value);
  }
  function apply(){
    let n = 0;
    rows.forEach(r => { const v = ok(r); r.classList.toggle('hidden', !v); if (v) n++; });
    marks.forEach(m => m.classList.toggle('hidden', !ok(m)));
    document.querySelectorAll('[data-lane-block]').forEach(b => {
      b.classList.toggle('hidden', !!fSession.value && b.dataset.laneBlock !== fSession.value);
    });
    shown.textContent = n + ' of ' + rows.length + ' exchanges';
  }
  [fType, fStatus, fSession].forEach(s => s.addEventListener('change', apply));
  const dialog = document.getElementById('viewer'), full = document.getElementById('viewer-img');
  document.querySelectorAll('img.thumb').forEach(t => t.addEventListener('click', () => {
    full.src = t.dataset.full; document.getElementById('viewer-caption').textContent = t.title;
    dialog.showModal();
  }));
  dialog.addEventListener('click', e => {
    if (e.target === dialog || e.target === full) dialog.close();
  });
  apply();
})();
"""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _lane_title(lane: _Lane) -> str:
    return lane.session_id or "one-shot & other requests"


def _lane_stats(lane: _Lane) -> str:
    parts = [f"{len(lane.rows)} exchanges"]
    if lane.audit is not None:
        parts.insert(0, f"{lane.audit.duration_seconds:.1f} s")
        parts.insert(1, f"{lane.audit.credits} credits")
    if lane.mcp is not None:
        parts.insert(0, f"{lane.mcp.credits} credits, {len(lane.mcp.browser_sessions)} sessions")
    failed = sum(r.failed for r in lane.rows)
    if failed:
        parts.append(f"{failed} failed")
    return ", ".join(parts)


def _render_cassette(cassette: Cassette, lanes: list[_Lane], out: list[str]) -> None:
    rows = [r for lane in lanes for r in lane.rows]
    t0 = min((r.item.start for r in rows), default=0.0)
    t1 = max((r.item.start + r.item.duration for r in rows), default=t0)
    span = max(t1 - t0, 1e-3)
    out.append(
        f'<section class="cassette"><h2>{_e(cassette.path.name)} '
        f"<small>({len(rows)} exchanges, from {_e(_clock(t0))}, {span:.1f} s, upstream "
        f"{_e(cassette.header.upstream)})</small></h2>"
    )
    if cassette.torn_tail is not None:
        out.append(f'<p class="failed">torn tail: {cassette.torn_tail.size} bytes ignored</p>')
    for lane in lanes:
        out.append(f'<div class="lane" data-lane-block="{lane.key}">')
        out.append(
            f'<div class="lane-head" title="{_e(_lane_title(lane))}"><b>'
            f'{_e(_lane_title(lane))}</b><br>{_e(_lane_stats(lane))}</div><div class="track">'
        )
        for r in lane.rows:
            it = r.item
            left = (it.start - t0) / span * 100
            width = it.duration / span * 100
            label = f"#{it.seq} {r.action or it.request.method} {r.argument or it.request.path}"
            out.append(
                f'<a class="mark s{_status_class(r)}{" failed" if r.failed else ""}" '
                f'href="#{lane.key}-{it.seq}" style="left:{left:.3f}%;width:{width:.3f}%" '
                f'data-type="{_e(r.action or "-")}" data-status="{_status_class(r)}" '
                f'data-failed="{int(r.failed)}" data-lane="{lane.key}" '
                f'title="{_e(label)} → {it.response.status}, {it.duration * 1000:.0f} ms"></a>'
            )
        out.append("</div></div>")
    for lane in lanes:
        user = (
            lane.audit.user
            if lane.audit
            else next((r.item.user for r in lane.rows if r.item.user), None)
        )
        out.append(
            f'<div class="detail" data-lane-block="{lane.key}"><h3>{_e(_lane_title(lane))} '
            f'<span class="meta">{_e(_lane_stats(lane))}'
            + (f", user {_e(user)}" if user else "")
            + (f", {_e(lane.audit.status)}" if lane.audit else "")
            + "</span></h3><table><tr><th>#</th><th>+time</th><th>request</th><th>action</th>"
            "<th>argument</th><th>status</th><th>latency</th><th>screenshots</th>"
            "<th>payload / answer</th></tr>"
        )
        for r in lane.rows:
            _render_row(lane, r, t0, out)
        out.append("</table></div>")
    out.append("</section>")


def _render_row(lane: _Lane, r: _Row, t0: float, out: list[str]) -> None:
    it = r.item
    target = it.request.target
    if len(target) > 80:
        target = target[:79] + "…"
    status = f"{it.response.status}" + (f" ({it.error})" if it.error else "")
    thumbs = "".join(
        f'<img class="thumb" src="{s.thumb_uri}" data-full="{s.full_uri}" '
        f'data-width="{s.width}" data-height="{s.height}" alt="screenshot {_e(s.where)}" '
        f'title="#{it.seq} {_e(s.where)} {s.width}x{s.height}">'
        for s in r.shots
    )
    sizes = f"{len(it.request.body)} B → {len(it.response.body)} B"
    warned = it.response.warnings
    warnings = (
        '<ul class="warnings" title="fields the real API may not know">'
        + "".join(f"<li>{_e(w)}</li>" for w in warned)
        + "</ul>"
        if warned
        else ""
    )
    out.append(
        f'<tr id="{lane.key}-{it.seq}" class="ex{" failed" if r.failed else ""}" '
        f'data-type="{_e(r.action or "-")}" data-status="{_status_class(r)}" '
        f'data-failed="{int(r.failed)}" data-lane="{lane.key}">'
        f"<td>{it.seq}</td><td>+{it.start - t0:.3f} s</td>"
        f"<td>{_e(it.request.method)} {_e(target)}</td><td>{_e(r.action or '')}</td>"
        f'<td class="arg">{_e(r.argument or "")}</td><td class="status">{_e(status)}</td>'
        f"<td>{it.duration * 1000:.1f} ms</td><td>{thumbs}</td><td>{warnings}"
        f"<details><summary>payload ({_e(sizes)})</summary>"
        f"<pre>{_e(r.request_json)}</pre></details>"
        f"<details><summary>answer</summary><pre>{_e(r.answer_json)}</pre></details></td></tr>"
    )


def _options(values: Iterable[tuple[str, str]]) -> str:
    return "".join(f'<option value="{_e(v)}">{_e(label)}</option>' for v, label in values)


def render_report(
    cassettes: Sequence[Cassette], on_progress: ProgressCallback | None = None
) -> str:
    """The whole report as one HTML document. `on_progress(done, total)` after each exchange."""
    collected = _collect(cassettes, on_progress)
    lanes = [lane for _, ls in collected for lane in ls]
    rows = [r for lane in lanes for r in lane.rows]
    types = sorted({r.action or "-" for r in rows})
    statuses = sorted({_status_class(r) for r in rows})
    credits = sum(lane.audit.credits for lane in lanes if lane.audit is not None)
    credits += sum(lane.mcp.credits for lane in lanes if lane.mcp is not None)
    sessions = sum(1 for lane in lanes if lane.session_id is not None)
    failed = sum(r.failed for r in rows)
    shots = sum(len(r.shots) for r in rows)
    names = ", ".join(c.path.name for c in cassettes)
    out = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>capture-replay report: {_e(names)}</title><style>{_CSS}</style></head><body>",
        f"<header><h1>capture-replay report</h1><div class='summary'>"
        f"<span>{_e(names)}</span><span id='n-sessions'>{sessions} sessions</span>"
        f"<span id='n-exchanges'>{len(rows)} exchanges</span>"
        f"<span id='n-failed'>{failed} failed</span><span id='n-shots'>{shots} screenshots</span>"
        f"<span id='n-credits'>{credits} credits</span></div></header>",
        "<div class='filters'>",
        "<label>action <select id='f-type'><option value=''>all</option>"
        + _options((t, t if t != "-" else "(not an action)") for t in types)
        + "</select></label>",
        "<label>status <select id='f-status'><option value=''>all</option>"
        "<option value='failed'>failed</option>"
        + _options((s, s) for s in statuses)
        + "</select></label>",
        "<label>session <select id='f-session'><option value=''>all</option>"
        + _options((lane.key, _lane_title(lane)) for lane in lanes)
        + "</select></label>",
        "<span id='shown'></span></div><main>",
    ]
    for cassette, cassette_lanes in collected:
        _render_cassette(cassette, cassette_lanes, out)
    out.append(
        "</main><dialog id='viewer'><div id='viewer-caption'></div>"
        "<img id='viewer-img' alt='full size screenshot'>"
        "<form method='dialog'><button>close</button></form></dialog>"
        f"<script>{_JS}</script></body></html>"
    )
    return "\n".join(out)

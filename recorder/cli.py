"""The commands that read cassette files: `inspect`, `export`, `audit` and `repair`, on the click
group `commands` (which `mock_server.cli` mounts into `capture-replay`).

The logic lives in `recorder.cassette`, `recorder.export` and `recorder.audit`; this module parses
flags, formats tables and picks exit codes: 0, 1 on unreadable, damaged or torn input (one line
on stderr, through `recorder.cli_errors`, after printing every whole record), 3 when the secret
scan finds something, 4 over the credit budget. Imports no other command module, and never
`mock_server`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

import click

from recorder.audit import AuditReport, audit_cassettes, check_budget
from recorder.cassette import Cassette, repair_cassette
from recorder.cli_errors import fail_on_damage, one_line_errors, opened_cassettes
from recorder.contract import main_argument
from recorder.export import export_har, export_json
from recorder.mcp_audit import mcp_audit_lines, mcp_label, mcp_session_key
from recorder.mcp_tools import is_mcp_path

SECRETS_FOUND_EXIT = 3
BUDGET_EXCEEDED_EXIT = 4
_FILES = click.argument(
    "files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path)
)


class ExportFormat(StrEnum):
    JSON = "json"
    HAR = "har"


EXPORTERS: dict[ExportFormat, Callable[[Iterable[Cassette]], dict[str, Any]]] = {
    ExportFormat.JSON: export_json,
    ExportFormat.HAR: export_har,
}


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def commands() -> None:
    """Read cassettes: list, export, audit, repair."""


def _clock(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%H:%M:%S.%f")[:-3]


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


# -- inspect -----------------------------------------------------------------------------------


def _inspect_rows(cassette: Cassette) -> dict[str | None, list[dict[str, Any]]]:
    sessions: dict[str | None, list[dict[str, Any]]] = {}
    for entry in sorted(cassette.entries, key=lambda e: e.seq):
        argument = None
        group = entry.session_id
        if is_mcp_path(entry.path):  # grouped by MCP session, named by tool
            item = cassette.load(entry)
            group, argument = mcp_session_key(item), mcp_label(item.request.body)
        elif entry.action_type or entry.session_id is None:
            body = cassette.request_body(entry) if entry.action_type else b""
            argument = main_argument(entry.path, entry.query, body)
        sessions.setdefault(group, []).append(
            {
                "seq": entry.seq,
                "start": entry.start,
                "user": entry.user,
                "method": entry.method,
                "path": entry.path,
                "query": entry.query,
                "action": entry.action_type,
                "argument": argument,
                "status": entry.status,
                "latencyMs": round(entry.duration * 1000, 3),
                "requestSize": entry.request_size,
                "responseSize": entry.response_size,
                "error": entry.error,
            }
        )
    return sessions


def _inspect_table(cassette: Cassette, sessions: dict[str | None, list[dict[str, Any]]]) -> str:
    h = cassette.header
    lines = [
        f"{cassette.path}  (format {h.version}, upstream {h.upstream}, "
        f"{len(cassette.entries)} exchanges)"
    ]
    for sid, rows in sessions.items():
        users = sorted({r["user"] for r in rows if r["user"]})
        lines.append("")
        lines.append(f"session {sid or '(none)'}" + (f"  user {', '.join(users)}" if users else ""))
        lines.append(
            f"  {'SEQ':>5}  {'TIME':12}  {'METHOD':6}  {'PATH':44}  {'ACTION':32}  "
            f"{'STATUS':>6}  {'LATENCY':>9}  {'SIZE':>9}"
        )
        for r in rows:
            target = r["path"] + (f"?{r['query']}" if r["query"] else "")
            if len(target) > 44:
                target = target[:43] + "…"
            action = " ".join(x for x in (r["action"], r["argument"]) if x) or "-"
            if len(action) > 32:
                action = action[:31] + "…"
            lines.append(
                f"  {r['seq']:>5}  {_clock(r['start']):12}  {r['method']:6}  {target:44}  "
                f"{action:32}  {r['status']:>6}  {r['latencyMs']:>7.1f}ms  "
                f"{_size(r['responseSize']):>9}"
            )
    return "\n".join(lines)


def _inspect_json(cassette: Cassette) -> dict[str, Any]:
    torn = cassette.torn_tail
    return {
        "path": str(cassette.path),
        "formatVersion": cassette.header.version,
        "upstream": cassette.header.upstream,
        "createdAt": cassette.header.created_at,
        "tornTail": None if torn is None else {"offset": torn.offset, "size": torn.size},
        "damage": [
            {
                "offset": g.offset,
                "size": g.size,
                "afterSeq": g.after_seq,
                "beforeSeq": g.before_seq,
                "reason": g.reason,
            }
            for g in cassette.gaps
        ],
        "sessions": [
            {"sessionId": sid, "exchanges": rows} for sid, rows in _inspect_rows(cassette).items()
        ],
    }


@commands.command()
@_FILES
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def inspect(files: tuple[Path, ...], as_json: bool) -> None:
    """List the sessions and exchanges of cassettes."""
    with opened_cassettes(files) as cassettes:
        if as_json:
            document = {"cassettes": [_inspect_json(c) for c in cassettes]}
            click.echo(json.dumps(document, indent=2))
        else:
            click.echo("\n\n".join(_inspect_table(c, _inspect_rows(c)) for c in cassettes))
        fail_on_damage(cassettes)


# -- export ------------------------------------------------------------------------------------


@commands.command()
@_FILES
@click.option(
    "--format",
    "fmt",
    type=click.Choice(ExportFormat, case_sensitive=False),
    default=ExportFormat.JSON.value,
    show_default=True,
    help="Output format.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write here instead of stdout.",
)
def export(files: tuple[Path, ...], fmt: ExportFormat, output: Path | None) -> None:
    """Export exchanges as JSON or HAR 1.2."""
    with opened_cassettes(files) as cassettes:
        text = json.dumps(EXPORTERS[fmt](cassettes), indent=2, ensure_ascii=False)
        if output is None:
            click.echo(text)
        else:
            output.write_text(text + "\n", encoding="utf-8")
        fail_on_damage(cassettes)


# -- audit -------------------------------------------------------------------------------------


def _audit_text(report: AuditReport) -> str:
    lines = []
    for user in report.users:
        lines.append(
            f"user {user.user or '(unknown)'}: {user.sessions} sessions, {user.credits} credits, "
            f"{user.actions} actions ({user.action_errors} failed), "
            f"{user.client_errors} 4xx, {user.server_errors} 5xx"
        )
        for s in (s for s in report.sessions if s.user == user.user):
            lines.append(
                f"  session {s.session_id} [{s.status}]: {s.duration_seconds:.1f} s, "
                f"{s.credits} credits ({s.credits_source}), {s.exchanges} exchanges, "
                f"{s.client_errors} 4xx, {s.server_errors} 5xx"
            )
            for a in s.actions:
                lines.append(
                    f"    {a.type:18} {a.count:>4} × errors {a.errors} ({a.error_rate:.0%})  "
                    f"p50 {a.p50_ms:.1f} ms  p95 {a.p95_ms:.1f} ms"
                )
            if s.warnings:
                lines.append("    fields the real API may not know:")
                lines += [f"      {w.count:>4} × {w.warning}" for w in s.warnings]
    lines += mcp_audit_lines(report.mcp_sessions)
    if report.findings:
        lines.append(f"SECRETS FOUND ({len(report.findings)}):")
        for f in report.findings:
            lines.append(f"  {f.cassette} #{f.seq}: {f.kind} in {f.where}")
    else:
        lines.append("secret scan: clean")
    return "\n".join(lines)


@commands.command()
@_FILES
@click.option(
    "--secret",
    "secrets",
    multiple=True,
    metavar="VALUE",
    help="Also flag this literal (raw, base64 or URL-encoded) (repeatable).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@click.option(
    "--budget",
    type=click.IntRange(0),
    default=None,
    metavar="CREDITS",
    help="Exit 4 when the credits billed across the cassettes exceed CREDITS "
    "(the costliest sessions are printed).",
)
def audit(
    files: tuple[Path, ...], secrets: tuple[str, ...], as_json: bool, budget: int | None
) -> None:
    """Credits, action statistics and a secret scan, per user and session.

    Exits 3 when the secret scan finds something, 4 when --budget is exceeded."""
    with opened_cassettes(files) as cassettes:
        report = audit_cassettes(cassettes, secrets)
        check = check_budget(report, budget) if budget is not None else None
        if as_json:
            document = report.to_json()
            if check is not None:
                document["budget"] = check.to_json()
            click.echo(json.dumps(document, indent=2))
        else:
            click.echo(_audit_text(report))
            if check is not None:
                click.echo(
                    f"budget: {check.total} of {check.budget} credits"
                    + (" EXCEEDED" if check.exceeded else "")
                )
        fail_on_damage(cassettes)
    if report.findings:
        click.echo(f"error: {len(report.findings)} secret(s) found in the cassette(s)", err=True)
        click.get_current_context().exit(SECRETS_FOUND_EXIT)
    if check is not None and check.exceeded:
        click.echo(
            f"error: {check.total} credits billed, over the budget of {check.budget}; "
            "top sessions by cost:",
            err=True,
        )
        for s in check.top:
            click.echo(f"  {s.credits:>6} credits  {s.session_id}  user {s.user or '-'}", err=True)
        click.get_current_context().exit(BUDGET_EXCEEDED_EXIT)


# -- repair ------------------------------------------------------------------------------------


@commands.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--no-backup", is_flag=True, help="Do not keep the original as FILE.bak (or FILE.bak.N)."
)
def repair(file: Path, no_backup: bool) -> None:
    """Keep every whole record of a cassette and drop the damaged bytes between them and a torn
    tail (through a temp file). The original is kept as FILE.bak unless --no-backup."""
    with one_line_errors():
        report = repair_cassette(file, backup=not no_backup)
    if not report.cut_bytes:
        click.echo(f"{file}: nothing to repair ({report.kept} records)")
        return
    click.echo(
        f"{file}: kept {report.kept} records, cut {report.cut_bytes} bytes ({report.reason})"
    )
    if report.backup is not None:
        click.echo(f"{file}: the original is kept as {report.backup}")

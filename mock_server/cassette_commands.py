"""The cassette commands of `capture-replay`: `record` (the recording proxy) and the read-only
tools `inspect`, `export`, `audit`, plus `repair`. `register(group)` adds them to the CLI group.

The logic lives in `recorder` (format, proxy, export, audit); this module parses flags, builds
the frozen `ProxyConfig`, formats tables, and turns every `RecorderError` into one line on
stderr with exit code 1 (no traceback).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

import click

from mock_server.config import Mode, RecordMode, ServerConfig
from mock_server.errors import CaptureError
from mock_server.recording import EpisodeReplayer, proxy_config_for
from mock_server.serving import install_uvloop, serve_until_stopped
from recorder.audit import AuditReport, audit_cassettes, check_budget
from recorder.cassette import Cassette, WriteMode, open_cassette, repair_cassette
from recorder.errors import RecorderError
from recorder.export import export_har, export_json
from recorder.proxy import DEFAULT_PORT, DEFAULT_UPSTREAM, ProxyConfig, run_proxy, serve_proxy
from recorder.records import main_argument
from recorder.redaction import RedactionRules

SECRETS_FOUND_EXIT = 3
BUDGET_EXCEEDED_EXIT = 4
_FILES = click.argument(
    "files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path)
)


def fail(err: Exception) -> NoReturn:
    """One line on stderr, exit code 1, no traceback."""
    raise click.ClickException(str(err)) from err


@contextlib.contextmanager
def opened_cassettes(
    files: tuple[Path, ...], *, warn_torn: bool = False
) -> Iterator[list[Cassette]]:
    """Open every file (all or none) and close them all at the end. With `warn_torn`, a torn
    tail is a warning on stderr and the whole records are used."""
    cassettes: list[Cassette] = []
    try:
        for path in files:
            cassette = open_cassette(path)
            cassettes.append(cassette)
            if warn_torn and cassette.torn_tail is not None:
                click.echo(
                    f"warning: {path}: torn tail of {cassette.torn_tail.size} bytes ignored "
                    f"({len(cassette.entries)} whole records read)",
                    err=True,
                )
        yield cassettes
    except RecorderError as err:
        fail(err)
    finally:
        for cassette in cassettes:
            cassette.close()


def _torn_check(cassettes: list[Cassette]) -> None:
    """A torn tail was reported: the whole records are shown, then exit 1 with one line."""
    torn = [c for c in cassettes if c.torn_tail is not None]
    if torn:
        c = torn[0]
        assert c.torn_tail is not None
        raise click.ClickException(
            f"{c.path}: truncated cassette, {c.torn_tail.size} bytes of torn record at byte "
            f"{c.torn_tail.offset} ignored ({len(c.entries)} whole records read); "
            f"run `capture-replay repair {c.path}`"
        )


def _clock(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%H:%M:%S.%f")[:-3]


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


# -- record ------------------------------------------------------------------------------------


def register(group: click.Group) -> None:
    """Add `record`, `inspect`, `export`, `audit` and `repair` to `group`."""
    for command in (record, inspect, export, audit, repair):
        group.add_command(command)


@click.command()
@click.option(
    "--upstream", default=DEFAULT_UPSTREAM, show_default=True, help="Capture API base URL."
)
@click.option(
    "--cassette",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Cassette file to write.",
)
@click.option("--append", is_flag=True, help="Add to an existing cassette.")
@click.option("--overwrite", is_flag=True, help="Replace an existing cassette.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option(
    "--port",
    default=DEFAULT_PORT,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port to bind (0 picks a free one).",
)
@click.option(
    "--redact-header",
    "redact_headers",
    multiple=True,
    metavar="NAME",
    help="Blank this header's value (repeatable).",
)
@click.option(
    "--redact-json",
    "redact_json",
    multiple=True,
    metavar="PATH",
    help="Blank a dotted path in request JSON bodies, e.g. payload.value (repeatable).",
)
@click.option(
    "--redact-secret",
    "redact_secrets",
    multiple=True,
    metavar="VALUE",
    help="Remove a literal everywhere, raw, base64 or URL-encoded (repeatable).",
)
@click.option(
    "--no-password-rule",
    is_flag=True,
    help="Keep text typed into password/secret/token fields (redacted by default).",
)
@click.option(
    "--connect-timeout",
    default=10.0,
    show_default=True,
    type=click.FloatRange(0.01),
    help="Seconds to connect upstream; over it the client gets 502.",
)
@click.option(
    "--timeout",
    default=120.0,
    show_default=True,
    type=click.FloatRange(0.01),
    help="Seconds for a whole upstream exchange; over it the client gets 504.",
)
@click.option(
    "--shutdown-timeout",
    default=10.0,
    show_default=True,
    type=click.FloatRange(0),
    help="Seconds SIGINT/SIGTERM waits for exchanges in flight.",
)
@click.option("--fsync", is_flag=True, help="fsync the cassette after every record.")
@click.option(
    "--record-mode",
    type=click.Choice([RecordMode.ALL.value, RecordMode.NEW_EPISODES.value, RecordMode.ONCE.value]),
    default=RecordMode.ALL.value,
    show_default=True,
    help="all: forward everything. new_episodes: answer what the cassette has, forward and "
    "append the rest. once: record if the cassette does not exist, else replay only.",
)
def record(
    upstream: str,
    cassette: Path,
    append: bool,
    overwrite: bool,
    host: str,
    port: int,
    redact_headers: tuple[str, ...],
    redact_json: tuple[str, ...],
    redact_secrets: tuple[str, ...],
    no_password_rule: bool,
    connect_timeout: float,
    timeout: float,
    shutdown_timeout: float,
    fsync: bool,
    record_mode: str,
) -> None:
    """Record traffic to the Capture API through a local reverse proxy."""
    if append and overwrite:
        raise click.UsageError("--append and --overwrite exclude each other")
    mode = WriteMode.APPEND if append else WriteMode.OVERWRITE if overwrite else WriteMode.NEW
    episodes = None
    if cassette.exists() and record_mode == RecordMode.ONCE:
        _replay_only(cassette, host, port)
        return
    if cassette.exists() and record_mode == RecordMode.NEW_EPISODES:
        episodes = EpisodeReplayer(cassette)
    elif mode is WriteMode.NEW and cassette.exists():
        raise click.ClickException(f"{cassette}: already exists; pass --append or --overwrite")
    try:
        rules = RedactionRules(
            headers=frozenset(redact_headers),
            json_paths=redact_json,
            secrets=redact_secrets,
            password_fields=not no_password_rule,
        )
        config = ProxyConfig(
            cassette=cassette,
            upstream=upstream,
            mode=mode,
            redaction=rules,
            connect_timeout=connect_timeout,
            timeout=timeout,
            host=host,
            port=port,
            fsync=fsync,
            shutdown_timeout=shutdown_timeout,
        )

        def ready(url: str) -> None:
            click.echo(f"capture-replay recording {upstream} into {cassette} on {url}", err=True)

        def stopping(in_flight: int) -> None:
            click.echo(f"stopping: finishing {in_flight} exchanges in flight", err=True)

        if episodes is None:
            serve_proxy(config, on_ready=ready, on_stopping=stopping)
        else:
            install_uvloop()
            asyncio.run(_record_new_episodes(episodes, config, ready, stopping))
    except RecorderError as err:
        fail(err)
    except OSError as err:
        raise click.ClickException(f"cannot listen on {host}:{port}: {err.strerror}") from err
    except KeyboardInterrupt:
        pass


async def _record_new_episodes(
    episodes: EpisodeReplayer,
    config: ProxyConfig,
    ready: Callable[[str], None],
    stopping: Callable[[int], None],
) -> None:
    async with episodes.running():
        await run_proxy(proxy_config_for(config, episodes), on_ready=ready, on_stopping=stopping)


def _replay_only(cassette: Path, host: str, port: int) -> None:
    """Record mode `once` on an existing cassette: replay it, forward nothing."""
    from mock_server.api import make_app

    config = ServerConfig(host=host, port=port, mode=Mode.REPLAY, cassettes=(cassette,))
    try:
        app = make_app(config)
    except CaptureError as err:
        raise click.ClickException(err.message) from err
    install_uvloop()
    banner = f"capture-replay: {cassette} exists (record mode once): replaying only"
    asyncio.run(serve_until_stopped(app, host, port, banner))


# -- inspect -----------------------------------------------------------------------------------


def _inspect_rows(cassette: Cassette) -> dict[str | None, list[dict[str, Any]]]:
    sessions: dict[str | None, list[dict[str, Any]]] = {}
    for entry in sorted(cassette.entries, key=lambda e: e.seq):
        argument = None
        if entry.action_type or entry.session_id is None:
            body = cassette.request_body(entry) if entry.action_type else b""
            argument = main_argument(entry.path, entry.query, body)
        sessions.setdefault(entry.session_id, []).append(
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


@click.command()
@_FILES
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def inspect(files: tuple[Path, ...], as_json: bool) -> None:
    """List the sessions and exchanges of cassettes."""
    with opened_cassettes(files) as cassettes:
        try:
            if as_json:
                out = []
                for c in cassettes:
                    rows = _inspect_rows(c)
                    out.append(
                        {
                            "path": str(c.path),
                            "formatVersion": c.header.version,
                            "upstream": c.header.upstream,
                            "createdAt": c.header.created_at,
                            "tornTail": None
                            if c.torn_tail is None
                            else {
                                "offset": c.torn_tail.offset,
                                "size": c.torn_tail.size,
                            },
                            "sessions": [
                                {"sessionId": sid, "exchanges": r} for sid, r in rows.items()
                            ],
                        }
                    )
                click.echo(json.dumps({"cassettes": out}, indent=2))
            else:
                click.echo("\n\n".join(_inspect_table(c, _inspect_rows(c)) for c in cassettes))
        except RecorderError as err:
            fail(err)
        _torn_check(cassettes)


# -- export ------------------------------------------------------------------------------------


@click.command()
@_FILES
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["json", "har"]),
    default="json",
    show_default=True,
    help="Output format.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write here instead of stdout.",
)
def export(files: tuple[Path, ...], fmt: str, output: Path | None) -> None:
    """Export exchanges as JSON or HAR 1.2."""
    with opened_cassettes(files) as cassettes:
        try:
            document = export_har(cassettes) if fmt == "har" else export_json(cassettes)
        except RecorderError as err:
            fail(err)
        text = json.dumps(document, indent=2, ensure_ascii=False)
        if output is None:
            click.echo(text)
        else:
            output.write_text(text + "\n", encoding="utf-8")
        _torn_check(cassettes)


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
    if report.findings:
        lines.append(f"SECRETS FOUND ({len(report.findings)}):")
        for f in report.findings:
            lines.append(f"  {f.cassette} #{f.seq}: {f.kind} in {f.where}")
    else:
        lines.append("secret scan: clean")
    return "\n".join(lines)


@click.command()
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
        try:
            report = audit_cassettes(cassettes, secrets)
        except RecorderError as err:
            fail(err)
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
        _torn_check(cassettes)
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


@click.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def repair(file: Path) -> None:
    """Cut a torn tail off a cassette (through a temp file); whole records are kept."""
    try:
        report = repair_cassette(file)
    except RecorderError as err:
        fail(err)
    if report.cut_bytes:
        click.echo(
            f"{file}: kept {report.kept} records, cut {report.cut_bytes} bytes ({report.reason})"
        )
    else:
        click.echo(f"{file}: nothing to repair ({report.kept} records)")

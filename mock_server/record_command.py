"""`capture-replay record`: the recording proxy between a client and Capture, in the record
mode `mock_server.config.plan_recording` decides (`once` on an existing cassette serves it in
replay; `new_episodes` composes the proxy with `mock_server.replay.episodes`'s in-process
replayer). Mounted by `mock_server.cli`; imports no other command module.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import click

from mock_server.config import Mode, RecordMode, RecordPlan, ServerConfig, plan_recording
from mock_server.errors import CaptureError
from mock_server.serving import run, serve_config
from recorder.cassette import WriteMode
from recorder.cli_errors import error_line, one_line_errors
from recorder.contract import DEFAULT_UPSTREAM
from recorder.errors import RecorderError
from recorder.proxy import DEFAULT_PORT as PROXY_PORT
from recorder.proxy import ProxyConfig, run_proxy, serve_proxy
from recorder.redaction import RedactionRules
from recorder.upstream import DEFAULT_MAX_RESPONSE_BYTES

if TYPE_CHECKING:
    from mock_server.replay.episodes import EpisodeReplayer


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
    default=PROXY_PORT,
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
    "--max-response-mb",
    default=DEFAULT_MAX_RESPONSE_BYTES // (1024 * 1024),
    show_default=True,
    type=click.IntRange(1),
    help="Largest upstream answer relayed and recorded, MiB; a larger one gets 502.",
)
@click.option(
    "--record-mode",
    type=click.Choice(
        [RecordMode.ALL, RecordMode.NEW_EPISODES, RecordMode.ONCE], case_sensitive=False
    ),
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
    max_response_mb: int,
    record_mode: RecordMode,
) -> None:
    """Record traffic to the Capture API through a local reverse proxy."""
    if append and overwrite:
        raise click.UsageError("--append and --overwrite exclude each other")
    parts = urlsplit(upstream)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise click.ClickException(f"--upstream must be an http(s) URL, got {upstream!r}")
    folder = cassette.parent
    if not folder.is_dir():
        state = "is not a directory" if folder.exists() else "does not exist"
        raise click.ClickException(f"{cassette}: the cassette's directory {folder} {state}")
    with one_line_errors():
        existed = cassette.exists()
    plan = plan_recording(record_mode, existed)
    if plan is RecordPlan.REPLAY:
        config = ServerConfig(host=host, port=port, mode=Mode.REPLAY, cassettes=(cassette,))
        serve_config(
            config, f"capture-replay: {cassette} exists (record mode once): replaying only"
        )
        return
    episodes = None
    if plan is RecordPlan.EPISODES:
        from mock_server.replay.episodes import EpisodeReplayer

        episodes = EpisodeReplayer(cassette)
    with one_line_errors():
        rules = RedactionRules(
            headers=frozenset(redact_headers),
            json_paths=redact_json,
            secrets=redact_secrets,
            password_fields=not no_password_rule,
        )
    config = ProxyConfig(
        cassette=cassette,
        upstream=upstream,
        mode=WriteMode.APPEND if append else WriteMode.OVERWRITE if overwrite else WriteMode.NEW,
        redaction=rules,
        connect_timeout=connect_timeout,
        timeout=timeout,
        host=host,
        port=port,
        fsync=fsync,
        max_response_bytes=max_response_mb * 1024 * 1024,
        shutdown_timeout=shutdown_timeout,
    )
    listening = False

    def ready(url: str) -> None:
        nonlocal listening
        listening = True
        click.echo(f"capture-replay recording {upstream} into {cassette} on {url}", err=True)

    def stopping(in_flight: int) -> None:
        click.echo(f"stopping: finishing {in_flight} exchanges in flight", err=True)

    try:
        if episodes is None:
            serve_proxy(config, on_ready=ready, on_stopping=stopping)
        else:
            run(_record_new_episodes(episodes, config, ready, stopping))
    except KeyboardInterrupt:
        pass
    except (RecorderError, OSError, CaptureError) as err:
        # Before the proxy listens, an OSError naming no file is the bind (or the host's lookup).
        failed_bind = isinstance(err, OSError) and not listening and not err.filename
        doing = f"cannot listen on {host}:{port}" if failed_bind else None
        raise click.ClickException(error_line(err, doing)) from err
    finally:
        if not listening and not existed:
            cassette.unlink(missing_ok=True)  # created by this start-up, holds no exchange


async def _record_new_episodes(
    episodes: EpisodeReplayer,  # imported when the mode needs it
    config: ProxyConfig,
    ready: Callable[[str], None],
    stopping: Callable[[int], None],
) -> None:
    from mock_server.replay.episodes import proxy_config_for

    async with episodes.running():
        await run_proxy(proxy_config_for(config, episodes), on_ready=ready, on_stopping=stopping)

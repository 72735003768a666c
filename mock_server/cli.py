"""The `capture-replay` command group: `serve` here; `record` mounted from
`mock_server.record_command`, and the commands over cassette files from `recorder.cli` and
`recorder.cli_guard`. With those, the only place that reads the environment and argv; it builds
one frozen config and hands it down. Errors become one line on stderr and exit code 1 through
`recorder.cli_errors` (the one mapping). Imports no command module other than those it mounts.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

from mock_server import __version__
from mock_server.config import (
    DEFAULT_CDP_TOKEN_TTL_SECONDS,
    DEFAULT_KEEP_CLOSED_SECONDS,
    DEFAULT_MAX_SESSIONS,
    DEFAULT_PORT,
    DEFAULT_TTL_SECONDS,
    MAX_TTL_SECONDS,
    ClockMode,
    Exhausted,
    Mode,
    ServerConfig,
    StrictLevel,
    default_max_total_sessions,
    read_users_file,
)
from mock_server.fault_rules import load_rules_file
from mock_server.record_command import record
from mock_server.serving import (
    DEFAULT_IDLE_TIMEOUT,
    DEFAULT_MAX_CONNECTIONS,
    serve_config,
)
from recorder import cli as cassette_cli
from recorder import cli_guard, cli_review
from recorder.cli_errors import one_line_errors
from recorder.verify import is_loopback_host


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="capture-replay")
def main() -> None:
    """Record, replay and emulate the Capture browser-sessions API offline."""


for _group in (cassette_cli.commands, cli_guard.commands, cli_review.commands):
    for _command in _group.commands.values():
        main.add_command(_command)
main.add_command(record)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option(
    "--port",
    default=DEFAULT_PORT,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port to bind (0 picks a free one).",
)
@click.option(
    "--clock",
    "clock",
    type=click.Choice(ClockMode, case_sensitive=False),
    default=ClockMode.REAL.value,
    show_default=True,
    help="real: wall time. manual: time moves only via POST /__admin/clock/advance.",
)
@click.option(
    "--browser",
    envvar="CAPTURE_REPLAY_BROWSER",
    type=str,
    default=None,
    help="Chromium executable [env CAPTURE_REPLAY_BROWSER]. Default: Playwright's own "
    "Chromium if installed, else chromium / chromium-browser / google-chrome on PATH.",
)
@click.option(
    "--default-ttl",
    default=DEFAULT_TTL_SECONDS,
    show_default=True,
    type=click.IntRange(1, MAX_TTL_SECONDS),
    help="TTL in seconds of a session created without maxTtlSeconds.",
)
@click.option(
    "--max-sessions",
    default=DEFAULT_MAX_SESSIONS,
    show_default=True,
    type=click.IntRange(1),
    help="Active sessions allowed per user; one more gets 429.",
)
@click.option(
    "--users",
    "users_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="File of userId:secret lines; when given, secrets are checked.",
)
@click.option(
    "--allow-file-urls",
    is_flag=True,
    help="Let goto open file:// URLs (refused by default).",
)
@click.option(
    "--action-timeout",
    default=30.0,
    show_default=True,
    type=click.FloatRange(0.1),
    help="Time budget of one action in seconds; over it the answer is 504.",
)
@click.option(
    "--context-pool",
    default=1,
    show_default=True,
    type=click.IntRange(0, 10),
    help="Ready browser contexts kept for fast session creation.",
)
@click.option(
    "--cassette",
    "cassettes",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Cassette to replay (repeatable).",
)
@click.option(
    "--mode",
    type=click.Choice(Mode, case_sensitive=False),
    default=None,
    help="live: local Chromium. replay: cassettes only, never a browser. hybrid: replay, and "
    "continue a session live from its first miss. [default: replay with --cassette, else live]",
)
@click.option(
    "--match-on",
    "match_on",
    multiple=True,
    help="Matchers for replay (repeatable or comma-separated): method, path, query, body, "
    "action_type. [default: method,path,query,body]",
)
@click.option(
    "--ignore",
    "ignore",
    multiple=True,
    metavar="JSONPATH",
    help="Dotted JSON path dropped from request bodies before matching, e.g. payload.url "
    "(repeatable).",
)
@click.option(
    "--exhausted",
    type=click.Choice(Exhausted, case_sensitive=False),
    default=Exhausted.REPEAT.value,
    show_default=True,
    help="When a request's recorded answers are used up: repeat the last one, or miss.",
)
@click.option(
    "--latency",
    default="none",
    show_default=True,
    metavar="none|recorded|MS",
    help="Replayed answers: at once, after the recorded duration, or after MS milliseconds.",
)
@click.option(
    "--strict",
    type=click.Choice(StrictLevel, case_sensitive=False),
    is_flag=False,
    flag_value=StrictLevel.UNKNOWN.value,
    default=StrictLevel.OFF.value,
    show_default=True,
    help="Refuse (400) what the real API may not know instead of warning: --strict refuses "
    "unknown fields and Playwright-only selectors, --strict=documented also capture-replay's "
    "chosen names and aliases.",
)
@click.option(
    "--max-total-sessions",
    default=default_max_total_sessions(),
    show_default=True,
    type=click.IntRange(1),
    help="Live sessions for all users together (this machine's limit: half its memory at "
    "~150 MB a session); one more gets 429.",
)
@click.option(
    "--keep-closed",
    default=DEFAULT_KEEP_CLOSED_SECONDS,
    show_default=True,
    type=click.FloatRange(0),
    metavar="SECONDS",
    help="How long (server clock) a closed or expired session stays readable before it is "
    "forgotten.",
)
@click.option(
    "--admin-token",
    envvar="CAPTURE_REPLAY_ADMIN_TOKEN",
    default=None,
    help="Require `Authorization: Bearer TOKEN` on /__admin/ routes [env "
    "CAPTURE_REPLAY_ADMIN_TOKEN]; required when --host is not a loopback address.",
)
@click.option(
    "--cassette-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="The folder POST /__admin/cassettes may load from. [default: the working directory]",
)
@click.option(
    "--idle-timeout",
    default=DEFAULT_IDLE_TIMEOUT,
    show_default=True,
    type=click.FloatRange(0.1),
    metavar="SECONDS",
    help="Close a connection that sends no whole request for this long (also an idle "
    "keep-alive one).",
)
@click.option(
    "--max-connections",
    default=DEFAULT_MAX_CONNECTIONS,
    show_default=True,
    type=click.IntRange(1),
    help="Open connections at most; one more is answered 503 and closed.",
)
@click.option(
    "--oneshot-slots",
    default=4,
    show_default=True,
    type=click.IntRange(1),
    help="One-shot captures running at once; more wait in a first-come queue.",
)
@click.option(
    "--oneshot-queue",
    default=16,
    show_default=True,
    type=click.IntRange(0),
    help="One-shot captures waiting at most; one more gets 503.",
)
@click.option(
    "--oneshot-wait",
    default=30.0,
    show_default=True,
    type=click.FloatRange(0),
    metavar="SECONDS",
    help="How long a one-shot waits for a slot; past it, 503.",
)
@click.option(
    "--faults",
    "faults_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Fault rules to load at start: a JSON or YAML list (see README, Fault injection).",
)
@click.option(
    "--fault-seed",
    default=0,
    show_default=True,
    type=int,
    help="Seed of the fault rules' probability draws (the same seed, the same sequence).",
)
@click.option(
    "--cdp-token-ttl",
    default=DEFAULT_CDP_TOKEN_TTL_SECONDS,
    show_default=True,
    type=click.FloatRange(0, min_open=True),
    metavar="SECONDS",
    help="How long (server clock) the token of a CDP connectUrl may open a connection after "
    "it was minted (each create and GET mints one).",
)
@click.option(
    "--oneshot-cache-ttl",
    default=7 * 24 * 3600.0,
    show_default=True,
    type=click.FloatRange(0),
    metavar="SECONDS",
    help="Identical one-shots within this time (server clock) are answered from the cache; "
    "0 turns it off.",
)
@click.option(
    "--oneshot-cache-mb",
    default=256.0,
    show_default=True,
    type=click.FloatRange(0, min_open=True),
    help="Memory for cached one-shot answers; the least recently used go first.",
)
@click.option(
    "--storage-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder of the local object store standing in for S3 (fileName, s3Acl, s3Redirect). "
    "[default: a temporary folder, removed at stop]",
)
@click.option(
    "--batch-max",
    default=100,
    show_default=True,
    type=click.IntRange(1),
    help="Items per batch request (POST /batch-image|batch-pdf/{apiKey}) at most.",
)
@click.option(
    "--allow-webhook-host",
    "allow_webhook_hosts",
    multiple=True,
    metavar="HOST",
    help="A host besides loopback that a batch notification_uri may target (repeatable).",
)
@click.option(
    "--redis",
    "redis_url",
    metavar="URL",
    envvar="CAPTURE_REPLAY_REDIS",
    help="Cluster mode: share sessions with the other instances through this Redis "
    "(redis://HOST:PORT/DB; needs the `cluster` extra). Env: CAPTURE_REPLAY_REDIS (keeps a "
    "password out of `ps`).",
)
@click.option(
    "--heartbeat-ttl",
    default=10.0,
    show_default=True,
    type=click.FloatRange(0.3),
    metavar="SECONDS",
    help="Cluster mode: an instance silent this long is gone; its sessions end in error.",
)
@click.option("--advertise", metavar="URL", help="Cluster mode: this instance's address as listed.")
@click.option(
    "--browser-endpoint",
    metavar="WS_URL",
    help="Connect to a Playwright browser server (ws://...) instead of launching Chromium.",
)
@click.option("-v", "--verbose", is_flag=True, help="Log requests and browser events.")
def serve(
    host: str,
    port: int,
    clock: ClockMode,
    browser: str | None,
    default_ttl: int,
    max_sessions: int,
    users_file: Path | None,
    allow_file_urls: bool,
    action_timeout: float,
    context_pool: int,
    cassettes: tuple[Path, ...],
    mode: Mode | None,
    match_on: tuple[str, ...],
    ignore: tuple[str, ...],
    exhausted: Exhausted,
    latency: str,
    strict: StrictLevel,
    max_total_sessions: int,
    keep_closed: float,
    admin_token: str | None,
    cassette_dir: Path | None,
    idle_timeout: float,
    max_connections: int,
    oneshot_slots: int,
    oneshot_queue: int,
    oneshot_wait: float,
    faults_file: Path | None,
    fault_seed: int,
    cdp_token_ttl: float,
    oneshot_cache_ttl: float,
    oneshot_cache_mb: float,
    storage_dir: Path | None,
    batch_max: int,
    allow_webhook_hosts: tuple[str, ...],
    redis_url: str | None,
    heartbeat_ttl: float,
    advertise: str | None,
    browser_endpoint: str | None,
    verbose: bool,
) -> None:
    """Run the Capture sessions API locally: live on headless Chromium, or replaying cassettes."""
    from mock_server.browser import find_browser
    from mock_server.replay.matching import parse_matchers

    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    users = None
    if users_file is not None:
        with one_line_errors(also=(ValueError,)):
            users = read_users_file(users_file)
    faults: tuple[object, ...] = ()
    if faults_file is not None:
        with one_line_errors(also=(ValueError,)):
            faults = tuple(load_rules_file(faults_file, fault_seed))
    chosen = mode or (Mode.REPLAY if cassettes else Mode.LIVE)
    if chosen is not Mode.LIVE and not cassettes:
        raise click.UsageError(f"--mode {chosen.value} needs at least one --cassette")
    matchers = tuple(m.strip() for item in match_on for m in item.split(",") if m.strip())
    try:
        parse_matchers(matchers)
    except ValueError as err:
        raise click.BadParameter(str(err), param_hint="--match-on") from err
    if not is_loopback_host(host):
        if admin_token is None:
            raise click.UsageError(
                f"--host {host} is not a loopback address: set --admin-token (or "
                "CAPTURE_REPLAY_ADMIN_TOKEN) so that the admin API is not open to the network"
            )
        click.echo(
            f"warning: serving on {host}, reachable from other machines; the API takes any "
            "well-formed token unless --users is given",
            err=True,
        )
    # A browser server launches its own browser: only an explicit --browser is passed to it.
    resolved = browser if browser_endpoint else find_browser(browser)
    if resolved is None and chosen is not Mode.REPLAY and not browser_endpoint:
        click.echo(
            "warning: no Chromium found; sessions will answer 503 until one is installed "
            "(apt-get install -y chromium) or named with --browser / CAPTURE_REPLAY_BROWSER",
            err=True,
        )
    config = ServerConfig(
        host=host,
        port=port,
        clock=clock,
        browser=resolved,
        default_ttl=default_ttl,
        max_sessions=max_sessions,
        users=users,
        allow_file_urls=allow_file_urls,
        action_timeout=action_timeout,
        context_pool=context_pool,
        warm_browser=(resolved is not None or bool(browser_endpoint)) and chosen is not Mode.REPLAY,
        mode=chosen,
        cassettes=cassettes,
        match_on=matchers,
        ignore=ignore,
        exhausted=exhausted,
        latency=parse_latency(latency),
        strict=StrictLevel(strict),
        max_total_sessions=max_total_sessions,
        keep_closed=keep_closed,
        admin_token=admin_token,
        cassette_dir=cassette_dir.resolve() if cassette_dir else Path.cwd(),
        oneshot_slots=oneshot_slots,
        oneshot_queue=oneshot_queue,
        oneshot_wait=oneshot_wait,
        faults=faults,
        fault_seed=fault_seed,
        cdp_token_ttl=cdp_token_ttl,
        oneshot_cache_ttl=oneshot_cache_ttl,
        oneshot_cache_bytes=int(oneshot_cache_mb * 1024 * 1024),
        storage_dir=storage_dir,
        batch_max=batch_max,
        allow_webhook_hosts=allow_webhook_hosts,
        redis_url=check_cluster(redis_url, chosen),
        heartbeat_ttl=heartbeat_ttl,
        advertise=advertise,
        browser_endpoint=browser_endpoint,
    )
    what = f"{chosen.value}, clock {clock.value}, " + (
        f"cassettes {', '.join(p.name for p in cassettes)}"
        if cassettes
        else f"browser {resolved or 'none'}"
    )
    banner = f"capture-replay {__version__} serving ({what})"
    serve_config(config, banner, idle_timeout=idle_timeout, max_connections=max_connections)


def check_cluster(redis_url: str | None, mode: Mode) -> str | None:
    """`--redis`: a redis:// URL, the `cluster` extra installed, and no hybrid mode (a session
    that goes live mid-replay would hold a page no other instance knows of)."""
    if redis_url is None:
        return None
    if not redis_url.startswith(("redis://", "rediss://", "unix://")):
        raise click.BadParameter("expected redis://HOST:PORT/DB", param_hint="--redis")
    if mode is Mode.HYBRID:
        raise click.UsageError("--mode hybrid cannot run in cluster mode (--redis)")
    try:
        import redis  # noqa: F401
    except ImportError:
        raise click.UsageError(
            "--redis needs the cluster extra: pip install 'capture-replay[cluster]'"
        ) from None
    return redis_url


def parse_latency(value: str) -> str | float | None:
    if value in ("none", "0"):
        return None
    if value == "recorded":
        return "recorded"
    try:
        ms = float(value)
    except ValueError:
        raise click.BadParameter(
            "expected none, recorded or a number of milliseconds", param_hint="--latency"
        ) from None
    if ms < 0:
        raise click.BadParameter("must be >= 0", param_hint="--latency")
    return ms


if __name__ == "__main__":
    sys.exit(main())

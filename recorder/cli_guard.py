"""The commands that guard what was recorded: `report` (a self-contained HTML timeline of
cassettes), `diff` (drift between two cassettes) and `verify` (drift between a cassette and a
live target), on the click group `commands` (which `mock_server.cli` mounts into
`capture-replay`).

The logic lives in `recorder.report`, `recorder.diff` and `recorder.verify`; this module parses
flags, shows progress on stderr and maps outcomes to exit codes: 0 no drift, 1 drift or bad,
damaged or (`report`) torn input (one line on stderr, through `recorder.cli_errors`, after the
output), 2 usage or an unreachable `verify` target, 130 interrupted. Imports no
other command module, and never `mock_server`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import click

from recorder.cassette import Cassette
from recorder.cli_errors import fail_on_damage, one_line_errors, opened_cassettes
from recorder.diff import DEFAULT_IMAGE_THRESHOLD, DiffReport, diff_cassettes
from recorder.errors import TargetUnreachableError, VerifyError
from recorder.report import render_report
from recorder.verify import VerifyResult, target_url, verify_cassette

DRIFT_EXIT = 1
USAGE_EXIT = 2
INTERRUPTED_EXIT = 130
TOKEN_HINT = "pass --token or set CAPTURE_REPLAY_TOKEN"
_THRESHOLD = click.option(
    "--image-threshold",
    type=click.FloatRange(0, 1),
    default=DEFAULT_IMAGE_THRESHOLD,
    show_default=True,
    help="Share of pixels (0..1) that may differ before a screenshot counts as drift.",
)
_JSON = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")


class _UnreachableExit(click.ClickException):
    """The target could not be reached: one line, exit 2 (the run could not be carried out)."""

    exit_code = USAGE_EXIT


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def commands() -> None:
    """Guard what was recorded: an HTML report, drift between cassettes or against a target."""


@contextlib.contextmanager
def _progress(label: str) -> Iterator[Callable[[int, int], None]]:
    """A progress bar on a terminal; otherwise a line per tenth of the work, on stderr."""
    if sys.stderr.isatty():
        bar = None

        def update(done: int, total: int) -> None:
            nonlocal bar
            if bar is None:
                bar = click.progressbar(length=total, label=label, file=sys.stderr).__enter__()
            bar.update(done - bar.pos)

        try:
            yield update
        finally:
            if bar is not None:
                bar.__exit__(None, None, None)
        return
    last = [-1]

    def line(done: int, total: int) -> None:
        step = done * 10 // max(total, 1)
        if step != last[0] or done == total:
            last[0] = step
            click.echo(f"{label} {done}/{total}", err=True)

    yield line


# -- report --------------------------------------------------------------------------------------


@commands.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("report.html"),
    show_default=True,
    help="HTML file to write.",
)
@click.option(
    "--tolerate-damage",
    is_flag=True,
    help="Exit 0 even when a cassette is damaged or ends in a torn record (its whole records "
    "are shown either way).",
)
def report(files: tuple[Path, ...], output: Path, tolerate_damage: bool) -> None:
    """Write one self-contained HTML timeline of cassettes: sessions, screenshots, credits.

    Exits 1 when a cassette is damaged or torn (after writing the whole records), unless
    --tolerate-damage."""
    with (
        opened_cassettes(files, warn_torn=True) as cassettes,
        _progress("reading exchanges") as progress,
    ):
        document = render_report(cassettes, on_progress=progress)
        with one_line_errors(f"{output}: cannot write"):
            output.write_text(document, encoding="utf-8")
        click.echo(f"wrote {output} ({len(document.encode()) // 1024} KB)")
        if not tolerate_damage:
            fail_on_damage(cassettes)


# -- diff ----------------------------------------------------------------------------------------


def _print_report(result: DiffReport, as_json: bool) -> None:
    click.echo(json.dumps(result.to_json(), indent=2) if as_json else result.to_text())


@commands.command()
@click.argument("a", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("b", type=click.Path(dir_okay=False, path_type=Path))
@_THRESHOLD
@_JSON
def diff(a: Path, b: Path, image_threshold: float, as_json: bool) -> None:
    """Exchanges added, removed or changed from cassette A to cassette B. Exits 1 on drift."""
    with opened_cassettes((a, b), warn_torn=True) as (first, second):
        result = diff_cassettes(first, second, image_threshold)
        _print_report(result, as_json)
        fail_on_damage([first, second], torn=False)
    if result.drift:
        click.get_current_context().exit(DRIFT_EXIT)


# -- verify --------------------------------------------------------------------------------------


async def _verify_until_interrupted(
    cassette: Cassette,
    against: str,
    token: str | None,
    threshold: float,
    timeout: float,
    progress: Callable[[int, int], None],
) -> VerifyResult:
    """Run `verify_cassette`; the first Ctrl-C stops after the exchange in flight (the partial
    report follows), a second one abandons that exchange too."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()

    def interrupt() -> None:
        if stop.is_set() and task is not None:
            task.cancel()
            return
        stop.set()
        click.echo("stopping after the exchange in flight (Ctrl-C again to abort it)", err=True)

    with contextlib.suppress(NotImplementedError, RuntimeError):
        loop.add_signal_handler(signal.SIGINT, interrupt)
    try:
        return await verify_cassette(
            cassette,
            against,
            token=token,
            threshold=threshold,
            timeout=timeout,
            stop=stop,
            on_progress=progress,
        )
    finally:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.remove_signal_handler(signal.SIGINT)


def _target(ctx: click.Context, param: click.Parameter, value: str) -> str:
    try:
        return target_url(value)
    except VerifyError as err:
        raise click.BadParameter(str(err), ctx, param) from err


@commands.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--against",
    required=True,
    metavar="URL",
    callback=_target,
    help="Live target, e.g. http://127.0.0.1:8790.",
)
@click.option(
    "--token",
    envvar="CAPTURE_REPLAY_TOKEN",
    default=None,
    metavar="TOKEN",
    help="base64(userId:secret) sent as Bearer [env CAPTURE_REPLAY_TOKEN]. Optional for a "
    "loopback target (base64(recordedUserId:local) is used). Never printed.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(0.1),
    default=120.0,
    show_default=True,
    help="Seconds for one exchange.",
)
@_THRESHOLD
@_JSON
def verify(
    file: Path,
    against: str,
    token: str | None,
    timeout: float,
    image_threshold: float,
    as_json: bool,
) -> None:
    """Re-run a cassette's requests against a live target and report drift as `diff` does.

    Exits 0 without drift, 1 on drift or a damaged cassette, 2 when the target cannot be reached,
    130 when interrupted (the partial report is printed)."""
    with (
        opened_cassettes((file,), warn_torn=True) as (cassette,),
        _progress("verifying") as progress,
    ):
        try:
            result = asyncio.run(
                _verify_until_interrupted(
                    cassette, against, token, image_threshold, timeout, progress
                )
            )
        except TargetUnreachableError as err:
            raise _UnreachableExit(str(err)) from err
        except VerifyError as err:  # the run could not start (the target checked by _target)
            hint = "" if token else f"; {TOKEN_HINT}"
            raise click.UsageError(f"{err}{hint}") from err
        except (asyncio.CancelledError, KeyboardInterrupt):
            click.echo("aborted", err=True)
            click.get_current_context().exit(INTERRUPTED_EXIT)
        _print_report(result.report, as_json)
        if result.closed_leftovers:
            click.echo(f"closed {result.closed_leftovers} live session(s) left open", err=True)
        if result.interrupted:
            click.echo(f"interrupted after {result.sent} of {result.total} exchanges", err=True)
            click.get_current_context().exit(INTERRUPTED_EXIT)
        fail_on_damage([cassette], torn=False)
    if result.report.drift:
        click.get_current_context().exit(DRIFT_EXIT)

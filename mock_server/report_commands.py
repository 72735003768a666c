"""The guard commands of `capture-replay`: `report` (a self-contained HTML timeline of
cassettes), `diff` (drift between two cassettes) and `verify` (drift between a cassette and a
live target). `register(group)` adds them to the CLI group.

The logic lives in `recorder.report`, `recorder.diff` and `recorder.verify`; this module parses
flags, shows progress on stderr and maps outcomes to exit codes: 0 no drift, 1 drift or bad
input (one line on stderr), 2 usage, 130 interrupted.
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

from mock_server.cassette_commands import fail, opened_cassettes
from recorder.cassette import Cassette
from recorder.diff import DEFAULT_IMAGE_THRESHOLD, DiffReport, diff_cassettes
from recorder.errors import RecorderError, VerifyError
from recorder.report import render_report
from recorder.verify import VerifyResult, verify_cassette

DRIFT_EXIT = 1
INTERRUPTED_EXIT = 130
_THRESHOLD = click.option(
    "--image-threshold",
    type=click.FloatRange(0, 1),
    default=DEFAULT_IMAGE_THRESHOLD,
    show_default=True,
    help="Share of pixels (0..1) that may differ before a screenshot counts as drift.",
)
_JSON = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")


def register(group: click.Group) -> None:
    """Add `report`, `diff` and `verify` to `group`."""
    for command in (report, diff, verify):
        group.add_command(command)


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


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("report.html"),
    show_default=True,
    help="HTML file to write.",
)
def report(files: tuple[Path, ...], output: Path) -> None:
    """Write one self-contained HTML timeline of cassettes: sessions, screenshots, credits."""
    with (
        opened_cassettes(files, warn_torn=True) as cassettes,
        _progress("reading exchanges") as progress,
    ):
        try:
            document = render_report(cassettes, on_progress=progress)
        except RecorderError as err:
            fail(err)
    try:
        output.write_text(document, encoding="utf-8")
    except OSError as err:
        raise click.ClickException(f"{output}: cannot write: {err.strerror or err}") from err
    click.echo(f"wrote {output} ({len(document.encode()) // 1024} KB)")


# -- diff ----------------------------------------------------------------------------------------


def _print_report(result: DiffReport, as_json: bool) -> None:
    click.echo(json.dumps(result.to_json(), indent=2) if as_json else result.to_text())


@click.command()
@click.argument("a", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("b", type=click.Path(dir_okay=False, path_type=Path))
@_THRESHOLD
@_JSON
def diff(a: Path, b: Path, image_threshold: float, as_json: bool) -> None:
    """Exchanges added, removed or changed from cassette A to cassette B. Exits 1 on drift."""
    with opened_cassettes((a, b), warn_torn=True) as (first, second):
        try:
            result = diff_cassettes(first, second, image_threshold)
        except RecorderError as err:
            fail(err)
    _print_report(result, as_json)
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


@click.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--against", required=True, metavar="URL", help="Live target, e.g. http://127.0.0.1:8790."
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

    Exits 0 without drift, 1 on drift, 130 when interrupted (the partial report is printed)."""
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
        except VerifyError as err:
            hint = "" if token else "; pass --token or set CAPTURE_REPLAY_TOKEN"
            raise click.UsageError(f"{err}{hint}") from err
        except (asyncio.CancelledError, KeyboardInterrupt):
            click.echo("aborted", err=True)
            click.get_current_context().exit(INTERRUPTED_EXIT)
        except RecorderError as err:
            fail(err)
    _print_report(result.report, as_json)
    if result.closed_leftovers:
        click.echo(f"closed {result.closed_leftovers} live session(s) left open", err=True)
    if result.interrupted:
        click.echo(f"interrupted after {result.sent} of {result.total} exchanges", err=True)
        click.get_current_context().exit(INTERRUPTED_EXIT)
    if result.report.drift:
        click.get_current_context().exit(DRIFT_EXIT)

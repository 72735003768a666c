"""The CLI's one boundary for errors: how a library error becomes one line on stderr and exit
code 1 (no traceback), with the hint of which flag or command to use; and the opener every
command over cassette files shares (all files or none, a torn tail handled one way).

Library errors (`recorder.errors`, `OSError`) never name a CLI flag; the hints live here. Used by
the command modules (`recorder.cli`, `recorder.cli_guard`, `mock_server.cli`); defines no command
and imports none of them. Must not import `mock_server`.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import click

from recorder.cassette import Cassette, open_cassette
from recorder.errors import CassetteExistsError, RecorderError, TornCassetteError


def error_line(err: BaseException, doing: str | None = None) -> str:
    """The one line the CLI prints for `err`. `doing` says what an `OSError` interrupted
    (e.g. "cannot listen on 127.0.0.1:8791"); without it the file the error names leads."""
    if isinstance(err, CassetteExistsError):
        return f"{err}; pass --append or --overwrite"
    if isinstance(err, TornCassetteError):
        return f"{err} (`capture-replay repair {err.path}`)"
    if isinstance(err, OSError):
        reason = err.strerror or str(err) or type(err).__name__
        if doing is not None:
            # asyncio words a failed bind at length; the errno's own text is the useful part
            if isinstance(err.errno, int) and err.errno > 0:
                reason = os.strerror(err.errno)
            return f"{doing}: {reason}"
        return f"{err.filename}: {reason}" if err.filename else reason
    return str(err) or type(err).__name__


@contextlib.contextmanager
def one_line_errors(
    doing: str | None = None, also: tuple[type[Exception], ...] = ()
) -> Iterator[None]:
    """Turn a `RecorderError`, an `OSError` (or one of `also`) raised inside into a
    `click.ClickException`: one line on stderr, exit code 1."""
    try:
        yield
    except (RecorderError, OSError, *also) as err:
        raise click.ClickException(error_line(err, doing)) from err


@contextlib.contextmanager
def opened_cassettes(
    files: tuple[Path, ...], *, warn_torn: bool = False
) -> Iterator[list[Cassette]]:
    """Open every file (all or none) and close them all at the end; errors inside are mapped by
    `one_line_errors`. With `warn_torn`, a torn tail is a warning on stderr and the whole records
    are used."""
    cassettes: list[Cassette] = []
    try:
        with one_line_errors():
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
    finally:
        for cassette in cassettes:
            cassette.close()


def fail_on_torn_tail(cassettes: list[Cassette]) -> None:
    """After the whole records were shown: a torn tail ends the command with one line, exit 1."""
    for c in cassettes:
        if c.torn_tail is not None:
            raise click.ClickException(
                f"{c.path}: truncated cassette, {c.torn_tail.size} bytes of torn record at byte "
                f"{c.torn_tail.offset} ignored ({len(c.entries)} whole records read); "
                f"run `capture-replay repair {c.path}`"
            )

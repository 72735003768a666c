"""The CLI's one boundary for errors: how a library error becomes one line on stderr and exit
code 1 (no traceback), with the hint of which flag or command to use; and the opener every
command over cassette files shares (all files or none; damage and a torn tail reported one way).

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
from recorder.errors import (
    CassetteExistsError,
    CassetteLockedError,
    DamagedCassetteError,
    RecorderError,
    TornCassetteError,
)


def error_line(err: BaseException, doing: str | None = None) -> str:
    """The one line the CLI prints for `err`. `doing` says what an `OSError` interrupted
    (e.g. "cannot listen on 127.0.0.1:8791"); without it the file the error names leads."""
    if isinstance(err, CassetteExistsError):
        return f"{err}; pass --append or --overwrite"
    if isinstance(err, TornCassetteError | DamagedCassetteError):
        return f"{err} (`capture-replay repair {err.path}`)"
    if isinstance(err, CassetteLockedError):
        return f"{err}; stop that recorder first"
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
    `one_line_errors`. Damage in the middle of a cassette (bytes between whole records that form
    no record) is a warning on stderr at once, naming the bytes and the records around them;
    the whole records are used, and `fail_on_damage` ends the command after its output. With
    `warn_torn`, a torn tail is a warning too."""
    cassettes: list[Cassette] = []
    try:
        with one_line_errors():
            for path in files:
                cassette = open_cassette(path, allow_damage=True)
                cassettes.append(cassette)
                if cassette.gaps:
                    click.echo(f"warning: {path}: {cassette.describe_damage()}", err=True)
                elif warn_torn and cassette.torn_tail is not None:
                    click.echo(
                        f"warning: {path}: torn tail of {cassette.torn_tail.size} bytes ignored "
                        f"({cassette.torn_tail.reason}; {len(cassette.entries)} whole records "
                        "read)",
                        err=True,
                    )
            yield cassettes
    finally:
        for cassette in cassettes:
            cassette.close()


def damage_line(cassette: Cassette) -> str | None:
    """What is wrong with `cassette` (damage in the middle, a torn tail) with the repair hint,
    or None when it is whole."""
    path = cassette.path
    hint = f"run `capture-replay repair {path}`"
    if cassette.gaps:
        return f"{path}: {cassette.describe_damage()}; {hint}"
    torn = cassette.torn_tail
    if torn is not None:
        return (
            f"{path}: truncated cassette, {torn.size} bytes of torn record at byte "
            f"{torn.offset} ignored ({torn.reason}; {len(cassette.entries)} whole records read); "
            f"{hint}"
        )
    return None


def fail_on_damage(cassettes: list[Cassette], *, torn: bool = True) -> None:
    """After the whole records were shown: damage in the middle (and, with `torn`, a torn tail)
    ends the command with one line, exit 1."""
    lines = [
        line
        for c in cassettes
        if (c.gaps or (torn and c.torn_tail is not None)) and (line := damage_line(c))
    ]
    if lines:
        more = f" (and {len(lines) - 1} more damaged cassettes)" if len(lines) > 1 else ""
        raise click.ClickException(lines[0] + more)

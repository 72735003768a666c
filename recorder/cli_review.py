"""The commands that make cassettes reviewable and editable: `textconv` (a cassette as text, for
git diffs), `import` (a cassette from JSON) and `prune` (a cassette without some exchanges), on
the click group `commands` (which `mock_server.cli` mounts into `capture-replay`).

The logic lives in `recorder.textconv`, `recorder.importing` and `recorder.pruning`; this module
parses flags and picks exit codes: `textconv` always exits 0 once it could start (git must still
render a diff: damage and a file that is not a cassette are lines of its output), `import` and
`prune` exit 1 with one line on stderr (through `recorder.cli_errors`) and write nothing.
Imports no other command module, and never `mock_server`.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import click

from recorder.cli_errors import one_line_errors
from recorder.errors import CassetteError, ContractViolationError
from recorder.importing import import_cassette
from recorder.pruning import prune_cassette
from recorder.reader import open_cassette
from recorder.textconv import cassette_lines

_FILE = click.argument("file", type=click.Path(dir_okay=False, path_type=Path))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def commands() -> None:
    """Review and edit cassettes: text for git diffs, import from JSON, prune."""


@commands.command()
@_FILE
def textconv(file: Path) -> None:
    """Print a cassette as stable text, one block per exchange (for git's diff textconv).

    Exits 0 even for a damaged cassette (the damage is a line of the text) so a diff renders."""
    try:
        cassette = open_cassette(file, allow_damage=True)
    except CassetteError as err:
        click.echo(f"!! {err.message}{_fingerprint(file)}")
        return
    with cassette:
        for line in cassette_lines(cassette):
            click.echo(line)


def _fingerprint(file: Path) -> str:
    try:
        data = file.read_bytes()
    except OSError:
        return ""
    return f" ({len(data)} bytes, sha256 {hashlib.sha256(data).hexdigest()})"


@commands.command("import")
@click.argument("source", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The cassette to write (an existing cassette is replaced).",
)
@click.option(
    "--no-validate",
    is_flag=True,
    help="Keep answers the contract does not allow for their route (deliberately odd answers).",
)
def import_(source: Path, output: Path, no_validate: bool) -> None:
    """Write a cassette from JSON: what `export --format json` writes, or a hand-written file in
    the same shape (only request.method, request.path and response.status are required).

    Nothing is written unless every exchange passes the checks."""
    try:
        with one_line_errors():
            report = import_cassette(source, output, validate=not no_validate)
    except click.ClickException as err:
        if isinstance(err.__cause__, ContractViolationError):
            err.message += " (--no-validate keeps it)"
        raise
    verb = "replaced" if report.replaced else "wrote"
    mcp = f", {report.mcp_sessions} MCP sessions" if report.mcp_sessions else ""
    counts = f"{report.exchanges} exchanges, {report.sessions} sessions{mcp}"
    click.echo(f"{verb} {report.path}: {counts}")


def _sequence_numbers(ctx: click.Context, param: click.Parameter, value: str) -> set[int]:
    numbers = set()
    for part in value.split(","):
        part = part.strip().lstrip("#")
        if not part.isdigit():
            raise click.BadParameter(f"{part or '(empty)'!r} is not a sequence number")
        numbers.add(int(part))
    return numbers


@commands.command()
@_FILE
@click.option(
    "--drop",
    required=True,
    metavar="SEQ[,SEQ...]",
    callback=_sequence_numbers,
    help="Sequence numbers of the exchanges to remove (as `inspect` and `textconv` show them).",
)
def prune(file: Path, drop: set[int]) -> None:
    """Rewrite a cassette without some exchanges (through a temp file; the others keep their
    bytes and sequence numbers). Refused while a recorder writes the cassette."""
    with one_line_errors():
        report = prune_cassette(file, drop)
    dropped = ", ".join(f"#{s}" for s in report.dropped)
    click.echo(f"{file}: dropped {dropped}; {report.kept} exchanges kept")

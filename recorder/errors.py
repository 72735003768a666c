"""The error tree of the `recorder` package (httpx `_exceptions.py` style).

    RecorderError
    ├── CassetteError                 anything wrong with a cassette file (has `.path`)
    │   ├── NotACassetteError         the file is not a capture-replay cassette at all
    │   ├── CassetteVersionError      written by a newer capture-replay (has `.version`)
    │   ├── CorruptCassetteError      a cassette whose content cannot be decoded (has `.offset`)
    │   ├── CassetteExistsError       refusing to clobber an existing cassette
    │   └── TornCassetteError         refusing to append after a torn tail (run `repair`)
    └── RedactionRuleError            an invalid redaction rule (e.g. an empty JSON path)

The CLI maps every `RecorderError` to one line on stderr and exit code 1.
"""

from __future__ import annotations

from pathlib import Path


class RecorderError(Exception):
    """Base of every error raised by `recorder`."""


class CassetteError(RecorderError):
    def __init__(self, path: Path | str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = Path(path)
        self.message = message


class NotACassetteError(CassetteError):
    """The file does not start with a capture-replay cassette header."""


class CassetteVersionError(CassetteError):
    def __init__(self, path: Path | str, version: int, supported: int) -> None:
        super().__init__(
            path,
            f"written by a newer capture-replay (format {version}; this one reads up to "
            f"format {supported}); upgrade capture-replay",
        )
        self.version = version
        self.supported = supported


class CorruptCassetteError(CassetteError):
    def __init__(self, path: Path | str, message: str, offset: int | None = None) -> None:
        where = f" at byte {offset}" if offset is not None else ""
        super().__init__(path, f"corrupt cassette{where}: {message}")
        self.offset = offset


class CassetteExistsError(CassetteError):
    """Recording into an existing cassette without `append` or `overwrite`."""


class TornCassetteError(CassetteError):
    """Appending to a cassette whose last record is torn."""


class RedactionRuleError(RecorderError):
    """A redaction rule that cannot be applied as given."""

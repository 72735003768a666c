"""The error tree of the `recorder` package (httpx `_exceptions.py` style).

    RecorderError
    ├── CassetteError                 anything wrong with a cassette file (has `.path`)
    │   ├── NotACassetteError         the file is not a capture-replay cassette at all
    │   ├── CassetteVersionError      written by a newer capture-replay (has `.version`)
    │   ├── CorruptCassetteError      a cassette whose content cannot be decoded (has `.offset`)
    │   ├── CassetteExistsError       refusing to clobber an existing cassette
    │   └── TornCassetteError         refusing to append after a torn tail (run `repair`)
    ├── RedactionRuleError            an invalid redaction rule (e.g. an empty JSON path)
    ├── UpstreamError                 the upstream could not be reached or broke the exchange
    │   ├── UpstreamConnectError      no connection (refused, DNS, TLS handshake, proxy)
    │   ├── UpstreamTimeoutError      no whole answer within the time budget
    │   └── UpstreamTooLargeError     the answer is larger than the cap
    └── VerifyError                   a verify run that could not be carried out

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


class UpstreamError(RecorderError):
    """The upstream could not be reached or broke the HTTP exchange (the proxy answers 502)."""


class UpstreamConnectError(UpstreamError):
    """No connection could be opened (refused, DNS, TLS handshake, proxy)."""


class UpstreamTimeoutError(UpstreamError):
    """No whole answer within the exchange's time budget (the proxy answers 504)."""


class UpstreamTooLargeError(UpstreamError):
    """The answer is larger than the proxy's cap on an answer's size (the proxy answers 502)."""


class VerifyError(RecorderError):
    """A verify run that could not be carried out (target unreachable, bad credentials...)."""

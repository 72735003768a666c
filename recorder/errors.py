"""The error tree of the `recorder` package (httpx `_exceptions.py` style).

    RecorderError
    ├── CassetteError                 anything wrong with a cassette file (has `.path`)
    │   ├── NotACassetteError         the file is not a capture-replay cassette at all
    │   ├── CassetteVersionError      written by a newer capture-replay (has `.version`)
    │   ├── CorruptCassetteError      a cassette whose content cannot be decoded (has `.offset`)
    │   │   └── DamagedCassetteError  bytes between whole records form no record (has `.offset`)
    │   ├── CassetteExistsError       refusing to clobber an existing cassette
    │   ├── TornCassetteError         refusing to append after a torn tail (run `repair`)
    │   ├── CassetteLockedError       another writer holds the cassette (has `.pid`, maybe None)
    │   └── CassetteWriteError        an append that did not reach the file, rolled back to the
    │       │                         last whole record (has `.cause`, `.errno`, `.rolled_back`)
    │       └── CassetteReplacedError the cassette was deleted or replaced while being written
    │                                 (has `.deleted`); every later append raises it too
    ├── CassetteImportError           a JSON document `import` cannot turn into a cassette (one line
    │   │                             naming the file, the exchange and the field)
    │   └── ContractViolationError    an answer the contract does not allow for its route
    ├── RedactionRuleError            an invalid redaction rule (e.g. an empty JSON path)
    ├── UpstreamError                 the upstream could not be reached or broke the exchange
    │   ├── UpstreamConnectError      no connection (refused, DNS, TLS handshake, proxy)
    │   ├── UpstreamTimeoutError      no whole answer within the time budget
    │   └── UpstreamTooLargeError     the answer is larger than the cap
    └── VerifyError                   a verify run that could not be carried out
        └── TargetUnreachableError    no connection to the verify target (has `.target`)

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


class DamagedCassetteError(CorruptCassetteError):
    """Bytes between whole records that form no record (a damaged record in the middle); the
    message says how many bytes, where, and between which records."""

    def __init__(self, path: Path | str, description: str, offset: int) -> None:
        CassetteError.__init__(self, path, f"{description}; repair it first")
        self.offset = offset
        self.description = description


class CassetteLockedError(CassetteError):
    """Another writer holds the cassette's lock."""

    def __init__(self, path: Path | str, pid: int | None) -> None:
        holder = f"pid {pid}" if pid is not None else "pid unknown"
        super().__init__(path, f"is being written by another process ({holder})")
        self.pid = pid


class CassetteWriteError(CassetteError):
    """An append that failed (e.g. `ENOSPC`); the file was truncated back to its last whole
    record unless `rolled_back` is false. Later appends may succeed once the cause is gone."""

    def __init__(self, path: Path | str, cause: OSError, *, rolled_back: bool = True) -> None:
        reason = cause.strerror or str(cause) or type(cause).__name__
        outcome = (
            "the record was not written and the cassette still ends with a whole record"
            if rolled_back
            else "the rollback failed too: the cassette may end in a torn record"
        )
        super().__init__(path, f"cannot append a record: {reason}; {outcome}")
        self.cause: OSError | None = cause
        self.errno: int | None = cause.errno
        self.rolled_back = rolled_back


class CassetteReplacedError(CassetteWriteError):
    """The cassette was deleted (`deleted`) or replaced by another file since the writer opened
    it; nothing more can be recorded into it."""

    def __init__(self, path: Path | str, *, deleted: bool) -> None:
        what = "deleted" if deleted else "replaced by another file"
        CassetteError.__init__(
            self, path, f"was {what} while recording; the records since are not in it"
        )
        self.cause = None
        self.errno = None
        self.rolled_back = True
        self.deleted = deleted


class CassetteExistsError(CassetteError):
    """Recording into an existing cassette without `append` or `overwrite`."""


class TornCassetteError(CassetteError):
    """Appending to a cassette whose last record is torn."""


class CassetteImportError(RecorderError):
    """A JSON document that cannot become a cassette: malformed JSON, an unknown or malformed
    field, or an answer the contract does not allow; the message names where (`.location`)."""

    def __init__(self, source: Path | str, location: str, message: str) -> None:
        super().__init__(f"{source}: {location}: {message}" if location else f"{source}: {message}")
        self.source = Path(source)
        self.location = location
        self.message = message


class ContractViolationError(CassetteImportError):
    """An imported answer that is not one the contract allows for its route (a missing or
    mistyped required field); the import can be told not to check it."""


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


class TargetUnreachableError(VerifyError):
    """No connection could be opened to the verify target (refused, DNS, TLS, connect timeout):
    the run stops, nothing it sent is drift."""

    def __init__(self, target: str, reason: str) -> None:
        super().__init__(f"cannot reach the target {target}: {reason}")
        self.target = target

"""capture-replay's producer side: the cassette format, redaction and the recording proxy.

The replay side needs only what is re-exported here: `open_cassette(path)` gives a `Cassette`
(`.header`, `.entries` of `IndexEntry`, `.gaps` and `.torn_tail` (damage), `.load(entry) ->
Interaction`); it raises `DamagedCassetteError` for damage between whole records unless
`allow_damage=True`. The record bytes (format 3 frames, checks, upgrades) are `recorder.codec`'s.
The proxy lives in `recorder.proxy` (imports aiohttp), redaction in `recorder.redaction`.

Must never import `mock_server`.
"""

__version__ = "0.1.0"

from recorder.cassette import (  # noqa: E402
    FORMAT_VERSION,
    Cassette,
    CassetteWriter,
    Gap,
    RepairReport,
    WriteMode,
    open_cassette,
    repair_cassette,
)
from recorder.errors import (  # noqa: E402
    CassetteError,
    CassetteExistsError,
    CassetteLockedError,
    CassetteReplacedError,
    CassetteVersionError,
    CassetteWriteError,
    CorruptCassetteError,
    DamagedCassetteError,
    NotACassetteError,
    RecorderError,
    TornCassetteError,
)
from recorder.records import (  # noqa: E402
    CassetteHeader,
    IndexEntry,
    Interaction,
    RecordedRequest,
    RecordedResponse,
    TornTail,
)

__all__ = [
    "FORMAT_VERSION",
    "Cassette",
    "CassetteError",
    "CassetteExistsError",
    "CassetteHeader",
    "CassetteLockedError",
    "CassetteReplacedError",
    "CassetteVersionError",
    "CassetteWriteError",
    "CassetteWriter",
    "CorruptCassetteError",
    "DamagedCassetteError",
    "Gap",
    "IndexEntry",
    "Interaction",
    "NotACassetteError",
    "RecordedRequest",
    "RecordedResponse",
    "RecorderError",
    "RepairReport",
    "TornCassetteError",
    "TornTail",
    "WriteMode",
    "open_cassette",
    "repair_cassette",
]

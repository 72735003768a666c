"""Which request fields Capture names, and which are capture-replay's own: the one table.

For every kind of request (the create body, the top level of an action request, each action
type's payload, each one-shot endpoint's query) a `Fields` says which names are **documented**
(named by the contract `sessions.openapi.yaml`, by `reference.md` or by Capture's docs for that
request) and which are **chosen** (accepted by the emulator as its own choice where the contract
is silent, or as an alias, each with a note). Any other name is **unknown**: the emulator ignores
it (or, where the contract says `additionalProperties: false`, refuses it). It also lists the
selector syntax Capture's docs do not describe (they say "CSS selector"): Playwright's own
engines and pseudo-classes.

`recorder.findings` classifies a request with these tables; the emulator's parsers import their
names from here; `scripts/readme_tables.py` writes the README's tables from them. Plain data:
imports nothing but the standard library, and never `mock_server`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType


class Kind(StrEnum):
    """What a field name is for one request kind."""

    DOCUMENTED = "documented"
    CHOSEN = "chosen"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Fields:
    """The names of one request kind: documented ones, and chosen ones with why (`alias of x`)."""

    documented: tuple[str, ...]
    chosen: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    def kind(self, name: str) -> Kind:
        if name in self.documented:
            return Kind.DOCUMENTED
        if name in self.chosen:
            return Kind.CHOSEN
        return Kind.UNKNOWN

    @property
    def accepted(self) -> tuple[str, ...]:
        return self.documented + tuple(self.chosen)

    def names(self, first: str) -> tuple[str, ...]:
        """`first` and its aliases (`alias of first`), the order readers try them in."""
        alias = _alias(first)
        return (first, *(n for n, note in self.chosen.items() if note.split(",")[0] == alias))


def _fields(documented: str = "", **chosen: str) -> Fields:
    return Fields(tuple(documented.split()), MappingProxyType(chosen))


CHOICE = "capture-replay's choice, the contract names no field for it"
_ALIAS = "alias of {}"


def _alias(name: str) -> str:
    return _ALIAS.format(name)


# -- sessions -------------------------------------------------------------------------------------

# CreateSessionRequest (additionalProperties: false): any other name is a 400.
CREATE = _fields("maxTtlSeconds proxy bypassBotDetection cdp")

# ActionRequest (additionalProperties: false): any other name is a 400.
ACTION_REQUEST = _fields("type payload")

# The live viewport object (additionalProperties: false).
VIEWPORT_OBJECT = _fields("width height deviceScaleFactor")

# Accepted by every action type: the attached screenshot and the live viewport (OAS payload).
ANY_ACTION = _fields("screenshot viewport vw vh scaleFactor deviceScaleFactor emulateDevice")

_WAIT = "capture-replay's choice, the contract names timeoutMs for wait_for_timeout only"
_SELECTOR = (
    "capture-replay's choice, the contract names selector for query, click, hover and "
    "wait_for_selector only"
)
_XY = "capture-replay's choice, the contract says only that coordinates are supported"

# Each action type's own payload fields, beyond ANY_ACTION (OAS `ActionRequest.payload`,
# SESS-DOC; reference.md 3.2 lists which action each documented name belongs to).
ACTIONS: Mapping[str, Fields] = MappingProxyType(
    {
        "goto": _fields("url waitUntil"),
        "screenshot": _fields("fullPage"),
        "wait_for_selector": _fields("selector visible", timeoutMs=_WAIT),
        "wait_for_timeout": _fields("timeoutMs"),
        "click": _fields(
            "selector",
            x=_XY,
            y=_XY,
            button=CHOICE,
            clickCount=CHOICE,
            timeoutMs=_WAIT,
        ),
        "move_mouse": _fields(x=_XY, y=_XY, steps=CHOICE),
        "drag_mouse": _fields(
            path=CHOICE, points=_alias("path"), **{"from": CHOICE, "to": CHOICE}, steps=CHOICE
        ),
        "hover": _fields("selector", x=_XY, y=_XY, timeoutMs=_WAIT),
        "type": _fields(
            text=CHOICE, value=_alias("text"), selector=_SELECTOR, delay=CHOICE, timeoutMs=_WAIT
        ),
        "type_text": _fields(text=CHOICE, value=_alias("text")),
        "fill": _fields(selector=_SELECTOR, value=CHOICE, text=_alias("value"), timeoutMs=_WAIT),
        "select": _fields(
            selector=_SELECTOR,
            value=CHOICE,
            values=_alias("value"),
            label=CHOICE,
            timeoutMs=_WAIT,
        ),
        "check": _fields(selector=_SELECTOR, checked=CHOICE, timeoutMs=_WAIT),
        "press": _fields(key=CHOICE, keys=CHOICE, selector=_SELECTOR, timeoutMs=_WAIT),
        "scroll": _fields("direction amount", selector=_SELECTOR, x=_XY, y=_XY, timeoutMs=_WAIT),
        "back": _fields("waitUntil"),
        "forward": _fields("waitUntil"),
        "reload": _fields("waitUntil"),
        "title": _fields(),
        "url": _fields(),
        "cursor_position": _fields(),
        "snapshot": _fields(),
        "console": _fields(clear=CHOICE),
        "errors": _fields(clear=CHOICE),
        "content": _fields("format"),
        "query": _fields("selector fields attributes limit visibleOnly"),
        "batch": _fields("actions"),
    }
)

# Payload fields holding a selector, checked for syntax Capture's docs do not describe.
SELECTOR_FIELDS = ("selector",)

# -- one-shot (signed URL) endpoints --------------------------------------------------------------

_PAGE = "read by every endpoint here, Capture's docs name it for {} only"
_PAGE_OPTIONS = (
    "url emulateDevice httpAuth waitFor waitForId blockAds blockCookieBanners bypassBotDetection "
    "stealth fresh vw vh scaleFactor delay userAgent darkMode"
).split()

# DOCS/screenshot-options, pdf-options, content-options, metadata-options,
# animated-screenshot-options (reference.md 6.2-6.6).
_ONESHOT_DOCUMENTED = {
    "image": (
        "url preset httpAuth vw vh scaleFactor top left width height waitFor waitForId delay "
        "full darkMode blockCookieBanners blockAds bypassBotDetection stealth selector "
        "selectorId transparent userAgent emulateDevice timestamp fresh resizeWidth "
        "resizeHeight fileName s3Acl s3Redirect skipUpload type bestFormat"
    ),
    "pdf": (
        "url preset httpAuth userAgent width height marginTop marginRight marginBottom "
        "marginLeft scale landscape delay stealth timestamp format fileName s3Acl s3Redirect "
        "printBackground"
    ),
    "content": "url preset httpAuth userAgent delay waitFor waitForId stealth",
    "metadata": "url preset stealth",
    "animated": (
        "url preset duration hideScrollbars vw vh scaleFactor emulateDevice delay waitFor "
        "waitForId darkMode blockCookieBanners blockAds stealth httpAuth userAgent fileName"
    ),
}


def _documented_for(name: str) -> str:
    where = [e for e, names in _ONESHOT_DOCUMENTED.items() if name in names.split()]
    return _PAGE.format(", ".join(where) if where else "no endpoint")


def _oneshot(endpoint: str, **own: str) -> Fields:
    documented = tuple(_ONESHOT_DOCUMENTED[endpoint].split())
    chosen = {n: _documented_for(n) for n in _PAGE_OPTIONS if n not in documented}
    chosen.update(own)
    return Fields(documented, MappingProxyType(chosen))


ONESHOT: Mapping[str, Fields] = MappingProxyType(
    {
        "image": _oneshot(
            "image",
            fullPage=_alias("full") + ", the name the sessions API's screenshot uses",
            format=_alias("type"),
            hideScrollbars="Capture's docs name it for animated only",
        ),
        "pdf": _oneshot("pdf"),
        "content": _oneshot("content"),
        "metadata": _oneshot("metadata"),
        "animated": _oneshot("animated"),
    }
)

# Query options holding a selector.
ONESHOT_SELECTOR_FIELDS = ("selector", "waitFor")

# Accepted by the page options of every endpoint as a boolean with no local effect.
NO_LOCAL_EFFECT_FLAGS = ("blockAds", "blockCookieBanners", "bypassBotDetection", "stealth", "fresh")

# -- selectors ------------------------------------------------------------------------------------

# Playwright's selector engines, written `engine=` at the start of a selector (or of a part after
# `>>`); Capture's docs describe CSS selectors only.
PLAYWRIGHT_ENGINES = (
    "text=",
    "xpath=",
    "css=",
    "role=",
    "id=",
    "data-testid=",
    "data-test-id=",
    "data-test=",
    "nth=",
    "visible=",
    "internal:",
    "_react=",
    "_vue=",
)
# Playwright-only syntax anywhere in a selector (outside quoted strings).
PLAYWRIGHT_SYNTAX = (
    ">>",
    ":has-text(",
    ":text(",
    ":text-is(",
    ":text-matches(",
    ":visible",
    ":nth-match(",
    ":left-of(",
    ":right-of(",
    ":above(",
    ":below(",
    ":near(",
)
# A selector starting with these is XPath (`//`, `..`) or a text selector (a quoted string) to
# Playwright, and invalid CSS.
PLAYWRIGHT_STARTS = ("//", "..", '"', "'")

"""The one-shot answer cache, as Capture documents it ("We cache all your requests", up to 7 days;
`fresh=true` bypasses, a new `timestamp=` busts; reference 6.8).

`OneshotCache` maps a request's `cache_key` (API key, endpoint and the query's pairs in any order,
the hash and `fresh` left out) to the rendered answer's bytes and content type. An entry lives
`ttl` seconds on the server's clock (a manual clock ages it on `POST /__admin/clock/advance`);
the bodies together stay under `max_bytes`, the least recently used going out first. A cache
with `ttl` 0 stores nothing. Hand-written over an `OrderedDict` (not `functools.lru_cache` or
cachetools) because entries are bounded by bytes and aged on the injected clock. Knows nothing
of HTTP or the browser.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from mock_server.clock import Clock
from mock_server.oneshot.options import Query

DEFAULT_TTL_S = 7 * 24 * 3600
DEFAULT_MAX_MB = 256
# Not part of what is cached: asking for a fresh render refreshes the same entry.
NOT_IN_KEY = frozenset({"fresh"})

CacheKey = tuple[str, str, tuple[tuple[str, str], ...]]


def cache_key(api_key: str, endpoint: str, raw_query: str) -> CacheKey:
    """Who asked, for what: never shared between two API keys; the parameters as the one-shot
    options read them (`Query`: empty values absent, the last of repeated ones), in any order."""
    values = Query(raw_query).values
    return api_key, endpoint, tuple(sorted(i for i in values.items() if i[0] not in NOT_IN_KEY))


@dataclass(frozen=True, slots=True)
class Rendered:
    """A one-shot answer as it went out the first time."""

    body: bytes
    content_type: str


@dataclass(slots=True)
class _Entry:
    rendered: Rendered
    stored_at: float


class OneshotCache:
    def __init__(self, clock: Clock, ttl: float = DEFAULT_TTL_S, max_bytes: int = 0) -> None:
        self.clock = clock
        self.ttl = ttl
        self.max_bytes = max_bytes if max_bytes > 0 else DEFAULT_MAX_MB * 1024 * 1024
        self._entries: OrderedDict[CacheKey, _Entry] = OrderedDict()
        self.size = 0
        self.hits = 0
        self.misses = 0

    @property
    def enabled(self) -> bool:
        return self.ttl > 0

    def get(self, key: CacheKey) -> Rendered | None:
        entry = self._entries.get(key)
        if entry is not None and self.clock.now() - entry.stored_at >= self.ttl:
            self._drop(key)
            entry = None
        if entry is None:
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return entry.rendered

    def put(self, key: CacheKey, rendered: Rendered) -> None:
        if not self.enabled:
            return
        self._drop(key)
        if len(rendered.body) > self.max_bytes:
            return  # would evict everything and still not fit
        self._entries[key] = _Entry(rendered, self.clock.now())
        self.size += len(rendered.body)
        while self.size > self.max_bytes:
            self._drop(next(iter(self._entries)))

    def clear(self) -> int:
        """Forget every entry; how many there were."""
        count = len(self._entries)
        self._entries.clear()
        self.size = 0
        return count

    def stats(self) -> dict[str, float | int]:
        return {
            "entries": len(self._entries),
            "bytes": self.size,
            "maxBytes": self.max_bytes,
            "ttlSeconds": self.ttl,
            "hits": self.hits,
            "misses": self.misses,
        }

    def _drop(self, key: CacheKey) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self.size -= len(entry.rendered.body)

"""The one-shot cache and the storage options, without a browser: keys, TTL on the manual
clock, the byte bound (least recently used out first), and the checks of fileName and s3Acl."""

from __future__ import annotations

import pytest

from mock_server.clock import ManualClock
from mock_server.errors import BadRequestError
from mock_server.oneshot.cache import OneshotCache, Rendered, cache_key
from mock_server.oneshot.options import Query
from mock_server.oneshot.storage import StorageOptions, object_key, parse_storage


def shot(size: int, fill: bytes = b"x") -> Rendered:
    return Rendered(fill * size, "image/png")


def test_cache_key_ignores_order_empty_values_and_fresh_but_not_the_user_or_timestamp():
    base = cache_key("alice", "image", "url=https%3A%2F%2Fa.test%2F&vw=400")
    assert cache_key("alice", "image", "vw=400&url=https%3A%2F%2Fa.test%2F&fresh=true") == base
    assert cache_key("alice", "image", "vw=400&delay=&url=https%3A%2F%2Fa.test%2F") == base
    assert cache_key("bob", "image", "url=https%3A%2F%2Fa.test%2F&vw=400") != base
    assert cache_key("alice", "pdf", "url=https%3A%2F%2Fa.test%2F&vw=400") != base
    assert cache_key("alice", "image", "url=https%3A%2F%2Fa.test%2F&vw=400&timestamp=1") != base
    stamped = cache_key("alice", "image", "url=https%3A%2F%2Fa.test%2F&vw=400&timestamp=2")
    assert stamped != cache_key("alice", "image", "url=https%3A%2F%2Fa.test%2F&vw=400&timestamp=1")


def test_a_repeated_parameter_keys_on_the_value_the_options_read():
    # The options read the last of repeated values; two queries that only reorder repeats ask
    # for different captures and must not share an entry.
    narrow, wide = "vw=900&vw=400&url=a", "vw=400&vw=900&url=a"
    assert Query(narrow).text("vw") != Query(wide).text("vw")
    assert cache_key("k", "image", narrow) != cache_key("k", "image", wide)
    assert cache_key("k", "image", wide) == cache_key("k", "image", "url=a&vw=900")


async def test_entries_live_for_the_ttl_on_the_server_clock():
    clock = ManualClock(1000.0)
    cache = OneshotCache(clock, ttl=60, max_bytes=1000)
    key = cache_key("k", "image", "url=a")
    cache.put(key, shot(10))
    await clock.advance(59.9)
    assert cache.get(key) == shot(10)
    await clock.advance(0.1)
    assert cache.get(key) is None
    assert cache.stats()["entries"] == 0 and cache.size == 0


def test_least_recently_used_goes_first_when_the_bytes_run_out():
    cache = OneshotCache(ManualClock(0.0), ttl=60, max_bytes=300)
    a, b, c, d = (cache_key("k", "image", f"url={n}") for n in "abcd")
    cache.put(a, shot(100))
    cache.put(b, shot(100))
    cache.put(c, shot(100))
    assert cache.get(a) is not None  # a is now the most recently used; b the least
    cache.put(d, shot(100))
    assert cache.get(b) is None
    assert all(cache.get(k) is not None for k in (a, c, d))
    assert cache.size == 300
    cache.put(a, shot(250, b"y"))  # a grows: c and d go (oldest first) until it fits
    assert cache.get(a) == shot(250, b"y")
    assert cache.get(c) is None and cache.get(d) is None
    assert cache.size == 250


def test_an_answer_bigger_than_the_whole_cache_is_not_kept_and_evicts_nothing():
    cache = OneshotCache(ManualClock(0.0), ttl=60, max_bytes=100)
    kept = cache_key("k", "image", "url=kept")
    cache.put(kept, shot(50))
    cache.put(cache_key("k", "image", "url=huge"), shot(101))
    assert cache.get(kept) is not None and cache.size == 50


def test_ttl_zero_turns_the_cache_off_and_clear_empties_it():
    off = OneshotCache(ManualClock(0.0), ttl=0, max_bytes=100)
    off.put(cache_key("k", "image", "url=a"), shot(1))
    assert not off.enabled and off.stats()["entries"] == 0
    on = OneshotCache(ManualClock(0.0), ttl=10, max_bytes=100)
    on.put(cache_key("k", "image", "url=a"), shot(1))
    assert on.clear() == 1 and on.get(cache_key("k", "image", "url=a")) is None


@pytest.mark.parametrize("name", ["../x", "a/b", "..", "a..b", "a\\b", "a%00b", "x" * 201])
def test_a_file_name_that_could_leave_the_store_is_400_naming_it(name: str):
    from urllib.parse import quote

    raw = f"fileName={quote(name)}" if "%" not in name else f"fileName={name}"
    with pytest.raises(BadRequestError, match="fileName"):
        parse_storage(Query(raw + "&url=a.test"))


@pytest.mark.parametrize(
    ("raw", "option"),
    [
        ("s3Acl=public", "s3Acl"),
        ("s3Redirect=yes", "s3Redirect"),
        ("skipUpload=2", "skipUpload"),
        ("s3Redirect=true&skipUpload=true", "s3Redirect"),
    ],
)
def test_bad_storage_options_are_400_naming_the_option(raw: str, option: str):
    with pytest.raises(BadRequestError, match=option):
        parse_storage(Query(raw))


def test_storage_options_and_object_keys():
    options = parse_storage(Query("fileName=shot&s3Acl=public-read&s3Redirect=true"))
    assert options == StorageOptions("shot", "public-read", True, False)
    assert object_key("alice", "image", "url=a", options, "png") == "alice/shot.png"
    named = StorageOptions("shot.PNG")
    assert object_key("alice", "image", "url=a", named, "png") == "alice/shot.PNG"
    generated = object_key("alice", "image", "url=a&vw=1", StorageOptions(), "png")
    assert generated == object_key(
        "alice", "image", "vw=1&fresh=true&url=a", StorageOptions(), "png"
    )
    assert generated != object_key("bob", "image", "url=a&vw=1", StorageOptions(), "png")
    assert object_key("../evil", "image", "url=a", named, "png").startswith("key-")

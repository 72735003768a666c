"""The cassette format: codec, versions, torn tails, repair and body-free indexing."""

from __future__ import annotations

import dataclasses
import json
import os
import threading
import time
import tracemalloc
from pathlib import Path

import msgpack
import pytest

from recorder.cassette import (
    FORMAT_NAME,
    FORMAT_VERSION,
    CassetteWriter,
    Gap,
    WriteMode,
    encode_interaction,
    open_cassette,
    repair_cassette,
)
from recorder.codec import encode_record, frame
from recorder.errors import (
    CassetteExistsError,
    CassetteVersionError,
    CorruptCassetteError,
    DamagedCassetteError,
    NotACassetteError,
    TornCassetteError,
)
from recorder.records import IndexEntry, Interaction, RecordedRequest, RecordedResponse
from tests.recorder import golden

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def _item(seq: int, body: bytes = b"", **kw: object) -> Interaction:
    return Interaction(
        seq=seq,
        start=1_767_225_600.0 + seq,
        duration=0.125,
        session_id=kw.get("session_id", "sess_a"),  # type: ignore[arg-type]
        action_type="click",
        user="user_123",
        request=RecordedRequest(
            "POST",
            "/v1/sessions/sess_a/actions",
            "q=1",
            (("Content-Type", "application/json"), ("X-Dup", "1"), ("X-Dup", "2")),
            b'{"type":"click","payload":{"selector":"#inc"}}',
        ),
        response=RecordedResponse(200, (("Content-Type", "image/png"),), body, "OK"),
    )


def _write(path: Path, items: list[Interaction]) -> None:
    with CassetteWriter(path, upstream="http://up.example") as writer:
        for item in items:
            writer.append(item)


def test_codec_round_trips_every_field(tmp_path):
    path = tmp_path / "a.cassette"
    items = [_item(1, b"\x00\xffbinary"), _item(2, b"", session_id=None)]
    _write(path, items)
    with open_cassette(path) as cassette:
        assert cassette.header.format == FORMAT_NAME
        assert cassette.header.version == FORMAT_VERSION
        assert cassette.header.upstream == "http://up.example"
        assert [cassette.load(e) for e in cassette.entries] == items
        first = cassette.entries[0]
        assert (first.request_size, first.response_size, first.status) == (46, 8, 200)
        assert cassette.torn_tail is None


def test_bodies_are_stored_as_raw_bin_not_base64(tmp_path):
    path = tmp_path / "a.cassette"
    body = os.urandom(1000)
    _write(path, [_item(1, body)])
    assert body in path.read_bytes()


def test_golden_v1_is_upgraded_on_read():
    with open_cassette(FIXTURES / "golden-v1.cassette") as cassette:
        assert cassette.version == 1
        entries = cassette.entries
        assert [e.seq for e in entries] == [1, 2, 3]
        assert entries[1].action_type == "goto"  # derived by the v1 -> v2 step
        assert entries[1].user == "user_123"
        assert entries[1].duration == 0.0
        image = cassette.load(entries[2])
    assert image.response.body == golden.PNG
    assert image.request.headers == (("Authorization", golden.AUTH),)


def test_golden_v2_loads():
    with open_cassette(FIXTURES / "golden-v2.cassette") as cassette:
        assert cassette.version == 2
        items = list(cassette.interactions())
    assert [i.action_type for i in items] == [None, "goto", None]
    assert items[0].session_id == "sess_golden"
    assert items[2].response.body == golden.PNG
    assert items[1].duration == 0.25


def test_golden_v3_loads():
    with open_cassette(FIXTURES / "golden-v3.cassette") as cassette:
        assert cassette.version == 3 == FORMAT_VERSION
        items = list(cassette.interactions())
        assert cassette.gaps == () and cassette.torn_tail is None
    with open_cassette(FIXTURES / "golden-v2.cassette") as old:
        assert list(old.interactions()) == items


def test_goldens_are_what_the_generator_writes():
    assert (FIXTURES / "golden-v1.cassette").read_bytes() == golden.v1_bytes()
    assert (FIXTURES / "golden-v2.cassette").read_bytes() == golden.v2_bytes()
    assert (FIXTURES / "golden-v3.cassette").read_bytes() == golden.v3_bytes()


def test_newer_format_says_upgrade_capture_replay(tmp_path):
    path = tmp_path / "future.cassette"
    header = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION + 1,
        "created_at": 0.0,
        "tool_version": "9",
        "upstream": "x",
    }
    path.write_bytes(msgpack.packb(header))
    with pytest.raises(CassetteVersionError, match="upgrade capture-replay") as info:
        open_cassette(path)
    assert info.value.version == FORMAT_VERSION + 1


@pytest.mark.parametrize(
    "content",
    [
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(64),
        json.dumps({"format": FORMAT_NAME, "version": 2}).encode(),
        bytes(range(256)) * 4,
        b"",
        msgpack.packb({"format": "something-else", "version": 1}),
    ],
    ids=["png", "json", "random", "empty", "other-msgpack"],
)
def test_foreign_files_are_not_cassettes(tmp_path, content):
    path = tmp_path / "foreign"
    path.write_bytes(content)
    with pytest.raises(NotACassetteError, match="not a capture-replay cassette"):
        open_cassette(path)


def test_truncated_header_is_corrupt(tmp_path):
    path = tmp_path / "a.cassette"
    _write(path, [])
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 3])
    with pytest.raises(CorruptCassetteError, match="truncated"):
        open_cassette(path)


def test_torn_tail_at_every_offset_keeps_whole_records_and_repair_cuts_it(tmp_path):
    path = tmp_path / "a.cassette"
    items = [_item(1, b"one"), _item(2, b"two" * 10), _item(3, b"three" * 7)]
    _write(path, items)
    data = path.read_bytes()
    with open_cassette(path) as cassette:
        last = cassette.entries[-1]
    assert last.offset + last.length == len(data)
    torn = tmp_path / "torn.cassette"
    for cut in range(last.offset + 1, len(data)):
        torn.write_bytes(data[:cut])
        with open_cassette(torn) as cassette:
            assert [cassette.load(e) for e in cassette.entries] == items[:2], cut
            assert cassette.torn_tail is not None
            assert (cassette.torn_tail.offset, cassette.torn_tail.size) == (
                last.offset,
                cut - last.offset,
            )
    report = repair_cassette(torn)
    assert (report.kept, report.cut_bytes) == (2, len(data) - 1 - last.offset)
    assert torn.read_bytes() == data[: last.offset]
    assert repair_cassette(torn).cut_bytes == 0
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_garbage_after_records_is_reported_as_torn(tmp_path):
    path = tmp_path / "a.cassette"
    _write(path, [_item(1)])
    with open(path, "ab") as f:
        f.write(b"\xc1garbage")
    with open_cassette(path) as cassette:
        assert len(cassette.entries) == 1
        assert cassette.torn_tail is not None and "undecodable" in cassette.torn_tail.reason
        assert cassette.gaps == ()


def test_writer_refuses_existing_and_appends_continuing_sequence(tmp_path):
    path = tmp_path / "a.cassette"
    _write(path, [_item(1)])
    with pytest.raises(CassetteExistsError, match="already exists"):
        CassetteWriter(path, upstream="u")
    with CassetteWriter(path, upstream="u", mode=WriteMode.APPEND) as writer:
        assert writer.next_seq() == 2
        writer.append(_item(2))
    with open_cassette(path) as cassette:
        assert [e.seq for e in cassette.entries] == [1, 2]


def test_append_after_torn_tail_is_refused(tmp_path):
    path = tmp_path / "a.cassette"
    _write(path, [_item(1), _item(2)])
    path.write_bytes(path.read_bytes()[:-2])
    with pytest.raises(TornCassetteError, match="repair"):
        CassetteWriter(path, upstream="u", mode=WriteMode.APPEND)


def test_append_to_v1_file_upgrades_it_first(tmp_path):
    path = tmp_path / "old.cassette"
    path.write_bytes((FIXTURES / "golden-v1.cassette").read_bytes())
    with CassetteWriter(path, upstream="u", mode=WriteMode.APPEND) as writer:
        writer.append(_item(writer.next_seq()))
    with open_cassette(path) as cassette:
        assert cassette.version == FORMAT_VERSION
        assert [e.seq for e in cassette.entries] == [1, 2, 3, 4]
        assert cassette.load(cassette.entries[2]).response.body == golden.PNG


def test_concurrent_appends_from_threads_never_interleave(tmp_path):
    path = tmp_path / "a.cassette"
    with CassetteWriter(path, upstream="u") as writer:

        def work() -> None:
            for _ in range(50):
                writer.append(_item(writer.next_seq(), os.urandom(3000)))

        threads = [threading.Thread(target=work) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    with open_cassette(path) as cassette:
        assert cassette.torn_tail is None
        assert sorted(e.seq for e in cassette.entries) == list(range(1, 401))


def test_a_10000_exchange_45mb_cassette_opens_fast_without_loading_bodies(tmp_path):
    path = tmp_path / "big.cassette"
    body = os.urandom(4400)
    base = _item(1, body)
    with CassetteWriter(path, upstream="u") as writer:
        for seq in range(1, 10_001):
            writer.append(dataclasses.replace(base, seq=seq))
    assert path.stat().st_size >= 45_000_000
    timings = []
    for _ in range(3):
        started = time.perf_counter()
        with open_cassette(path) as cassette:
            assert len(cassette.entries) == 10_000
        timings.append(time.perf_counter() - started)
    assert min(timings) <= 0.25, timings
    tracemalloc.start()
    try:
        with open_cassette(path):
            pass
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20_000_000, peak  # the bodies alone are 44 MB
    with open_cassette(path) as cassette:
        assert cassette.load(cassette.entries[9_999]).response.body == body


def test_request_body_reads_only_the_request(tmp_path):
    path = tmp_path / "a.cassette"
    _write(path, [_item(1, b"R" * 300_000), _item(2, b"x")])
    with open_cassette(path) as cassette:
        first = cassette.entries[0]
        assert cassette.request_body(first) == cassette.load(first).request.body
    with open_cassette(FIXTURES / "golden-v1.cassette") as old:
        assert old.request_body(old.entries[1]).startswith(b'{"type":"goto"')


def _nine(path: Path) -> tuple[bytes, list[IndexEntry], list[Interaction]]:
    items = [_item(seq, bytes([seq]) * (40 * seq)) for seq in range(1, 10)]
    _write(path, items)
    with open_cassette(path) as cassette:
        return path.read_bytes(), list(cassette.entries), items


def test_any_damaged_byte_in_a_middle_record_loses_that_record_only(tmp_path):
    path = tmp_path / "a.cassette"
    data, entries, items = _nine(path)
    third = entries[2]
    damaged = tmp_path / "damaged.cassette"
    for at in range(third.offset, third.offset + third.length):
        bad = bytearray(data)
        bad[at] ^= 0x5A
        damaged.write_bytes(bytes(bad))
        with pytest.raises(DamagedCassetteError, match="between records #2 and #4") as info:
            open_cassette(damaged)
        assert info.value.offset == third.offset
        with open_cassette(damaged, allow_damage=True) as cassette:
            assert [e.seq for e in cassette.entries] == [1, 2, 4, 5, 6, 7, 8, 9], at
            assert cassette.gaps == (
                Gap(third.offset, third.length, cassette.gaps[0].reason, 2, 4),
            ), at
            assert cassette.torn_tail is None
            assert [cassette.load(e) for e in cassette.entries] == items[:2] + items[3:]


def test_repair_keeps_every_whole_record_and_the_original_as_bak(tmp_path):
    path = tmp_path / "a.cassette"
    data, entries, items = _nine(path)
    bad = bytearray(data)
    bad[entries[2].offset + entries[2].length - 5] ^= 0xFF  # in record 3's answer body
    bad[entries[6].offset] = 0  # record 7's sync marker
    torn = bytes(bad) + data[entries[8].offset : entries[8].offset + 30]  # and a torn tail
    path.write_bytes(torn)
    report = repair_cassette(path)
    assert report.kept == 7
    assert report.cut_bytes == entries[2].length + entries[6].length + 30
    assert [(g.after_seq, g.before_seq) for g in report.gaps] == [(2, 4), (6, 8)]
    assert report.torn_tail is not None and report.torn_tail.size == 30
    assert report.backup == tmp_path / "a.cassette.bak"
    assert report.backup.read_bytes() == torn
    with open_cassette(path) as cassette:
        kept = [cassette.load(e) for e in cassette.entries]
        assert cassette.gaps == () and cassette.torn_tail is None
    assert kept == [items[i] for i in (0, 1, 3, 4, 5, 7, 8)]
    again = repair_cassette(path)
    assert (again.kept, again.cut_bytes, again.backup) == (7, 0, None)
    path.write_bytes(torn)
    second = repair_cassette(path, backup=False)
    assert second.backup is None and second.kept == 7
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.cassette", "a.cassette.bak"]
    path.write_bytes(torn)
    assert repair_cassette(path).backup == tmp_path / "a.cassette.bak.1"


def test_damaged_v2_record_is_skipped_and_the_next_found_again(tmp_path):
    data = (FIXTURES / "golden-v2.cassette").read_bytes()
    with open_cassette(FIXTURES / "golden-v2.cassette") as cassette:
        second = cassette.entries[1]
    bad = bytearray(data)
    bad[second.offset] = 0xC1  # the record's array header: msgpack's never-used byte
    path = tmp_path / "old.cassette"
    path.write_bytes(bytes(bad))
    with open_cassette(path, allow_damage=True) as cassette:
        assert [e.seq for e in cassette.entries] == [1, 3]
        (gap,) = cassette.gaps
        assert (gap.offset, gap.size, gap.after_seq, gap.before_seq) == (
            second.offset,
            second.length,
            1,
            3,
        )
    assert repair_cassette(path).kept == 2


def _raw_record(index_changes: dict[str, object]) -> bytes:
    record = msgpack.unpackb(encode_record(_item(2)), raw=False)
    record[0].update(index_changes)
    return frame(msgpack.packb(record, use_bin_type=True))


@pytest.mark.parametrize(
    "changes",
    [
        {"start": float("nan")},
        {"duration": float("inf")},
        {"start": float("-inf")},
        {"seq": 2**63},
        {"request_size": 2**64 - 1},
        {"status": "200"},
        {"status": True},
        {"method": 5},
        {"session_id": b"sess"},
        {"start": 1e300},
    ],
    ids=repr,
)
def test_a_record_with_a_bad_index_is_damage_not_a_traceback(tmp_path, changes):
    path = tmp_path / "a.cassette"
    _write(path, [_item(1)])
    with open(path, "ab") as f:
        f.write(_raw_record(changes))
        f.write(encode_interaction(_item(3)))
    with pytest.raises(DamagedCassetteError, match="between records #1 and #3"):
        open_cassette(path)
    with open_cassette(path, allow_damage=True) as cassette:
        assert [e.seq for e in cassette.entries] == [1, 3]
        assert "invalid" in cassette.gaps[0].reason


def test_append_refuses_a_damaged_cassette(tmp_path):
    path = tmp_path / "a.cassette"
    data, entries, _ = _nine(path)
    bad = bytearray(data)
    bad[entries[4].offset + 20] ^= 1
    path.write_bytes(bytes(bad))
    with pytest.raises(DamagedCassetteError, match="repair"):
        CassetteWriter(path, upstream="u", mode=WriteMode.APPEND)


def test_a_v2_record_with_a_nan_in_its_index_is_skipped(tmp_path):
    header = msgpack.packb(
        {
            "format": FORMAT_NAME,
            "version": 2,
            "created_at": 0.0,
            "tool_version": "0.1.0",
            "upstream": "u",
        }
    )
    bad = msgpack.unpackb(encode_record(_item(2)), raw=False)
    bad[0]["start"] = float("nan")
    path = tmp_path / "old.cassette"
    path.write_bytes(
        header
        + encode_record(_item(1))
        + msgpack.packb(bad, use_bin_type=True)
        + encode_record(_item(3, b"x" * 3_000_000))
    )
    with open_cassette(path, allow_damage=True) as cassette:
        assert [e.seq for e in cassette.entries] == [1, 3]
        assert cassette.gaps[0].after_seq == 1 and "invalid 'start'" in cassette.gaps[0].reason
        assert cassette.load(cassette.entries[1]).response.body == b"x" * 3_000_000


def test_random_damage_never_loses_an_untouched_record(tmp_path):
    import random

    path = tmp_path / "a.cassette"
    data, entries, _ = _nine(path)
    spans = {e.seq: range(e.offset, e.offset + e.length) for e in entries}
    rng = random.Random(10)
    damaged = tmp_path / "damaged.cassette"
    for _ in range(300):
        bad = bytearray(data)
        hit = sorted(rng.sample(range(entries[0].offset, len(data)), rng.randint(1, 4)))
        for at in hit:
            bad[at] = rng.randrange(256) if bad[at] else 1
        cut = rng.choice([len(bad), rng.randrange(entries[0].offset, len(bad) + 1)])
        damaged.write_bytes(bytes(bad[:cut]))
        untouched = {
            seq
            for seq, span in spans.items()
            if span.stop <= cut and not any(at in span for at in hit)
        }
        with open_cassette(damaged, allow_damage=True) as cassette:
            found = {e.seq for e in cassette.entries}
            assert untouched <= found, (hit, cut)
            for entry in cassette.entries:
                cassette.load(entry)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda r: r[1].update(request_headers=[[1, 2]]),
        lambda r: r[1].update(response_headers="x"),
        lambda r: r.__setitem__(3, "not bytes"),
        lambda r: r.append(b"extra"),
    ],
    ids=["header-types", "headers-not-a-list", "body-not-binary", "five-items"],
)
def test_a_record_with_bad_meta_or_bodies_is_damage_at_open(tmp_path, mangle):
    path = tmp_path / "a.cassette"
    _write(path, [_item(1)])
    record = msgpack.unpackb(encode_record(_item(2)), raw=False)
    mangle(record)
    with open(path, "ab") as f:
        f.write(frame(msgpack.packb(record, use_bin_type=True)))
        f.write(encode_interaction(_item(3)))
    with open_cassette(path, allow_damage=True) as cassette:
        assert [e.seq for e in cassette.entries] == [1, 3]
        assert [cassette.load(e).seq for e in cassette.entries] == [1, 3]

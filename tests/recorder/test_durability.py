"""Nothing recorded is lost behind the writer's back: two real recorders on one cassette (the
second is refused, naming the first's pid), a cassette deleted or replaced while recording, a
full disk (a real 64 KiB tmpfs; where mounting is impossible, a file-size limit in a child
process), and `serve --cassette` refusing a damaged cassette."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import msgpack
import pytest

from recorder.cassette import CassetteWriter, WriteMode, open_cassette, repair_cassette
from recorder.codec import encode_interaction, encode_record, frame
from recorder.errors import (
    CassetteLockedError,
    CassetteReplacedError,
    CassetteWriteError,
)
from tests.recorder.builders import exchange
from tests.recorder.conftest import AUTH
from tests.recorder.test_process import ROOT, recorder_process

ITEM = exchange(1, 0, "POST", "/v1/sessions/sess_a/actions", b'{"type":"click"}', sid="sess_a")


def _item(seq: int, body: bytes = b"") -> object:
    return dataclasses.replace(
        ITEM, seq=seq, response=dataclasses.replace(ITEM.response, body=body)
    )


# -- the lock --------------------------------------------------------------------------------------


def test_a_second_writer_is_refused_with_the_holders_pid_and_nothing_is_truncated(tmp_path):
    path = tmp_path / "a.cassette"
    with CassetteWriter(path, upstream="u") as writer:
        writer.append(_item(1))
        size = path.stat().st_size
        for mode in (WriteMode.APPEND, WriteMode.OVERWRITE):
            with pytest.raises(CassetteLockedError, match=f"pid {os.getpid()}") as info:
                CassetteWriter(path, upstream="u", mode=mode)
            assert info.value.pid == os.getpid()
        with pytest.raises(CassetteLockedError):
            repair_cassette(path)
        assert path.stat().st_size == size
        writer.append(_item(2))
    assert not (tmp_path / "a.cassette.lock").exists()
    with CassetteWriter(path, upstream="u", mode=WriteMode.APPEND) as again:
        again.append(_item(again.next_seq()))
    with open_cassette(path) as cassette:
        assert [e.seq for e in cassette.entries] == [1, 2, 3]


async def _record_cli(*args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "mock_server.cli",
        "record",
        *args,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode is not None
    return proc.returncode, err.decode()


async def test_two_real_recorders_the_second_is_refused_naming_the_first(upstream, cassette_path):
    async with recorder_process(upstream.url, cassette_path) as (first, url):
        for extra in ("--append", "--overwrite"):
            code, err = await _record_cli(
                "--upstream", upstream.url, "--cassette", str(cassette_path), "--port", "0", extra
            )
            assert code == 1, err
            (line,) = err.strip().splitlines()
            assert str(cassette_path) in line and f"pid {first.pid}" in line, line
        async with aiohttp.ClientSession() as client:
            for i in range(3):
                async with client.get(f"{url}/v1/sessions/s{i}", headers=AUTH) as resp:
                    assert resp.status == 200
                    await resp.read()
        first.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(first.wait(), 20) == 0
    with open_cassette(cassette_path) as cassette:
        assert [e.seq for e in cassette.entries] == [1, 2, 3]
        assert cassette.torn_tail is None


# -- a cassette deleted or replaced under the writer ---------------------------------------------


def test_a_deleted_cassette_stops_every_later_append(tmp_path):
    path = tmp_path / "a.cassette"
    with CassetteWriter(path, upstream="u") as writer:
        writer.append(_item(1))
        path.unlink()
        for seq in (2, 3):
            with pytest.raises(CassetteReplacedError, match="was deleted while recording") as info:
                writer.append(_item(seq))
            assert info.value.deleted and isinstance(info.value, CassetteWriteError)
        assert writer.records_written == 1
    assert not path.exists()


def test_a_replaced_cassette_is_not_written_into(tmp_path):
    path = tmp_path / "a.cassette"
    other = tmp_path / "other.cassette"
    with CassetteWriter(other, upstream="u") as writer:
        writer.append(_item(7))
    with CassetteWriter(path, upstream="u") as writer:
        writer.append(_item(1))
        os.replace(other, path)
        with pytest.raises(CassetteReplacedError, match="replaced by another file") as info:
            writer.append(_item(2))
        assert not info.value.deleted
    with open_cassette(path) as cassette:
        assert [e.seq for e in cassette.entries] == [7]


# -- a full disk ---------------------------------------------------------------------------------


@contextlib.contextmanager
def small_filesystem(where: Path) -> Iterator[Path | None]:
    """A mounted 64 KiB tmpfs, or None where this process may not mount one."""
    where.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(where)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        yield None
        return
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], check=True)


def test_a_full_disk_rolls_the_append_back_and_later_appends_succeed(tmp_path):
    with small_filesystem(tmp_path / "small") as folder:
        if folder is None:  # no mount here: the same guarantees under a file-size limit
            _full_disk_by_file_size_limit(tmp_path)
            return
        filler = folder / "filler"
        filler.write_bytes(bytes(32 * 1024))
        path = folder / "a.cassette"
        body = bytes(range(256)) * 16  # 4 KiB a record
        with CassetteWriter(path, upstream="u") as writer:
            written = 0
            with pytest.raises(CassetteWriteError, match="No space left on device") as info:
                for seq in range(1, 100):
                    writer.append(_item(seq, body))
                    written += 1
            assert info.value.errno == errno.ENOSPC and info.value.rolled_back
            assert str(path) in str(info.value) and 0 < written < 16
            with open_cassette(path) as cassette:  # ends with its last whole record
                last = cassette.entries[-1]
                assert len(cassette.entries) == written and cassette.torn_tail is None
                assert path.stat().st_size == last.offset + last.length
            with pytest.raises(CassetteWriteError):
                writer.append(_item(100, body))  # still full: refused again, rolled back
            filler.unlink()  # space comes back
            writer.append(_item(101, body))
            writer.append(_item(102, body))
        with open_cassette(path) as cassette:
            assert [e.seq for e in cassette.entries] == [*range(1, written + 1), 101, 102]
            assert cassette.torn_tail is None and cassette.gaps == ()
            assert cassette.load(cassette.entries[-1]).response.body == body


_FSIZE_CHILD = """
import json, resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
from recorder.cassette import CassetteWriter, open_cassette
from recorder.errors import CassetteWriteError
from tests.recorder.test_durability import _item
path, limit = sys.argv[1], int(sys.argv[2])
soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
body = bytes(range(256)) * 16
out = {"written": 0}
with CassetteWriter(path, upstream="u") as writer:
    try:
        for seq in range(1, 100):
            writer.append(_item(seq, body))
            out["written"] += 1
    except CassetteWriteError as err:
        out["errno"], out["rolled_back"] = err.errno, err.rolled_back
    with open_cassette(path) as c:
        out["whole"] = len(c.entries)
        out["torn"] = c.torn_tail is not None
    resource.setrlimit(resource.RLIMIT_FSIZE, (hard, hard))
    writer.append(_item(1000, body))
with open_cassette(path) as c:
    out["after"] = [e.seq for e in c.entries][-1]
    out["torn_after"] = c.torn_tail is not None
print(json.dumps(out))
"""


def _full_disk_by_file_size_limit(tmp_path: Path) -> None:
    """Where no filesystem can be mounted: RLIMIT_FSIZE in a child makes writes fail (EFBIG)."""
    path = tmp_path / "limited.cassette"
    run = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_FSIZE_CHILD), str(path), str(20_000)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    out = json.loads(run.stdout)
    assert out["errno"] == errno.EFBIG and out["rolled_back"]
    assert out["whole"] == out["written"] > 0 and not out["torn"]
    assert out["after"] == 1000 and not out["torn_after"]


def test_a_file_size_limit_rolls_the_append_back_too(tmp_path):
    _full_disk_by_file_size_limit(tmp_path)


# -- serve refuses a damaged cassette -------------------------------------------------------------


@pytest.mark.parametrize("damage", ["flipped-byte", "nan-start"])
def test_serve_refuses_a_damaged_cassette_with_one_line(tmp_path, damage):
    path = tmp_path / "d.cassette"
    with CassetteWriter(path, upstream="u") as writer:
        for seq in (1, 2):
            writer.append(_item(seq))
        if damage == "nan-start":
            record = msgpack.unpackb(encode_record(_item(3)), raw=False)
            record[0]["start"] = float("nan")
            with open(path, "ab") as f:
                f.write(frame(msgpack.packb(record, use_bin_type=True)))
                f.write(encode_interaction(_item(4)))
    if damage == "flipped-byte":
        with open_cassette(path) as cassette:
            first = cassette.entries[0]
        data = bytearray(path.read_bytes())
        data[first.offset + first.length - 3] ^= 0x10
        path.write_bytes(bytes(data))
    run = subprocess.run(
        [sys.executable, "-m", "mock_server.cli", "serve", "--cassette", str(path), "--port", "0"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 1
    (line,) = run.stderr.strip().splitlines()
    where = "before record #2 (the first)" if damage == "flipped-byte" else "records #2 and #4"
    assert line.startswith(f"Error: {path}: damaged: ") and where in line, line


def test_a_repair_that_cannot_write_leaves_the_original_and_no_backup(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    path = folder / "a.cassette"
    with CassetteWriter(path, upstream="u") as writer:
        writer.append(_item(1))
    with open(path, "ab") as f:
        f.write(b"torn")
    before = path.read_bytes()
    with small_filesystem(tmp_path / "full") as small:
        if small is None:  # no mount here: a read-only folder refuses the temp file instead
            folder.chmod(0o555)
            target = path
        else:
            target = small / "a.cassette"
            target.write_bytes(before)
            with contextlib.suppress(OSError), open(small / "filler", "wb") as f:
                while True:
                    f.write(bytes(1024))
                    f.flush()
        with pytest.raises(OSError):
            repair_cassette(target)
        assert target.read_bytes() == before
        assert sorted(p.name for p in target.parent.iterdir() if "a.cassette" in p.name) == [
            "a.cassette"
        ]

"""Unit tests of the on-disk block cache (no mocks except the injected ENOSPC)."""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import random
import signal
import sqlite3
import stat
import subprocess
import sys
import textwrap
import threading
import time
import zlib
from pathlib import Path

import pytest

from neurofs.io import durable
from neurofs.io.cache import BLOCK_SIZE, BlockCache, CacheError, in_use
from neurofs.io.cache import block_cache as block_cache_module
from neurofs.io.cache import directory as directory_module
from neurofs.io.cache.directory import CacheInUse
from neurofs.io.cache.entry import CHECK_UNIT
from neurofs.io.cache.index import BlockIndex
from tests.support.memory import cached_bytes
from tests.unavailable import unavailable
from tests.unit.cache_files import block_file, disk_usage


def payload(content: str, index: int, size: int = 100) -> bytes:
    """Deterministic, distinct bytes per block."""
    seed = f"{content}#{index}#".encode()
    return (seed * (size // len(seed) + 1))[:size]


def block_files(directory: Path) -> list[Path]:
    return sorted(p for p in (directory / "blocks").rglob("*") if p.is_file())


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    return tmp_path / "cache"


def test_block_size_is_one_mib() -> None:
    assert BLOCK_SIZE == 1024 * 1024


def test_round_trip_and_miss(cache_dir: Path) -> None:
    with BlockCache(cache_dir, 10_000) as cache:
        data = payload("dandi-blob:3f2a", 7)
        assert cache.put("dandi-blob:3f2a", 7, data)
        assert cache.get("dandi-blob:3f2a", 7) == data
        assert cache.get("dandi-blob:3f2a", 8) is None
        assert cache.get("dandi-blob:other", 7) is None
        assert cache.contains("dandi-blob:3f2a", 7)
        assert not cache.contains("dandi-blob:3f2a", 8)
        s = cache.stats()
        assert (s.hits, s.misses, s.stored_blocks, s.stored_bytes) == (1, 2, 1, len(data))
        assert disk_usage(cache_dir) == len(data)


def test_will_need_has_the_kernel_read_block_files_ahead(cache_dir: Path) -> None:
    """``will_need``: the named blocks' files are read into the page cache (by the kernel,
    not into the process); unknown keys and files gone meanwhile are skipped."""
    data = os.urandom(256 * 1024)
    with BlockCache(cache_dir, 10**7) as cache:
        for i in range(3):
            assert cache.put("c", i, data)
        files = [block_file(cache_dir, "c", i) for i in range(3)]
        assert all(files)
        os.sync()
        for f in files:
            assert f is not None
            fd = os.open(f, os.O_RDONLY)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            os.close(fd)
        assert files[2] is not None
        files[2].unlink()  # gone behind the cache's back
        if any(cached_bytes(f) for f in files[:2] if f is not None):
            pytest.fail("the page cache kept the files: cannot tell what will_need does")
        cache.will_need([("c", 0), ("c", 1), ("c", 2), ("c", 9)])
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if all(cached_bytes(f) == len(data) for f in files[:2] if f is not None):
                break
            time.sleep(0.01)
        assert [cached_bytes(f) for f in files[:2] if f is not None] == [len(data)] * 2
        assert cache.stats().verified_bytes == 0  # nothing read by the process


def test_empty_block_round_trips(cache_dir: Path) -> None:
    with BlockCache(cache_dir, 100) as cache:
        assert cache.put("c", 0, b"")
        assert cache.get("c", 0) == b""


def test_content_string_never_becomes_a_path(cache_dir: Path) -> None:
    nasty = ["../../../etc/passwd", "/abs/path", "a/b/../c", "", "nul\x00byte", "ünïcödé", "."]
    with BlockCache(cache_dir, 100_000) as cache:
        for i, content in enumerate(nasty):
            assert cache.put(content, i, payload(content, i))
        for i, content in enumerate(nasty):
            assert cache.get(content, i) == payload(content, i)
            path = block_file(cache_dir, content, i)
            assert path is not None
            assert path.resolve().is_relative_to((cache_dir / "blocks").resolve())
    assert not (cache_dir.parent / "etc").exists()


def test_invalid_keys_rejected(cache_dir: Path) -> None:
    with BlockCache(cache_dir, 100) as cache:
        with pytest.raises(ValueError):
            cache.put("c", -1, b"x")
        with pytest.raises(ValueError):
            cache.put("c", 2**63, b"x")
        with pytest.raises(ValueError):
            cache.put("lone \udc80 surrogate", 0, b"x")
        with pytest.raises(TypeError):
            cache.put(b"bytes", 0, b"x")  # type: ignore[arg-type]


def test_eviction_is_lru(cache_dir: Path) -> None:
    with BlockCache(cache_dir, 300) as cache:
        for name in "abc":
            assert cache.put(name, 0, payload(name, 0))
        assert cache.get("a", 0) is not None  # a is now most recent; b is the oldest
        assert cache.put("d", 0, payload("d", 0))
        assert [cache.contains(n, 0) for n in "abcd"] == [True, False, True, True]
        assert cache.contains("c", 0)  # contains() does not refresh recency
        assert cache.put("e", 0, payload("e", 0))
        assert [cache.contains(n, 0) for n in "acde"] == [True, False, True, True]
        s = cache.stats()
        assert (s.evictions, s.stored_bytes) == (2, 300)
        assert len(block_files(cache_dir)) == 3


def test_eviction_frees_enough_for_a_large_block(cache_dir: Path) -> None:
    with BlockCache(cache_dir, 300) as cache:
        for name in "abc":
            cache.put(name, 0, payload(name, 0))
        assert cache.put("big", 0, payload("big", 0, 150))
        # 150 bytes must go: two 100-byte blocks, oldest first.
        assert [cache.contains(n, 0) for n in "abc"] == [False, False, True]
        assert cache.stats().stored_bytes == 250


def test_lru_order_survives_restart(cache_dir: Path) -> None:
    with BlockCache(cache_dir, 300) as cache:
        for name in "abc":
            cache.put(name, 0, payload(name, 0))
        cache.get("a", 0)
    with BlockCache(cache_dir, 300) as cache:
        cache.put("d", 0, payload("d", 0))
        assert [cache.contains(n, 0) for n in "abcd"] == [True, False, True, True]


def test_block_larger_than_capacity_refused(cache_dir: Path) -> None:
    with BlockCache(cache_dir, 100) as cache:
        cache.put("small", 0, payload("small", 0, 50))
        assert not cache.put("big", 0, payload("big", 0, 101))
        assert cache.contains("small", 0)
        assert not cache.contains("big", 0)
        assert disk_usage(cache_dir) == 50


def test_restart_keeps_blocks(cache_dir: Path) -> None:
    with BlockCache(cache_dir, 10_000) as cache:
        for i in range(10):
            cache.put("blob", i, payload("blob", i))
    with BlockCache(cache_dir, 10_000) as cache:
        assert cache.stats().stored_blocks == 10
        for i in range(10):
            assert cache.get("blob", i) == payload("blob", i)


def test_restart_with_smaller_capacity_trims(cache_dir: Path) -> None:
    with BlockCache(cache_dir, 10_000) as cache:
        for i in range(10):
            cache.put("blob", i, payload("blob", i))
        cache.get("blob", 0)
    with BlockCache(cache_dir, 300) as cache:
        assert [i for i in range(10) if cache.contains("blob", i)] == [0, 8, 9]
        assert len(block_files(cache_dir)) == 3


def test_replacing_a_block(cache_dir: Path) -> None:
    with BlockCache(cache_dir, 1000) as cache:
        cache.put("c", 0, b"old bytes")
        old_path = block_file(cache_dir, "c", 0)
        assert cache.put("c", 0, b"new bytes!")
        assert cache.get("c", 0) == b"new bytes!"
        assert old_path is not None and not old_path.exists()
        assert cache.stats().stored_bytes == len(b"new bytes!")
        assert len(block_files(cache_dir)) == 1


def test_close_is_idempotent_and_final(cache_dir: Path) -> None:
    cache = BlockCache(cache_dir, 1000)
    cache.put("c", 0, b"x")
    cache.close()
    cache.close()
    assert cache.get("c", 0) is None
    assert not cache.put("c", 1, b"y")
    assert not cache.contains("c", 0)
    with BlockCache(cache_dir, 1000) as again:
        assert again.get("c", 0) == b"x"
        assert not again.contains("c", 1)


# ---------------------------------------------------------------------- shared directories
# Two BlockCache objects on one directory stand for two processes: flock(2) locks belong to
# open file descriptions, and SQLite's data_version sees any other connection's commits.


def _usage(directory: Path) -> int:
    with sqlite3.connect(directory / "index.sqlite3") as db:
        total = db.execute("SELECT bytes FROM usage").fetchone()[0]
        assert total == db.execute("SELECT COALESCE(SUM(size), 0) FROM blocks").fetchone()[0]
    db.close()
    return int(total)


def test_processes_share_a_directory(cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A second process joins a directory in use: it reads the rows recorded before it came,
    and takes in those recorded since when it misses them (no look-up at all while alone)."""
    monkeypatch.setattr(block_cache_module, "_JOIN_CHECK_INTERVAL", 0.0)
    with BlockCache(cache_dir, 10_000) as first:
        assert first.put("c", 0, b"zero")
        assert in_use(cache_dir)
        assert first.adopt([("c", 0), ("c", 9)]) == 0  # alone: nothing to look up
        assert not first.shared
        with BlockCache(cache_dir, 10_000) as second:
            assert first.shared and second.shared
            assert second.get("c", 0) == b"zero"
            assert first.put("c", 1, b"one")
            assert not second.contains("c", 1)
            assert second.adopt([("c", 1), ("c", 2)]) == 1
            assert second.get("c", 1) == b"one"
            assert second.put("c", 2, b"two")
            assert first.adopt([("c", 2)]) == 1
            assert first.get("c", 2) == b"two"
        assert in_use(cache_dir)
        assert _usage(cache_dir) == len(b"zeroonetwo")
    assert not in_use(cache_dir)
    with BlockCache(cache_dir, 10_000) as again:
        assert [again.get("c", i) for i in range(3)] == [b"zero", b"one", b"two"]


def test_a_block_another_process_dropped_is_a_miss_not_damage(
    cache_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with BlockCache(cache_dir, 10_000) as first:
        first.put("c", 0, b"zero")
        first.put("c", 1, b"one")
        with BlockCache(cache_dir, 10_000) as second:
            assert first.drop([("c", 0)]) == 1
            with caplog.at_level(logging.WARNING):
                assert second.get("c", 0) is None
                assert second.read("c", 1, 0, 2) == b"on"
            assert second.stats().corrupt_dropped == 0
            assert not second.contains("c", 0)
            assert "failed verification" not in caplog.text
            # Stored again by the second: the first finds it when it misses it.
            assert second.put("c", 0, b"ZERO")
            assert first.adopt([("c", 0)]) == 1
            assert first.get("c", 0) == b"ZERO"
        assert _usage(cache_dir) == len(b"ZEROone")


def test_each_process_evicts_against_the_shared_total(cache_dir: Path) -> None:
    """The capacity holds for the directory, not per process: a process that stores a block
    evicts its own least recent blocks until every process's blocks fit."""
    with BlockCache(cache_dir, 300) as first, BlockCache(cache_dir, 300) as second:
        first.put("a", 0, b"a" * 100)
        first.put("a", 1, b"a" * 100)
        second.put("b", 0, b"b" * 100)
        assert _usage(cache_dir) == 300
        second.put("b", 1, b"b" * 100)  # over by 100: the second evicts its own oldest
        assert _usage(cache_dir) == 300
        assert not second.contains("b", 0) and second.contains("b", 1)
        first.put("a", 2, b"a" * 100)  # over by 100: the first evicts its own oldest
        assert _usage(cache_dir) == 300
        assert first.stats().evictions == 1 and not first.contains("a", 0)
        assert second.get("b", 1) == b"b" * 100


def test_only_a_process_alone_repairs_the_directory(cache_dir: Path) -> None:
    """A file no row names may be a block another process is writing: a process that joins
    leaves it; one that opens the directory unused deletes it."""
    with BlockCache(cache_dir, 10_000) as first:
        first.put("c", 0, b"zero")
        path = block_file(cache_dir, "c", 0)
        assert path is not None
        in_flight = path.with_name(path.name[:-16] + "0" * 16)
        in_flight.write_bytes(b"being written")
        with BlockCache(cache_dir, 10_000) as second:
            assert second.get("c", 0) == b"zero"
        assert in_flight.exists()
    with BlockCache(cache_dir, 10_000) as alone:
        assert alone.get("c", 0) == b"zero"
    assert not in_flight.exists()


def test_a_directory_held_exclusively_is_refused_after_a_wait(
    cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An older neurofs holds its directory exclusively for its whole life: after waiting
    (as for a repair), a process gives up with CacheInUse."""
    BlockCache(cache_dir, 1000).close()
    monkeypatch.setattr(directory_module, "SHARE_WAIT", 0.3)
    fd = os.open(cache_dir / "lock", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        with pytest.raises(CacheInUse, match="does not share it"):
            BlockCache(cache_dir, 1000)
    finally:
        os.close(fd)
    BlockCache(cache_dir, 1000).close()


def test_directory_owned_by_someone_else_refused(cache_dir: Path) -> None:
    if os.geteuid() != 0:
        unavailable("needs root to chown (CI runs as root)")
    cache_dir.mkdir(mode=0o700)
    os.chown(cache_dir, 12345, 12345)
    with pytest.raises(CacheError, match="another user"):
        BlockCache(cache_dir, 1000)


# ---------------------------------------------------------------------- permissions


def test_modes_private_even_with_permissive_umask(cache_dir: Path) -> None:
    old = os.umask(0)
    try:
        with BlockCache(cache_dir, 1000) as cache:
            cache.put("c", 0, b"data")
            assert stat.S_IMODE(cache_dir.stat().st_mode) == 0o700
            for path in cache_dir.rglob("*"):
                expected = 0o700 if path.is_dir() else 0o600
                assert stat.S_IMODE(path.stat().st_mode) == expected, path
            assert (cache_dir / "index.sqlite3-wal").exists()
    finally:
        os.umask(old)


def test_loose_directory_and_index_tightened(cache_dir: Path) -> None:
    BlockCache(cache_dir, 1000).close()
    os.chmod(cache_dir, 0o755)
    os.chmod(cache_dir / "index.sqlite3", 0o644)
    with BlockCache(cache_dir, 1000):
        assert stat.S_IMODE(cache_dir.stat().st_mode) == 0o700
        assert stat.S_IMODE((cache_dir / "index.sqlite3").stat().st_mode) == 0o600


# ---------------------------------------------------------------------- recovery


def test_recovery_removes_temp_and_orphan_files(cache_dir: Path) -> None:
    with BlockCache(cache_dir, 1000) as cache:
        cache.put("c", 0, b"keep me")
        kept = block_file(cache_dir, "c", 0)
    assert kept is not None
    prefix = kept.parent
    tmp = prefix / ("tmp-" + "a" * 64 + ".0123456789abcdef")
    orphan = prefix / ("b" * 64 + ".0123456789abcdef")
    junk = cache_dir / "blocks" / "not-a-prefix"
    for path in (tmp, orphan, junk):
        path.write_bytes(b"half written")
    (cache_dir / "blocks" / "zz").mkdir()
    with BlockCache(cache_dir, 1000) as cache:
        assert block_files(cache_dir) == [kept]
        assert not (cache_dir / "blocks" / "zz").exists()
        assert cache.get("c", 0) == b"keep me"


def test_recovery_drops_rows_without_files(cache_dir: Path) -> None:
    with BlockCache(cache_dir, 1000) as cache:
        cache.put("c", 0, b"gone")
        cache.put("c", 1, b"stays")
        gone = block_file(cache_dir, "c", 0)
    assert gone is not None
    gone.unlink()
    with BlockCache(cache_dir, 1000) as cache:
        assert not cache.contains("c", 0)
        assert cache.get("c", 1) == b"stays"
        assert cache.stats().stored_bytes == len(b"stays")
    with sqlite3.connect(cache_dir / "index.sqlite3") as db:
        assert db.execute("SELECT COUNT(*) FROM blocks").fetchone() == (1,)


def test_truncated_file_dropped_at_open(cache_dir: Path) -> None:
    with BlockCache(cache_dir, 1000) as cache:
        cache.put("c", 0, payload("c", 0))
        path = block_file(cache_dir, "c", 0)
    assert path is not None
    os.truncate(path, 10)
    with BlockCache(cache_dir, 1000) as cache:
        assert not cache.contains("c", 0)
        assert not path.exists()


@pytest.mark.expect_log(r"block cache: block \d+ of .* failed verification; dropped")
def test_truncated_file_detected_by_get(cache_dir: Path) -> None:
    with BlockCache(cache_dir, 1000) as cache:
        cache.put("c", 0, payload("c", 0))
        path = block_file(cache_dir, "c", 0)
        assert path is not None
        os.truncate(path, 10)
        assert cache.get("c", 0) is None
        assert cache.stats().corrupt_dropped == 1
        assert not path.exists()


@pytest.mark.expect_log(r"block cache: block \d+ of .* failed verification; dropped")
def test_extended_file_detected_by_get(cache_dir: Path) -> None:
    with BlockCache(cache_dir, 1000) as cache:
        cache.put("c", 0, payload("c", 0))
        path = block_file(cache_dir, "c", 0)
        assert path is not None
        with open(path, "ab") as f:
            f.write(b"extra")
        assert cache.get("c", 0) is None
        assert cache.stats().corrupt_dropped == 1


@pytest.mark.parametrize("restart", [False, True])
@pytest.mark.expect_log(r"block cache: block \d+ of .* failed verification; dropped")
def test_flipped_byte_detected_and_refetchable(
    cache_dir: Path, restart: bool, caplog: pytest.LogCaptureFixture
) -> None:
    data = payload("c", 0, 5000)
    cache = BlockCache(cache_dir, 10_000)
    cache.put("c", 0, data)
    path = block_file(cache_dir, "c", 0)
    assert path is not None
    with open(path, "r+b") as f:
        f.seek(1234)
        byte = f.read(1)
        f.seek(1234)
        f.write(bytes([byte[0] ^ 0x01]))
    if restart:  # same size: survives the open-time check, caught by the crc at get
        cache.close()
        cache = BlockCache(cache_dir, 10_000)
        assert cache.contains("c", 0)
    with caplog.at_level(logging.WARNING, logger="neurofs.io.cache"):
        assert cache.get("c", 0) is None
    assert "failed verification" in caplog.text
    s = cache.stats()
    assert (s.corrupt_dropped, s.misses, s.hits, s.stored_blocks) == (1, 1, 0, 0)
    assert not cache.contains("c", 0)
    assert cache.put("c", 0, data)
    assert cache.get("c", 0) == data
    assert len(block_files(cache_dir)) == 1
    cache.close()


def test_missing_file_detected_by_get(cache_dir: Path) -> None:
    """A file gone (deleted by hand, or evicted by another process sharing the directory)
    is a miss, not damage; its row goes."""
    with BlockCache(cache_dir, 1000) as cache:
        cache.put("c", 0, b"x")
        path = block_file(cache_dir, "c", 0)
        assert path is not None
        path.unlink()
        assert cache.get("c", 0) is None
        assert cache.stats().corrupt_dropped == 0
        assert not cache.contains("c", 0)
        assert block_file(cache_dir, "c", 0) is None


@pytest.mark.expect_log(r"is unreadable \(.*\); starting it afresh")
def test_garbage_index_rebuilt_empty(cache_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    with BlockCache(cache_dir, 1000) as cache:
        cache.put("c", 0, b"x")
    for suffix in ("-wal", "-shm"):
        Path(f"{cache_dir / 'index.sqlite3'}{suffix}").unlink(missing_ok=True)
    (cache_dir / "index.sqlite3").write_bytes(b"this is not a database" * 100)
    with caplog.at_level(logging.WARNING), BlockCache(cache_dir, 1000) as cache:
        assert cache.stats().stored_blocks == 0
        assert block_files(cache_dir) == []  # the orphaned block file went too
        assert cache.put("c", 0, b"x")
    assert "unreadable" in caplog.text


def test_tampered_row_never_leads_outside(cache_dir: Path) -> None:
    outside = cache_dir.parent / "outside"
    outside.write_bytes(b"secret")
    with BlockCache(cache_dir, 1000) as cache:
        cache.put("c", 0, b"secret")
    with sqlite3.connect(cache_dir / "index.sqlite3") as db:
        db.execute("UPDATE blocks SET name = '../../outside'")
    with BlockCache(cache_dir, 1000) as cache:
        assert not cache.contains("c", 0)
        assert cache.get("c", 0) is None
    assert outside.read_bytes() == b"secret"


def test_kill_9_at_any_instant_leaves_a_consistent_cache(cache_dir: Path) -> None:
    """A writer process is killed at random moments; every reopen must find only blocks whose
    bytes are exactly right, no temp files, and index and files in agreement."""
    script = textwrap.dedent(
        """
        import random, sys
        from pathlib import Path
        from neurofs.io.cache import BlockCache
        def payload(content, index, size):
            seed = f"{content}#{index}#".encode()
            return (seed * (size // len(seed) + 1))[:size]
        cache = BlockCache(Path(sys.argv[1]), 40_000)
        rng = random.Random()
        print("ready", flush=True)
        while True:
            c, i = rng.choice("abcde"), rng.randrange(30)
            if cache.get(c, i) is None:
                cache.put(c, i, payload(c, i, 1000 + 97 * i))
            if rng.random() < 0.2:  # a group, as the fetcher stores a run of blocks
                run = range(i, min(i + 4, 30))
                cache.put_many(c, {j: payload(c, j, 1000 + 97 * j) for j in run})
            if rng.random() < 0.05:
                cache.clear()
        """
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    rng = random.Random(1234)
    for _ in range(6):
        proc = subprocess.Popen(
            [sys.executable, "-c", script, str(cache_dir)],
            stdout=subprocess.PIPE,
            env=env,
        )
        assert proc.stdout is not None
        assert proc.stdout.readline() == b"ready\n"
        time.sleep(rng.uniform(0.05, 0.4))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        with BlockCache(cache_dir, 40_000) as cache:
            assert not [p for p in block_files(cache_dir) if p.name.startswith("tmp-")]
            s = cache.stats()
            assert s.stored_bytes <= 40_000
            assert disk_usage(cache_dir) == s.stored_bytes
            assert len(block_files(cache_dir)) == s.stored_blocks
            for c in "abcde":
                for i in range(30):
                    got = cache.get(c, i)
                    assert got is None or got == payload(c, i, 1000 + 97 * i)
            assert cache.stats().corrupt_dropped == 0


# ---------------------------------------------------------------------- disk trouble


@pytest.mark.expect_log(r"block cache: cannot store block .*No space left on device")
def test_enospc_put_returns_false_and_stores_nothing(
    cache_dir: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def half_then_enospc(fd: int, data: bytes) -> None:
        os.write(fd, data[: len(data) // 2])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with BlockCache(cache_dir, 100_000) as cache:
        cache.put("c", 0, payload("c", 0))
        monkeypatch.setattr(durable, "_write_all", half_then_enospc)
        with caplog.at_level(logging.WARNING, logger="neurofs.io.cache"):
            assert cache.put("c", 1, payload("c", 1)) is False
            assert cache.put("c", 0, payload("c", 0, 300)) is False  # replacing fails too
        assert "No space left" in caplog.text
        assert caplog.text.count("cannot store") == 1  # rate-limited
        s = cache.stats()
        assert (s.write_failures, s.stored_blocks) == (2, 1)
        assert not cache.contains("c", 1)
        assert cache.get("c", 1) is None
        assert cache.get("c", 0) == payload("c", 0)  # the old block is untouched
        assert len(block_files(cache_dir)) == 1
        assert disk_usage(cache_dir) == 100
        monkeypatch.undo()
        assert cache.put("c", 1, payload("c", 1))
        assert cache.get("c", 1) == payload("c", 1)


@pytest.mark.expect_log(r"block cache: cannot store block .*Input/output error")
def test_fsync_failure_stores_nothing(cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def failing_fsync(fd: int) -> None:
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    with BlockCache(cache_dir, 100_000) as cache:
        monkeypatch.setattr(durable.os, "fsync", failing_fsync)
        assert not cache.put("c", 0, b"data")
        monkeypatch.undo()
        assert cache.stats().write_failures == 1
        assert block_files(cache_dir) == []


class _Syncs:
    """Counts fsyncs of files and of directories (the one patch of this layer: os.fsync)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.files = 0
        self.directories = 0
        real = os.fsync

        def counting(fd: int) -> None:
            if stat.S_ISDIR(os.fstat(fd).st_mode):
                self.directories += 1
            else:
                self.files += 1
            real(fd)

        monkeypatch.setattr(durable.os, "fsync", counting)


def test_a_group_of_blocks_costs_one_directory_fsync_and_one_transaction(
    cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Storing a run of blocks of one content: an fsync per file, one for their directory (not
    one each), one index transaction; every block is back after a reopen."""
    with BlockCache(cache_dir, 1_000_000) as cache:
        syncs = _Syncs(monkeypatch)
        records: list[int] = []
        real_record = BlockIndex.record

        def counting_record(index: BlockIndex, entries: list[object], *rest: object) -> None:
            records.append(len(entries))
            real_record(index, entries, *rest)  # type: ignore[arg-type]

        monkeypatch.setattr(BlockIndex, "record", counting_record)
        blocks = {i: payload("run", i, 5000) for i in range(17)}
        assert cache.put_many("run", blocks) == 17
        assert (syncs.files, syncs.directories, records) == (17, 1, [17])
        assert cache.put("other", 0, b"x")  # a single put: its file and its directory
        assert (syncs.files, syncs.directories, records) == (18, 2, [17, 1])
        monkeypatch.undo()
    other = block_file(cache_dir, "other", 0)
    assert other is not None
    run_directories = {p.parent for p in block_files(cache_dir) if p != other}
    assert len(run_directories) == 1  # the blocks of one content share a directory
    with BlockCache(cache_dir, 1_000_000) as cache:
        assert all(cache.get("run", i) == data for i, data in blocks.items())


@pytest.mark.expect_log(r"block cache: cannot store block .*Input/output error")
def test_a_failed_directory_fsync_records_none_of_its_group(
    cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A row is written only once its file's name is durable: if the directory's fsync
    fails, no block of the group is recorded and none of their files remains."""
    real = os.fsync

    def failing_on_directories(fd: int) -> None:
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        real(fd)

    with BlockCache(cache_dir, 1_000_000) as cache:
        monkeypatch.setattr(durable.os, "fsync", failing_on_directories)
        assert cache.put_many("run", {i: payload("run", i) for i in range(4)}) == 0
        monkeypatch.undo()
        s = cache.stats()
        assert (s.stored_blocks, s.write_failures) == (0, 4)
        assert block_files(cache_dir) == []
        assert all(cache.get("run", i) is None for i in range(4))


def test_a_group_larger_than_the_cache_keeps_its_last_blocks(cache_dir: Path) -> None:
    """As puts one by one would: each block of a group that does not fit evicts the oldest."""
    with BlockCache(cache_dir, 250) as cache:
        assert cache.put_many("run", {i: payload("run", i) for i in range(4)}) == 2
        assert [cache.contains("run", i) for i in range(4)] == [False, False, True, True]
        assert disk_usage(cache_dir) == 200


def test_removed_prefix_directory_recreated(cache_dir: Path) -> None:
    with BlockCache(cache_dir, 1000) as cache:
        cache.put("c", 0, b"x")
        path = block_file(cache_dir, "c", 0)
        assert path is not None
        path.unlink()
        path.parent.rmdir()
        assert cache.put("c", 0, b"x")
        assert cache.get("c", 0) == b"x"


# ---------------------------------------------------------------------- concurrency


def test_threads_put_and_get_concurrently(cache_dir: Path) -> None:
    keys = [(c, i) for c in ("x", "y/../z", "w") for i in range(20)]

    def size_of(key: tuple[str, int]) -> int:
        return 500 + 211 * key[1]

    errors: list[BaseException] = []
    gets: list[int] = []
    with BlockCache(cache_dir, 40_000) as cache:

        def worker(seed: int) -> None:
            rng = random.Random(seed)
            count = 0
            try:
                for _ in range(300):
                    key = rng.choice(keys)
                    expected = payload(*key, size_of(key))
                    action = rng.random()
                    if action < 0.1:
                        cache.put(*key, expected)
                        got = cache.get(*key)
                        count += 1
                        assert got is None or got == expected  # another put may evict it
                    elif action < 0.12:
                        cache.prune(3600)
                    else:
                        got = cache.get(*key)
                        count += 1
                        assert got is None or got == expected
                        if got is None:
                            cache.put(*key, expected)
            except BaseException as exc:
                errors.append(exc)
            gets.append(count)

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors[0]
        s = cache.stats()
        assert s.hits + s.misses == sum(gets)
        assert s.corrupt_dropped == 0 and s.write_failures == 0
        assert s.stored_bytes <= 40_000
        assert disk_usage(cache_dir) == s.stored_bytes
        assert len(block_files(cache_dir)) == s.stored_blocks
    with BlockCache(cache_dir, 40_000) as cache:
        assert cache.stats().stored_blocks == s.stored_blocks
        for key in keys:
            got = cache.get(*key)
            assert got is None or got == payload(*key, size_of(key))


def test_lookups_do_not_wait_for_an_index_commit(
    cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The event loop calls contains() (and stats()) while worker threads write the index:
    they must answer from memory, never queue behind a transaction held up by the disk."""
    committing = threading.Event()
    release = threading.Event()
    real_commit = BlockIndex._commit

    def stuck_commit(index: BlockIndex) -> None:
        committing.set()
        release.wait(60)
        real_commit(index)

    with BlockCache(cache_dir, 10_000) as cache:
        assert cache.put("a", 0, payload("a", 0))
        monkeypatch.setattr(BlockIndex, "_commit", stuck_commit)
        writer = threading.Thread(target=cache.put, args=("b", 0, payload("b", 0)))
        writer.start()
        try:
            assert committing.wait(10), "the put never reached its commit"
            answers: list[object] = []

            def look() -> None:
                answers.append(cache.contains("a", 0))
                answers.append(cache.contains("b", 0))
                answers.append(cache.stats().stored_blocks)
                answers.append(cache.get("a", 0))  # a hit too: reads do not queue behind it

            reader = threading.Thread(target=look, daemon=True)
            reader.start()
            reader.join(10)
            assert not reader.is_alive(), "a lookup waited for the index commit"
            assert answers == [True, False, 1, payload("a", 0)]
        finally:
            release.set()
            writer.join()
        assert cache.contains("b", 0)


# ---------------------------------------------------------------------- prune and clear


def test_prune_drops_only_old_blocks(cache_dir: Path) -> None:
    with BlockCache(cache_dir, 10_000) as cache:
        for i in range(5):
            cache.put("c", i, payload("c", i))
        time.sleep(0.3)
        cache.get("c", 1)
        cache.put("c", 9, payload("c", 9))
        assert cache.prune(0.2) == 4
        assert [i for i in (0, 1, 2, 3, 4, 9) if cache.contains("c", i)] == [1, 9]
        assert cache.prune(3600) == 0
        assert len(block_files(cache_dir)) == 2
    with BlockCache(cache_dir, 10_000) as cache:
        assert cache.stats().stored_blocks == 2


def test_clear_drops_everything(cache_dir: Path) -> None:
    with BlockCache(cache_dir, 10_000) as cache:
        for i in range(5):
            cache.put("c", i, payload("c", i))
        cache.clear()
        assert [i for i in range(5) if cache.contains("c", i)] == []
        assert cache.stats().evictions == 0
        assert cache.stats().stored_blocks == 0
        assert block_files(cache_dir) == []
    with BlockCache(cache_dir, 10_000) as cache:
        assert cache.stats().stored_blocks == 0


def test_a_bulk_stream_does_not_flush_hot_blocks(cache_dir: Path) -> None:
    # HDF5 metadata read back now and then must survive a large sequential read.
    with BlockCache(cache_dir, 1000) as cache:
        assert cache.put("meta", 0, payload("meta", 0))
        assert cache.get("meta", 0) is not None  # read back: protected
        for i in range(30):  # 3,000 bytes streamed through a 1,000-byte cache
            assert cache.put("stream", i, payload("stream", i))
        assert cache.contains("meta", 0)
        assert cache.stats().stored_bytes <= 1000


def test_protected_blocks_cannot_take_the_whole_cache(cache_dir: Path) -> None:
    with BlockCache(cache_dir, 1000) as cache:
        for i in range(10):
            cache.put("old", i, payload("old", i))
            cache.get("old", i)  # all protected: 1,000 bytes, more than the 80 % share
        for i in range(5):
            assert cache.put("new", i, payload("new", i))
        # The newest block still got in, and the oldest protected ones were demoted and went.
        assert cache.contains("new", 4) and not cache.contains("old", 0)


@pytest.mark.expect_log(r"block cache: block \d+ of .* failed verification; dropped")
def test_a_range_read_checks_only_its_units_and_catches_damage_in_them(cache_dir: Path) -> None:
    data = random.Random(5).randbytes(BLOCK_SIZE)
    with BlockCache(cache_dir, 4 * BLOCK_SIZE) as cache:
        cache.put("c", 0, data)
        path = block_file(cache_dir, "c", 0)
        assert path is not None
        start = 4 * CHECK_UNIT - 2048  # 4 KiB across the units 3 and 4
        assert cache.read("c", 0, start, start + 4096) == data[start : start + 4096]
        assert cache.stats().verified_bytes == 2 * CHECK_UNIT
        with open(path, "r+b") as f:  # damage unit 10
            f.seek(10 * CHECK_UNIT + 7)
            f.write(bytes([data[10 * CHECK_UNIT + 7] ^ 0xFF]))
        assert cache.read("c", 0, 0, 4096) == data[:4096]  # unit 0 is sound
        assert cache.read("c", 0, 10 * CHECK_UNIT, 10 * CHECK_UNIT + 10) is None
        assert cache.stats().corrupt_dropped == 1
        assert not cache.contains("c", 0)


def test_blocks_of_a_version_1_index_are_read_and_verified_whole(cache_dir: Path) -> None:
    """An index written before unit checksums existed keeps its blocks: they are verified
    with their one crc32, and a damaged one is still caught."""
    data = random.Random(6).randbytes(3 * CHECK_UNIT + 5)
    with BlockCache(cache_dir, 4 * BLOCK_SIZE) as cache:
        cache.put("c", 0, data)
        cache.put("c", 1, data[::-1])
    with sqlite3.connect(cache_dir / "index.sqlite3") as db:  # as version 1 wrote it
        rows = db.execute("SELECT content, idx, name, size, last_used FROM blocks").fetchall()
        db.execute("DROP TABLE blocks")
        db.execute(
            "CREATE TABLE blocks (content TEXT NOT NULL, idx INTEGER NOT NULL, name TEXT NOT"
            " NULL, size INTEGER NOT NULL, crc INTEGER NOT NULL, last_used REAL NOT NULL,"
            " PRIMARY KEY (content, idx)) WITHOUT ROWID"
        )
        for content, idx, name, size, used in rows:
            crc = zlib.crc32(data if idx == 0 else data[::-1])
            db.execute(
                "INSERT INTO blocks VALUES (?, ?, ?, ?, ?, ?)",
                (content, idx, name, size, crc, used),
            )
        db.execute("PRAGMA user_version = 1")
    db.close()
    with BlockCache(cache_dir, 4 * BLOCK_SIZE) as cache:
        assert cache.read("c", 0, 100, 200) == data[100:200]
        assert cache.stats().verified_bytes == len(data)  # the whole block, once per read
        assert cache.get("c", 1) == data[::-1]
    with BlockCache(cache_dir, 4 * BLOCK_SIZE) as cache:  # the migrated index opens again
        assert cache.get("c", 0) == data

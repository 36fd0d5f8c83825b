"""The block cache under trouble, through real mounts: full to its cap, on a full disk, and
with damaged files (flipped bytes, truncated, grown, deleted, a garbage index), both while
unmounted and while mounted. Every read is compared with the emulator's sample data."""

from __future__ import annotations

import contextlib
import errno
import os
import sqlite3
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from neurofs.io.cache import BLOCK_SIZE
from tests.mount.conftest import Emulator, Mount

from .conftest import Figures
from .groundtruth import MIB, Target, big_blob, read_range, zarr_files

pytestmark = pytest.mark.mount

READ = 256 * 1024  # the size of each verified read


@contextlib.contextmanager
def tiny_filesystem(path: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` at ``path``, unmounted afterwards (the tests run as root)."""
    path.mkdir()
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(path)], check=True
    )
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def start_with_cache_size(mount: Mount, size: str) -> Mount:
    mount.extra += ["--cache-size", size]
    mount.start()
    return mount


class Verifier:
    """Reads ranges through the mount and counts what came back right."""

    def __init__(self, mount: Mount) -> None:
        self.mount = mount
        self.reads = 0
        self.bytes_verified = 0
        self.errors: list[str] = []

    def read(self, target: Target, offset: int, size: int) -> bool:
        """True if the bytes came back right; raises on wrong bytes (never acceptable)."""
        data = read_range(self.mount / target.relpath, offset, size)
        assert data == target.expected(offset, offset + size), (
            f"wrong bytes: {target.relpath}@{offset}+{size}"
        )
        self.reads += 1
        self.bytes_verified += len(data)
        return True

    def read_span(self, target: Target, start: int, end: int) -> None:
        for offset in range(start, end, READ):
            self.read(target, offset, min(READ, end - offset))

    def read_whole(self, target: Target) -> None:
        self.read(target, 0, target.size)

    def figures(self, report: Figures) -> None:
        report.operations += self.reads
        report.bytes_verified += self.bytes_verified
        report.reader_errors += len(self.errors)


def blocks_usage(cache_dir: Path) -> int:
    """Bytes of every file under blocks/ (block files and files being written)."""
    total = 0
    for root, _dirs, files in os.walk(cache_dir / "blocks"):
        for name in files:
            with contextlib.suppress(FileNotFoundError):
                total += os.lstat(os.path.join(root, name)).st_size
    return total


def settles(predicate: Callable[[], bool], timeout: float = 60.0) -> bool:
    """Whether ``predicate`` becomes true within ``timeout`` (background read-ahead may
    still be storing blocks when the reads that started it have returned)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def block_files(cache_dir: Path) -> list[Path]:
    """The files of whole blocks recorded in the index (read-only, so also while a daemon
    uses it). Keys of block fragments (small random reads) carry a ``#`` suffix and are left
    out: whether a later read uses them depends on the access pattern, not on the damage."""
    db = sqlite3.connect(f"file:{cache_dir / 'index.sqlite3'}?mode=ro", uri=True)
    try:
        rows = db.execute("SELECT content, name FROM blocks").fetchall()
    finally:
        db.close()
    return sorted(cache_dir / "blocks" / name for content, name in rows if "#" not in content)


# ---------------------------------------------------------------------- at the cap


def test_cache_at_its_cap_keeps_working(make_mount, dandi_emulator: Emulator, report: Figures):
    """A cache 8 MiB small serves 48 MiB of reads and re-reads by evicting; the files under
    blocks/ never exceed the cap plus the blocks being written; a remount with a cache
    already full keeps working, and one with a smaller cap trims the cache at once."""
    cap = 8 * MIB
    # Blocks being written exist on disk before the eviction that makes room for them: at
    # most one per worker thread (trio's default limit of 40 threads).
    in_flight = 40 * BLOCK_SIZE
    mount = start_with_cache_size(make_mount(dandi_emulator, start=False), "8MiB")
    blob = big_blob()
    check = Verifier(mount)
    peak = [0]
    stop = threading.Event()

    def watch() -> None:
        while not stop.wait(0.02):
            peak[0] = max(peak[0], blocks_usage(mount.cache_dir))

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        check.read_span(blob, 0, 48 * MIB)
        for offset in range(0, 48 * MIB, 5 * MIB + 12345):  # evicted long ago: fetched again
            check.read(blob, offset, READ)
    finally:
        stop.set()
        watcher.join()
    stats = mount.stats()["cache"]
    assert stats["evictions"] > 0, stats
    assert stats["stored_bytes"] <= cap, stats
    assert peak[0] <= cap + in_flight, peak[0]
    assert settles(lambda: blocks_usage(mount.cache_dir) <= cap), blocks_usage(mount.cache_dir)

    # A cache full to its cap at mount: new reads evict old blocks.
    mount.remount()
    check.read_span(blob, 100 * MIB, 124 * MIB)
    check.read_span(blob, 0, 4 * MIB)
    stats = mount.stats()["cache"]
    assert stats["evictions"] > 0 and stats["stored_bytes"] <= cap, stats
    assert settles(lambda: blocks_usage(mount.cache_dir) <= cap), blocks_usage(mount.cache_dir)

    # A smaller cap at the next mount trims the cache before the first read.
    mount.stop()
    mount.extra[mount.extra.index("8MiB")] = "3MiB"
    mount.start()
    assert blocks_usage(mount.cache_dir) <= 3 * MIB
    check.read_span(blob, 100 * MIB, 108 * MIB)
    assert settles(lambda: blocks_usage(mount.cache_dir) <= 3 * MIB)
    check.figures(report)
    report.note = f"cap 8 MiB then 3 MiB; peak on disk {peak[0] / MIB:.1f} MiB"


# ---------------------------------------------------------------------- full disk


def _fill(directory: Path) -> Path:
    """Write a ballast file until the filesystem is full."""
    ballast = directory / "ballast"
    chunk = b"\0" * (256 * 1024)
    with open(ballast, "wb") as f:
        try:
            while True:
                f.write(chunk)
                f.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC, exc
    return ballast


@pytest.mark.expect_log(
    r"block cache: cannot store block .*(No space left on device|database or disk is full)",
    r"could not keep an answer for offline use: database or disk is full",
    r"block cache: cannot open the index .*database or disk is full",
)
def test_full_disk_gives_errors_or_right_bytes_never_corruption(
    make_mount, dandi_emulator: Emulator, tmp_path: Path, report: Figures
):
    """The cache on a 24 MiB filesystem, with a cap of 1 GiB: when the disk is full, reads
    still return the right bytes (served from memory, not stored) or an error, never wrong
    bytes; once space is freed, blocks are stored again; after a remount all read back."""
    blob = big_blob()
    with tiny_filesystem(tmp_path / "tiny", "24m") as tiny:
        mount = make_mount(dandi_emulator, start=False, cache_dir=tiny / "cache")
        start_with_cache_size(mount, "1GiB")
        check = Verifier(mount)
        check.read_span(blob, 0, 4 * MIB)
        ballast = _fill(tiny)

        errors_seen = 0
        for offset in range(8 * MIB, 40 * MIB, READ):  # every block is new: none can be stored
            try:
                check.read(blob, offset, READ)
            except OSError as exc:
                assert exc.errno in (errno.EIO, errno.ENOSPC), exc
                errors_seen += 1
        full = mount.stats()["cache"]
        assert full["write_failures"] > 0, full
        assert os.listdir(mount / "dandi/000001/draft")  # listings keep working

        # A mount started on the full disk works too (the index cannot even be opened: the
        # cache runs without its stored blocks, and keeps them for later).
        mount.remount()
        check.read_span(blob, 0, 4 * MIB)
        check.read_span(blob, 40 * MIB, 44 * MIB)

        ballast.unlink()
        mount.remount()
        check.read_span(blob, 0, 4 * MIB)
        kept = mount.stats()["cache"]
        assert kept["hits"] >= 4 and kept["corrupt_dropped"] == 0, kept  # from before the fill
        check.read_span(blob, 64 * MIB, 72 * MIB)
        freed = mount.stats()["cache"]
        assert freed["stored_blocks"] >= kept["stored_blocks"] + 8, (kept, freed)

        mount.remount()
        for start, end in ((0, 4 * MIB), (8 * MIB, 44 * MIB), (64 * MIB, 72 * MIB)):
            check.read_span(blob, start, end)
        again = mount.stats()["cache"]
        assert again["corrupt_dropped"] == 0, again
        assert again["hits"] >= 12, again  # the stored blocks came back from disk
        mount.stop()
    check.figures(report)
    report.reader_errors = errors_seen
    report.note = (
        f"24 MiB tmpfs: {full['write_failures']} blocks not stored while full, "
        f"{errors_seen} reads answered with an error, 0 wrong bytes"
    )


# ---------------------------------------------------------------------- damaged files


def _damage(files: list[Path]) -> dict[str, int]:
    """Flip a byte in, truncate, extend, delete or keep the files, in turn; return the counts
    of each."""
    done = {"flipped": 0, "truncated": 0, "grown": 0, "deleted": 0, "kept": 0}
    for i, path in enumerate(files):
        kind = tuple(done)[i % len(done)]
        if kind == "kept":
            pass
        elif kind == "flipped":
            with open(path, "r+b") as f:
                f.seek(os.path.getsize(path) // 2)
                byte = f.read(1)
                f.seek(-1, os.SEEK_CUR)
                f.write(bytes([byte[0] ^ 0x5A]))
        elif kind == "truncated":
            os.truncate(path, os.path.getsize(path) // 3)
        elif kind == "grown":
            with open(path, "ab") as f:
                f.write(b"garbage")
        else:
            path.unlink()
        done[kind] += 1
    return done


def _first_reads(check: Verifier) -> list[tuple[Target, int, int]]:
    """What the damage tests read, as spans: the last 12 MiB of the blob and 16 zarr chunks.
    Read-ahead cannot go past the end of a file, so the cache then holds exactly the blocks
    of these spans and the tests can tell how many damaged blocks will be read again."""
    blob = big_blob()
    chunks = [z for z in zarr_files() if z.size > 1000][:16]
    return [(blob, blob.size - 12 * MIB, blob.size)] + [(z, 0, z.size) for z in chunks]


def _read_all(check: Verifier, spans: list[tuple[Target, int, int]]) -> None:
    for target, start, end in spans:
        check.read_span(target, start, end)


@pytest.mark.expect_log(r"block cache: block \d+ of .* failed verification; dropped")
def test_damaged_blocks_while_unmounted_are_refetched(
    make_mount, dandi_emulator: Emulator, report: Figures
):
    mount = make_mount(dandi_emulator)
    check = Verifier(mount)
    spans = _first_reads(check)
    _read_all(check, spans)
    mount.stop()
    files = block_files(mount.cache_dir)
    assert len(files) >= 20
    damage = _damage(files)

    mount.start()
    dandi_emulator.reset()
    _read_all(check, spans)
    stats = mount.stats()["cache"]
    # Same-size damage passes the size check at open and is caught by the checksum on read;
    # wrong sizes and missing files are dropped when the cache opens.
    assert stats["corrupt_dropped"] == damage["flipped"], (damage, stats)
    assert len(dandi_emulator.data_requests()) > 0  # fetched again, not served damaged
    assert stats["hits"] > 0  # the sound blocks still came from disk
    check.figures(report)
    report.note = f"damaged while unmounted: {damage}; corrupt_dropped {stats['corrupt_dropped']}"


@pytest.mark.expect_log(r"block cache: block \d+ of .* failed verification; dropped")
def test_damaged_blocks_while_mounted_are_refetched(
    make_mount, dandi_emulator: Emulator, report: Figures
):
    mount = make_mount(dandi_emulator)
    check = Verifier(mount)
    spans = _first_reads(check)
    _read_all(check, spans)
    # A fresh daemon on the same cache: the blocks are on disk and not in its memory.
    mount.remount()
    damage = _damage(block_files(mount.cache_dir))
    _read_all(check, spans)
    stats = mount.stats()["cache"]
    # With the daemon running every kind of damage is caught on read: checksum or length. A
    # missing file is a miss, not damage (another process sharing the directory may have
    # evicted it); it is fetched again all the same.
    damaged = damage["flipped"] + damage["truncated"] + damage["grown"]
    assert stats["corrupt_dropped"] == damaged, (damage, stats)
    assert stats["misses"] >= damaged + damage["deleted"], (damage, stats)
    # Refetched blocks were stored again: a third daemon reads everything from disk, clean.
    mount.remount()
    dandi_emulator.reset()
    _read_all(check, spans)
    assert mount.stats()["cache"]["corrupt_dropped"] == 0
    assert dandi_emulator.data_requests() == []
    check.figures(report)
    report.note = f"damaged while mounted: {damage}; corrupt_dropped {stats['corrupt_dropped']}"


@pytest.mark.expect_log(
    r"is unreadable \(.*\); starting it afresh",
    r"responses\.sqlite is unreadable .*; starting it afresh",
)
def test_garbage_cache_index_is_rebuilt(make_mount, dandi_emulator: Emulator, report: Figures):
    """index.sqlite3 and responses.sqlite overwritten with garbage: the mount starts, the
    cache starts empty, every read is right."""
    mount = make_mount(dandi_emulator)
    check = Verifier(mount)
    spans = _first_reads(check)
    _read_all(check, spans)
    mount.stop()
    for name in ("index.sqlite3", "responses.sqlite"):
        for path in mount.cache_dir.glob(name + "*"):
            path.write_bytes(b"this is not a database " * 100)
    mount.start()
    _read_all(check, spans)
    stats = mount.stats()["cache"]
    assert stats["hits"] == 0 and stats["corrupt_dropped"] == 0, stats
    check.figures(report)
    report.note = "garbage index.sqlite3 and responses.sqlite: rebuilt empty"

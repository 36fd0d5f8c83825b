"""The on-disk block cache: remote bytes in fixed-size blocks, crash-safe, size-capped, LRU.

Blocks are keyed by ``(content, index)``: ``content`` is a content-identity string chosen by
the source ("dandi-blob:<id>", "dandi-zarr:<zarr>/<key>@<etag>", ...), equal strings meaning
equal bytes, so a block is fetched once across versions and mounts; ``index`` is the block
number within that content.

Layout of the cache directory (mode 0700, every file 0600)::

    lock                  flock()ed by the one process using the directory
    index.sqlite3         (+ -wal, -shm) the index: (content, idx) -> name, size, crc32, last_used
    blocks/<xx>/<sha256>.<nonce>        one file per block
    blocks/<xx>/tmp-<sha256>.<nonce>    a block being written (never referenced by the index)

``<sha256>`` hashes the content string and the index; the content string itself never becomes
a path (it is untrusted and may contain ``/`` or ``..``). ``<xx>`` is its first two hex digits,
spreading files over 256 directories that are created once, at open. ``<nonce>`` is random per
put, so replacing a block never overwrites a file another thread may be reading and verifying.

Invariants, true at every instant (so a kill -9 anywhere leaves a usable cache):

- A row in the index names a file whose bytes were fsynced, renamed into place and whose
  directory was fsynced before the row was written. Rows are deleted before their files.
- Every ``get`` checks length and crc32 against the row; a mismatch drops the block and is a
  miss, so damaged bytes on disk are never returned.
- Opening repairs whatever a crash left: temp files and files without a row are deleted, rows
  whose file is missing or has the wrong size are dropped, an unreadable index is rebuilt empty.
  An index that cannot be opened at all (a full or failing disk) is left alone with its blocks,
  and that process runs on an empty index in memory.

While running, the in-memory map ``self._entries`` is the authority (it mirrors the index and
holds LRU order), so a hit costs a dict lookup, one file read and a crc32. Recency is written
to the index in batches (on put, every ``_FLUSH_BATCH`` hits or ``_FLUSH_INTERVAL`` seconds,
and on close), so LRU order survives a clean restart exactly and a crash approximately.

Capacity: the recorded blocks total at most ``capacity_bytes``, except that pinned blocks are
never evicted and may push the total over it until they are unpinned, and blocks being written
(at most one per concurrent ``put``) occupy disk before the eviction that makes room for them.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import logging
import os
import re
import secrets
import shutil
import sqlite3
import stat
import threading
import time
import zlib
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from neurofs.errors import NeurofsError

log = logging.getLogger(__name__)

# 1 MiB blocks: the kernel asks FUSE for at most 128 KiB per read, and HTTP range requests
# cost a round trip each, so a block serves 8 kernel reads per request and sequential
# throughput is not latency-bound (the fetcher also merges neighbouring blocks into one
# request). Small enough that a scattered 4 KiB HDF5 metadata read wastes little bandwidth,
# it matches typical zarr chunk sizes (~1 MiB), and it keeps the file count of a 100 GiB cache
# at ~100k files and the per-block index row (~150 B in memory) negligible.
BLOCK_SIZE = 1024 * 1024
# At most this share of the capacity is kept for blocks that were read back (see
# _pick_victims_locked): the rest always has room for new blocks.
PROTECTED_SHARE = 0.8

Key = tuple[str, int]

_DB_NAME = "index.sqlite3"
_LOCK_NAME = "lock"
_BLOCKS_DIR = "blocks"
_TMP_PREFIX = "tmp-"
_SCHEMA_VERSION = 1
_PREFIXES = tuple(f"{i:02x}" for i in range(256))
_NAME_RE = re.compile(r"([0-9a-f]{2})/([0-9a-f]{64})\.[0-9a-f]{16}")
_FILE_RE = re.compile(r"[0-9a-f]{64}\.[0-9a-f]{16}")
_MAX_INDEX = 2**63 - 1  # SQLite INTEGER range
# Recency is flushed after this many hits or this many seconds, whichever comes first: one
# small transaction per batch instead of a database write per read.
_FLUSH_BATCH = 1024
_FLUSH_INTERVAL = 30.0
# Under ENOSPC every miss fails to store: warn once per interval, not once per block.
_WARN_INTERVAL = 60.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS blocks (
    content   TEXT    NOT NULL,
    idx       INTEGER NOT NULL,
    name      TEXT    NOT NULL,
    size      INTEGER NOT NULL,
    crc       INTEGER NOT NULL,
    last_used REAL    NOT NULL,
    PRIMARY KEY (content, idx)
) WITHOUT ROWID
"""


class CacheError(NeurofsError):
    """The cache directory cannot be used: another process holds it, or another user owns it."""


@dataclass(frozen=True, slots=True)
class CacheStats:
    """Counters since open, and the current size. ``evictions`` counts blocks dropped to stay
    under capacity (not ``clear``/``prune``); ``corrupt_dropped`` counts blocks that failed
    verification in ``get``; ``write_failures`` counts puts lost to disk or index errors."""

    hits: int
    misses: int
    evictions: int
    corrupt_dropped: int
    write_failures: int
    stored_bytes: int
    stored_blocks: int
    pinned_bytes: int
    capacity_bytes: int


@dataclass(frozen=True, slots=True)
class KindUsage:
    blocks: int
    bytes: int


@dataclass(frozen=True, slots=True)
class CacheSummary:
    """What is stored: totals, the oldest and newest use (seconds since the epoch, None when
    empty), and a breakdown by kind of content (the content string up to its first ``:``,
    e.g. ``dandi-blob``, ``dandi-zarr``, ``wk``, ``wk-raw``)."""

    stored_bytes: int
    stored_blocks: int
    oldest_use: float | None
    newest_use: float | None
    by_kind: dict[str, KindUsage]


def summarize(rows: Iterable[tuple[str, int, float]]) -> CacheSummary:
    """A summary of ``(content, size, last_used)`` rows."""
    total = count = 0
    oldest: float | None = None
    newest: float | None = None
    kinds: dict[str, list[int]] = {}
    for content, size, last_used in rows:
        total += size
        count += 1
        oldest = last_used if oldest is None else min(oldest, last_used)
        newest = last_used if newest is None else max(newest, last_used)
        usage = kinds.setdefault(content.split(":", 1)[0], [0, 0])
        usage[0] += 1
        usage[1] += size
    return CacheSummary(
        total,
        count,
        oldest,
        newest,
        {k: KindUsage(b, n) for k, (b, n) in sorted(kinds.items())},
    )


def read_summary(directory: Path) -> CacheSummary:
    """The summary of a cache directory's index, read-only: safe while a mount uses the
    cache (SQLite lets readers in beside its writer). Recency not yet flushed by that mount
    (at most ``_FLUSH_INTERVAL`` seconds of it) is not seen. Raises sqlite3.Error."""
    path = Path(directory) / _DB_NAME
    if not path.exists():
        return summarize([])
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = db.execute("SELECT content, size, last_used FROM blocks").fetchall()
    finally:
        db.close()
    return summarize(rows)


def in_use(directory: Path) -> bool:
    """Whether a process holds the cache directory (its lock is taken). Nothing is created."""
    try:
        fd = os.open(Path(directory) / _LOCK_NAME, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # also releases the lock if we took it
    return False


@dataclass(slots=True)
class _Entry:
    """One recorded block. A re-put creates a new object, so identity tells whether the entry a
    thread looked up is still the current one."""

    name: str  # path relative to blocks/
    size: int
    crc: int
    last_used: float  # wall-clock seconds, strictly increasing within a process
    # Read back at least once since it was stored (and not demoted since): "protected".
    protected: bool = False


@dataclass(slots=True)
class _Counters:
    hits: int = 0
    misses: int = 0
    evictions: int = 0
    corrupt_dropped: int = 0
    write_failures: int = 0


class BlockCache:
    """Thread-safe: every method may be called from several worker threads at once. File I/O
    runs outside the lock; the lock guards the in-memory map and the one SQLite connection."""

    def __init__(self, directory: Path, capacity_bytes: int) -> None:
        if capacity_bytes < 0:
            raise ValueError("capacity_bytes must be >= 0")
        self._dir = Path(directory)
        self._blocks = self._dir / _BLOCKS_DIR
        self._capacity = capacity_bytes
        self._lock = threading.Lock()
        self._entries: OrderedDict[Key, _Entry] = OrderedDict()  # least recently used first
        self._protected_bytes = 0  # bytes of protected entries
        self._pins: dict[Key, int] = {}
        self._dirty: set[Key] = set()  # recency changed in memory, not yet in the index
        self._stored_bytes = 0
        self._counters = _Counters()
        self._last_stamp = 0.0
        self._last_flush = time.monotonic()
        self._last_warning = -_WARN_INTERVAL
        self._closed = False
        _prepare_directory(self._dir)
        self._lock_fd = _acquire_directory_lock(self._dir / _LOCK_NAME)
        rows: list[tuple[object, ...]] | None
        try:
            self._db, rows = _open_index(self._dir / _DB_NAME)
        except sqlite3.OperationalError as exc:
            # A full or failing disk, not a damaged index: both the index and the blocks are
            # kept for a later open. This one runs on an empty index in memory: nothing is
            # served from disk, and blocks it stores are orphans that the next open deletes.
            log.warning(
                "block cache: cannot open the index in %s (%s); the blocks stored there are "
                "not used until a later mount",
                self._dir,
                exc,
            )
            self._db, rows = _memory_index(), None
        except BaseException:
            os.close(self._lock_fd)
            raise
        try:
            if rows is not None:  # never sweep the blocks of an index that was not read
                self._recover(rows)
        except BaseException:
            self._db.close()
            os.close(self._lock_fd)
            raise

    def __enter__(self) -> BlockCache:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ------------------------------------------------------------------ public API

    def get(self, content: str, index: int) -> bytes | None:
        """The verified bytes of a block, or None (a miss). A block that fails verification is
        deleted and counted in ``corrupt_dropped``."""
        key = (content, index)
        with self._lock:
            entry = None if self._closed else self._entries.get(key)
            if entry is None:
                self._counters.misses += 1
                return None
        while True:
            data = _read_verified(self._blocks / entry.name, entry)  # outside the lock
            with self._lock:
                if data is not None:
                    self._counters.hits += 1
                    self._touch_locked(key, entry)
                    return data
                current = None if self._closed else self._entries.get(key)
                if current is None or current is entry:
                    self._counters.misses += 1
                    doomed = self._drop_corrupt_locked(key, entry)
                    break
                # A concurrent put replaced the block (and deleted the file we were reading):
                # not damage; read the new file.
                entry = current
        _unlink_blocks(self._blocks, doomed)
        return None

    def put(self, content: str, index: int, data: bytes) -> bool:
        """Store a block durably, evicting least-recently-used unpinned blocks to make room.
        False if not stored: disk or index failure (counted, logged), a block larger than the
        capacity, no room because pinned blocks fill the cache, or a closed cache."""
        key = _checked_key(content, index)
        name = _new_block_name(key)
        size = len(data)
        if not self._admissible(key, size):
            return False
        try:
            _write_durably(self._blocks, name, data)
        except OSError as exc:
            with self._lock:
                self._note_write_failure_locked(key, exc)
            return False
        entry = _Entry(name=name, size=size, crc=zlib.crc32(data), last_used=0.0)
        with self._lock:
            doomed = self._record_locked(key, entry)
        _unlink_blocks(self._blocks, doomed)
        return name not in doomed

    def pin(self, content: str, index: int) -> None:
        """Protect a block (present or yet to be put) from eviction. Refcounted."""
        key = _checked_key(content, index)
        with self._lock:
            self._pins[key] = self._pins.get(key, 0) + 1

    def unpin(self, content: str, index: int) -> None:
        """Undo one ``pin``; when the last pin goes, evict down to capacity if over it."""
        key = (content, index)
        with self._lock:
            count = self._pins.get(key, 0)
            if count <= 0:
                raise ValueError(f"unpin of a block that is not pinned: {key!r}")
            if count > 1:
                self._pins[key] = count - 1
                return
            del self._pins[key]
            doomed = self._trim_locked()
        _unlink_blocks(self._blocks, doomed)

    @contextlib.contextmanager
    def pinned(self, keys: Iterable[tuple[str, int]]) -> Iterator[None]:
        """Pin ``keys`` for the duration of the block."""
        done: list[Key] = []
        try:
            for content, index in keys:
                self.pin(content, index)
                done.append((content, index))
            yield
        finally:
            for content, index in reversed(done):
                self.unpin(content, index)

    def contains(self, content: str, index: int) -> bool:
        """Whether the block is recorded. No verification, no stats, no recency."""
        with self._lock:
            return not self._closed and (content, index) in self._entries

    def block_path(self, content: str, index: int) -> Path | None:
        """The file holding a recorded block (for diagnostics and tests), or None."""
        with self._lock:
            entry = None if self._closed else self._entries.get((content, index))
        return None if entry is None else self._blocks / entry.name

    def stats(self) -> CacheStats:
        with self._lock:
            c = self._counters
            return CacheStats(
                hits=c.hits,
                misses=c.misses,
                evictions=c.evictions,
                corrupt_dropped=c.corrupt_dropped,
                write_failures=c.write_failures,
                stored_bytes=self._stored_bytes,
                stored_blocks=len(self._entries),
                pinned_bytes=self._pinned_bytes_locked(),
                capacity_bytes=self._capacity,
            )

    def disk_usage(self) -> int:
        """Bytes of all files under blocks/, measured on disk (a directory walk: use
        ``stats().stored_bytes`` when a cheap figure is enough). Includes blocks being
        written and damaged files not yet noticed."""
        total = 0
        for root, _dirs, files in os.walk(self._blocks):
            for name in files:
                with contextlib.suppress(OSError):
                    st = os.lstat(os.path.join(root, name))
                    if stat.S_ISREG(st.st_mode):
                        total += st.st_size
        return total

    def clear(self) -> None:
        """Drop every block that is not pinned."""
        with self._lock:
            doomed = self._drop_locked([k for k in self._entries if k not in self._pins])
        _unlink_blocks(self._blocks, doomed)

    def drop(self, keys: Iterable[Key]) -> int:
        """Drop these blocks, those recorded and not pinned (bytes found to be wrong, say);
        return how many."""
        with self._lock:
            doomed = self._drop_locked(
                [k for k in dict.fromkeys(keys) if k in self._entries and k not in self._pins]
            )
        _unlink_blocks(self._blocks, doomed)
        return len(doomed)

    def prune(self, older_than_seconds: float) -> int:
        """Drop unpinned blocks not used for ``older_than_seconds``; return how many."""
        cutoff = time.time() - older_than_seconds
        with self._lock:
            old = [
                k for k, e in self._entries.items() if e.last_used < cutoff and k not in self._pins
            ]
            doomed = self._drop_locked(old)
        _unlink_blocks(self._blocks, doomed)
        return len(doomed)

    def shrink_to(self, size: int) -> int:
        """Drop unpinned blocks, in eviction order, until at most ``size`` bytes are stored;
        return how many were dropped."""
        with self._lock:
            doomed = self._drop_locked(self._pick_victims_locked(self._stored_bytes - size))
        _unlink_blocks(self._blocks, doomed)
        return len(doomed)

    def summary(self) -> CacheSummary:
        with self._lock:
            return summarize((k[0], e.size, e.last_used) for k, e in self._entries.items())

    @property
    def directory(self) -> Path:
        return self._dir

    def close(self) -> None:
        """Write pending recency to the index and release the directory. Idempotent; after it,
        gets miss and puts return False."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            try:
                self._flush_recency_locked()
            finally:
                try:
                    self._db.close()
                finally:
                    os.close(self._lock_fd)

    # ------------------------------------------------------------------ recovery at open

    def _recover(self, rows: list[tuple[object, ...]]) -> None:
        """Bring index and files back into agreement after whatever the last process left."""
        on_disk = _sweep_blocks_dir(self._blocks)
        kept: list[tuple[Key, _Entry]] = []
        dropped: list[tuple[object, object]] = []
        for row in rows:
            parsed = _parse_row(row)
            if parsed is None or on_disk.get(parsed[1].name) != parsed[1].size:
                dropped.append((row[0], row[1]))
            else:
                kept.append(parsed)
        if dropped:
            log.info("block cache: dropping %d index rows without a sound file", len(dropped))
            with self._transaction() as db:
                db.executemany("DELETE FROM blocks WHERE content = ? AND idx = ?", dropped)
        referenced = {entry.name for _key, entry in kept}
        _unlink_blocks(self._blocks, [n for n in on_disk if n not in referenced])
        for key, entry in kept:  # rows come sorted by last_used: least recent first
            self._entries[key] = entry
            self._stored_bytes += entry.size
            self._last_stamp = max(self._last_stamp, entry.last_used)
        with self._lock:
            doomed = self._trim_locked()  # the capacity may have shrunk since last time
        _unlink_blocks(self._blocks, doomed)

    # ------------------------------------------------------------------ helpers (lock held)

    def _admissible(self, key: Key, size: int) -> bool:
        """Cheap early refusal before writing a file that could not be recorded anyway."""
        with self._lock:
            return not self._closed and self._fits_locked(key, size)

    def _fits_locked(self, key: Key, size: int) -> bool:
        if size > self._capacity:
            return False
        # An unpinned block may only push out unpinned blocks; a pinned one is stored anyway.
        return key in self._pins or self._pinned_bytes_locked(exclude=key) + size <= self._capacity

    def _record_locked(self, key: Key, entry: _Entry) -> list[str]:
        """Record a durable block file, evicting to make room; return the block files to
        delete (including the new one if it was not recorded)."""
        if self._closed or not self._fits_locked(key, entry.size):
            return [entry.name]
        old = self._entries.get(key)
        excess = self._stored_bytes - (old.size if old else 0) + entry.size - self._capacity
        victims = self._pick_victims_locked(excess, exclude=key)
        entry.last_used = self._stamp_locked()
        try:
            with self._transaction() as db:
                self._write_recency(db)
                db.executemany("DELETE FROM blocks WHERE content = ? AND idx = ?", victims)
                db.execute(
                    "INSERT OR REPLACE INTO blocks VALUES (?, ?, ?, ?, ?, ?)",
                    (key[0], key[1], entry.name, entry.size, entry.crc, entry.last_used),
                )
        except sqlite3.Error as exc:
            self._note_write_failure_locked(key, exc)
            return [entry.name]
        self._dirty.clear()
        self._last_flush = time.monotonic()
        doomed = [self._remove_locked(k) for k in victims]
        self._counters.evictions += len(victims)
        if old is not None:
            doomed.append(self._remove_locked(key))
        self._entries[key] = entry
        self._stored_bytes += entry.size
        return doomed

    def _pick_victims_locked(self, excess: int, exclude: Key | None = None) -> list[Key]:
        """Unpinned keys whose sizes add up to at least ``excess`` (or all of them, if pinned
        blocks make that impossible).

        Segmented LRU, so that a bulk stream cannot flush small hot blocks (HDF5 metadata):
        blocks never read back since they were stored go first, least recently used first;
        blocks read back ("protected") go only after them. Protected blocks may fill at most
        PROTECTED_SHARE of the capacity; beyond it, the oldest are demoted.
        """
        if excess <= 0:
            return []
        self._demote_locked()
        victims: list[Key] = []
        for want_protected in (False, True):
            for key, entry in self._entries.items():
                if excess <= 0:
                    return victims
                if entry.protected == want_protected and key != exclude and key not in self._pins:
                    victims.append(key)
                    excess -= entry.size
        return victims

    def _demote_locked(self) -> None:
        limit = int(self._capacity * PROTECTED_SHARE)
        for entry in self._entries.values():
            if self._protected_bytes <= limit:
                return
            if entry.protected:
                entry.protected = False
                self._protected_bytes -= entry.size

    def _trim_locked(self) -> list[str]:
        """Evict down to capacity (after an unpin, or at open)."""
        victims = self._pick_victims_locked(self._stored_bytes - self._capacity)
        doomed = self._drop_locked(victims)
        self._counters.evictions += len(doomed)
        return doomed

    def _drop_locked(self, keys: list[Key]) -> list[str]:
        """Delete rows, then forget the keys; return their files. Nothing changes if the
        index cannot be written (the blocks stay valid)."""
        if not keys or self._closed:
            return []
        try:
            with self._transaction() as db:
                db.executemany("DELETE FROM blocks WHERE content = ? AND idx = ?", keys)
        except sqlite3.Error as exc:
            log.warning("block cache: cannot update the index: %s", exc)
            return []
        return [self._remove_locked(k) for k in keys]

    def _drop_corrupt_locked(self, key: Key, entry: _Entry) -> list[str]:
        if self._closed or self._entries.get(key) is not entry:
            return []  # evicted or replaced while we read it: not damage, just a race
        self._counters.corrupt_dropped += 1
        log.warning("block cache: block %d of %r failed verification; dropped", key[1], key[0])
        try:
            with self._transaction() as db:
                db.execute("DELETE FROM blocks WHERE content = ? AND idx = ?", key)
        except sqlite3.Error as exc:
            # The file goes anyway; at the next open the row has no file and is dropped.
            log.warning("block cache: cannot update the index: %s", exc)
        return [self._remove_locked(key)]

    def _remove_locked(self, key: Key) -> str:
        entry = self._entries.pop(key)
        self._stored_bytes -= entry.size
        if entry.protected:
            self._protected_bytes -= entry.size
        self._dirty.discard(key)
        return entry.name

    def _touch_locked(self, key: Key, entry: _Entry) -> None:
        if self._closed or self._entries.get(key) is not entry:
            return
        entry.last_used = self._stamp_locked()
        self._entries.move_to_end(key)
        if not entry.protected:
            entry.protected = True
            self._protected_bytes += entry.size
        self._dirty.add(key)
        if (
            len(self._dirty) >= _FLUSH_BATCH
            or time.monotonic() - self._last_flush > _FLUSH_INTERVAL
        ):
            self._flush_recency_locked()

    def _stamp_locked(self) -> float:
        # Strictly increasing, so the order reloaded from last_used is exactly the LRU order
        # (time.time() can repeat within its resolution, or step back).
        self._last_stamp = max(time.time(), self._last_stamp + 1e-6)
        return self._last_stamp

    def _flush_recency_locked(self) -> None:
        self._last_flush = time.monotonic()
        if not self._dirty:
            return
        try:
            with self._transaction() as db:
                self._write_recency(db)
        except sqlite3.Error as exc:
            log.warning("block cache: cannot record recency: %s", exc)
            return
        self._dirty.clear()

    def _write_recency(self, db: sqlite3.Connection) -> None:
        db.executemany(
            "UPDATE blocks SET last_used = ? WHERE content = ? AND idx = ?",
            [(self._entries[k].last_used, k[0], k[1]) for k in self._dirty],
        )

    def _pinned_bytes_locked(self, exclude: Key | None = None) -> int:
        total = 0
        for key in self._pins:
            entry = self._entries.get(key)
            if entry is not None and key != exclude:
                total += entry.size
        return total

    def _note_write_failure_locked(self, key: Key, exc: Exception) -> None:
        self._counters.write_failures += 1
        now = time.monotonic()
        level = logging.DEBUG
        if now - self._last_warning >= _WARN_INTERVAL:
            self._last_warning, level = now, logging.WARNING
        log.log(
            level,
            "block cache: cannot store block %d of %r (%d failures so far): %s",
            key[1],
            key[0],
            self._counters.write_failures,
            exc,
        )

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
            self._db.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("ROLLBACK")
            raise


# ---------------------------------------------------------------------- keys and names


def _checked_key(content: str, index: int) -> Key:
    if not isinstance(content, str):
        raise TypeError(f"content must be str, not {type(content).__name__}")
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index <= _MAX_INDEX:
        raise ValueError(f"block index must be an int in [0, 2**63), not {index!r}")
    return (content, index)


def _key_digest(key: Key) -> str:
    """Hex sha256 of the key. The index follows the last NUL, so the encoding is unambiguous.
    Raises ValueError for content that is not valid text (lone surrogates)."""
    content = key[0].encode("utf-8")
    return hashlib.sha256(b"%s\0%d" % (content, key[1])).hexdigest()


def _new_block_name(key: Key) -> str:
    digest = _key_digest(key)
    return f"{digest[:2]}/{digest}.{secrets.token_hex(8)}"


def _parse_row(row: tuple[object, ...]) -> tuple[Key, _Entry] | None:
    """A row as (key, entry), or None if any field is malformed (the index lives in a private
    directory, but a bad name must never lead outside blocks/)."""
    content, idx, name, size, crc, last_used = row
    if not (
        isinstance(content, str)
        and isinstance(idx, int)
        and 0 <= idx <= _MAX_INDEX
        and isinstance(name, str)
        and isinstance(size, int)
        and size >= 0
        and isinstance(crc, int)
        and 0 <= crc < 2**32
        and isinstance(last_used, int | float)
    ):
        return None
    match = _NAME_RE.fullmatch(name)
    try:
        digest = _key_digest((content, idx))
    except ValueError:
        return None
    if match is None or match[2] != digest or match[1] != digest[:2]:
        return None
    return (content, idx), _Entry(name=name, size=size, crc=crc, last_used=float(last_used))


# ---------------------------------------------------------------------- files


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _write_durably(blocks: Path, name: str, data: bytes) -> None:
    """Temp file, write, fsync, rename, fsync the directory: once this returns, the block file
    survives a crash or power loss; if it raises, no file of ``name`` (or its temp) remains."""
    final = blocks / name
    tmp = final.with_name(_TMP_PREFIX + final.name)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
    try:
        fd = os.open(tmp, flags, 0o600)
    except FileNotFoundError:  # the prefix directory was removed behind our back
        _ensure_directory(tmp.parent)
        fd = os.open(tmp, flags, 0o600)
    try:
        try:
            _write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, final)
        _fsync_directory(final.parent)
    except BaseException:
        for path in (tmp, final):
            with contextlib.suppress(OSError):
                os.unlink(path)
        raise


def _read_verified(path: Path, entry: _Entry) -> bytes | None:
    try:
        data = _read_file(path, entry.size)
    except OSError as exc:
        if exc.errno != errno.ENOENT:
            log.warning("block cache: cannot read %s: %s", path, exc)
        return None
    if len(data) != entry.size or zlib.crc32(data) != entry.crc:
        return None
    return data


def _read_file(path: Path, size: int) -> bytes:
    """Read up to size + 1 bytes: one extra byte reveals a file longer than recorded. A single
    read() normally returns everything (regular files only read short at end of file)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        parts: list[bytes] = []
        total = 0
        while total < size:
            chunk = os.read(fd, size + 1 - total)
            if not chunk:
                break
            parts.append(chunk)
            total += len(chunk)
    finally:
        os.close(fd)
    return parts[0] if len(parts) == 1 else b"".join(parts)


def _unlink_blocks(blocks: Path, names: Iterable[str]) -> None:
    for name in names:
        try:
            os.unlink(blocks / name)
        except FileNotFoundError:
            pass
        except OSError as exc:  # left as an orphan; the next open deletes it
            log.warning("block cache: cannot delete %s: %s", name, exc)


def _fsync_directory(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _ensure_directory(path: Path) -> bool:
    """Create a private directory, durably; True if it was created."""
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        return False
    _fsync_directory(path.parent)
    return True


def _sweep_blocks_dir(blocks: Path) -> dict[str, int]:
    """Delete temp files and anything unexpected under blocks/, make sure the 256 prefix
    directories exist, and return the block files found: name relative to blocks/ -> size."""
    _ensure_directory(blocks)
    found: dict[str, int] = {}
    with os.scandir(blocks) as it:
        for item in it:
            if item.name not in _PREFIXES or not item.is_dir(follow_symlinks=False):
                _remove_any(Path(item.path))
    created = False
    for prefix in _PREFIXES:
        directory = blocks / prefix
        if _ensure_directory_quiet(directory):
            created = True
            continue
        found.update(_sweep_prefix_dir(directory, prefix))
    if created:
        _fsync_directory(blocks)
    return found


def _ensure_directory_quiet(path: Path) -> bool:
    """mkdir without an fsync per directory (the caller fsyncs the parent once)."""
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        return False
    return True


def _sweep_prefix_dir(directory: Path, prefix: str) -> dict[str, int]:
    found: dict[str, int] = {}
    with os.scandir(directory) as it:
        for item in it:
            if _FILE_RE.fullmatch(item.name) and item.is_file(follow_symlinks=False):
                found[f"{prefix}/{item.name}"] = item.stat(follow_symlinks=False).st_size
            else:  # temp files of interrupted puts, and anything we did not put there
                _remove_any(Path(item.path))
    return found


def _remove_any(path: Path) -> None:
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    except OSError as exc:
        log.warning("block cache: cannot remove %s: %s", path, exc)


# ---------------------------------------------------------------------- directory and index


def _prepare_directory(directory: Path) -> None:
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    st = directory.stat()
    if st.st_uid != os.geteuid():
        raise CacheError(f"cache directory {directory} belongs to another user")
    if stat.S_IMODE(st.st_mode) & 0o077:
        os.chmod(directory, 0o700)


def _private_file(path: Path) -> None:
    """Create ``path`` as 0600 if missing, tighten it if group or others can read it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        if stat.S_IMODE(os.fstat(fd).st_mode) & 0o077:
            os.fchmod(fd, 0o600)
    finally:
        os.close(fd)


def _acquire_directory_lock(path: Path) -> int:
    """One process per cache directory: recovery deletes files no row references, which would
    destroy another live process's blocks in flight."""
    _private_file(path)
    fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise CacheError(f"cache directory {path.parent} is in use by another process") from None
    except BaseException:
        os.close(fd)
        raise
    return fd


def _open_index(path: Path) -> tuple[sqlite3.Connection, list[tuple[object, ...]]]:
    """Open the index and read all rows, least recently used first. An unreadable or foreign
    index is a lost cache, not an error: it is deleted and started afresh (the sweep then
    deletes the block files it no longer references)."""
    try:
        return _connect(path)
    except sqlite3.OperationalError:
        raise  # the disk (full, failing), not the index: nothing is deleted
    except sqlite3.DatabaseError as exc:
        log.warning("block cache: index %s is unreadable (%s); starting empty", path, exc)
    for suffix in ("", "-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(f"{path}{suffix}")
    return _connect(path)


def _memory_index() -> sqlite3.Connection:
    db = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
    db.execute(_SCHEMA)
    return db


def _connect(path: Path) -> tuple[sqlite3.Connection, list[tuple[object, ...]]]:
    # Created 0600 first: SQLite gives the -wal and -shm files the main file's mode.
    _private_file(path)
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        # WAL + synchronous=NORMAL: commits do not fsync. A power cut may lose the last rows,
        # which only turns their files into orphans that the next open deletes; block files
        # are always made durable before their row is written, which is what correctness needs.
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version not in (0, _SCHEMA_VERSION):
            raise sqlite3.DatabaseError(f"unknown index schema version {version}")
        db.execute(_SCHEMA)
        db.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")
        rows = db.execute(
            "SELECT content, idx, name, size, crc, last_used FROM blocks ORDER BY last_used"
        ).fetchall()
    except BaseException:
        db.close()
        raise
    return db, rows

"""The on-disk block cache: remote bytes in fixed-size blocks, crash-safe, size-capped, LRU.

Blocks are keyed by ``(content, index)``: ``content`` is a content-identity string chosen by
the source ("dandi-blob:<id>", "dandi-zarr:<zarr>/<key>@<etag>", ...), equal strings meaning
equal bytes, so a block is fetched once across versions and mounts; ``index`` is the block
number within that content.

``BlockCache`` composes the parts, each in its own module: the private directory and its lock
(directory.py), the block files (store.py), the SQLite index and its recency batches
(index.py), the repair at open (recovery.py), the eviction order (eviction.py).

Invariants, true at every instant (so a kill -9 anywhere leaves a usable cache):

- A row in the index names a file whose bytes and directory were fsynced before the row was
  written (the blocks of one ``put_blocks``: every file, then each directory once, then one
  transaction for their rows). Rows are deleted before their files.
- Every ``get`` and ``read`` checks the file's length and the crc32 of each unit it reads
  (``entry.CHECK_UNIT``, 16 KiB) against the row; a mismatch drops the block and is a miss,
  so damaged bytes on disk are never returned. A small read checks only the units it needs.
- Opening repairs whatever a crash left: temp files and files without a row are deleted, rows
  whose file is missing or has the wrong size are dropped, an unreadable index is rebuilt empty.
  An index that cannot be opened at all (a full or failing disk) is left alone with its blocks,
  and that process runs on an empty index in memory.

Several processes may share the directory (directory.py): only one that finds it unused
repairs it; the others read its rows as they are. Each keeps its own map in memory; a miss
looks up the rows the others recorded since (``adopt``, only once another process is known to
be there), each evicts its own blocks against the total of all rows (``index.usage``), and a
row whose file another process deleted is a miss, not damage.

While running, the map in memory is the authority (it mirrors the index and holds LRU order),
so a hit costs a dict lookup, one read of the units it needs and their crc32s. Recency is
written to the index in batches (on put, every ``index.FLUSH_BATCH`` hits or
``index.FLUSH_INTERVAL`` seconds, and on close), so LRU order survives a clean restart exactly
and a crash approximately.

Two locks, so that the event loop, which calls ``contains`` and ``stats``, never waits on the
disk:

- the memory lock guards the map, the counters and the pending recency, and is held only for
  work in memory, never across file or SQLite I/O;
- the write lock serialises the changes to which blocks are recorded: each one plans under the
  memory lock, runs its index transaction without it, then applies the plan to memory. Only
  worker threads take it, always before the memory lock. Since every such change holds it, a
  plan stays true while its transaction runs; readers meanwhile only reorder the LRU.

Capacity: the recorded blocks total at most ``capacity_bytes``, except that blocks being
written (at most one per concurrent ``put``) occupy disk before the eviction that makes room
for them.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from neurofs.io.cache.directory import DirectoryLock, blocks_path, index_path
from neurofs.io.cache.entry import BlockEntry, BlockKey, checked_key, unit_sums
from neurofs.io.cache.eviction import SegmentedLru
from neurofs.io.cache.index import (
    BlockIndex,
    PendingRecency,
    RecencyRow,
    Row,
    RowName,
    parse_row,
)
from neurofs.io.cache.recovery import recover
from neurofs.io.cache.rendered import clear_rendered
from neurofs.io.cache.store import BlockStore, is_name_of, new_name
from neurofs.io.cache.summary import CacheSummary, summarize

log = logging.getLogger(__name__)

# Under ENOSPC every miss fails to store: warn once per interval, not once per block.
_WARN_INTERVAL = 60.0
# How often a process alone in its directory looks whether another one joined (a block the
# newcomer stores meanwhile may be fetched again here, never read wrong).
_JOIN_CHECK_INTERVAL = 0.2


@dataclass(frozen=True, slots=True)
class CacheStats:
    """Counters since open, and the current size. ``evictions`` counts blocks dropped to stay
    under capacity (not ``clear``/``prune``); ``corrupt_dropped`` counts blocks that failed
    verification in ``get``/``read``; ``write_failures`` counts puts lost to disk or index
    errors; ``verified_bytes`` counts the bytes hits read from disk and checked."""

    hits: int
    misses: int
    evictions: int
    corrupt_dropped: int
    write_failures: int
    stored_bytes: int
    stored_blocks: int
    capacity_bytes: int
    verified_bytes: int  # bytes read back from block files and checked, since open


@dataclass(slots=True)
class _Counters:
    hits: int = 0
    misses: int = 0
    evictions: int = 0
    corrupt_dropped: int = 0
    write_failures: int = 0


class BlockCache:
    """Thread-safe: every method may be called from several threads at once. ``contains``,
    ``stats`` and ``summary`` only wait for work in memory; the others may wait for the
    index and belong in worker threads."""

    def __init__(self, directory: Path, capacity_bytes: int) -> None:
        if capacity_bytes < 0:
            raise ValueError("capacity_bytes must be >= 0")
        self._dir = Path(directory)
        self._capacity = capacity_bytes
        self._memory = threading.Lock()
        self._writing = threading.Lock()
        self._lru = SegmentedLru(capacity_bytes)
        self._pending = PendingRecency()
        self._counters = _Counters()
        self._last_warning = -_WARN_INTERVAL
        self._closed = False
        self._store = BlockStore(blocks_path(self._dir))
        self._directory_lock = DirectoryLock(self._dir)
        first = self._directory_lock.alone
        try:
            self._index, rows = BlockIndex.open(index_path(self._dir), repair=first)
        except BaseException:
            self._directory_lock.release()
            raise
        # Whether another process may have recorded blocks this one has not read, so that a
        # miss is worth a look-up (``adopt``): it joined a directory in use, or another
        # process joined since (see ``shared``).
        self._shared = not first
        self._next_join_check = 0.0
        if self._shared:
            self._index.mark_shared()
        try:
            if rows is not None:  # never sweep the blocks of an index that was not read
                if first:
                    self._recover(rows)
                else:
                    self._join(rows)
            self._directory_lock.share()
        except BaseException:
            self._index.close()
            self._directory_lock.release()
            raise

    def __enter__(self) -> BlockCache:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ------------------------------------------------------------------ public API

    def get(self, content: str, index: int) -> bytes | None:
        """The verified bytes of a block, or None (a miss). A block that fails verification is
        deleted and counted in ``corrupt_dropped``."""
        return self._read((content, index), self._store.read)

    def read(
        self, content: str, index: int, start: int, end: int, *, write_recency: bool = True
    ) -> bytes | None:
        """Bytes [start, end) of a block, or None (a miss): only the checksum units that hold
        them are read and verified (``entry.CHECK_UNIT``), so a 4 KiB read costs a few KiB
        of disk and CRC32, not the block. Damage is handled as by ``get``. Without
        ``write_recency`` a due batch of recency is left for ``flush_recency_if_due`` (a
        caller on the event loop must not wait for the index)."""
        return self._read(
            (content, index), lambda e: self._store.read_range(e, start, end), write_recency
        )

    def flush_recency_if_due(self) -> None:
        """Write the pending recency if a batch is due (see ``read``)."""
        with self._memory:
            due = self._pending.due()
        if due:
            self._flush_recency()

    def _read(
        self,
        key: BlockKey,
        read: Callable[[BlockEntry], bytes | None],
        write_recency: bool = True,
    ) -> bytes | None:
        with self._memory:
            entry = None if self._closed else self._lru.get(key)
            if entry is None:
                self._counters.misses += 1
                return None
        while True:
            data = read(entry)  # outside the locks
            with self._memory:
                current = None if self._closed else self._lru.get(key)
                if data is not None:
                    self._counters.hits += 1
                    flush_due = current is entry and self._touch_locked(key, entry)
                    break
                if current is None:  # evicted (its file deleted) while we read: not damage
                    self._counters.misses += 1
                    return None
                if current is not entry:
                    # A concurrent put replaced the block (and deleted the file we were
                    # reading): not damage; read the new file.
                    entry = current
                    continue
            replacement = self._drop_damaged(key, entry)
            if replacement is None:
                with self._memory:
                    self._counters.misses += 1
                return None
            entry = replacement
        if flush_due and write_recency:
            self._flush_recency()
        return data

    def put(self, content: str, index: int, data: bytes) -> bool:
        """Store a block durably, evicting blocks to make room. False if not stored: disk or
        index failure (counted, logged), a block larger than the capacity, or a closed cache."""
        return self.put_many(content, {index: data}) == 1

    def put_many(self, content: str, blocks: Mapping[int, bytes | memoryview]) -> int:
        """Store blocks of one content as ``put`` stores each, but with one directory fsync
        and one index transaction for the group (each file is still fsynced before any row is
        written). Returns how many of them are stored when it returns."""
        return self.put_blocks({(content, index): data for index, data in blocks.items()})

    def put_blocks(self, blocks: Mapping[BlockKey, bytes | memoryview]) -> int:
        """``put_many`` for blocks of any contents (a line of chunks fetched in one request):
        one fsync per directory holding one of them, one index transaction."""
        keys = [checked_key(content, index) for content, index in blocks]
        planned = [
            (key, new_name(key), data)
            for key, data in zip(keys, blocks.values(), strict=True)
            if self._admissible(len(data))
        ]
        if not planned:
            return 0
        errors = self._store.write_group([(name, data) for _key, name, data in planned])
        entries: list[tuple[BlockKey, BlockEntry]] = []
        for (key, name, data), exc in zip(planned, errors, strict=True):
            if exc is not None:
                with self._memory:
                    self._note_write_failure_locked(key, exc)
                continue
            # crc 0: the row's unit checksums (``sums``) are what reads verify.
            sums = unit_sums(data)
            entry = BlockEntry(name=name, size=len(data), sums=sums, crc=0, last_used=0.0)
            entries.append((key, entry))
        if not entries:
            return 0
        # Rows recorded together must fit together (else each evicts the one before).
        if sum(e.size for _key, e in entries) <= self._capacity:
            groups = [entries]
        else:
            groups = [[one] for one in entries]
        doomed: set[str] = set()
        for group in groups:
            doomed.update(self._record(group))
        self._store.unlink(doomed)
        return sum(e.name not in doomed for _key, e in entries)

    def will_need(self, keys: Iterable[BlockKey]) -> None:
        """Have the kernel read these blocks' files into its page cache ahead of their reader
        (those recorded; no verification, stats or recency: the read that follows does that)."""
        with self._memory:
            entries = [e for k in keys if not self._closed and (e := self._lru.get(k)) is not None]
        self._store.will_need(entries)

    def contains(self, content: str, index: int) -> bool:
        """Whether the block is recorded. No verification, no stats, no recency."""
        with self._memory:
            return not self._closed and (content, index) in self._lru

    def stats(self) -> CacheStats:
        with self._memory:
            c = self._counters
            return CacheStats(
                hits=c.hits,
                misses=c.misses,
                evictions=c.evictions,
                corrupt_dropped=c.corrupt_dropped,
                write_failures=c.write_failures,
                stored_bytes=self._lru.stored_bytes,
                stored_blocks=len(self._lru),
                capacity_bytes=self._capacity,
                verified_bytes=self._store.verified_bytes,
            )

    def clear(self) -> None:
        """Drop every block, and the files rendered into the directory (``rendered.py``)."""
        self._drop(lambda: [k for k, _entry in self._lru.items()])
        clear_rendered(self._dir)

    def drop(self, keys: Iterable[BlockKey]) -> int:
        """Drop these blocks, those recorded (bytes found to be wrong, say); return how many."""
        wanted = list(dict.fromkeys(keys))
        return self._drop(lambda: [k for k in wanted if k in self._lru])

    def prune(self, older_than_seconds: float) -> int:
        """Drop blocks not used for ``older_than_seconds``; return how many."""
        cutoff = time.time() - older_than_seconds
        return self._drop(lambda: [k for k, e in self._lru.items() if e.last_used < cutoff])

    def shrink_to(self, size: int) -> int:
        """Drop blocks, in eviction order, until at most ``size`` bytes are stored; return how
        many were dropped."""
        return self._drop(lambda: self._lru.victims(self._lru.stored_bytes - size))

    def summary(self) -> CacheSummary:
        with self._memory:
            return summarize((k[0], e.size, e.last_used) for k, e in self._lru.items())

    @property
    def shared(self) -> bool:
        """Whether another process uses the directory too (then it stays true): a miss may
        be a block it recorded, worth ``adopt``. Cheap, lock-free, for the event loop."""
        if not self._shared:
            # An fstat costs ~1.4 µs, a read from memory tens: looked at a few times a second.
            now = time.monotonic()
            if now >= self._next_join_check:
                self._next_join_check = now + _JOIN_CHECK_INTERVAL
                self._shared = self._directory_lock.joined()
        return self._shared

    @property
    def directory(self) -> Path:
        return self._dir

    def close(self) -> None:
        """Write pending recency to the index and release the directory. Idempotent; after it,
        gets miss and puts return False."""
        with self._writing:
            with self._memory:
                if self._closed:
                    return
                self._closed = True
                recency = self._take_recency_locked()
            try:
                self._write_recency(recency)
            finally:
                try:
                    self._index.close()
                finally:
                    self._directory_lock.release()

    # ------------------------------------------------------------------ recovery at open

    def _recover(self, rows: list[Row]) -> None:
        for key, entry in recover(self._store, self._index, rows):  # least recent first
            self._lru.add(key, entry)
        # The capacity may have shrunk since last time.
        self._drop(
            lambda: self._lru.victims(self._lru.stored_bytes - self._capacity), evictions=True
        )

    def _join(self, rows: list[Row]) -> None:
        """Open beside the processes using the directory: their rows as read, without the
        repair (a file not yet recorded may be one of theirs being written). A row whose
        file is gone is found out when it is read: a miss, as a block evicted meanwhile."""
        for key, entry in _named_rows(rows):
            self._lru.add(key, entry)

    def adopt(self, keys: Iterable[BlockKey]) -> int:
        """Take into memory the rows that another process sharing the directory recorded
        for these keys (blocks this one misses); return how many. Costs nothing while no
        other process has written to the index, else one look-up per key. Callers on the
        event loop call it (in a thread) only when ``shared``."""
        with self._writing:
            with self._memory:
                if self._closed:
                    return 0
                wanted = [key for key in keys if key not in self._lru]
            try:
                if not wanted or not self._index.shared():
                    return 0
                self._shared = True
                rows = self._index.rows_of(wanted)
            except sqlite3.Error as exc:
                log.debug("block cache: cannot look up the index: %s", exc)
                return 0
            adopted = 0
            with self._memory:
                for key, entry in _named_rows(rows):
                    if key not in self._lru:
                        self._lru.add(key, entry)
                        adopted += 1
        return adopted

    # ------------------------------------------------------------------ changes (write lock)

    def _record(self, entries: list[tuple[BlockKey, BlockEntry]]) -> list[str]:
        """Record durable block files (distinct keys, fitting the capacity together) in one
        index transaction, evicting to make room; return the block files to delete
        (including the new ones if they were not recorded)."""
        with self._writing:
            shared_bytes = self._shared_bytes()
            with self._memory:
                if self._closed:
                    return [e.name for _key, e in entries]
                keys = {key for key, _e in entries}
                olds = {k: old for k in keys if (old := self._lru.get(k)) is not None}
                excess = (
                    max(self._lru.stored_bytes, shared_bytes)
                    - sum(old.size for old in olds.values())
                    + sum(e.size for _key, e in entries)
                    - self._capacity
                )
                victims = self._lru.victims(excess, exclude=keys)
                evicted = [self._row_locked(k) for k in victims]
                for _key, e in entries:
                    e.last_used = self._lru.stamp()
                recency = self._take_recency_locked()
            try:
                self._index.record(entries, evicted, recency)
            except sqlite3.Error as exc:
                with self._memory:
                    self._restore_recency_locked(recency)
                    for key, _e in entries:
                        self._note_write_failure_locked(key, exc)
                return [e.name for _key, e in entries]
            with self._memory:
                doomed = [self._forget_locked(k).name for k in victims]
                self._counters.evictions += len(victims)
                doomed += [self._forget_locked(k).name for k in olds]
                if self._lru.last_stamp != entries[-1][1].last_used:
                    # Blocks were read while the rows were written: the new blocks go after
                    # them in LRU order, so in the index too (with the next batch).
                    for key, e in entries:
                        e.last_used = self._lru.stamp()
                        self._pending.add(key)
                for key, e in entries:
                    self._lru.add(key, e)
        return doomed

    def _drop(self, choose: Callable[[], list[BlockKey]], *, evictions: bool = False) -> int:
        """Drop the blocks that ``choose`` (called under the memory lock) picks: rows first,
        then memory, then files; return how many. Nothing changes if the index cannot be
        written (the blocks stay valid)."""
        with self._writing:
            with self._memory:
                keys = [] if self._closed else choose()
                rows = [self._row_locked(k) for k in keys]
            if not keys:
                return 0
            try:
                self._index.delete(rows)
            except sqlite3.Error as exc:
                log.warning("block cache: cannot update the index: %s", exc)
                return 0
            with self._memory:
                names = [self._forget_locked(k).name for k in keys]
                if evictions:
                    self._counters.evictions += len(names)
        self._store.unlink(names)
        return len(names)

    def _drop_damaged(self, key: BlockKey, entry: BlockEntry) -> BlockEntry | None:
        """Drop a block whose file failed verification. If it was replaced meanwhile, return
        the new entry (to be read instead); if evicted, None (just a race, not damage)."""
        gone = not self._store.exists(entry)
        with self._writing:
            with self._memory:
                current = None if self._closed else self._lru.get(key)
                if current is not entry:
                    return current
                self._forget_locked(key)
                if not gone:
                    self._counters.corrupt_dropped += 1
            if gone:
                # Evicted or dropped by another process sharing the directory (or deleted
                # by hand): a miss, not damage. Its row went with it, or goes now.
                log.debug("block cache: block %d of %r is gone; forgotten", key[1], key[0])
            else:
                log.warning(
                    "block cache: block %d of %r failed verification; dropped", key[1], key[0]
                )
            try:
                self._index.delete([(*key, entry.name)])
            except sqlite3.Error as exc:
                # The file goes anyway; at the next open the row has no file and is dropped.
                log.warning("block cache: cannot update the index: %s", exc)
        self._store.unlink([entry.name])
        return None

    def _shared_bytes(self) -> int:
        """The bytes recorded by every process sharing the directory (0 if unknown): each
        process evicts its own blocks until the total fits. Only read once another process
        has written, else this process's own count is the total."""
        try:
            if not self._index.shared():
                return 0
            self._shared = True
            return self._index.stored_bytes()
        except sqlite3.Error as exc:
            log.debug("block cache: cannot read the index's usage: %s", exc)
            return 0

    def _flush_recency(self) -> None:
        """Write a due batch of recency. A reader does not queue behind a writer for this:
        if one holds the index, the batch waits for a later read."""
        if not self._writing.acquire(blocking=False):
            return
        try:
            with self._memory:
                if self._closed:
                    return
                recency = self._take_recency_locked()
            self._write_recency(recency)
        finally:
            self._writing.release()

    def _write_recency(self, recency: list[RecencyRow]) -> None:
        if not recency:
            return
        try:
            self._index.write_recency(recency)
        except sqlite3.Error as exc:
            log.warning("block cache: cannot record recency: %s", exc)
            with self._memory:
                self._restore_recency_locked(recency)

    # ------------------------------------------------------------------ memory (memory lock)

    def _admissible(self, size: int) -> bool:
        """Cheap early refusal before writing a file that could not be recorded anyway."""
        with self._memory:
            return not self._closed and size <= self._capacity

    def _touch_locked(self, key: BlockKey, entry: BlockEntry) -> bool:
        """A hit on ``entry``; True when a batch of recency is due to be written."""
        self._lru.touch(key, entry)
        return self._pending.add(key)

    def _row_locked(self, key: BlockKey) -> RowName:
        """The index row of a recorded block, to delete it (by name: see ``index._DELETE``)."""
        entry = self._lru.get(key)
        assert entry is not None, key
        return (key[0], key[1], entry.name)

    def _forget_locked(self, key: BlockKey) -> BlockEntry:
        self._pending.discard(key)
        return self._lru.remove(key)

    def _take_recency_locked(self) -> list[RecencyRow]:
        rows: list[RecencyRow] = []
        for key in self._pending.take():
            entry = self._lru.get(key)
            if entry is not None:
                rows.append((entry.last_used, key[0], key[1]))
        return rows

    def _restore_recency_locked(self, recency: list[RecencyRow]) -> None:
        self._pending.restore((c, i) for _used, c, i in recency if (c, i) in self._lru)

    def _note_write_failure_locked(self, key: BlockKey, exc: Exception) -> None:
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


def _named_rows(rows: Iterable[Row]) -> Iterator[tuple[BlockKey, BlockEntry]]:
    """The sound rows among ``rows`` (read beside other processes: nothing is repaired)."""
    for row in rows:
        parsed = parse_row(row)
        if parsed is not None and is_name_of(parsed[1].name, parsed[0]):
            yield parsed

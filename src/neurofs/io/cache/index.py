"""The block index (``index.sqlite3``): one row per recorded block, and recency in batches.

A row names a block file whose bytes were made durable before the row was written; rows are
deleted before their files. The rows are read once, at open; while the cache runs, its map
in memory is the authority for what this process recorded, and this file follows it. The
processes sharing a cache directory meet here: a row another one recorded since is looked up
when a block is missed (``rows_of``), and ``usage`` holds the bytes all rows name, kept by
triggers, so that each one evicts against the shared total.

Not thread-safe: the cache runs one transaction at a time, in worker threads, and never while
holding the lock around its memory (the event loop takes that one).
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from neurofs.io.cache.entry import MAX_INDEX, BlockEntry, BlockKey, sums_length
from neurofs.io.sqlite_files import (
    connect,
    connect_in_memory,
    connect_read_only,
    open_or_rebuild,
)

log = logging.getLogger(__name__)

# Version 2 added ``sums``, a CRC32 per ``CHECK_UNIT`` of the block, so that a small read
# checks only what it reads. An index of version 1 gains the column, NULL in its rows: those
# blocks keep their whole-block ``crc`` (new rows store 0 there) until they are replaced.
# Version 3 added ``usage`` and its triggers (an index of version 2 gains them at open).
_SCHEMA_VERSION = 3
_SCHEMA = """
CREATE TABLE IF NOT EXISTS blocks (
    content   TEXT    NOT NULL,
    idx       INTEGER NOT NULL,
    name      TEXT    NOT NULL,
    size      INTEGER NOT NULL,
    crc       INTEGER NOT NULL,
    last_used REAL    NOT NULL,
    sums      BLOB,
    PRIMARY KEY (content, idx)
) WITHOUT ROWID
"""
# The bytes all rows name, one row. REPLACE fires the delete trigger only with
# recursive_triggers on (``_connect``).
_USAGE = (
    "CREATE TABLE IF NOT EXISTS usage (bytes INTEGER NOT NULL)",
    "CREATE TRIGGER IF NOT EXISTS usage_in AFTER INSERT ON blocks"
    " BEGIN UPDATE usage SET bytes = bytes + NEW.size; END",
    "CREATE TRIGGER IF NOT EXISTS usage_out AFTER DELETE ON blocks"
    " BEGIN UPDATE usage SET bytes = bytes - OLD.size; END",
)
# By name too: a row another process replaced (a new file for the same block) stays.
_DELETE = "DELETE FROM blocks WHERE content = ? AND idx = ? AND name = ?"

# Recency is written after this many hits or this many seconds, whichever comes first: one
# small transaction per batch instead of a database write per read.
FLUSH_BATCH = 1024
FLUSH_INTERVAL = 30.0

Row = tuple[object, ...]
# (last_used, content, idx): the parameters of one recency update.
RecencyRow = tuple[float, str, int]
# (content, idx, name): a row to delete.
RowName = tuple[object, object, object]


class BlockIndex:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db
        # ``PRAGMA data_version`` changes when another connection commits: until one has,
        # this process is alone and a miss needs no look-up here.
        self._version = self._data_version()
        self._shared = False

    @classmethod
    def open(cls, path: Path, *, repair: bool = True) -> tuple[BlockIndex, list[Row] | None]:
        """The index and its rows, least recently used first. With ``repair`` (the only
        process using the directory), an unreadable or foreign index is rebuilt empty (its
        block files are then orphans that the sweep deletes). An index that cannot be opened
        (a full or failing disk; without ``repair``, any trouble: other processes use it) is
        left alone with its blocks, and this process runs on an empty index in memory: the
        rows are then None, and no block may be swept."""
        try:
            if repair:
                db, rows = open_or_rebuild(path, _connect)
            else:
                db, rows = _connect(path)
        except sqlite3.DatabaseError as exc:
            log.warning(
                "block cache: cannot open the index %s (%s); the blocks stored there are "
                "not used until a later mount",
                path,
                exc,
            )
            db = connect_in_memory()
            db.execute(_SCHEMA)
            return cls(db), None
        return cls(db), rows

    def record(
        self,
        entries: Sequence[tuple[BlockKey, BlockEntry]],
        evicted: Sequence[RowName],
        recency: Sequence[RecencyRow],
    ) -> None:
        """One transaction: pending recency, the evicted rows out, the new rows in."""
        with self._transaction() as db:
            db.executemany("UPDATE blocks SET last_used = ? WHERE content = ? AND idx = ?", recency)
            db.executemany(_DELETE, evicted)
            db.executemany(
                "INSERT OR REPLACE INTO blocks"
                " (content, idx, name, size, crc, last_used, sums) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (key[0], key[1], e.name, e.size, e.crc, e.last_used, e.sums)
                    for key, e in entries
                ],
            )

    def delete(self, rows: Sequence[RowName]) -> None:
        """Delete these rows (as read, possibly malformed, at recovery)."""
        with self._transaction() as db:
            db.executemany(_DELETE, rows)

    def stored_bytes(self) -> int:
        """The bytes all rows name, whichever process recorded them."""
        row = self._db.execute("SELECT bytes FROM usage").fetchone()
        return int(row[0]) if row is not None else 0

    def shared(self) -> bool:
        """Whether another process uses this index (it joined one in use, or another one
        has written since it opened; then it stays true): rows may exist that this process
        has not read."""
        if not self._shared and self._data_version() != self._version:
            self._shared = True
        return self._shared

    def mark_shared(self) -> None:
        self._shared = True

    def rows_of(self, keys: Iterable[BlockKey]) -> list[Row]:
        """The rows of these keys, as ``open`` returns rows."""
        rows: list[Row] = []
        for content, idx in keys:
            rows += self._db.execute(
                "SELECT content, idx, name, size, crc, last_used, sums FROM blocks"
                " WHERE content = ? AND idx = ?",
                (content, idx),
            ).fetchall()
        return rows

    def _data_version(self) -> int:
        return int(self._db.execute("PRAGMA data_version").fetchone()[0])

    def write_recency(self, recency: Sequence[RecencyRow]) -> None:
        with self._transaction() as db:
            db.executemany("UPDATE blocks SET last_used = ? WHERE content = ? AND idx = ?", recency)

    def close(self) -> None:
        self._db.close()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
            self._commit()
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("ROLLBACK")
            raise

    def _commit(self) -> None:
        self._db.execute("COMMIT")


class PendingRecency:
    """Blocks whose recency changed in memory and is not yet in the index, so that LRU order
    survives a clean restart exactly and a crash approximately. Not thread-safe: the cache
    uses it under its memory lock."""

    def __init__(self) -> None:
        self._keys: set[BlockKey] = set()
        self._last_taken = time.monotonic()

    def add(self, key: BlockKey) -> bool:
        """Note a use of ``key``; True when a batch is due to be written."""
        self._keys.add(key)
        return self.due()

    def due(self) -> bool:
        """Whether a batch is due to be written."""
        return bool(self._keys) and (
            len(self._keys) >= FLUSH_BATCH or time.monotonic() - self._last_taken > FLUSH_INTERVAL
        )

    def discard(self, key: BlockKey) -> None:
        self._keys.discard(key)

    def take(self) -> set[BlockKey]:
        """The keys to write now; they are no longer pending (``restore`` them if the write
        fails)."""
        self._last_taken = time.monotonic()
        keys, self._keys = self._keys, set()
        return keys

    def restore(self, keys: Iterable[BlockKey]) -> None:
        self._keys.update(keys)


def parse_row(row: Row) -> tuple[BlockKey, BlockEntry] | None:
    """A row as (key, entry), or None if any field is malformed."""
    content, idx, name, size, crc, last_used, sums = row
    if not (
        isinstance(content, str)
        and isinstance(idx, int)
        and 0 <= idx <= MAX_INDEX
        and isinstance(name, str)
        and isinstance(size, int)
        and size >= 0
        and isinstance(crc, int)
        and 0 <= crc < 2**32
        and isinstance(last_used, int | float)
        and (sums is None or (isinstance(sums, bytes) and len(sums) == sums_length(size)))
    ):
        return None
    entry = BlockEntry(name=name, size=size, sums=sums, crc=crc, last_used=float(last_used))
    return (content, idx), entry


def read_usage(path: Path) -> list[tuple[str, int, float]]:
    """``(content, size, last_used)`` of every row, read-only: safe while a process uses the
    index. Nothing when there is no index. Raises sqlite3.Error."""
    if not path.exists():
        return []
    db = connect_read_only(path)
    try:
        return db.execute("SELECT content, size, last_used FROM blocks").fetchall()
    finally:
        db.close()


def _connect(path: Path) -> tuple[sqlite3.Connection, list[Row]]:
    # synchronous=NORMAL (see connect) may lose the last rows in a power cut, which only turns
    # their files into orphans that the next open deletes; block files are always made durable
    # before their row is written, which is what correctness needs.
    db = connect(path)
    try:
        db.execute("PRAGMA recursive_triggers = ON")
        db.execute("BEGIN IMMEDIATE")  # another process may be opening it too
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version not in (0, 1, 2, _SCHEMA_VERSION):
            raise sqlite3.DatabaseError(f"unknown index schema version {version}")
        if version != _SCHEMA_VERSION:
            db.execute(_SCHEMA)
            columns = {row[1] for row in db.execute("PRAGMA table_info(blocks)")}
            if "sums" not in columns:  # version 1
                db.execute("ALTER TABLE blocks ADD COLUMN sums BLOB")
            for statement in _USAGE:
                db.execute(statement)
            db.execute("DELETE FROM usage")
            db.execute("INSERT INTO usage SELECT COALESCE(SUM(size), 0) FROM blocks")
            db.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")
        db.execute("COMMIT")
        rows = db.execute(
            "SELECT content, idx, name, size, crc, last_used, sums FROM blocks ORDER BY last_used"
        ).fetchall()
    except BaseException:
        db.close()
        raise
    return db, rows

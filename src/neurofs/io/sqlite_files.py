"""The SQLite files neurofs keeps (the block index, the offline answers): how they are opened,
and what happens when one is damaged.

Both are caches: a file that is not a database, or not ours, is lost content, deleted and
started afresh rather than a reason to refuse to mount. A disk that cannot be written
(``sqlite3.OperationalError``) is different: the file may be fine, so nothing is deleted and
the caller decides how to go on without it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from neurofs.io.durable import private_file

log = logging.getLogger(__name__)

T = TypeVar("T")


def connect(path: Path) -> sqlite3.Connection:
    """A connection in autocommit mode (callers write ``BEGIN``), usable from any thread (the
    caller serialises its use), in WAL mode with ``synchronous=NORMAL``: commits do not fsync,
    so a power cut may lose the last transactions but never corrupts the file.

    The file is created 0600 first: SQLite gives the -wal and -shm files the main file's mode.
    """
    private_file(path)
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
    except BaseException:
        db.close()
        raise
    return db


def connect_in_memory() -> sqlite3.Connection:
    """A stand-in for a file that cannot be opened: works, and keeps nothing."""
    return sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)


def connect_read_only(path: Path) -> sqlite3.Connection:
    """For reading beside the process that writes the file (SQLite lets readers in)."""
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True)


def open_or_rebuild(path: Path, open_file: Callable[[Path], T]) -> T:
    """``open_file(path)``; if the file turns out unreadable (``sqlite3.DatabaseError``: not a
    database, corrupt, an unknown schema), delete it with its -wal and -shm and open it again,
    empty. ``sqlite3.OperationalError`` (a full or failing disk) propagates untouched."""
    try:
        return open_file(path)
    except sqlite3.OperationalError:
        raise
    except sqlite3.DatabaseError as exc:
        log.warning("%s is unreadable (%s); starting it afresh", path, exc)
    for suffix in ("", "-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(f"{path}{suffix}")
    return open_file(path)

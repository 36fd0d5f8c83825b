"""The cache directory: private to its owner, and used by one process at a time.

    lock                  flock()ed by the one process using the directory
    index.sqlite3         (+ -wal, -shm) the index (index.py)
    blocks/               the block files (store.py)

The directory is 0700 and every file in it 0600.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from neurofs.errors import NeurofsError
from neurofs.io.durable import NotOwnedError, private_directory, private_file

_LOCK_NAME = "lock"
_INDEX_NAME = "index.sqlite3"
_BLOCKS_DIR = "blocks"


class CacheError(NeurofsError):
    """The cache directory cannot be used: another process holds it, or another user owns it."""


class CacheInUse(CacheError):
    """Another process holds the cache directory."""


def index_path(directory: Path) -> Path:
    return directory / _INDEX_NAME


def blocks_path(directory: Path) -> Path:
    return directory / _BLOCKS_DIR


class DirectoryLock:
    """Holds the cache directory for this process, created private if missing; CacheError if
    another user owns it or another process holds it. One process per directory: recovery
    deletes files no row references, which would destroy another live process's blocks in
    flight."""

    def __init__(self, directory: Path) -> None:
        try:
            private_directory(directory, must_own=True)
        except NotOwnedError:
            raise CacheError(f"cache directory {directory} belongs to another user") from None
        path = directory / _LOCK_NAME
        private_file(path)
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise CacheInUse(f"cache directory {directory} is in use by another process") from None
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd

    def release(self) -> None:
        os.close(self._fd)


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

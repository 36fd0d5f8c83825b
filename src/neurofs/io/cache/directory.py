"""The cache directory: private to its owner, shared by the processes of that user.

    lock                  flock()ed by every process using the directory
    index.sqlite3         (+ -wal, -shm) the index (index.py)
    blocks/               the block files (store.py)

The directory is 0700 and every file in it 0600.

Several processes may use one directory at once (a mount and the ``neurofs://`` workers of
one machine, two mounts). The repair at open (recovery.py) deletes the files no row names,
which would destroy a block another process is writing: only a process that finds the
directory unused repairs it. It takes the lock exclusively, repairs, then shares it; the
others take it shared (waiting while a repair runs) and skip the repair.
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path

from neurofs.errors import NeurofsError
from neurofs.io.durable import NotOwnedError, private_directory, private_file

_LOCK_NAME = "lock"
_INDEX_NAME = "index.sqlite3"
_BLOCKS_DIR = "blocks"
# How long a process waits for the one repairing the directory at open.
SHARE_WAIT = 120.0


class CacheError(NeurofsError):
    """The cache directory cannot be used: another process holds it, or another user owns it."""


class CacheInUse(CacheError):
    """Another process holds the cache directory and does not share it."""


def index_path(directory: Path) -> Path:
    return directory / _INDEX_NAME


def blocks_path(directory: Path) -> Path:
    return directory / _BLOCKS_DIR


class DirectoryLock:
    """Holds the cache directory for this process, created private if missing; CacheError if
    another user owns it. ``alone``: no other process held it when this one came, so this
    one may repair it; ``share`` then lets others in. CacheInUse if it stays held
    exclusively longer than ``SHARE_WAIT`` seconds."""

    def __init__(self, directory: Path) -> None:
        try:
            private_directory(directory, must_own=True)
        except NotOwnedError:
            raise CacheError(f"cache directory {directory} belongs to another user") from None
        path = directory / _LOCK_NAME
        private_file(path)
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        try:
            self.alone = _try_lock(fd, fcntl.LOCK_EX)
            if not self.alone:
                deadline = time.monotonic() + SHARE_WAIT
                while not _try_lock(fd, fcntl.LOCK_SH):
                    if time.monotonic() > deadline:
                        raise CacheInUse(
                            f"cache directory {directory} is held by a process that does not "
                            "share it (a repair taking long, or an older neurofs)"
                        )
                    time.sleep(0.05)
                # Tell those already here that someone joined: the lock file's mtime moves
                # (by one nanosecond, so that coarse file timestamps cannot hide it).
                st = os.fstat(fd)
                os.utime(fd, ns=(st.st_atime_ns, st.st_mtime_ns + 1))
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        self._stamp = os.fstat(fd).st_mtime_ns

    def share(self) -> None:
        """Let other processes in (after the repair). Not atomic (flock(2)): a process that
        comes meanwhile may find the directory unused and repair it, which is harmless now,
        before this one has written anything."""
        if self.alone:
            fcntl.flock(self._fd, fcntl.LOCK_SH)

    def joined(self) -> bool:
        """Whether another process has joined since this one came (one fstat)."""
        try:
            return os.fstat(self._fd).st_mtime_ns != self._stamp
        except OSError:  # released
            return False

    def release(self) -> None:
        os.close(self._fd)


def _try_lock(fd: int, kind: int) -> bool:
    try:
        fcntl.flock(fd, kind | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def in_use(directory: Path) -> bool:
    """Whether a process uses the cache directory (its lock is taken). Nothing is created."""
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

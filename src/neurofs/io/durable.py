"""Files and directories that must survive a crash, and that are the user's alone.

The block cache, the save journal and the daemon's own directories all need the same few
steps, in the same order, for their guarantees to hold; they live here once.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path


class NotOwnedError(PermissionError):
    """A directory that should be private belongs to another user."""


def write_durably(path: Path, data: bytes, *, temp: Path | None = None) -> None:
    """Temp file, write, fsync, rename, fsync the directory: once this returns, ``path`` holds
    ``data`` across a crash or power loss; if it raises, neither ``path`` nor the temp file
    remains. ``temp`` (default ``<path>.tmp``, in the same directory) must be a name nobody
    else uses: it is created exclusively, so a leftover is an error, never overwritten."""
    tmp = path.with_name(path.name + ".tmp") if temp is None else temp
    write_new_file(tmp, data)
    try:
        os.rename(tmp, path)
        fsync_directory(path.parent)
    except BaseException:
        for leftover in (tmp, path):
            with contextlib.suppress(OSError):
                os.unlink(leftover)
        raise


def write_new_file(path: Path, data: bytes | memoryview) -> None:
    """Create ``path`` (it must not exist), write ``data`` and fsync it; if it raises, no file
    of that name remains. No temp file and no rename: this is for files that readers find only
    through a record written afterwards (block files and their index rows), so a partial file
    left by a crash is an orphan, never read. The name itself is durable only after
    :func:`fsync_directory` of its directory, which the caller does once for a group of files
    (on a journalling file system it is then cheap: the file's fsync committed the new name)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        try:
            _write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(path)
        raise


def _write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def fsync_directory(path: Path) -> None:
    """Make the names in ``path`` (a rename, a new entry) durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_directory(path: Path) -> bool:
    """Create one private directory, durably; True if it was created, False if it existed."""
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        return False
    fsync_directory(path.parent)
    return True


def private_directory(path: Path, *, must_own: bool = False) -> Path:
    """``path`` created if missing (with its missing parents) and made 0700; returns it.

    The mode passed to mkdir is cut by the umask and an existing directory keeps its mode, so
    the mode is set afterwards. With ``must_own``, a directory that another user owns raises
    NotOwnedError before anything of it is changed: using it would let that user read or
    plant our files, and tightening it is not ours to do."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    st = path.stat()
    if must_own and st.st_uid != os.geteuid():
        raise NotOwnedError(f"{path} belongs to another user")
    if stat.S_IMODE(st.st_mode) != 0o700:
        os.chmod(path, 0o700)
    return path


def private_file(path: Path) -> None:
    """Create ``path`` empty as 0600 if missing; tighten it if group or others can read it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        if stat.S_IMODE(os.fstat(fd).st_mode) & 0o077:
            os.fchmod(fd, 0o600)
    finally:
        os.close(fd)

"""Reading files of the machine that a request written into the mount names by path.

The daemon serves its own mount: a path that leads into a neurofs mount (this one or another
one of the machine) would be served by a FUSE request while one is already being handled, and
can hang the mount. Such paths are refused before anything of them is touched: the path is
resolved one component at a time, each symlink followed by hand, and every step is checked
against the neurofs mount points listed in ``/proc/self/mountinfo`` (read without touching
any mount) before it is looked at.
"""

from __future__ import annotations

import errno
import os
import stat

import trio

from neurofs.errors import InvalidContent, NotFound
from neurofs.mountinfo import neurofs_mount_points

_MAX_SYMLINKS = 40  # as the kernel allows (ELOOP)


def _inside(path: str, mounts: list[str]) -> str | None:
    for mount in mounts:
        if path == mount or path.startswith(mount.rstrip("/") + "/"):
            return mount
    return None


def resolved_outside_mounts(path: str, mounts: list[str]) -> str:
    """``path`` with its symlinks resolved, never stepping into one of ``mounts``.
    InvalidContent when it leads into one; NotFound when a component is missing."""
    if not os.path.isabs(path):
        raise InvalidContent(f"{path}: not an absolute path")
    pending = [p for p in path.split("/") if p]
    current = "/"
    links = 0
    while pending:
        part = pending.pop(0)
        if part in ("", "."):
            continue
        if part == "..":
            current = os.path.dirname(current)  # current is resolved: its parent is real
            continue
        step = os.path.join(current, part)
        mount = _inside(step, mounts)
        if mount is not None:
            raise InvalidContent(
                f"{path}: inside the neurofs mount {mount}, which cannot be read from inside "
                "the daemon; copy the file out of the mount and name the copy"
            )
        try:
            st = os.lstat(step)
        except FileNotFoundError:
            raise NotFound(f"{path}: no such file") from None
        except OSError as exc:
            raise InvalidContent(f"{path}: cannot be read ({exc.strerror})") from None
        if stat.S_ISLNK(st.st_mode):
            links += 1
            if links > _MAX_SYMLINKS:
                raise InvalidContent(f"{path}: too many symbolic links")
            target = os.readlink(step)
            pending = [p for p in target.split("/") if p] + pending
            if target.startswith("/"):
                current = "/"
        else:
            current = step
    return current


def _read(path: str, max_bytes: int, mounts: list[str]) -> bytes:
    real = resolved_outside_mounts(path, mounts)
    try:
        # O_NONBLOCK: a FIFO named by mistake must not block the worker thread.
        fd = os.open(real, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            raise NotFound(f"{path}: no such file") from None
        raise InvalidContent(f"{path}: cannot be read ({exc.strerror})") from None
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise InvalidContent(f"{path}: not a regular file")
        try:
            data = f.read(max_bytes + 1)
        except OSError as exc:
            raise InvalidContent(f"{path}: cannot be read ({exc.strerror})") from None
    if len(data) > max_bytes:
        raise InvalidContent(f"{path}: larger than {max_bytes} bytes")
    return data


async def read_local_file(path: str, max_bytes: int) -> bytes:
    """The bytes of the regular file at the absolute ``path`` of this machine (at most
    ``max_bytes``), read in a worker thread; never from a neurofs mount."""
    mounts = neurofs_mount_points()
    return await trio.to_thread.run_sync(_read, path, max_bytes, mounts)

"""FUSE operations over the node tree.

Every handler goes through ``_guard``, which turns domain errors into ``FUSEError`` with the
errno of ``errno_map`` and any unexpected exception into EIO (logged with its traceback).
Nothing in this mount is writable yet: opening for write answers EROFS, and so does every
call that would change the tree.
"""

from __future__ import annotations

import errno
import functools
import itertools
import logging
import os
import stat
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

import pyfuse3
import trio

from neurofs.errors import IsADirectory, NeurofsError, NotADirectory, NotFound
from neurofs.fs.errno_map import errno_for
from neurofs.fs.inodes import InodeTable
from neurofs.io.block_cache import BLOCK_SIZE
from neurofs.tree.control import ErrorLog
from neurofs.tree.nodes import Attrs, Directory, File, FileHandle, Kind, Node, Symlink

log = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")

# How long the kernel may trust entries and attributes. Immutable things (published
# versions, content-addressed files) for a day; the rest briefly, like the listing TTL.
IMMUTABLE_TIMEOUT = 86400.0
MUTABLE_TIMEOUT = 10.0
NEGATIVE_TIMEOUT = 2.0

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_TRUNC | os.O_APPEND | os.O_CREAT


def _guard(
    handler: Callable[P, Coroutine[Any, Any, R]],
) -> Callable[P, Coroutine[Any, Any, R]]:
    @functools.wraps(handler)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await handler(*args, **kwargs)
        except pyfuse3.FUSEError:
            raise
        except NeurofsError as exc:
            code = errno_for(exc)
            if code != errno.ENOENT:
                log.info("%s: %s: %s", handler.__name__, errno.errorcode[code], exc)
            raise pyfuse3.FUSEError(code) from None
        except trio.Cancelled:
            raise
        except Exception:
            log.exception("%s failed unexpectedly", handler.__name__)
            raise pyfuse3.FUSEError(errno.EIO) from None

    return wrapper


def _recorded(
    handler: Callable[..., Coroutine[Any, Any, R]],
) -> Callable[..., Coroutine[Any, Any, R]]:
    """Failures of opening, reading and listing also go to .neurofs/errors.log (not ENOENT:
    shells probe for names that do not exist all the time)."""

    @functools.wraps(handler)
    async def wrapper(self: Operations, first: int, *args: Any) -> R:
        try:
            return await handler(self, first, *args)
        except NeurofsError as exc:
            code = errno_for(exc)
            if code != errno.ENOENT:
                name = os.fsdecode(args[0]) if handler.__name__ == "lookup" else None
                self._record(handler.__name__, first, code, exc, name)
            raise

    return wrapper


@dataclass
class _OpenDir:
    children: Sequence[Node]


@dataclass
class _OpenFile:
    node: File
    handle: FileHandle


class Operations(pyfuse3.Operations):
    def __init__(self, root: Directory, errors: ErrorLog) -> None:
        super().__init__()
        self._inodes = InodeTable(root)
        self._errors = errors
        self._dirs: dict[int, _OpenDir] = {}
        self._files: dict[int, _OpenFile] = {}
        self._handles = itertools.count(1)
        self._uid = os.getuid()
        self._gid = os.getgid()

    # ------------------------------------------------------------------ helpers

    def _record(
        self, operation: str, inode_or_fh: int, code: int, exc: Exception, name: str | None
    ) -> None:
        if operation == "read":
            opened = self._files.get(inode_or_fh)
            node: Node | None = opened.node if opened else None
        else:
            entry = self._inodes.entry(inode_or_fh)
            node = entry.node if entry else None
        path = "/".join(node.key) if node else "?"
        if name is not None:
            path = f"{path}/{name}".lstrip("/")
        self._errors.add(path, errno.errorcode[code], f"{operation}: {exc}")

    def _node(self, inode: int) -> Node:
        entry = self._inodes.entry(inode)
        if entry is None:
            raise pyfuse3.FUSEError(errno.ESTALE)
        return entry.node

    def _entry_attributes(self, inode: int, attrs: Attrs) -> pyfuse3.EntryAttributes:
        e = pyfuse3.EntryAttributes()
        e.st_ino = inode
        e.generation = 0
        timeout = IMMUTABLE_TIMEOUT if attrs.immutable else MUTABLE_TIMEOUT
        e.entry_timeout = timeout
        e.attr_timeout = timeout
        if attrs.kind is Kind.DIRECTORY:
            e.st_mode = stat.S_IFDIR | (0o755 if attrs.writable else 0o555)
            e.st_nlink = 2
        elif attrs.kind is Kind.SYMLINK:
            e.st_mode = stat.S_IFLNK | 0o777
            e.st_nlink = 1
        else:
            e.st_mode = stat.S_IFREG | (0o644 if attrs.writable else 0o444)
            e.st_nlink = 1
        e.st_uid = self._uid
        e.st_gid = self._gid
        e.st_size = attrs.size
        # st_blocks in 512-byte units, so that du reports the remote size.
        e.st_blocks = (attrs.size + 511) // 512
        e.st_blksize = BLOCK_SIZE
        ns = int(attrs.mtime * 1e9)
        e.st_atime_ns = e.st_mtime_ns = e.st_ctime_ns = ns
        return e

    async def _attributes_of(self, node: Node, inode: int) -> pyfuse3.EntryAttributes:
        return self._entry_attributes(inode, await node.stat())

    # ------------------------------------------------------------------ lookups and attributes

    @_guard
    @_recorded
    async def lookup(
        self, parent_inode: int, name: bytes, ctx: pyfuse3.RequestContext
    ) -> pyfuse3.EntryAttributes:
        parent = self._node(parent_inode)
        if not isinstance(parent, Directory):
            raise NotADirectory(str(parent.key))
        text = os.fsdecode(name)
        try:
            child = await parent.child(text)
        except NotFound:
            # A zero-inode answer lets the kernel cache the negative lookup briefly.
            e = pyfuse3.EntryAttributes()
            e.st_ino = 0
            e.entry_timeout = NEGATIVE_TIMEOUT
            return e
        attrs = await child.stat()
        inode, _ = self._inodes.remember(child)
        self._inodes.incref(inode)
        return self._entry_attributes(inode, attrs)

    @_guard
    @_recorded
    async def getattr(self, inode: int, ctx: pyfuse3.RequestContext) -> pyfuse3.EntryAttributes:
        return await self._attributes_of(self._node(inode), inode)

    @_guard
    async def readlink(self, inode: int, ctx: pyfuse3.RequestContext) -> bytes:
        node = self._node(inode)
        if not isinstance(node, Symlink):
            raise pyfuse3.FUSEError(errno.EINVAL)
        return os.fsencode(node.target)

    async def forget(self, inode_list: Sequence[tuple[int, int]]) -> None:
        for inode, count in inode_list:
            self._inodes.forget(inode, count)

    # ------------------------------------------------------------------ directories

    @_guard
    @_recorded
    async def opendir(self, inode: int, ctx: pyfuse3.RequestContext) -> int:
        node = self._node(inode)
        if not isinstance(node, Directory):
            raise NotADirectory(str(node.key))
        # The listing is taken once per open: readdir offsets index into this snapshot, so a
        # listing resumed at any offset never repeats or skips an entry.
        fh = next(self._handles)
        self._dirs[fh] = _OpenDir(list(await node.children()))
        return fh

    @_guard
    async def readdir(self, fh: int, start_id: int, token: pyfuse3.ReaddirToken) -> None:
        children = self._dirs[fh].children
        for index in range(start_id, len(children)):
            child = children[index]
            attrs = await child.stat()
            inode, new = self._inodes.remember(child)
            entry = self._entry_attributes(inode, attrs)
            if not pyfuse3.readdir_reply(token, os.fsencode(child.name), entry, index + 1):
                if new:
                    self._inodes.drop_if_unused(inode)
                return
            # readdirplus: each entry the kernel accepted counts as a lookup.
            self._inodes.incref(inode)

    async def releasedir(self, fh: int) -> None:
        self._dirs.pop(fh, None)

    # ------------------------------------------------------------------ files

    @_guard
    @_recorded
    async def open(self, inode: int, flags: int, ctx: pyfuse3.RequestContext) -> pyfuse3.FileInfo:
        node = self._node(inode)
        if isinstance(node, Directory):
            raise IsADirectory(str(node.key))
        if flags & _WRITE_FLAGS:
            raise pyfuse3.FUSEError(errno.EROFS)
        if not isinstance(node, File):
            raise pyfuse3.FUSEError(errno.EINVAL)
        attrs = await node.stat()
        handle = await node.open()
        fh = next(self._handles)
        self._files[fh] = _OpenFile(node, handle)
        entry = self._inodes.entry(inode)
        # Keep the kernel's page cache only while the file's attributes are unchanged since
        # the previous open; otherwise the kernel drops pages that may be stale.
        unchanged = entry is not None and entry.opened_attrs == attrs
        if entry is not None:
            entry.opened_attrs = attrs
        info = pyfuse3.FileInfo(fh=fh)
        info.keep_cache = bool(node.keep_cache and (unchanged or attrs.immutable))
        info.direct_io = node.direct_io
        return info

    @_guard
    @_recorded
    async def read(self, fh: int, off: int, size: int) -> bytes:
        return await self._files[fh].handle.read(off, size)

    async def release(self, fh: int) -> None:
        opened = self._files.pop(fh, None)
        if opened is not None:
            await opened.handle.release()

    # ------------------------------------------------------------------ the rest is read-only

    async def statfs(self, ctx: pyfuse3.RequestContext) -> pyfuse3.StatvfsData:
        s = pyfuse3.StatvfsData()
        s.f_bsize = BLOCK_SIZE
        s.f_frsize = 512
        s.f_blocks = s.f_bfree = s.f_bavail = 0
        s.f_files = len(self._inodes)
        s.f_ffree = s.f_favail = 0
        s.f_namemax = 255
        return s

    async def _read_only(self, *args: Any, **kwargs: Any) -> Any:
        raise pyfuse3.FUSEError(errno.EROFS)

    create = mkdir = mknod = symlink = link = unlink = rmdir = rename = _read_only
    setattr = setxattr = removexattr = write = _read_only

    async def getxattr(self, inode: int, name: bytes, ctx: pyfuse3.RequestContext) -> bytes:
        raise pyfuse3.FUSEError(pyfuse3.ENOATTR)

    async def listxattr(self, inode: int, ctx: pyfuse3.RequestContext) -> Sequence[bytes]:
        return []

"""FUSE operations over the node tree.

Every handler goes through ``_guard``, which turns domain errors into ``FUSEError`` with the
errno of ``errno_map`` and any unexpected exception into EIO (logged with its traceback).
Open files are handles (``handles``), one type per kind of file, chosen at open: the handlers
of open files look the handle up by its number and call it. Only sidecars, scratch files and
``.neurofs/control`` are writable; opening anything else for write answers EROFS, and so does
every call that would change the tree elsewhere, unless a directory implements it (moving or
deleting assets).
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

from neurofs.errors import (
    AlreadyExists,
    IsADirectory,
    NeurofsError,
    NotADirectory,
    NotFound,
    NotPermitted,
    ReadOnly,
)
from neurofs.fs.control_commands import ControlRunner
from neurofs.fs.editing import EditState
from neurofs.fs.errno_map import errno_for
from neurofs.fs.handles import Opener, OpenFile
from neurofs.fs.inodes import InodeTable
from neurofs.fs.saving import Saver
from neurofs.fs.scratch_files import ScratchFiles
from neurofs.io.cache import BLOCK_SIZE, BlockCache
from neurofs.io.stats import Stats
from neurofs.sources import Source
from neurofs.tree.control import ErrorLog
from neurofs.tree.names import is_valid_name
from neurofs.tree.nodes import (
    Attrs,
    ComputedListing,
    Directory,
    EditableFile,
    File,
    Kind,
    Node,
    NodePath,
    Symlink,
)
from neurofs.tree.rejected import RejectedStore
from neurofs.tree.scratch import ScratchFile

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


# What a listing shows of a file sized only by its own stat: writable, so no timeout lets
# the kernel keep this size (getattr is asked before the size is used).


def _listable(directory: Node, children: Sequence[Node]) -> list[Node]:
    """The entries a listing may show: a name that is not a valid directory entry, or one
    already listed, is left out (the sources map server names; this is the last guard)."""
    seen: set[str] = set()
    kept: list[Node] = []
    for child in children:
        if not is_valid_name(child.name) or child.name in seen:
            log.warning("%s: left out an entry named %r", "/".join(directory.key), child.name)
            continue
        seen.add(child.name)
        kept.append(child)
    return kept


def _check_scratch_target(target: Node | None, directory: Directory) -> None:
    """A rename that makes a scratch file may replace only a scratch file, and only where
    scratch files may be."""
    if target is not None and not isinstance(target, ScratchFile):
        raise ReadOnly(f"{'/'.join(target.key)} is read-only")
    if not directory.accepts_scratch:
        raise ReadOnly(f"new files cannot be created in {'/'.join(directory.key)}")


@dataclass
class _OpenDir:
    children: Sequence[Node]


class Operations(pyfuse3.Operations):
    def __init__(
        self,
        root: Directory,
        errors: ErrorLog,
        rejected: RejectedStore,
        allow_delete: bool,
        stats: Stats,
        cache: BlockCache,
        sources: Sequence[Source],
    ) -> None:
        """``cache``: the mount's block cache, for the control channel's cache commands;
        ``sources``: the mounted sources, for its refresh command."""
        super().__init__()
        self._stats = stats
        self._root = root
        self._inodes = InodeTable(root)
        self._errors = errors
        self._saver = Saver(errors, rejected)
        self._edits = EditState(self._saver)
        self._scratch = ScratchFiles()
        self._allow_delete = allow_delete
        self._dirs: dict[int, _OpenDir] = {}
        self._files: dict[int, OpenFile] = {}
        self._handles = itertools.count(1)
        self._uid = os.getuid()
        self._gid = os.getgid()
        commands = ControlRunner(self._inodes, self._node_at, errors, cache, sources)
        self._opener = Opener(self._edits, self._saver, commands, self._node_at)

    async def saves_finished(self) -> None:
        """Return once no save is waiting on a server (a graceful shutdown waits for this)."""
        await self._saver.saves_finished()

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

    async def _node(self, inode: int) -> Node:
        entry = self._inodes.entry(inode)
        if entry is None:
            raise pyfuse3.FUSEError(errno.ESTALE)
        if entry.stale_key is not None or entry.node.stale:
            # Moved by a rename, or replaced on the server: find the node at its path again.
            key = entry.stale_key if entry.stale_key is not None else entry.node.key
            entry.node, entry.stale_key = await self._node_at(key), None
        return entry.node

    async def _node_at(self, key: NodePath) -> Node:
        """The node at a path, walked from the root (scratch files included)."""
        node: Node = self._root
        for name in key:
            if not isinstance(node, Directory):
                raise NotFound("/".join(key))
            node = await self._child(node, name)
        return node

    def _entry_attributes(self, inode: int, attrs: Attrs) -> pyfuse3.EntryAttributes:
        e = pyfuse3.EntryAttributes()
        e.st_ino = inode
        e.generation = 0
        # Writable files change under the kernel's feet (commits, scratch files, renames over
        # them): the kernel asks every time.
        if (attrs.writable and attrs.kind is Kind.FILE) or attrs.provisional:
            timeout = 0.0
        else:
            timeout = IMMUTABLE_TIMEOUT if attrs.immutable else MUTABLE_TIMEOUT
        e.entry_timeout = timeout
        e.attr_timeout = timeout
        if attrs.kind is Kind.DIRECTORY:
            e.st_mode = stat.S_IFDIR | (0o755 if attrs.writable else 0o555)
            e.st_nlink = 2
        elif attrs.kind is Kind.SYMLINK:
            e.st_mode = stat.S_IFLNK | 0o777
            e.st_nlink = 1
        elif attrs.write_only:
            e.st_mode = stat.S_IFREG | 0o200
            e.st_nlink = 1
        else:
            e.st_mode = stat.S_IFREG | (0o644 if attrs.writable else 0o444)
            e.st_nlink = 1
        if attrs.private:  # no group or other bits: enforced with -o allow_other
            e.st_mode &= ~(stat.S_IRWXG | stat.S_IRWXO)
        e.st_uid = self._uid
        e.st_gid = self._gid
        e.st_size = attrs.size
        # st_blocks in 512-byte units, so that du reports the remote size.
        e.st_blocks = (attrs.size + 511) // 512
        e.st_blksize = BLOCK_SIZE
        ns = int(attrs.mtime * 1e9)
        e.st_atime_ns = e.st_mtime_ns = e.st_ctime_ns = ns
        return e

    async def _stat(self, node: Node) -> Attrs:
        return self._edits.attrs(node.key) or await node.stat()

    async def _attributes_of(self, node: Node, inode: int) -> pyfuse3.EntryAttributes:
        return self._entry_attributes(inode, await self._stat(node))

    async def _child(self, parent: Directory, name: str) -> Node:
        """A child by name: scratch files first, then the tree."""
        scratch = self._scratch.get(parent.key, name)
        if scratch is not None:
            return scratch
        return await parent.child(name)

    async def _maybe_child(self, parent: Directory, name: str) -> Node | None:
        try:
            return await self._child(parent, name)
        except NotFound:
            return None

    async def _directory(self, inode: int) -> Directory:
        node = await self._node(inode)
        if not isinstance(node, Directory):
            raise NotADirectory("/".join(node.key))
        return node

    def _entry_for(self, node: Node, attrs: Attrs) -> pyfuse3.EntryAttributes:
        inode, _ = self._inodes.remember(node)
        self._inodes.incref(inode)
        return self._entry_attributes(inode, attrs)

    # ------------------------------------------------------------------ lookups and attributes

    @_guard
    @_recorded
    async def lookup(
        self, parent_inode: int, name: bytes, ctx: pyfuse3.RequestContext
    ) -> pyfuse3.EntryAttributes:
        parent = await self._node(parent_inode)
        if not isinstance(parent, Directory):
            raise NotADirectory(str(parent.key))
        text = os.fsdecode(name)
        try:
            child = await self._child(parent, text)
        except NotFound:
            # A zero-inode answer lets the kernel cache the negative lookup briefly.
            e = pyfuse3.EntryAttributes()
            e.st_ino = 0
            e.entry_timeout = NEGATIVE_TIMEOUT
            return e
        return self._entry_for(child, await self._stat(child))

    @_guard
    @_recorded
    async def getattr(self, inode: int, ctx: pyfuse3.RequestContext) -> pyfuse3.EntryAttributes:
        return await self._attributes_of(await self._node(inode), inode)

    @_guard
    async def readlink(self, inode: int, ctx: pyfuse3.RequestContext) -> bytes:
        node = await self._node(inode)
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
        node = await self._node(inode)
        if not isinstance(node, Directory):
            raise NotADirectory(str(node.key))
        # The listing is taken once per open: readdir offsets index into this snapshot, so a
        # listing resumed at any offset never repeats or skips an entry.
        fh = next(self._handles)
        listed = await node.children()
        if isinstance(listed, ComputedListing):
            # Computed entries (a chunk grid): readdir makes each page as it is asked for.
            self._dirs[fh] = _OpenDir(listed)
            return fh
        children = _listable(node, listed)
        names = {c.name for c in children}
        children += [s for s in self._scratch.in_directory(node.key) if s.name not in names]
        self._dirs[fh] = _OpenDir(children)
        return fh

    @_guard
    async def readdir(self, fh: int, start_id: int, token: pyfuse3.ReaddirToken) -> None:
        children = self._dirs[fh].children
        for index in range(start_id, len(children)):
            child = children[index]
            try:
                attrs = self._edits.attrs(child.key) or await child.listed()
            except NotFound:
                # Gone on the server since the listing: left out, not the whole listing lost
                # (the kernel shows an empty directory for a readdir that fails with ENOENT).
                log.info("%s: listed, then not found: left out", "/".join(child.key))
                continue
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
        node = await self._node(inode)
        if isinstance(node, Directory):
            raise IsADirectory(str(node.key))
        if not isinstance(node, File):
            raise pyfuse3.FUSEError(errno.EINVAL)
        if flags & _WRITE_FLAGS:
            return await self._open_for_write(node, flags)
        handle = await self._opener.open_for_read(node, read_exactly=bool(flags & os.O_DIRECT))
        fh = self._add(handle)
        entry = self._inodes.entry(inode)
        # Keep the kernel's page cache only while the file's attributes are unchanged since
        # the previous open; otherwise the kernel drops pages that may be stale.
        unchanged = entry is not None and entry.opened_attrs == handle.attrs
        if entry is not None:
            entry.opened_attrs = handle.attrs
        info = pyfuse3.FileInfo(fh=fh)
        info.keep_cache = bool(node.keep_cache and (unchanged or handle.attrs.immutable))
        info.direct_io = node.direct_io
        return info

    async def _open_for_write(self, node: File, flags: int) -> pyfuse3.FileInfo:
        handle = await self._opener.open_for_write(
            node, truncate=bool(flags & os.O_TRUNC), append=bool(flags & os.O_APPEND)
        )
        info = pyfuse3.FileInfo(fh=self._add(handle))
        info.keep_cache = False
        info.direct_io = False
        return info

    def _add(self, handle: OpenFile) -> int:
        fh = next(self._handles)
        self._files[fh] = handle
        return fh

    def _file(self, fh: int) -> OpenFile:
        handle = self._files.get(fh)
        if handle is None:
            raise pyfuse3.FUSEError(errno.EBADF)
        return handle

    @_guard
    @_recorded
    async def read(self, fh: int, off: int, size: int) -> bytes:
        self._stats.add("fuse_reads")
        return await self._file(fh).read(off, size)

    @_guard
    async def write(self, fh: int, off: int, buf: bytes) -> int:
        return await self._file(fh).write(off, buf)

    @_guard
    async def flush(self, fh: int) -> None:
        handle = self._files.get(fh)
        if handle is not None:
            await handle.flush()

    @_guard
    async def fsync(self, fh: int, datasync: bool) -> None:
        handle = self._files.get(fh)
        if handle is not None:
            await handle.flush()

    async def release(self, fh: int) -> None:
        handle = self._files.pop(fh, None)
        if handle is not None:
            await handle.release()

    # ------------------------------------------------------------------ changing the tree

    @_guard
    async def setattr(
        self,
        inode: int,
        attr: pyfuse3.EntryAttributes,
        fields: pyfuse3.SetattrFields,
        fh: int | None,
        ctx: pyfuse3.RequestContext,
    ) -> pyfuse3.EntryAttributes:
        node = await self._node(inode)
        size = attr.st_size if fields.update_size else None
        handle = self._files.get(fh) if fh is not None else None
        if handle is not None and size is not None:
            await handle.truncate(size)  # ftruncate(2): saved at the handle's close
        else:
            await self._opener.change_unopened(node, size)
        return await self._attributes_of(node, inode)

    @_guard
    async def create(
        self, parent_inode: int, name: bytes, mode: int, flags: int, ctx: pyfuse3.RequestContext
    ) -> tuple[pyfuse3.FileInfo, pyfuse3.EntryAttributes]:
        parent = await self._directory(parent_inode)
        text = os.fsdecode(name)
        existing = await self._maybe_child(parent, text)
        if existing is not None:
            if flags & os.O_EXCL:
                raise AlreadyExists("/".join(existing.key))
            if not isinstance(existing, File):
                raise ReadOnly(f"{'/'.join(existing.key)} is read-only")
            node: File = existing
        elif parent.accepts_scratch:
            node = self._scratch.create(parent.key, text)
        else:
            raise ReadOnly(f"new files cannot be created in {'/'.join(parent.key) or '/'}")
        info = await self._open_for_write(node, flags | os.O_WRONLY)
        attrs = self._entry_for(node, await self._stat(node))
        return info, attrs

    @_guard
    async def unlink(self, parent_inode: int, name: bytes, ctx: pyfuse3.RequestContext) -> None:
        parent = await self._directory(parent_inode)
        text = os.fsdecode(name)
        if self._scratch.remove(parent.key, text) is not None:
            return
        child = await parent.child(text)
        if isinstance(child, EditableFile):
            raise NotPermitted(f"{'/'.join(child.key)} is metadata and cannot be deleted")
        if not self._allow_delete:
            raise NotPermitted(
                f"deleting {'/'.join(child.key)} needs the mount option -o allow_delete"
            )
        await parent.remove_child(text)

    @_guard
    async def rename(
        self,
        parent_inode_old: int,
        name_old: bytes,
        parent_inode_new: int,
        name_new: bytes,
        flags: int,
        ctx: pyfuse3.RequestContext,
    ) -> None:
        if flags:
            raise pyfuse3.FUSEError(errno.EINVAL)  # RENAME_EXCHANGE / NOREPLACE: not offered
        old_dir = await self._directory(parent_inode_old)
        new_dir = await self._directory(parent_inode_new)
        old_name, new_name = os.fsdecode(name_old), os.fsdecode(name_new)
        source = await self._child(old_dir, old_name)
        target = await self._maybe_child(new_dir, new_name)
        if isinstance(source, ScratchFile):
            if isinstance(target, EditableFile):
                # An editor's atomic save: the scratch file's bytes are the new text.
                await self._edits.save_from_scratch(target, source)
                self._scratch.remove(old_dir.key, old_name)
                return
            _check_scratch_target(target, new_dir)
            moved = self._scratch.move(source, new_dir.key, new_name)
            if target is None and new_dir.creates_from(new_name):
                await self._saver.create_from(new_dir, moved)
            return
        if isinstance(source, EditableFile):
            # Editors move the original aside as a backup before writing the new file: the
            # backup becomes a scratch copy and the sidecar itself stays where it is.
            _check_scratch_target(target, new_dir)
            self._scratch.create(new_dir.key, new_name, await self._edits.text_of(source))
            pyfuse3.invalidate_entry_async(parent_inode_old, name_old)
            return
        if isinstance(target, EditableFile | ScratchFile):
            raise ReadOnly(f"{'/'.join(target.key)} cannot be replaced by {old_name}")
        await old_dir.rename_child(old_name, new_dir, new_name)
        # The kernel now reaches the moved inodes by their new names.
        self._inodes.rekey(source.key, (*new_dir.key, new_name))

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

    mknod = symlink = link = _read_only

    @_guard
    async def mkdir(
        self, parent_inode: int, name: bytes, mode: int, ctx: pyfuse3.RequestContext
    ) -> pyfuse3.EntryAttributes:
        parent = await self._directory(parent_inode)
        text = os.fsdecode(name)
        if await self._maybe_child(parent, text) is not None:
            raise AlreadyExists("/".join((*parent.key, text)))
        node = await parent.make_directory(text)
        return self._entry_for(node, await node.stat())

    @_guard
    async def rmdir(self, parent_inode: int, name: bytes, ctx: pyfuse3.RequestContext) -> None:
        parent = await self._directory(parent_inode)
        await parent.remove_directory(os.fsdecode(name))

    async def setxattr(
        self, inode: int, name: bytes, value: bytes, ctx: pyfuse3.RequestContext
    ) -> None:
        # "Not supported" rather than EROFS: tools that copy ACLs and labels (sed -i, cp -a)
        # then carry on quietly.
        raise pyfuse3.FUSEError(errno.ENOTSUP)

    async def removexattr(self, inode: int, name: bytes, ctx: pyfuse3.RequestContext) -> None:
        raise pyfuse3.FUSEError(errno.ENOTSUP)

    @_guard
    async def getxattr(self, inode: int, name: bytes, ctx: pyfuse3.RequestContext) -> bytes:
        value = (await self._node(inode)).xattrs.get(os.fsdecode(name))
        if value is None:
            raise pyfuse3.FUSEError(pyfuse3.ENOATTR)
        return await value()

    @_guard
    async def listxattr(self, inode: int, ctx: pyfuse3.RequestContext) -> Sequence[bytes]:
        # Names only: `ls -l` asks every file, so this never costs a request.
        return [os.fsencode(name) for name in (await self._node(inode)).xattrs]

"""Open files: one handle type per kind of file, chosen once at open by :class:`Opener`.

- ``ReadHandle``: any file opened for reading; reads its node's ``FileHandle`` (for a
  sidecar, a snapshot of the text, remembered as the merge base of the next save).
- ``SidecarWriteHandle``: a sidecar opened for writing; writes its pending edit, which
  flush and fsync commit.
- ``ScratchWriteHandle``: a scratch file opened for writing; writes it in memory, and a
  flush sends it where a new file is a request (WEBKNOSSOS tasks, CAVE states, …).
- ``ControlWriteHandle``: ``.neurofs/control``; each write runs one command.

Every other file opened for writing is refused (EROFS). The fs layer looks a handle up by
its number and calls it; what an operation means for each kind of file is said here once.
"""

from __future__ import annotations

import errno
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable

import pyfuse3

from neurofs.errors import AccessDenied, ReadOnly
from neurofs.fs.control_commands import ControlRunner
from neurofs.fs.editing import Edit, EditState
from neurofs.fs.saving import Saver
from neurofs.tree.control import ControlFile
from neurofs.tree.nodes import (
    Attrs,
    BytesHandle,
    Directory,
    EditableFile,
    File,
    FileHandle,
    Node,
    NodePath,
)
from neurofs.tree.scratch import ScratchFile


class OpenFile(ABC):
    """One open file (one ``fh``). The defaults are those of a file opened for reading."""

    node: File

    @abstractmethod
    async def read(self, offset: int, size: int) -> bytes: ...

    async def write(self, offset: int, data: bytes) -> int:
        raise pyfuse3.FUSEError(errno.EBADF)  # not opened for writing

    async def truncate(self, size: int) -> None:
        raise ReadOnly(f"{'/'.join(self.node.key)} is read-only")

    async def flush(self) -> None:  # noqa: B027 - nothing to send by default
        """close(2) of a descriptor, and fsync: the errno of a failed save is raised here."""

    async def release(self) -> None:  # noqa: B027 - nothing to free by default
        """The last close of the open file (errors reach nobody)."""


class ReadHandle(OpenFile):
    """A file opened for reading: remote bytes, generated text, a snapshot of a sidecar."""

    def __init__(self, node: File, handle: FileHandle, attrs: Attrs) -> None:
        self.node = node
        self.attrs = attrs  # as seen at open: whether the kernel may keep its cached pages
        self._handle = handle

    async def read(self, offset: int, size: int) -> bytes:
        return await self._handle.read(offset, size)

    async def release(self) -> None:
        await self._handle.release()


class SidecarWriteHandle(OpenFile):
    """A sidecar opened for writing: writes go into its pending edit, which every handle
    writing the sidecar shares; a flush commits the edit."""

    def __init__(self, node: EditableFile, edits: EditState, edit: Edit, append: bool) -> None:
        self.node = node
        self._edits = edits
        self._edit = edit
        self._append = append
        edit.join(self)

    @classmethod
    async def open(
        cls, node: EditableFile, edits: EditState, *, truncate: bool, append: bool
    ) -> SidecarWriteHandle:
        return cls(node, edits, await edits.begin(node, truncate=truncate), append)

    def _current(self) -> Edit:
        """After a commit, writes on the same handle start a new edit from the text just
        saved."""
        self._edit = self._edits.resume(self._edit)
        return self._edit

    async def read(self, offset: int, size: int) -> bytes:
        return self._edit.read(offset, size)

    async def write(self, offset: int, data: bytes) -> int:
        self._current().write(offset, data, append=self._append)
        return len(data)

    async def truncate(self, size: int) -> None:
        self._current().truncate(size)

    async def flush(self) -> None:
        await self._edits.flush(self._edit)

    async def release(self) -> None:
        self._edits.release(self._edit, self)


class ScratchWriteHandle(OpenFile):
    """A scratch file opened for writing. Where a new file is a request to the server, a
    flush after writes sends it (``created``)."""

    node: ScratchFile

    def __init__(
        self,
        node: ScratchFile,
        created: Callable[[ScratchFile], Awaitable[None]],
        *,
        truncate: bool,
        append: bool,
    ) -> None:
        self.node = node
        self._created = created
        self._append = append
        # Written through this handle since the last flush: a flush sends it.
        self._wrote = False
        if truncate:
            node.truncate(0)

    async def read(self, offset: int, size: int) -> bytes:
        return self.node.read(offset, size)

    async def write(self, offset: int, data: bytes) -> int:
        self._wrote = True
        self.node.write(offset, data, append=self._append)
        return len(data)

    async def truncate(self, size: int) -> None:
        self.node.truncate(size)

    async def flush(self) -> None:
        if self._wrote:
            self._wrote = False
            await self._created(self.node)


class ControlWriteHandle(OpenFile):
    """``.neurofs/control`` opened for writing: each write is one command, answered with
    the command's errno."""

    def __init__(self, node: ControlFile, commands: ControlRunner) -> None:
        self.node = node
        self._commands = commands

    async def read(self, offset: int, size: int) -> bytes:
        raise AccessDenied("/".join(self.node.key) + " is write-only")

    async def write(self, offset: int, data: bytes) -> int:
        await self._commands.run(data)
        return len(data)

    async def truncate(self, size: int) -> None:
        """`echo … > .neurofs/control` truncates first: nothing to truncate, accepted."""


class Opener:
    """Chooses the handle of each open file from its node's kind, once, at open; and says
    what a change of attributes by path (no open file) does to each kind."""

    def __init__(
        self,
        edits: EditState,
        saver: Saver,
        commands: ControlRunner,
        node_at: Callable[[NodePath], Awaitable[Node]],
    ) -> None:
        self._edits = edits
        self._saver = saver
        self._commands = commands
        self._node_at = node_at

    async def open_for_read(self, node: File, *, read_exactly: bool = False) -> ReadHandle:
        """``read_exactly``: opened with O_DIRECT, the reader manages its own I/O and gets
        nothing fetched ahead."""
        if isinstance(node, EditableFile):
            # Remember what the user read: it is the merge base of their next save.
            text = await node.render()
            self._edits.remember_read(node.key, text)
            return ReadHandle(node, BytesHandle(text), await node.stat())
        attrs = await node.stat()
        handle = await node.open()
        if read_exactly:
            handle.read_exactly()
        return ReadHandle(node, handle, attrs)

    async def open_for_write(self, node: File, *, truncate: bool, append: bool) -> OpenFile:
        if isinstance(node, EditableFile):
            return await SidecarWriteHandle.open(
                node, self._edits, truncate=truncate, append=append
            )
        if isinstance(node, ScratchFile):
            return ScratchWriteHandle(node, self._created, truncate=truncate, append=append)
        if isinstance(node, ControlFile):
            return ControlWriteHandle(node, self._commands)
        raise ReadOnly(f"{'/'.join(node.key)} is read-only")

    async def change_unopened(self, node: Node, size: int | None) -> None:
        """setattr by path: ``size`` set for truncate(2), None for mode, owner and times,
        which sidecars, scratch files and the control file accept and ignore (cp -p, touch,
        editors restoring permissions)."""
        if isinstance(node, EditableFile):
            if size is not None:
                await self._edits.truncate_and_save(node, size)
        elif isinstance(node, ScratchFile):
            if size is not None:
                node.truncate(size)
        elif not isinstance(node, ControlFile):
            raise ReadOnly(f"{'/'.join(node.key)} is read-only")

    async def _created(self, scratch: ScratchFile) -> None:
        """A new file in a creating directory (tasks/, …) is a request: send it now."""
        parent = await self._node_at(scratch.key[:-1])
        if isinstance(parent, Directory) and parent.creates_from(scratch.name):
            await self._saver.create_from(parent, scratch)

"""Pending edits of sidecars: the new text while it is being written, and its merge base.

An edit starts when a sidecar is opened for writing (or truncated by path) and holds the new
text in memory. It is committed when a handle that wrote it is flushed (close) or fsynced:
only flush errors reach ``close(2)``. A commit ends the edit whatever the server answers:
success shows the new server state, failure the old one again (the bytes are kept by
``saving.Saver``).

The merge base is the text the user last *read* from the sidecar, so that a field changed on
the server after they opened the file survives their save of another field.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Hashable, Iterable

from neurofs.errors import InvalidContent, TooLarge
from neurofs.fs.saving import Saver
from neurofs.tree.buffers import resize, write_into
from neurofs.tree.nodes import Attrs, EditableFile, Kind, NodePath
from neurofs.tree.scratch import ScratchFile

# How many "last read" texts to remember (one per sidecar path), and at most how many bytes.
_LAST_READ_ENTRIES = 10_000
_LAST_READ_BYTES = 16 * 1024 * 1024
_EMPTY = "the file is empty; nothing was sent"


class Edit:
    """The text of one sidecar being written, and who writes it (open handles, as tokens)."""

    def __init__(
        self, node: EditableFile, text: bytes, base: bytes | None, writers: Iterable[Hashable] = ()
    ) -> None:
        self.node = node
        self.base = base
        self._buffer = bytearray(text)
        self._writers: set[Hashable] = set(writers)
        # Changed since it began (written, truncated or emptied): a commit has to send it.
        self._dirty = False
        # Set by every write(2). An edit that is dirty, empty and never written was only
        # emptied by O_TRUNC: a shell's `> file` flushes a duplicate descriptor before the
        # command writes.
        self._written = False
        # A write went past the size limit: the kernel reports short writes, so the refusal
        # is repeated at close, where the user is sure to see it.
        self._too_large = False

    @property
    def text(self) -> bytes:
        return bytes(self._buffer)

    @property
    def size(self) -> int:
        return len(self._buffer)

    @property
    def dirty(self) -> bool:
        return self._dirty

    @property
    def too_large(self) -> bool:
        return self._too_large

    @property
    def emptied_only(self) -> bool:
        return self._dirty and not self._written and not self._buffer

    @property
    def has_writers(self) -> bool:
        return bool(self._writers)

    def read(self, offset: int, size: int) -> bytes:
        return bytes(self._buffer[offset : offset + size])

    def write(self, offset: int, data: bytes, *, append: bool = False) -> None:
        self._dirty = self._written = True
        try:
            write_into(
                self._buffer,
                len(self._buffer) if append else offset,
                data,
                self.node.max_edit_bytes,
            )
        except TooLarge:
            self._too_large = True
            raise

    def truncate(self, size: int) -> None:
        resize(self._buffer, size, self.node.max_edit_bytes)
        self._dirty = True

    def empty(self) -> None:
        """Opened with O_TRUNC."""
        del self._buffer[:]
        self._dirty = True

    def join(self, writer: Hashable) -> None:
        self._writers.add(writer)

    def leave(self, writer: Hashable) -> None:
        self._writers.discard(writer)

    def continued(self) -> Edit:
        """A new edit going on from this one after it was committed (more writes on the same
        open files): it starts from, and merges onto, the text just saved."""
        text = self.text
        return Edit(self.node, text, text, self._writers)


class EditState:
    """The pending edit of each sidecar, and the text each sidecar was last read as."""

    def __init__(self, saver: Saver) -> None:
        self._saver = saver
        self._edits: dict[NodePath, Edit] = {}
        self._last_read: OrderedDict[NodePath, bytes] = OrderedDict()
        self._last_read_bytes = 0

    # ------------------------------------------------------------------ reads

    def remember_read(self, key: NodePath, text: bytes) -> None:
        old = self._last_read.pop(key, None)
        self._last_read_bytes += len(text) - (len(old) if old is not None else 0)
        self._last_read[key] = text
        # Bounded in entries and in bytes (a reader walking the pages of a long table reads
        # thousands of texts of MBs): the oldest go first, the one just read stays.
        while len(self._last_read) > 1 and (
            len(self._last_read) > _LAST_READ_ENTRIES or self._last_read_bytes > _LAST_READ_BYTES
        ):
            _, dropped = self._last_read.popitem(last=False)
            self._last_read_bytes -= len(dropped)

    def attrs(self, key: NodePath) -> Attrs | None:
        """While an edit is open, the file is what was written."""
        edit = self._edits.get(key)
        if edit is None:
            return None
        return Attrs(Kind.FILE, edit.size, time.time(), writable=True)

    async def text_of(self, node: EditableFile) -> bytes:
        """What the sidecar holds now: the pending text, else the server's state."""
        edit = self._edits.get(node.key)
        return edit.text if edit is not None else await node.render()

    # ------------------------------------------------------------------ the life of an edit

    async def begin(self, node: EditableFile, *, truncate: bool) -> Edit:
        """The pending edit of ``node`` (a new one starts from its current text)."""
        node.check_writable()
        edit = self._edits.get(node.key)
        if edit is None:
            current = await node.render()
            edit = Edit(node, current, self._last_read.get(node.key, current))
            self._edits[node.key] = edit
        if truncate:
            edit.empty()
        return edit

    def resume(self, previous: Edit) -> Edit:
        """The edit that writes through a handle of ``previous`` go to: ``previous`` itself
        while it is pending, else (after a commit) one going on from the text just saved."""
        edit = self._edits.get(previous.node.key)
        if edit is None:
            edit = previous.continued()
            self._edits[previous.node.key] = edit
        return edit

    async def flush(self, edit: Edit) -> None:
        """close(2) or fsync of a handle writing ``edit``: commit it if it is still pending."""
        if self._edits.get(edit.node.key) is not edit:
            return
        if edit.emptied_only:
            # Opened with O_TRUNC and not written (yet): a shell's `cmd > file` flushes a
            # duplicate of the descriptor before cmd writes. Refuse without ending the edit,
            # so that the writes that follow keep their merge base; release logs the refusal
            # if nothing is ever written.
            raise InvalidContent(_EMPTY)
        await self._commit(edit)

    def release(self, edit: Edit, writer: Hashable) -> None:
        """The last close of a handle writing ``edit``: the edit ends with its last writer
        unless a flush still has to send it."""
        edit.leave(writer)
        key = edit.node.key
        if self._edits.get(key) is not edit or edit.has_writers:
            return
        if not edit.dirty:
            del self._edits[key]
        elif edit.emptied_only:
            # Emptied and never written (close already answered EINVAL): nothing is sent,
            # the sidecar shows the server's state again.
            del self._edits[key]
            self._saver.reject(key, b"", InvalidContent(_EMPTY))

    async def truncate_and_save(self, node: EditableFile, size: int) -> None:
        """truncate(2) by path: no close follows, so the truncation is the save (of the
        pending edit, if one is open)."""
        edit = await self.begin(node, truncate=False)
        edit.truncate(size)
        await self._commit(edit)

    async def save_from_scratch(self, node: EditableFile, scratch: ScratchFile) -> None:
        """An editor's atomic save: a scratch file renamed over the sidecar is its new text,
        merged onto the text the user last read."""
        self._saver.refuse_if_too_large(node.key, scratch)
        await self._save(node, scratch.content, self._last_read.get(node.key))

    async def _commit(self, edit: Edit) -> None:
        """Send a dirty edit; on failure the bytes are kept and the error raised."""
        if not edit.dirty:
            return
        key = edit.node.key
        data = edit.text
        # The edit ends here whatever happens: success shows the new server state, failure
        # shows the old one again (the user's bytes are kept in rejected/).
        self._edits.pop(key, None)
        if edit.too_large:
            limit = edit.node.max_edit_bytes
            exc = TooLarge(f"the file grew beyond {limit} bytes; nothing was sent")
            self._saver.reject(key, data, exc)
            raise exc
        await self._save(edit.node, data, edit.base)

    async def _save(self, node: EditableFile, data: bytes, base: bytes | None) -> None:
        await self._saver.commit_bytes(node, data, base)
        self.remember_read(node.key, data)

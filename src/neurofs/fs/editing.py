"""Pending edits of sidecars, scratch files, and what happens when an edit is committed.

An edit starts when a sidecar is opened for writing (or truncated, or a scratch file is
renamed over it) and holds the new text in memory. It is committed when a handle that wrote
it is flushed (close) or fsynced: only flush errors reach ``close(2)``. A failed commit keeps
the exact bytes under ``.neurofs/rejected/``, writes one line to ``errors.log``, and drops the
edit so that the sidecar shows the server's state again.

The merge base is the text the user last *read* from the sidecar, so that a field changed on
the server after they opened the file survives their save of another field.

Every save is journaled before its first request (``RejectedStore.begin``) and leaves the
journal once the server answered. If the daemon dies in between (kill -9, a crash, power
loss, or a shutdown that cut the save short), the next mount moves the bytes to
``rejected/`` with an ``errors.log`` line saying the save was interrupted and may or may not
have reached the server (:func:`recover_interrupted`).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import time
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import trio

from neurofs.errors import NeurofsError, PartlyRefused, TooLarge
from neurofs.fs.errno_map import errno_for
from neurofs.tree.control import ErrorLog
from neurofs.tree.nodes import Directory, EditableFile, NodePath
from neurofs.tree.rejected import RejectedStore
from neurofs.tree.scratch import ScratchFile

log = logging.getLogger(__name__)

# EditableFiles are metadata: a write beyond this is refused (EFBIG) rather than buffered.
MAX_EDIT_BYTES = 16 * 1024 * 1024
# How many "last read" texts to remember (one per sidecar path).
_LAST_READ_ENTRIES = 10_000


@dataclass
class Edit:
    node: EditableFile
    buffer: bytearray
    base: bytes | None
    dirty: bool = False
    writers: set[int] = field(default_factory=set)
    # Set when a write went past MAX_EDIT_BYTES: the kernel reports short writes, so the
    # refusal is repeated at close, where the user is sure to see it.
    too_large: bool = False
    # Set by every write(2). An edit that is dirty, empty and never written was only emptied
    # by O_TRUNC: a shell's `> file` flushes a duplicate descriptor before the command writes.
    written: bool = False

    @property
    def emptied_only(self) -> bool:
        return self.dirty and not self.written and not self.buffer


def write_into(buffer: bytearray, offset: int, data: bytes, limit: int = MAX_EDIT_BYTES) -> None:
    end = offset + len(data)
    if end > limit:
        raise TooLarge(f"writes beyond {limit} bytes are refused for this file")
    if offset > len(buffer):
        buffer.extend(b"\0" * (offset - len(buffer)))
    buffer[offset:end] = data


def resize(buffer: bytearray, size: int, limit: int = MAX_EDIT_BYTES) -> None:
    if size > limit:
        raise TooLarge(f"files here may not grow beyond {limit} bytes")
    if size < len(buffer):
        del buffer[size:]
    else:
        buffer.extend(b"\0" * (size - len(buffer)))


class EditState:
    def __init__(self, errors: ErrorLog, rejected: RejectedStore) -> None:
        self._errors = errors
        self._rejected = rejected
        self._saves_in_flight = 0
        self._edits: dict[NodePath, Edit] = {}
        self._last_read: OrderedDict[NodePath, bytes] = OrderedDict()
        self._scratch: dict[NodePath, dict[str, ScratchFile]] = {}

    # ------------------------------------------------------------------ reads

    def remember_read(self, key: NodePath, text: bytes) -> None:
        self._last_read[key] = text
        self._last_read.move_to_end(key)
        while len(self._last_read) > _LAST_READ_ENTRIES:
            self._last_read.popitem(last=False)

    def pending(self, key: NodePath) -> Edit | None:
        return self._edits.get(key)

    def last_read(self, key: NodePath) -> bytes | None:
        return self._last_read.get(key)

    def resume(self, previous: Edit) -> Edit:
        """A new edit continuing from ``previous`` after it was committed (more writes on the
        same open file): its base is the text just saved."""
        edit = self._edits.get(previous.node.key)
        if edit is None:
            text = bytes(previous.buffer)
            edit = Edit(previous.node, bytearray(text), text, writers=set(previous.writers))
            self._edits[previous.node.key] = edit
        return edit

    # ------------------------------------------------------------------ edits

    async def begin(self, node: EditableFile, *, truncate: bool) -> Edit:
        """The pending edit of ``node`` (a new one starts from its current text)."""
        node.check_writable()
        edit = self._edits.get(node.key)
        if edit is None:
            current = await node.render()
            base = self._last_read.get(node.key, current)
            edit = Edit(node, bytearray(current), base)
            self._edits[node.key] = edit
        if truncate:
            del edit.buffer[:]
            edit.dirty = True
        return edit

    def drop(self, key: NodePath) -> None:
        self._edits.pop(key, None)

    async def commit(self, edit: Edit) -> None:
        """Send a dirty edit; on failure keep the bytes and log, then re-raise."""
        if not edit.dirty:
            return
        key = edit.node.key
        data = bytes(edit.buffer)
        # The edit ends here whatever happens: success shows the new server state, failure
        # shows the old one again (the user's bytes are kept in rejected/).
        self._edits.pop(key, None)
        if edit.too_large:
            limit = edit.node.max_edit_bytes
            exc = TooLarge(f"the file grew beyond {limit} bytes; nothing was sent")
            self.reject(key, data, exc)
            raise exc
        await self.commit_bytes(edit.node, data, edit.base)

    async def commit_bytes(self, node: EditableFile, data: bytes, base: bytes | None) -> None:
        with self._saving():
            entry = await self._journal(node.key, data)
            try:
                sent = await node.commit(data, base)
            except Exception as exc:  # refused, or a bug: the user's text is kept either way
                self.reject(node.key, data, exc)
                self._rejected.end(entry)
                raise
            # Cancelled (the daemon is stopping): the entry stays for the next mount to keep.
            self._rejected.end(entry)
        if sent:
            log.info("%s: change sent", "/".join(node.key))
        self.remember_read(node.key, data)

    @contextlib.contextmanager
    def _saving(self) -> Iterator[None]:
        self._saves_in_flight += 1
        try:
            yield
        finally:
            self._saves_in_flight -= 1

    async def saves_finished(self) -> None:
        """Return once no save is waiting on a server (polled: used once, at shutdown)."""
        while self._saves_in_flight:
            await trio.sleep(0.05)

    async def _journal(self, key: NodePath, data: bytes) -> Path | None:
        """Make the bytes of a save durable before anything is sent; a save that cannot be
        journaled is refused (EIO) with nothing sent, so no save depends on luck. In a worker
        thread: the fsyncs must not hold up the other requests of the mount."""
        try:
            return await trio.to_thread.run_sync(self._rejected.begin, key, data)
        except OSError as exc:
            error = NeurofsError(
                f"cannot keep a copy of your text before sending it ({exc.strerror}); "
                "nothing was sent"
            )
            self._errors.add("/".join(key), errno.errorcode[errno.EIO], str(error))
            log.warning("%s: %s", "/".join(key), error)
            raise error from None

    def reject(self, key: NodePath, data: bytes, exc: Exception) -> None:
        code = errno_for(exc) if isinstance(exc, NeurofsError) else errno.EIO
        kept = self._rejected.keep(key, data)
        self._errors.add(
            "/".join(key),
            errno.errorcode[code],
            f"{exc} (your text is kept in .neurofs/rejected/{kept})",
        )
        log.warning("%s: write refused (%s): %s", "/".join(key), errno.errorcode[code], exc)

    def refuse_if_too_large(self, key: NodePath, scratch: ScratchFile) -> None:
        """A scratch file refused a write past the size limit holds only the start of what was
        written: it is never sent (EFBIG), and what it holds is kept."""
        if scratch.too_large:
            exc = TooLarge(f"writes beyond {MAX_EDIT_BYTES} bytes were refused; nothing was sent")
            self.reject(key, bytes(scratch.data), exc)
            raise exc

    async def create_from(self, directory: Directory, scratch: ScratchFile, data: bytes) -> None:
        """A new file written in a creating directory: send it; the file becomes the receipt."""
        self.refuse_if_too_large(scratch.key, scratch)
        with self._saving():
            entry = await self._journal(scratch.key, data)
            try:
                receipt = await directory.create_from_file(scratch.name, data)
            except PartlyRefused as exc:
                scratch.data[:] = exc.receipt
                self.reject(scratch.key, exc.refused, exc)
                self._rejected.end(entry)
                raise
            except Exception as exc:  # refused, or a bug: the user's text is kept either way
                self.reject(scratch.key, data, exc)
                self._rejected.end(entry)
                raise
            self._rejected.end(entry)
        scratch.data[:] = receipt

    # ------------------------------------------------------------------ scratch files

    def scratch_in(self, directory: NodePath) -> list[ScratchFile]:
        return list(self._scratch.get(directory, {}).values())

    def scratch(self, directory: NodePath, name: str) -> ScratchFile | None:
        return self._scratch.get(directory, {}).get(name)

    def create_scratch(self, directory: NodePath, name: str, data: bytes = b"") -> ScratchFile:
        node = ScratchFile((*directory, name), data)
        self._scratch.setdefault(directory, {})[name] = node
        return node

    def remove_scratch(self, directory: NodePath, name: str) -> ScratchFile | None:
        entries = self._scratch.get(directory, {})
        node = entries.pop(name, None)
        if not entries:
            self._scratch.pop(directory, None)
        return node

    def move_scratch(self, node: ScratchFile, directory: NodePath, name: str) -> ScratchFile:
        self.remove_scratch(node.key[:-1], node.name)
        moved = node.moved((*directory, name))
        self._scratch.setdefault(directory, {})[name] = moved
        return moved


def recover_interrupted(rejected: RejectedStore, errors: ErrorLog) -> int:
    """Keep the saves of daemons that died before the server answered them (at mount, before
    serving): each goes to rejected/ with an errors.log line. Returns how many."""
    found = rejected.recover_interrupted()
    for save in found:
        when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(save.started))
        message = (
            f"the save started at {when} was interrupted (the daemon stopped before the "
            "server answered): it may or may not have been applied; check the file and "
            f"apply your text again if needed (kept in .neurofs/rejected/{save.kept})"
        )
        errors.add("/".join(save.path), errno.errorcode[errno.EIO], message)
        log.warning("%s: %s", "/".join(save.path), message)
    return len(found)

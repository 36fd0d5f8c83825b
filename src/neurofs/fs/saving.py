"""Sending a save with the promise that its bytes are never lost.

Every save is journaled before its first request (``RejectedStore.begin``) and leaves the
journal once the server answered. A refused save (or one that failed for any other reason)
keeps the exact bytes under ``.neurofs/rejected/`` with one line in ``errors.log``, then the
error goes on to the caller, whose errno reaches ``close(2)``. If the daemon dies in between
(kill -9, a crash, power loss, or a shutdown that cut the save short), the next mount moves
the bytes to ``rejected/`` with an ``errors.log`` line saying the save was interrupted and
may or may not have reached the server (:func:`recover_interrupted`).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import trio

from neurofs.errors import NeurofsError, PartlyRefused, TooLarge
from neurofs.fs.errno_map import errno_for
from neurofs.tree.buffers import MAX_EDIT_BYTES
from neurofs.tree.control import ErrorLog
from neurofs.tree.nodes import Directory, EditableFile, NodePath
from neurofs.tree.rejected import RejectedStore
from neurofs.tree.scratch import ScratchFile

log = logging.getLogger(__name__)


class Saver:
    def __init__(self, errors: ErrorLog, rejected: RejectedStore) -> None:
        self._errors = errors
        self._rejected = rejected
        self._saves_in_flight = 0

    async def commit_bytes(self, node: EditableFile, data: bytes, base: bytes | None) -> None:
        """Send ``data`` as the new text of ``node`` (``base``: the text the user last read);
        on failure keep the bytes and log, then re-raise."""
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

    async def create_from(self, directory: Directory, scratch: ScratchFile) -> None:
        """A new file written in a creating directory: send it; the file becomes the receipt."""
        self.refuse_if_too_large(scratch.key, scratch)
        data = scratch.content
        with self._saving():
            entry = await self._journal(scratch.key, data)
            try:
                receipt = await directory.create_from_file(scratch.name, data)
            except PartlyRefused as exc:
                scratch.replace(exc.receipt)
                self.reject(scratch.key, exc.refused, exc)
                self._rejected.end(entry)
                raise
            except Exception as exc:  # refused, or a bug: the user's text is kept either way
                self.reject(scratch.key, data, exc)
                self._rejected.end(entry)
                raise
            self._rejected.end(entry)
        scratch.replace(receipt)

    def refuse_if_too_large(self, key: NodePath, scratch: ScratchFile) -> None:
        """A scratch file refused a write past the size limit holds only the start of what was
        written: it is never sent (EFBIG), and what it holds is kept."""
        if scratch.too_large:
            exc = TooLarge(f"writes beyond {MAX_EDIT_BYTES} bytes were refused; nothing was sent")
            self.reject(key, scratch.content, exc)
            raise exc

    def reject(self, key: NodePath, data: bytes, exc: Exception) -> None:
        """Keep ``data`` under rejected/ and say why in errors.log (nothing is raised)."""
        code = errno_for(exc) if isinstance(exc, NeurofsError) else errno.EIO
        kept = self._rejected.keep(key, data)
        self._errors.add(
            "/".join(key),
            errno.errorcode[code],
            f"{exc} (your text is kept in .neurofs/rejected/{kept})",
        )
        log.warning("%s: write refused (%s): %s", "/".join(key), errno.errorcode[code], exc)

    async def saves_finished(self) -> None:
        """Return once no save is waiting on a server (polled: used once, at shutdown)."""
        while self._saves_in_flight:
            await trio.sleep(0.05)

    @contextlib.contextmanager
    def _saving(self) -> Iterator[None]:
        self._saves_in_flight += 1
        try:
            yield
        finally:
            self._saves_in_flight -= 1

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

"""Rejected writes: the exact bytes of every write that validation or the server refused.

Kept on disk (the user state dir, mode 0700, files 0600) so they survive unmounts, and shown
read-only under ``.neurofs/rejected/<source>/<path>.<UTC timestamp>``.

A save in progress is journaled first (:class:`SaveJournal`): the user's bytes are on disk
before the first request of the save goes out, and leave the journal only once the server
has answered (accepted, or refused and kept here). A daemon killed in between leaves the
entry behind, and the next mount moves it here: a save is applied, or kept, never lost.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import json
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from neurofs.errors import NotFound
from neurofs.io.durable import make_directory, private_directory, write_durably
from neurofs.tree.names import safe_name
from neurofs.tree.nodes import Attrs, BytesHandle, Directory, File, FileHandle, Kind, Node, NodePath

log = logging.getLogger(__name__)


class RejectedStore:
    def __init__(self, directory: Path, journal: Path | None = None) -> None:
        self.directory = directory
        private_directory(directory)
        # Without a journal directory (unit tests of one layer) saves are not journaled.
        self.journal = SaveJournal(journal) if journal is not None else None

    def begin(self, path: NodePath, data: bytes) -> Path | None:
        """Journal a save of ``data`` to ``path`` before anything is sent (OSError if the
        bytes cannot be made durable); pass the result to :meth:`end` once answered."""
        return self.journal.begin(path, data) if self.journal is not None else None

    def end(self, entry: Path | None) -> None:
        if entry is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(entry)

    def recover_interrupted(self) -> list[Interrupted]:
        """Move the saves of daemons that died mid-save into this store."""
        return self.journal.recover(self) if self.journal is not None else []

    def close(self) -> None:
        if self.journal is not None:
            self.journal.close()

    def keep(self, path: NodePath, data: bytes) -> str:
        """Store ``data`` for the mount path ``path``; return its path under rejected/."""
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        parts = [safe_name(p) for p in path]
        target = self.directory
        for part in parts[:-1]:  # each level 0700 and durable, like the file below
            target = target / part
            make_directory(target)
        # The stamp counts towards the 255-byte name limit (a long name is cut and hashed).
        name = safe_name(parts[-1], f".{stamp}")
        n = 1
        while (target / name).exists():  # two refusals in the same second
            n += 1
            name = safe_name(parts[-1], f".{stamp}.{n}")
        # Durable before the caller deletes the journal entry that also holds these bytes.
        tmp = target / f".rejected-{os.getpid()}-{time.monotonic_ns()}.tmp"
        write_durably(target / name, data, temp=tmp)
        return "/".join([*parts[:-1], name])


@dataclass(frozen=True)
class Interrupted:
    """A save whose daemon died before the server answered: it may or may not have been
    applied. ``kept`` is its path under rejected/."""

    path: NodePath
    kept: str
    started: float


_ENTRY_SUFFIX = ".save"


class SaveJournal:
    """Saves in progress, one file each (a JSON header line with the mount path, then the
    bytes), in a directory per daemon: ``<journal>/<pid>-<random>/``. The daemon holds an
    flock on the directory's ``lock`` file for its whole life, so another daemon can tell a
    live journal (locked) from one whose daemon died (lock free) and recover only the latter.
    """

    def __init__(self, directory: Path) -> None:
        private_directory(directory)
        self._root = directory
        self._own = directory / f"{os.getpid()}-{os.urandom(4).hex()}"
        self._own.mkdir(mode=0o700)
        self._lock_fd = os.open(self._own / "lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        self._numbers = itertools.count(1)

    def begin(self, path: NodePath, data: bytes) -> Path:
        header = json.dumps({"path": list(path), "started": time.time()}).encode()
        entry = self._own / f"{next(self._numbers):010d}{_ENTRY_SUFFIX}"
        write_durably(entry, header + b"\n" + data)
        return entry

    def close(self) -> None:
        """At a clean exit: an empty journal goes; one with entries stays for the next mount
        (a save cut short by the shutdown)."""
        if self._lock_fd < 0:
            return
        if not any(p.name.endswith(_ENTRY_SUFFIX) for p in self._own.iterdir()):
            with contextlib.suppress(OSError):
                os.unlink(self._own / "lock")
                os.rmdir(self._own)
        os.close(self._lock_fd)
        self._lock_fd = -1

    def recover(self, store: RejectedStore) -> list[Interrupted]:
        found: list[Interrupted] = []
        for journal in sorted(self._root.iterdir()):
            if journal != self._own and journal.is_dir() and not journal.is_symlink():
                found += self._recover_dead(journal, store)
        return found

    def _recover_dead(self, journal: Path, store: RejectedStore) -> list[Interrupted]:
        try:
            fd = os.open(journal / "lock", os.O_RDWR | os.O_CLOEXEC | os.O_NOFOLLOW)
        except FileNotFoundError:
            # Being created or removed by its daemon; entries are only ever written under a
            # held lock, so there is nothing to recover.
            return []
        except OSError as exc:
            log.warning("cannot open the save journal %s: %s", journal, exc)
            return []
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return []  # its daemon is alive
            found = [_move(entry, store) for entry in sorted(journal.glob("*" + _ENTRY_SUFFIX))]
            for leftover in journal.iterdir():  # the lock, half-written entries (never sent)
                with contextlib.suppress(OSError):
                    os.unlink(leftover)
            with contextlib.suppress(OSError):
                os.rmdir(journal)
            return found
        finally:
            os.close(fd)


def _move(entry: Path, store: RejectedStore) -> Interrupted:
    """Keep a journal entry's bytes in the store (first), then delete the entry: a crash in
    between keeps the bytes twice, never zero times."""
    raw = entry.read_bytes()
    head, _, data = raw.partition(b"\n")
    try:
        header = json.loads(head)
        path = tuple(str(p) for p in header["path"]) or ("unknown",)
        started = float(header["started"])
    except (ValueError, KeyError, TypeError):
        path, started, data = ("unknown", entry.name), entry.stat().st_mtime, raw
    kept = store.keep(path, data)
    entry.unlink()
    return Interrupted(path, kept, started)


class LocalFile(File):
    """A read-only view of a local file."""

    def __init__(self, key: NodePath, path: Path) -> None:
        super().__init__(key)
        self._path = path

    async def stat(self) -> Attrs:
        st = self._path.stat()
        return Attrs(Kind.FILE, st.st_size, st.st_mtime, private=True)

    async def open(self) -> FileHandle:
        return BytesHandle(self._path.read_bytes())


class LocalDirectory(Directory):
    """A read-only view of a local directory (hidden temporary files left out)."""

    def __init__(self, key: NodePath, path: Path) -> None:
        super().__init__(key)
        self._path = path

    async def stat(self) -> Attrs:
        return Attrs(Kind.DIRECTORY, 0, self._path.stat().st_mtime, private=True)

    def _node(self, entry: Path) -> Node:
        key = (*self.key, entry.name)
        return LocalDirectory(key, entry) if entry.is_dir() else LocalFile(key, entry)

    async def children(self) -> Sequence[Node]:
        if not self._path.is_dir():
            return []
        return [self._node(e) for e in sorted(self._path.iterdir()) if not e.name.startswith(".")]

    async def child(self, name: str) -> Node:
        entry = self._path / name
        if name.startswith(".") or "/" in name or not entry.exists():
            raise NotFound("/".join((*self.key, name)))
        return self._node(entry)

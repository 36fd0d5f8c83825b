"""Rejected writes: the exact bytes of every write that validation or the server refused.

Kept on disk (the user state dir, mode 0700, files 0600) so they survive unmounts, and shown
read-only under ``.neurofs/rejected/<source>/<path>.<UTC timestamp>``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path

from neurofs.errors import NotFound
from neurofs.tree.names import safe_name
from neurofs.tree.nodes import Attrs, BytesHandle, Directory, File, FileHandle, Key, Kind, Node


class RejectedStore:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        directory.chmod(0o700)

    def keep(self, path: Key, data: bytes) -> str:
        """Store ``data`` for the mount path ``path``; return its path under rejected/."""
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        parts = [safe_name(p) for p in path]
        target = self.directory.joinpath(*parts[:-1])
        target.mkdir(parents=True, exist_ok=True, mode=0o700)
        name = f"{parts[-1]}.{stamp}"
        n = 1
        while (target / name).exists():  # two refusals in the same second
            n += 1
            name = f"{parts[-1]}.{stamp}.{n}"
        tmp = target / f".{name}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        tmp.rename(target / name)
        return "/".join([*parts[:-1], name])


class LocalFile(File):
    """A read-only view of a local file."""

    def __init__(self, key: Key, path: Path) -> None:
        super().__init__(key)
        self._path = path

    async def stat(self) -> Attrs:
        st = self._path.stat()
        return Attrs(Kind.FILE, st.st_size, st.st_mtime)

    async def open(self) -> FileHandle:
        return BytesHandle(self._path.read_bytes())


class LocalDirectory(Directory):
    """A read-only view of a local directory (hidden temporary files left out)."""

    def __init__(self, key: Key, path: Path) -> None:
        super().__init__(key)
        self._path = path

    async def stat(self) -> Attrs:
        return Attrs(Kind.DIRECTORY, 0, self._path.stat().st_mtime)

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

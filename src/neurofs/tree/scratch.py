"""Scratch files: what editors and tools create next to sidecars (swap files, backups,
``sed -i`` and atomic-save temporaries). They live in memory only, are listed with the
directory's other entries, and vanish on unlink or unmount. Renaming one over a sidecar
commits its content (the fs layer does that)."""

from __future__ import annotations

import time

from neurofs.errors import TooLarge
from neurofs.tree.buffers import resize, write_into
from neurofs.tree.nodes import Attrs, File, FileHandle, Kind, NodePath


class ScratchHandle(FileHandle):
    def __init__(self, scratch: ScratchFile) -> None:
        self._scratch = scratch

    async def read(self, offset: int, size: int) -> bytes:
        return self._scratch.read(offset, size)


class ScratchFile(File):
    def __init__(self, key: NodePath, data: bytes = b"") -> None:
        super().__init__(key)
        self._data = bytearray(data)
        self.mtime = time.time()
        # A write past the size limit was refused: the data is only the start of the file,
        # so it is never sent (until the file is truncated and written again).
        self._too_large = False

    @property
    def content(self) -> bytes:
        return bytes(self._data)

    @property
    def too_large(self) -> bool:
        return self._too_large

    def read(self, offset: int, size: int) -> bytes:
        return bytes(self._data[offset : offset + size])

    def write(self, offset: int, data: bytes, *, append: bool = False) -> None:
        try:
            write_into(self._data, len(self._data) if append else offset, data)
        except TooLarge:
            self._too_large = True
            raise
        self.mtime = time.time()

    def truncate(self, size: int) -> None:
        """Resize (truncate(2), O_TRUNC); a file cut or emptied may be written whole again."""
        resize(self._data, size)
        self._too_large = False

    def replace(self, data: bytes) -> None:
        """The whole content becomes ``data`` (a creation request's receipt)."""
        self._data[:] = data

    def moved(self, key: NodePath) -> ScratchFile:
        copy = ScratchFile(key, self.content)
        copy.mtime = self.mtime
        copy._too_large = self._too_large
        return copy

    async def stat(self) -> Attrs:
        return Attrs(Kind.FILE, len(self._data), self.mtime, writable=True)

    async def open(self) -> FileHandle:
        return ScratchHandle(self)

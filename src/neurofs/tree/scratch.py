"""Scratch files: what editors and tools create next to sidecars (swap files, backups,
``sed -i`` and atomic-save temporaries). They live in memory only, are listed with the
directory's other entries, and vanish on unlink or unmount. Renaming one over a sidecar
commits its content (the fs layer does that)."""

from __future__ import annotations

import time

from neurofs.tree.nodes import Attrs, File, FileHandle, Kind, NodePath


class ScratchHandle(FileHandle):
    def __init__(self, scratch: ScratchFile) -> None:
        self._scratch = scratch

    async def read(self, offset: int, size: int) -> bytes:
        return bytes(self._scratch.data[offset : offset + size])


class ScratchFile(File):
    def __init__(self, key: NodePath, data: bytes = b"") -> None:
        super().__init__(key)
        self.data = bytearray(data)
        self.mtime = time.time()
        # A write past the size limit was refused: ``data`` is only the start of the file, so
        # it is never sent (until the file is truncated and written again).
        self.too_large = False

    def moved(self, key: NodePath) -> ScratchFile:
        copy = ScratchFile(key, bytes(self.data))
        copy.mtime = self.mtime
        copy.too_large = self.too_large
        return copy

    async def stat(self) -> Attrs:
        return Attrs(Kind.FILE, len(self.data), self.mtime, writable=True)

    async def open(self) -> FileHandle:
        return ScratchHandle(self)

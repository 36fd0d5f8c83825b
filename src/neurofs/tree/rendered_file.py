"""A file whose bytes are rendered once into the cache directory (``io/cache/rendered.py``)
and served from disk: frozen CAVE tables as Parquet, a root's supervoxel ids.

Its size is exact: the file is rendered at its first lookup (the kernel asks for the size
before anything is read), and later opens, other readers and later mounts read it with no
request. A listing never renders it: until the file is there, the listing's attributes are
provisional and the kernel looks the file up again.
"""

from __future__ import annotations

import os

import trio

from neurofs.errors import RemoteError
from neurofs.io.cache.rendered import Render, RenderedFile, RenderedFiles
from neurofs.tree.nodes import Attrs, File, FileHandle, Kind, NodePath


class _RenderedHandle(FileHandle):
    """Reads of a rendered file. The descriptor keeps the bytes readable even if the file is
    cleared from the cache meanwhile."""

    def __init__(self, fd: int) -> None:
        self._fd = fd

    async def read(self, offset: int, size: int) -> bytes:
        return await trio.to_thread.run_sync(os.pread, self._fd, size, offset)

    async def release(self) -> None:
        os.close(self._fd)


class RenderedFileNode(File):
    """``identity``'s file in ``rendered`` (named with ``suffix``), made by ``render`` when it
    is not there. ``budget``: see ``RenderedFiles.ensure``."""

    # The bytes never change under the same identity.
    keep_cache = True

    def __init__(
        self,
        key: NodePath,
        rendered: RenderedFiles,
        identity: str,
        suffix: str,
        render: Render,
        *,
        budget: tuple[int, int] | None = None,
    ) -> None:
        super().__init__(key)
        self._rendered = rendered
        self._identity, self._suffix = identity, suffix
        self._render = render
        self._budget = budget

    async def _file(self) -> RenderedFile:
        return await self._rendered.ensure(
            self._identity, self._suffix, self._render, budget=self._budget
        )

    async def stat(self) -> Attrs:
        return Attrs(Kind.FILE, (await self._file()).size, 0.0, immutable=True)

    async def listed(self) -> Attrs:
        found = self._rendered.find(self._identity, self._suffix)
        if found is None:
            return Attrs(Kind.FILE, 0, 0.0, provisional=True)
        return Attrs(Kind.FILE, found.size, 0.0, immutable=True)

    async def open(self) -> FileHandle:
        for _ in range(2):
            found = await self._file()
            try:
                return _RenderedHandle(os.open(found.path, os.O_RDONLY | os.O_CLOEXEC))
            except FileNotFoundError:
                continue  # cleared from the cache since the look: render it again
        raise RemoteError(f"{'/'.join(self.key)}: removed from the cache while opened")

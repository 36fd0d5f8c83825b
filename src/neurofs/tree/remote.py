"""Files whose bytes live on a server and are read through the block cache."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from neurofs.io.fetcher import Assembled, Fetcher, RemoteObject
from neurofs.io.readahead import GridHint, ReadPattern
from neurofs.tree.nodes import Attrs, File, FileHandle, Kind, NodePath


class RemoteHandle(FileHandle):
    def __init__(
        self, fetcher: Fetcher, obj: RemoteObject | Assembled, grid: GridHint | None
    ) -> None:
        self._fetcher = fetcher
        self._obj = obj
        self._pattern = ReadPattern(grid=grid)

    async def read(self, offset: int, size: int) -> bytes:
        return await self._fetcher.read(self._obj, offset, size, self._pattern)

    def read_exactly(self) -> None:
        self._pattern.speculative = False


class RemoteFile(File):
    """A remote object as a file (or a file assembled from remote objects). ``resolve``
    returns the object to read (it may need a request, e.g. to learn a blob id), called once
    per open. ``grid`` is the source's hint of where the object sits among its neighbours,
    for read-ahead (``io/readahead.py``)."""

    def __init__(
        self,
        key: NodePath,
        *,
        size: int,
        mtime: float,
        fetcher: Fetcher,
        resolve: Callable[[], Awaitable[RemoteObject | Assembled]],
        immutable: bool,
        xattrs: Mapping[str, Callable[[], Awaitable[bytes]]] | None = None,
        grid: GridHint | None = None,
    ) -> None:
        super().__init__(key)
        if xattrs is not None:
            self.xattrs = xattrs
        self._attrs = Attrs(Kind.FILE, size, mtime, immutable=immutable)
        self._fetcher = fetcher
        self._resolve = resolve
        self._grid = grid
        # Content-addressed bytes never change under the same node: let the kernel keep pages.
        self.keep_cache = True

    async def stat(self) -> Attrs:
        return self._attrs

    async def open(self) -> FileHandle:
        return RemoteHandle(self._fetcher, await self._resolve(), self._grid)

    async def drop_cached(self) -> int:
        """Forget this file's cached bytes (memory and disk); how many blocks were on disk."""
        return await self._fetcher.drop(await self._resolve())

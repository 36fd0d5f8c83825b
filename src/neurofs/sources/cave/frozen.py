"""Long tables as they were: a frozen version's table, as read-only pages and as Parquet
parts, and a live table at an instant (``at/<time>/``), as read-only pages.

```
versions/<n>/
    synapse.csv                      a table of at most PAGED_ABOVE rows: one file
    synapse.parquet                  the same as one Parquet file
    synapse_large/                   a longer one: read-only pages by id range
        rows-000000001-000010000.csv     (the names, ranges and CSV of the live pages)
        …
    synapse_large.parquet/           the same pages as Parquet parts, one per page
        part-00000.parquet               ids 1–10,000
        …
```

The page machinery is ``pages.py``'s: names computed from the frozen count (one request, held
for the mount), rows asked by id range. A frozen page is immutable, so the kernel may keep its
attributes and bytes; its text is held in the mount's page LRU under its content identity
(datastack, version, table, ids). A part is rendered at its first lookup into the cache's
rendered files (``parquet.VersionParquet`` with an id range), so Dask or pyarrow reading a few
parts renders those parts only; listing renders nothing (provisional attributes). Pages of an
instant are the live query at that ``timestamp`` by the same id ranges, read-only but not
immutable (an instant still to come may see new rows).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Hashable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from neurofs.errors import NotFound
from neurofs.sources.cave import parquet
from neurofs.sources.cave.api import IdRange
from neurofs.sources.cave.pages import page_count, page_ids, page_index, page_name, table_format
from neurofs.sources.cave.table_format import render_csv
from neurofs.tree.nodes import Attrs, BytesHandle, Directory, File, FileHandle, Kind, Node, NodePath

if TYPE_CHECKING:
    from neurofs.io.cache.rendered import RenderedFiles
    from neurofs.sources.cave.tree import CaveContext

_PART_PREFIX = "part-"
_PART_NAME = re.compile(r"^part-([0-9]+)\.parquet$")


def part_name(index: int, pages: int) -> str:
    width = max(5, len(str(pages - 1)))
    return f"{_PART_PREFIX}{index:0{width}d}{parquet.SUFFIX}"


def part_index(name: str, pages: int) -> int | None:
    """The part a name names (only the names ``part_name`` gives), or None."""
    found = _PART_NAME.match(name)
    if found is None or not int(found.group(1)) < pages:
        return None
    index = int(found.group(1))
    return index if part_name(index, pages) == name else None


# The rows of one page, by id (not yet sorted).
RowsOf = Callable[[IdRange], Awaitable[list[dict[str, Any]]]]


class ReadOnlyPagesDir(Directory):
    """Read-only pages of a long table as it was: the pages of a frozen version
    (``versions/<n>/<table>/``) or of the live table at an instant (``at/<instant>/``)."""

    def __init__(
        self,
        key: NodePath,
        ctx: CaveContext,
        datastack: str,
        table: str,
        *,
        count: Callable[[], Awaitable[int]],
        rows: RowsOf,
        identity: tuple[Hashable, ...],
        immutable: bool,
    ) -> None:
        super().__init__(key)
        self._ctx, self._ds, self._table = ctx, datastack, table
        self._count, self._rows, self._identity = count, rows, identity
        self.immutable = immutable

    async def stat(self) -> Attrs:
        return Attrs(Kind.DIRECTORY, 0, 0.0, immutable=self.immutable)

    async def _pages(self) -> int:
        return page_count(await self._count())

    def _page(self, index: int, pages: int) -> ReadOnlyPage:
        key = (*self.key, page_name(index, pages))
        return ReadOnlyPage(key, self, page_ids(index, pages))

    async def children(self) -> Sequence[Node]:
        pages = await self._pages()
        return [self._page(i, pages) for i in range(pages)]

    async def child(self, name: str) -> Node:
        pages = await self._pages()
        index = page_index(name, pages)
        if index is None:
            raise NotFound("/".join((*self.key, name)))
        return self._page(index, pages)

    async def render(self, ids: IdRange) -> bytes:
        """A page's CSV, held in the mount's page LRU under its content identity (never the
        (datastack, table, …) key of a live page, which a write to the live table forgets)."""
        held = (*self._identity, ids)
        text = self._ctx.pages.get(held)
        if text is None:
            rows = await self._rows(ids)
            rows.sort(key=lambda r: int(r.get("id") or 0))
            text = render_csv(await table_format(self._ctx.api, self._ds, self._table), rows)
            self._ctx.pages.put(held, text)
        return text

    def held(self, ids: IdRange) -> bytes | None:
        return self._ctx.pages.get((*self._identity, ids))


def frozen_pages(
    key: NodePath, ctx: CaveContext, datastack: str, version: int, table: str
) -> ReadOnlyPagesDir:
    """``versions/<n>/<table>/``: a long frozen table's pages, immutable."""
    api = ctx.api

    async def count() -> int:
        return await api.version_count(datastack, version, table)

    async def rows(ids: IdRange) -> list[dict[str, Any]]:
        return await api.version_rows(datastack, version, table, ids=ids)

    identity = ("version", datastack, version, table)
    return ReadOnlyPagesDir(
        key, ctx, datastack, table, count=count, rows=rows, identity=identity, immutable=True
    )


def pages_at(
    key: NodePath, ctx: CaveContext, datastack: str, table: str, when: datetime
) -> ReadOnlyPagesDir:
    """``at/<instant>/``: a long table's rows valid at an instant, in pages named from the
    table's count (pages of ids made after the instant hold the header only)."""
    api = ctx.api

    async def count() -> int:
        return await api.count(datastack, table)

    async def rows(ids: IdRange) -> list[dict[str, Any]]:
        return await api.rows(datastack, table, at=when, ids=ids)

    # Held under the table's own key: a write to the table forgets them (``pages.forget``),
    # as an instant still to come may see it; the kernel keeps nothing for long.
    identity = (datastack, table, "at", when)
    return ReadOnlyPagesDir(
        key, ctx, datastack, table, count=count, rows=rows, identity=identity, immutable=False
    )


class ReadOnlyPage(File):
    """One read-only page: the rows with ids in its range, by id."""

    def __init__(self, key: NodePath, pages: ReadOnlyPagesDir, ids: IdRange) -> None:
        super().__init__(key)
        self._pages, self._ids = pages, ids
        self._immutable = pages.immutable
        self.keep_cache = self._immutable  # the bytes never change

    async def listed(self) -> Attrs:
        # ``ls`` of a thousand pages renders none of them; ``stat`` of one renders that one.
        text = self._pages.held(self._ids)
        if text is None:
            return Attrs(Kind.FILE, 0, 0.0, provisional=True)
        return Attrs(Kind.FILE, len(text), 0.0, immutable=self._immutable)

    async def stat(self) -> Attrs:
        size = len(await self._pages.render(self._ids))
        return Attrs(Kind.FILE, size, 0.0, immutable=self._immutable)

    async def open(self) -> FileHandle:
        return BytesHandle(await self._pages.render(self._ids))


class ParquetPartsDir(Directory):
    """``versions/<n>/<table>.parquet/``: a long frozen table as Parquet, one part per page
    (the same id ranges), each rendered into the cache at its first lookup."""

    def __init__(
        self,
        key: NodePath,
        ctx: CaveContext,
        rendered: RenderedFiles,
        datastack: str,
        version: int,
        table: str,
    ) -> None:
        super().__init__(key)
        self._ctx, self._rendered = ctx, rendered
        self._ds, self._version, self._table = datastack, version, table

    async def stat(self) -> Attrs:
        return Attrs(Kind.DIRECTORY, 0, 0.0, immutable=True)

    async def _pages(self) -> int:
        return page_count(await self._ctx.api.version_count(self._ds, self._version, self._table))

    def _part(self, index: int, pages: int) -> parquet.VersionParquet:
        key = (*self.key, part_name(index, pages))
        api, ids = self._ctx.api, page_ids(index, pages)
        return parquet.VersionParquet(
            key, api, self._rendered, self._ds, self._version, self._table, ids
        )

    async def children(self) -> Sequence[Node]:
        pages = await self._pages()
        return [self._part(i, pages) for i in range(pages)]

    async def child(self, name: str) -> Node:
        pages = await self._pages()
        index = part_index(name, pages)
        if index is None:
            raise NotFound("/".join((*self.key, name)))
        return self._part(index, pages)

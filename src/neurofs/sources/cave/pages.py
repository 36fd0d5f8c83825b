"""A table too long for one file: ``tables/<table>/annotations/``, a directory of pages.

```
annotations/
    rows-000000001-000010000.csv   the valid rows with ids 1–10,000 (editable)
    rows-000010001-000020000.csv   …
    rows-009990001-010000000.csv   the last page: every id from 9,990,001 on
    append.csv                     the header; rows written after it are POSTed as new rows
```

Why pages by id range: a file must tell its exact size at ``stat``, and a table's CSV length
is known only once rendered, so one file of 10,000,000 rows would have to be fetched whole
before ``head`` could read its first line. A page is small, so its size is known once that
page alone is read. Its rows are asked by ``id`` range (``filter_greater_equal_dict`` /
``filter_less_dict`` on the primary key, which the engine's database answers from its index),
not by ``offset``, which the database walks row by row: a page costs the same at the end of a
table of 337,000,000 rows as at its start, and a page stays the same rows when others change.
The page names are computed from the table's count (every id the table ever gave, so ids run
from 1 to it): ``ls`` asks for the count alone.

Every page is an ordinary table file for editing: rewriting one updates and deletes rows of
that page only (``plan_change`` against the page's current rows; ids of other pages are
refused), and rows without an id are new rows. ``append.csv`` takes new rows only, so ``>>``
and pandas ``to_csv(mode="a", header=False)`` send exactly the rows appended and read nothing
of the table.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from neurofs.errors import InvalidContent, NotFound, NotPermitted
from neurofs.sources.cave.api import POST_LIMIT, CaveApi, IdRange
from neurofs.sources.cave.table_format import (
    ParsedRow,
    TableChange,
    TableFormat,
    flat_to_nested,
    format_from_schema,
    parse_csv,
    plan_change,
    render_csv,
)
from neurofs.tree.nodes import (
    Attrs,
    BytesHandle,
    Directory,
    EditableFile,
    FileHandle,
    Kind,
    Node,
    NodePath,
)

if TYPE_CHECKING:
    from neurofs.sources.cave.tree import CaveContext

# Tables with more rows than this (their count) are shown as pages. A whole table is read
# into memory to render it as one file (about 1.4 kB a row as parsed records): 100,000 rows
# keep that near 150 MB.
PAGED_ABOVE = 100_000
# Ids per page: about 2.5 MB of CSV for a synapse table, one or two queries.
PAGE_ROWS = 10_000
# Rendered pages held between a stat and the reads that follow it (a few MB each).
PAGES_HELD = 6

_PAGE_NAME = re.compile(r"^rows-(\d+)-(\d+)\.csv$")
APPEND_NAME = "append.csv"


async def table_format(api: CaveApi, datastack: str, table: str) -> TableFormat:
    """A table's CSV columns, from its schema."""
    return format_from_schema((await api.table_schema(datastack, table)).model)


@dataclass
class PageTexts:
    """The last few rendered pages, so that ``stat`` and the reads after it render a page
    once; bounded by count, since a page's text is a few MB and a table has thousands."""

    capacity: int = PAGES_HELD
    _held: OrderedDict[Hashable, bytes] = field(default_factory=OrderedDict)

    def get(self, key: Hashable) -> bytes | None:
        text = self._held.get(key)
        if text is not None:
            self._held.move_to_end(key)
        return text

    def put(self, key: Hashable, text: bytes) -> None:
        self._held[key] = text
        self._held.move_to_end(key)
        while len(self._held) > self.capacity:
            self._held.popitem(last=False)

    def forget(self, datastack: str, table: str) -> None:
        for key in [k for k in self._held if isinstance(k, tuple) and k[:2] == (datastack, table)]:
            del self._held[key]


def page_count(rows: int) -> int:
    """How many pages show a table whose ids run from 1 to ``rows``."""
    return max(1, -(-rows // PAGE_ROWS))


def page_name(index: int, pages: int) -> str:
    lo = index * PAGE_ROWS + 1
    hi = (index + 1) * PAGE_ROWS
    width = max(9, len(str(pages * PAGE_ROWS)))
    return f"rows-{lo:0{width}d}-{hi:0{width}d}.csv"


def page_ids(index: int, pages: int) -> IdRange:
    """The ids of a page: ``PAGE_ROWS`` of them; the last page holds every id from its first
    on (ids a client chose beyond the count, or past a frozen table's count)."""
    lo = index * PAGE_ROWS + 1
    return (lo, None if index == pages - 1 else lo + PAGE_ROWS)


def page_index(name: str, pages: int) -> int | None:
    """The page a name names (only the names ``page_name`` gives), or None."""
    found = _PAGE_NAME.match(name)
    if found is None:
        return None
    index = (int(found.group(1)) - 1) // PAGE_ROWS
    if not 0 <= index < pages or page_name(index, pages) != name:
        return None
    return index


async def send_change(ctx: CaveContext, datastack: str, table: str, change: TableChange) -> bool:
    """Send what a save of table rows means: POSTs and PUTs in batches the engine takes,
    one DELETE. False when there is nothing to send. Deleting needs ``allow_delete``."""
    if change.delete and not ctx.allow_delete:
        raise NotPermitted(
            f"the save removes {len(change.delete)} rows (ids {change.delete[:5]}…); "
            "deleting annotations needs the mount option -o allow_delete"
        )
    if not (change.post or change.put or change.delete):
        return False
    api = ctx.api
    path = f"table/{table}/annotations"

    async def send(method: str, body: dict[str, Any], rows: Sequence[ParsedRow]) -> None:
        try:
            await api.send(datastack, method, path, body)
        except InvalidContent as exc:
            first, last = rows[0].number, rows[-1].number
            raise InvalidContent(f"rows {first}–{last}: the server refused: {exc}") from None

    try:
        for start in range(0, len(change.post), POST_LIMIT):
            batch = change.post[start : start + POST_LIMIT]
            await send("POST", {"annotations": [r.annotation for r in batch]}, batch)
        for start in range(0, len(change.put), POST_LIMIT):
            batch = change.put[start : start + POST_LIMIT]
            await send("PUT", {"annotations": [{"id": r.id, **r.annotation} for r in batch]}, batch)
        if change.delete:
            await api.send(datastack, "DELETE", path, {"annotation_ids": change.delete})
    finally:
        forget(ctx, datastack, table)
    return True


def forget(ctx: CaveContext, datastack: str, table: str) -> None:
    """Drop what the mount holds of a table after it changed."""
    ctx.api.forget_table(datastack, table)
    ctx.pages.forget(datastack, table)


class AnnotationPagesDir(Directory):
    """``annotations/``: the pages of a long table and its ``append.csv``."""

    accepts_scratch = True  # editors' temporaries next to a page

    def __init__(self, key: NodePath, ctx: CaveContext, datastack: str, table: str) -> None:
        super().__init__(key)
        self._ctx, self._ds, self._table = ctx, datastack, table

    async def stat(self) -> Attrs:
        return Attrs(Kind.DIRECTORY, 0, 0.0, writable=True)

    async def _pages(self) -> int:
        return page_count(await self._ctx.api.count(self._ds, self._table))

    def _page(self, index: int, pages: int) -> TablePage:
        key = (*self.key, page_name(index, pages))
        return TablePage(key, self._ctx, self._ds, self._table, page_ids(index, pages))

    def _append(self) -> AppendFile:
        return AppendFile((*self.key, APPEND_NAME), self._ctx, self._ds, self._table)

    async def children(self) -> Sequence[Node]:
        pages = await self._pages()
        return [*(self._page(i, pages) for i in range(pages)), self._append()]

    async def child(self, name: str) -> Node:
        if name == APPEND_NAME:
            return self._append()
        pages = await self._pages()
        index = page_index(name, pages)
        if index is None:
            raise NotFound("/".join((*self.key, name)))
        return self._page(index, pages)


class TablePage(EditableFile):
    """One page: the valid rows with ids in its range, by id; saves change those rows."""

    def __init__(
        self, key: NodePath, ctx: CaveContext, datastack: str, table: str, ids: IdRange
    ) -> None:
        super().__init__(key)
        self._ctx, self._ds, self._table, self._ids = ctx, datastack, table, ids

    @property
    def writable(self) -> bool:
        return True

    def check_writable(self) -> None:
        return None

    async def listed(self) -> Attrs:
        # ``ls`` of a thousand pages renders none of them; ``stat`` of one renders that one.
        return Attrs(Kind.FILE, 0, 0.0, writable=True, provisional=True)

    async def _rows(self) -> list[dict[str, Any]]:
        rows = await self._ctx.api.rows(self._ds, self._table, ids=self._ids)
        rows.sort(key=lambda r: int(r.get("id") or 0))
        return rows

    async def render(self) -> bytes:
        # Rendered once per table revision (the count changes with every write).
        revision = await self._ctx.api.count(self._ds, self._table)
        key = (self._ds, self._table, self._ids, revision)
        text = self._ctx.pages.get(key)
        if text is None:
            fmt = await table_format(self._ctx.api, self._ds, self._table)
            text = render_csv(fmt, await self._rows())
            self._ctx.pages.put(key, text)
        return text

    async def stat(self) -> Attrs:
        return Attrs(Kind.FILE, len(await self.render()), 0.0, writable=True)

    async def open(self) -> FileHandle:
        return BytesHandle(await self.render())

    def _inside(self, row_id: int) -> bool:
        lo, hi = self._ids
        return row_id >= lo and (hi is None or row_id < hi)

    async def commit(self, edited: bytes, base: bytes | None) -> bool:
        fmt = await table_format(self._ctx.api, self._ds, self._table)
        rows = parse_csv(fmt, edited)
        outside = [r for r in rows if r.id is not None and not self._inside(r.id)]
        if outside:
            row = outside[0]
            raise InvalidContent(
                f"row {row.number}: id {row.id} belongs to another page; rows keep their page "
                "(leave id empty for a new row)"
            )
        current = {int(r["id"]): flat_to_nested(fmt, r) for r in await self._rows()}
        for nested in current.values():
            nested.pop("id", None)
        base_ids = (
            {r.id for r in parse_csv(fmt, base) if r.id is not None} if base else set(current)
        )
        return await send_change(
            self._ctx, self._ds, self._table, plan_change(rows, current, base_ids)
        )


class AppendFile(EditableFile):
    """``append.csv``: the table's header; rows written after it are new rows, POSTed as
    they are (no id: the server gives them theirs). Reading the table is never needed."""

    def __init__(self, key: NodePath, ctx: CaveContext, datastack: str, table: str) -> None:
        super().__init__(key)
        self._ctx, self._ds, self._table = ctx, datastack, table

    @property
    def writable(self) -> bool:
        return True

    def check_writable(self) -> None:
        return None

    async def render(self) -> bytes:
        return render_csv(await table_format(self._ctx.api, self._ds, self._table), [])

    async def stat(self) -> Attrs:
        return Attrs(Kind.FILE, len(await self.render()), 0.0, writable=True)

    async def open(self) -> FileHandle:
        return BytesHandle(await self.render())

    async def commit(self, edited: bytes, base: bytes | None) -> bool:
        fmt = await table_format(self._ctx.api, self._ds, self._table)
        rows = parse_csv(fmt, edited)
        with_id = [r for r in rows if r.id is not None]
        if with_id:
            row = with_id[0]
            raise InvalidContent(
                f"row {row.number}: {APPEND_NAME} takes new rows only (leave id empty; "
                f"id {row.id} is a row to change in its page)"
            )
        return await send_change(self._ctx, self._ds, self._table, TableChange(rows, [], []))

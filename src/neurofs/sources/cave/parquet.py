"""``versions/<n>/<table>.parquet``: a frozen materialization version's table as Parquet.

A materialized version never changes, so its tables are rendered once into the cache
directory (``io/cache/rendered.py``, named by source, datastack, version and table) and served
from there: later opens, other readers and later mounts read the file with no request.

Rendering streams the table: the version's row count first (one request), then pages of
``PAGE_ROWS`` rows asked of the materialization engine as Arrow IPC streams (the answer the
official client reads), each cast to the file's schema and written as one row group. Memory
holds one page, whatever the table's size. The pages go on until the count is read, whatever
the server caps a query at; a page that comes back empty before that is an error (EIO), and a
failed render leaves no file behind.

Columns are the CSV's (``table_format.TableFormat.columns``: ``id``, each point as
``<pt>_position_x/_y/_z`` then its ``<pt>_supervoxel_id`` / ``<pt>_root_id``, the scalar fields,
``valid``, ``created``, ``superceded_id``, ``deleted``), typed from the table's schema: ids,
positions and segment ids int64, schema integers int64, numbers float64, booleans bool, text
(enums too) string, ``created`` / ``deleted`` timestamp[ns, UTC] as the official client's
DataFrame has them. A column the engine does not send for frozen tables (``created``,
``superceded_id``, ``deleted``) is all null, as it is empty in the CSV.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import trio

from neurofs.errors import RemoteError
from neurofs.io.cache.rendered import RenderedFiles
from neurofs.sources.cave.api import CaveApi, IdRange
from neurofs.sources.cave.table_format import (
    AXES,
    READ_ONLY,
    TableFormat,
    format_from_schema,
)
from neurofs.tree.names import unique_names
from neurofs.tree.nodes import NodePath
from neurofs.tree.rendered_file import RenderedFileNode

SUFFIX = ".parquet"
# Arrow's default allocator (mimalloc) keeps what a render frees for later, tens of MB in a
# daemon that renders rarely; the system allocator gives it back. Measured rendering the
# demo's 50,526-row table in a mount: the daemon's peak rose 36-58 MB with mimalloc, 31 MB
# (every run) with this.
pa.set_memory_pool(pa.system_memory_pool())
# Rows per query and per row group: a page of a wide table stays well under the HTTP
# client's answer bound and a few tens of MB in memory; below the engine's row cap.
PAGE_ROWS = 100_000
# Bumped when what a file holds changes, so files of an older layout are not served.
LAYOUT = 1

_SCALAR_TYPES: dict[str, pa.DataType] = {
    "integer": pa.int64(),
    "number": pa.float64(),
    "boolean": pa.bool_(),
    "string": pa.string(),
}
_TIME = pa.timestamp("ns", tz="UTC")
_READ_ONLY_TYPES: dict[str, pa.DataType] = {
    "valid": pa.bool_(),
    "created": _TIME,
    "superceded_id": pa.int64(),
    "deleted": _TIME,
}


def arrow_schema(fmt: TableFormat) -> pa.Schema:
    """The file's columns: the CSV's, typed from the table's schema."""
    fields = [pa.field("id", pa.int64(), nullable=False)]
    for f in fmt.fields:
        if f.point:
            fields += [pa.field(f"{f.name}_position_{a}", pa.int64()) for a in AXES]
            fields += [pa.field(c, pa.int64()) for c in f.segment_columns]
        else:
            fields.append(pa.field(f.name, _SCALAR_TYPES.get(f.type, pa.string())))
    fields += [pa.field(c, _READ_ONLY_TYPES[c]) for c in READ_ONLY]
    return pa.schema(fields)


def page_table(schema: pa.Schema, answer: bytes, what: str) -> pa.Table:
    """One page of the engine's Arrow answer as the file's columns. A column that cannot be
    cast without loss (a fractional position, text in a number column) is an error: the file
    never shows data other than the server's."""
    try:
        served = pa.ipc.open_stream(answer).read_all()
    except (pa.ArrowInvalid, OSError) as exc:
        raise RemoteError(f"{what}: not an Arrow stream ({exc})") from None
    if "id" not in served.column_names or served.column("id").null_count:
        raise RemoteError(f"{what}: rows without an id")
    columns: list[pa.ChunkedArray | pa.Array] = []
    for field in schema:
        if field.name not in served.column_names:
            columns.append(pa.nulls(served.num_rows, field.type))
            continue
        try:
            columns.append(served.column(field.name).cast(field.type))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise RemoteError(f"{what}: column {field.name}: {exc}") from None
    return pa.Table.from_arrays(columns, schema=schema)


async def render_version_table(
    api: CaveApi,
    datastack: str,
    version: int,
    table: str,
    path: Path,
    ids: IdRange | None = None,
) -> None:
    """Write the frozen table (with ``ids``: its rows with ``lo <= id < hi``, one part of a
    long table) to ``path`` as Parquet, page by page."""
    what = f"rows of {table} in version {version}"
    fmt = format_from_schema((await api.table_schema(datastack, table)).model)
    schema = arrow_schema(fmt)
    if ids is None:
        total = await api.version_count(datastack, version, table)
    else:
        total = await api.version_query_count(datastack, version, table, ids)
    writer = await trio.to_thread.run_sync(pq.ParquetWriter, str(path), schema)
    try:
        done = 0
        while done < total:
            limit = min(PAGE_ROWS, total - done)
            answer = await api.version_arrow_page(datastack, version, table, done, limit, ids=ids)
            page = await trio.to_thread.run_sync(page_table, schema, answer, what)
            del answer
            if page.num_rows == 0:
                raise RemoteError(f"{what}: the server stopped at {done} of its {total} rows")
            if page.num_rows > limit:
                raise RemoteError(f"{what}: {page.num_rows} rows for a page of {limit}")
            await trio.to_thread.run_sync(writer.write_table, page)
            done += page.num_rows
    finally:
        await trio.to_thread.run_sync(writer.close)


def parquet_names(tables: list[str]) -> dict[str, str]:
    """File name → table."""
    names = unique_names(tables, SUFFIX)
    return {names[t]: t for t in dict.fromkeys(tables)}


def identity(
    api: CaveApi, datastack: str, version: int, table: str, ids: IdRange | None = None
) -> str:
    """A file's content identity: which server, datastack, version, table (and id range, for
    a part), and the layout."""
    part = "" if ids is None else f"|ids{ids[0]}-{ids[1]}"
    return f"cave-parquet:{api.http.base_url}|{datastack}|{version}|{table}{part}|layout{LAYOUT}"


def rendered_whole(
    api: CaveApi, rendered: RenderedFiles, datastack: str, version: int, table: str
) -> bool:
    """Whether the table is in the cache as one file (so it is not a long table)."""
    return rendered.find(identity(api, datastack, version, table), SUFFIX) is not None


class VersionParquet(RenderedFileNode):
    """A frozen table as Parquet (with ``ids``: one part of a long one, the rows with
    ``lo <= id < hi``), rendered into the cache at its first lookup and served from disk."""

    def __init__(
        self,
        key: NodePath,
        api: CaveApi,
        rendered: RenderedFiles,
        datastack: str,
        version: int,
        table: str,
        ids: IdRange | None = None,
    ) -> None:
        async def render(path: Path) -> None:
            await render_version_table(api, datastack, version, table, path, ids)

        super().__init__(
            key, rendered, identity(api, datastack, version, table, ids), SUFFIX, render
        )

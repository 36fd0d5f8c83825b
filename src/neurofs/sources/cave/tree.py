"""The CAVE part of the mount.

```
<source>/<datastack>/
    info.json                      the datastack's info (read-only)
    tables/<table>/
        metadata.json              editable: description, notice_text, read_permission,
                                   write_permission, flat_segmentation_source → PUT table
        schema.json                the table's schema definition (read-only)
        annotations.csv            all valid rows; appending or rewriting → POST / PUT / DELETE
        annotations.jsonl          the same rows, nested as the API posts them
        annotations/               instead of both, for a table of more than PAGED_ABOVE
                                   rows: pages by id range and append.csv (``pages.py``)
        count                      all rows, superseded and deleted ones included
        at/<ISO 8601 time>.csv     the rows valid at that instant, with its root ids (read-only)
        at/<ISO 8601 time>/        instead, for a long table: its pages at that instant
    versions/<n>/<table>.csv       materialized versions (read-only)
    versions/<n>/<table>.parquet   the same, as Parquet rendered once into the cache
    versions/<n>/<table>/          instead, for a table of more than PAGED_ABOVE rows: pages
    versions/<n>/<table>.parquet/  and Parquet parts by id range (``frozen.py``)
    states/<id>.json               neuroglancer states (read-only); a new file → POST
    states/<id>.url                the state's neuroglancer link, as caveclient builds it
                                   (read-only, one line)
    segments/<root id>/            leaves, latest, lineage.json of a root (``segments.py``)
    supervoxels/<supervoxel id>    its current root id
```
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from neurofs.errors import InvalidContent, NotFound, ReadOnly, RemoteError, TooLarge
from neurofs.io.cache.rendered import RenderedFiles
from neurofs.sources.cave import parquet
from neurofs.sources.cave.api import CaveApi
from neurofs.sources.cave.frozen import ParquetPartsDir, frozen_pages, pages_at
from neurofs.sources.cave.pages import (
    PAGED_ABOVE,
    AnnotationPagesDir,
    PageTexts,
    forget,
    send_change,
    table_format,
)
from neurofs.sources.cave.segments import SegmentsDir, SupervoxelsDir
from neurofs.sources.cave.table_format import (
    TableFormat,
    flat_to_nested,
    parse_csv,
    parse_jsonl,
    plan_change,
    render_csv,
    render_jsonl,
)
from neurofs.tree.merge import FieldPath
from neurofs.tree.names import safe_name, unique_names
from neurofs.tree.nodes import (
    Attrs,
    BytesHandle,
    Directory,
    EditableFile,
    FileHandle,
    GeneratedFile,
    IndexedDirectory,
    Kind,
    Node,
    NodePath,
    StaticDirectory,
)
from neurofs.tree.render import json_text
from neurofs.tree.sidecar import Document, Sidecar, SidecarSpec, TextFormat, parse

log = logging.getLogger(__name__)

# Keys of a table's metadata that a PUT may change; the rest is shown, not sent.
EDITABLE_METADATA = (
    "description",
    "notice_text",
    "read_permission",
    "write_permission",
    "flat_segmentation_source",
)
PERMISSIONS = ("PRIVATE", "GROUP", "PUBLIC")


@dataclass
class DatastackMemory:
    """What the mount knows of a datastack beyond the server's answers."""

    # Tables made with mkdir whose metadata.json is not saved yet, in the order they were
    # made: they exist only in this mount until then.
    new_tables: list[str] = field(default_factory=list)
    # Neuroglancer state ids read or made through this mount: the service cannot list them.
    state_ids: set[str] = field(default_factory=set)

    def drop_new_table(self, name: str) -> bool:
        """Stop showing a table being created; whether ``name`` was one."""
        if name not in self.new_tables:
            return False
        self.new_tables.remove(name)
        return True


@dataclass
class CaveContext:
    """What every CAVE node needs. Nodes are built anew at every lookup of a datastack, so
    what the mount must remember lives here, not on them."""

    api: CaveApi
    allow_delete: bool
    # Where frozen versions' Parquet files are written (None: no cache, no Parquet files).
    rendered: RenderedFiles | None = None
    # Pages of long tables rendered last (a stat, then the reads after it).
    pages: PageTexts = field(default_factory=PageTexts, init=False)
    _memory: dict[str, DatastackMemory] = field(default_factory=dict, init=False)

    def memory(self, datastack: str) -> DatastackMemory:
        return self._memory.setdefault(datastack, DatastackMemory())


def _static(key: NodePath, render: Any, *, shown: bool = False) -> GeneratedFile:
    """A JSON file of ``render()``'s answer (its ``document``, when ``shown``)."""

    async def data() -> bytes:
        answer = await render()
        return json_text(answer.document if shown else answer)

    return GeneratedFile(key, data)


class CaveRoot(Directory):
    def __init__(self, key: NodePath, ctx: CaveContext, datastacks: list[str]) -> None:
        super().__init__(key)
        self._ctx = ctx
        self._datastacks = datastacks

    async def stat(self) -> Attrs:
        return Attrs(Kind.DIRECTORY, 0, 0.0)

    async def children(self) -> Sequence[Node]:
        return [DatastackDir((*self.key, safe_name(d)), self._ctx, d) for d in self._datastacks]


class DatastackDir(StaticDirectory):
    def __init__(self, key: NodePath, ctx: CaveContext, datastack: str) -> None:
        super().__init__(
            key,
            [
                _static((*key, "info.json"), lambda: ctx.api.info(datastack), shown=True),
                TablesDir((*key, "tables"), ctx, datastack),
                VersionsDir((*key, "versions"), ctx, datastack),
                StatesDir((*key, "states"), ctx, datastack),
                SegmentsDir((*key, "segments"), ctx.api, datastack, ctx.rendered),
                SupervoxelsDir((*key, "supervoxels"), ctx.api, datastack),
            ],
        )


class TablesDir(Directory):
    def __init__(self, key: NodePath, ctx: CaveContext, datastack: str) -> None:
        super().__init__(key)
        self._ctx = ctx
        self._ds = datastack

    async def stat(self) -> Attrs:
        return Attrs(Kind.DIRECTORY, 0, 0.0, writable=True)

    async def _tables(self) -> Mapping[str, str]:
        return await self._ctx.api.tables_indexed(self._ds, _table_names)

    def _table(self, name: str, table: str) -> Node:
        # A table being created here is real once the server lists it (whoever made it).
        self._ctx.memory(self._ds).drop_new_table(table)
        return TableDir((*self.key, name), self._ctx, self._ds, table)

    async def children(self) -> Sequence[Node]:
        nodes = [self._table(name, t) for name, t in (await self._tables()).items()]
        new_tables = self._ctx.memory(self._ds).new_tables
        return [*nodes, *(self._new_table(name) for name in new_tables)]

    def _new_table(self, name: str) -> NewTableDir:
        return NewTableDir((*self.key, name), self._ctx, self._ds, name)

    async def child(self, name: str) -> Node:
        table = (await self._tables()).get(name)
        if table is not None:
            return self._table(name, table)
        if name in self._ctx.memory(self._ds).new_tables:
            return self._new_table(name)
        raise NotFound("/".join((*self.key, name)))

    async def make_directory(self, name: str) -> Node:
        if safe_name(name) != name or not _TABLE_NAME.match(name):
            raise InvalidContent(f"'{name}' is not a valid table name (letters, digits, _)")
        self._ctx.memory(self._ds).new_tables.append(name)
        return self._new_table(name)

    async def remove_directory(self, name: str) -> None:
        if not self._ctx.memory(self._ds).drop_new_table(name):
            raise ReadOnly("tables cannot be deleted through the mount")


def _table_names(tables: list[str]) -> dict[str, str]:
    """Directory name → table."""
    names = unique_names(tables)
    return {names[t]: t for t in dict.fromkeys(tables)}


_TABLE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,99}$")
NEW_TABLE_TEMPLATE = {
    "schema_type": "",
    "description": "",
    "voxel_resolution_x": 1.0,
    "voxel_resolution_y": 1.0,
    "voxel_resolution_z": 1.0,
    "read_permission": "PUBLIC",
    "write_permission": "PRIVATE",
    "notice_text": None,
    "flat_segmentation_source": None,
}


class NewTableDir(Directory):
    """A table being created: its metadata.json starts as a template; saving it POSTs the
    table. A refusal removes the directory (the reason goes to errors.log)."""

    accepts_scratch = True

    def __init__(self, key: NodePath, ctx: CaveContext, datastack: str, name: str) -> None:
        super().__init__(key)
        self._ctx, self._ds, self._name = ctx, datastack, name

    @property
    def stale(self) -> bool:
        # Made or refused: the path now leads to the real table, or to nothing.
        return self._name not in self._ctx.memory(self._ds).new_tables

    async def stat(self) -> Attrs:
        return Attrs(Kind.DIRECTORY, 0, 0.0, writable=True)

    async def children(self) -> Sequence[Node]:
        return [NewTableMetadata((*self.key, "metadata.json"), self)]

    def abandon(self) -> None:
        self._ctx.memory(self._ds).drop_new_table(self._name)

    async def create(self, doc: Document) -> None:
        schema_type = doc.get("schema_type")
        if not isinstance(schema_type, str) or not schema_type:
            self.abandon()
            raise InvalidContent("'schema_type' is required (e.g. bound_tag)")
        metadata = {k: v for k, v in doc.items() if k != "schema_type" and v is not None}
        try:
            _validate_metadata(metadata)
            for axis in "xyz":
                value = metadata.get(f"voxel_resolution_{axis}")
                if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
                    raise InvalidContent(f"'voxel_resolution_{axis}' must be a positive number")
            await self._ctx.api.send(
                self._ds,
                "POST",
                "table",
                {"table_name": self._name, "schema_type": schema_type, "metadata": metadata},
            )
        finally:
            # Made or refused, the placeholder goes: the listing shows the real table.
            self.abandon()
            self._ctx.api.forget_table(self._ds, self._name)


class NewTableMetadata(EditableFile):
    def __init__(self, key: NodePath, table: NewTableDir) -> None:
        super().__init__(key)
        self._table = table

    @property
    def writable(self) -> bool:
        return True

    def check_writable(self) -> None:
        return None

    async def render(self) -> bytes:
        return json_text(NEW_TABLE_TEMPLATE)

    async def stat(self) -> Attrs:
        return Attrs(Kind.FILE, len(await self.render()), 0.0, writable=True)

    async def open(self) -> FileHandle:
        return BytesHandle(await self.render())

    async def commit(self, edited: bytes, base: bytes | None) -> bool:
        try:
            doc = parse(edited, TextFormat.JSON)
        except InvalidContent:
            self._table.abandon()
            raise
        await self._table.create(doc)
        return True


class TableDir(Directory):
    accepts_scratch = True

    def __init__(self, key: NodePath, ctx: CaveContext, datastack: str, table: str) -> None:
        super().__init__(key)
        self._ctx, self._ds, self._table = ctx, datastack, table

    async def stat(self) -> Attrs:
        return Attrs(Kind.DIRECTORY, 0, 0.0, writable=True)

    async def children(self) -> Sequence[Node]:
        ctx, ds, table = self._ctx, self._ds, self._table

        async def count() -> bytes:
            return f"{await ctx.api.count(ds, table)}\n".encode()

        # A long table's text cannot be known (nor its size told) without reading it whole:
        # it is shown as pages instead.
        rows: Sequence[Node] = (
            [AnnotationPagesDir((*self.key, "annotations"), ctx, ds, table)]
            if await ctx.api.count(ds, table) > PAGED_ABOVE
            else [
                AnnotationsFile((*self.key, "annotations.csv"), ctx, ds, table, jsonl=False),
                AnnotationsFile((*self.key, "annotations.jsonl"), ctx, ds, table, jsonl=True),
            ]
        )
        return [
            metadata_json((*self.key, "metadata.json"), ctx, ds, table),
            _static(
                (*self.key, "schema.json"), lambda: ctx.api.table_schema(ds, table), shown=True
            ),
            *rows,
            GeneratedFile((*self.key, "count"), count),
            AtDir((*self.key, "at"), ctx, ds, table),
        ]


def _validate_metadata(doc: Document) -> None:
    for key in ("description", "notice_text", "flat_segmentation_source"):
        if key in doc and doc[key] is not None and not isinstance(doc[key], str):
            raise InvalidContent(f"'{key}' must be text")
    for key in ("read_permission", "write_permission"):
        if key in doc and doc[key] not in PERMISSIONS:
            raise InvalidContent(f"'{key}' must be one of {', '.join(PERMISSIONS)}")


def metadata_json(key: NodePath, ctx: CaveContext, datastack: str, table: str) -> Sidecar:
    async def load(fresh: bool) -> Document:
        return dict((await ctx.api.table_metadata(datastack, table, fresh=fresh)).document)

    async def send(changes: dict[FieldPath, Any], merged: Document, current: Document) -> None:
        changed = {p[0] for p in changes}
        metadata = {k: merged.get(k) for k in EDITABLE_METADATA if k in changed}
        if "notice_text" in metadata and metadata["notice_text"] is None:
            metadata["notice_text"] = ""  # the API clears the notice with an empty string
        nulls = sorted(k for k, v in metadata.items() if v is None)
        if nulls:
            raise InvalidContent(f"{', '.join(nulls)} cannot be set to null")
        try:
            await ctx.api.send(
                datastack, "PUT", "table", {"table_name": table, "metadata": metadata}
            )
        finally:
            ctx.api.forget_table(datastack, table)

    spec = SidecarSpec(
        load=load,
        validate=_validate_metadata,
        send=send,
        fmt=TextFormat.JSON,
        computed_keys=frozenset(),
    )
    return _MetadataSidecar(key, spec)


class _MetadataSidecar(Sidecar):
    """metadata.json: only the editable keys may change; the rest is shown."""

    async def commit(self, edited: bytes, base: bytes | None) -> bool:
        doc = parse(edited, TextFormat.JSON)
        current = await self.spec.load(False)
        touched = sorted(
            k
            for k in set(doc) | set(current)
            if k not in EDITABLE_METADATA and doc.get(k) != current.get(k)
        )
        if touched:
            raise InvalidContent(
                f"only {', '.join(EDITABLE_METADATA)} can be changed (not {', '.join(touched)})"
            )
        return await super().commit(edited, base)


class AnnotationsFile(EditableFile):
    """annotations.csv / annotations.jsonl: every valid row; saves become row changes."""

    # Whole tables are edited in memory: allow more than a sidecar.
    max_edit_bytes = 64 * 1024 * 1024

    def __init__(
        self, key: NodePath, ctx: CaveContext, datastack: str, table: str, jsonl: bool
    ) -> None:
        super().__init__(key)
        self._ctx, self._ds, self._table, self._jsonl = ctx, datastack, table, jsonl

    @property
    def writable(self) -> bool:
        return True

    def check_writable(self) -> None:
        return None

    async def _format(self) -> TableFormat:
        return await table_format(self._ctx.api, self._ds, self._table)

    async def render(self) -> bytes:
        api = self._ctx.api
        # The text is rendered once per table revision (the row count changes with every
        # write, superseded and deleted rows included).
        revision = await api.count(self._ds, self._table)
        fmt = await self._format()

        async def fetch() -> bytes:
            rows = await api.rows(self._ds, self._table)
            rows.sort(key=lambda r: int(r.get("id") or 0))
            return render_jsonl(fmt, rows) if self._jsonl else render_csv(fmt, rows)

        return await api.table_text(self._ds, self._table, (self._jsonl, revision), fetch)

    async def stat(self) -> Attrs:
        return Attrs(Kind.FILE, len(await self.render()), 0.0, writable=True)

    async def open(self) -> FileHandle:
        return BytesHandle(await self.render())

    async def commit(self, edited: bytes, base: bytes | None) -> bool:
        fmt = await self._format()
        parse_rows = parse_jsonl if self._jsonl else parse_csv
        rows = parse_rows(fmt, edited)
        api = self._ctx.api
        current = {
            int(r["id"]): flat_to_nested(fmt, r) for r in await api.rows(self._ds, self._table)
        }
        # Forgotten only once the fresh rows are in: a save that fails because the server is
        # down leaves the table readable as it was.
        forget(self._ctx, self._ds, self._table)
        for nested in current.values():
            nested.pop("id", None)
        base_ids = (
            {r.id for r in parse_rows(fmt, base) if r.id is not None} if base else set(current)
        )
        return await send_change(
            self._ctx, self._ds, self._table, plan_change(rows, current, base_ids)
        )


def _instant(text: str) -> datetime | None:
    """An ISO 8601 time (UTC when it names no zone), or None."""
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


class AtDir(Directory):
    """``at/<ISO 8601 time>.csv``: the table as the live query gives it at that instant, the
    rows valid then with the root ids of then; read-only. Instants are named, not listed.
    A table of more than ``PAGED_ABOVE`` rows is ``at/<time>/`` instead, pages by id range
    (``frozen.pages_at``); its ``at/<time>.csv`` is refused (EFBIG) without a row read."""

    def __init__(self, key: NodePath, ctx: CaveContext, datastack: str, table: str) -> None:
        super().__init__(key)
        self._ctx, self._ds, self._table = ctx, datastack, table

    async def stat(self) -> Attrs:
        return Attrs(Kind.DIRECTORY, 0, 0.0)

    async def children(self) -> Sequence[Node]:
        return []

    async def child(self, name: str) -> Node:
        when = _instant(name.removesuffix(".csv"))
        if when is None:
            raise NotFound("/".join((*self.key, name)))
        api, ds, table = self._ctx.api, self._ds, self._table
        count = await api.count(ds, table)
        if not name.endswith(".csv"):
            # A long table at an instant: its pages, by id range as the live ones.
            if count <= PAGED_ABOVE:
                raise NotFound("/".join((*self.key, name)))
            return pages_at((*self.key, name), self._ctx, ds, table, when)
        if count > PAGED_ABOVE:
            # Refused before any row is asked: the whole table would be read into memory.
            stem = name.removesuffix(".csv")
            raise TooLarge(
                f"{table} at {stem}: {count} rows, too many for one file; read its pages in "
                f"at/{stem}/ (or a frozen version's versions/<n>/{table}/)"
            )

        async def render() -> bytes:
            async def fetch() -> bytes:
                fmt = await table_format(api, ds, table)
                rows = await api.rows(ds, table, at=when)
                rows.sort(key=lambda r: int(r.get("id") or 0))
                return render_csv(fmt, rows)

            return await api.table_text(ds, table, when, fetch)

        return GeneratedFile((*self.key, name), render)


def _version_names(versions: list[int]) -> dict[str, int]:
    return {str(v): v for v in versions}


class VersionsDir(IndexedDirectory[int]):
    """``versions/<n>/<table>.csv``: materialized snapshots, read-only and immutable."""

    def __init__(self, key: NodePath, ctx: CaveContext, datastack: str) -> None:
        super().__init__(key)
        self._ctx, self._ds = ctx, datastack

    async def stat(self) -> Attrs:
        return Attrs(Kind.DIRECTORY, 0, 0.0)

    async def entries(self) -> Mapping[str, int]:
        return await self._ctx.api.versions_indexed(self._ds, _version_names)

    def node(self, name: str, entry: int) -> Node:
        return MaterializedVersionDir((*self.key, name), self._ctx, self._ds, entry)


@dataclass(frozen=True)
class VersionEntry:
    """What a name in ``versions/<n>/`` shows: a table as CSV or Parquet, one file or (for a
    table of more than ``PAGED_ABOVE`` rows) a directory of pages or parts."""

    table: str
    as_parquet: bool
    long: bool


class MaterializedVersionDir(IndexedDirectory[VersionEntry]):
    def __init__(self, key: NodePath, ctx: CaveContext, datastack: str, version: int) -> None:
        super().__init__(key)
        self._ctx, self._ds, self._version = ctx, datastack, version

    async def stat(self) -> Attrs:
        return Attrs(Kind.DIRECTORY, 0, 0.0, immutable=True)

    async def _long(self, table: str) -> bool:
        # One count per table, held for the mount (a version never changes).
        count = await self._ctx.api.version_count(self._ds, self._version, table)
        return count > PAGED_ABOVE

    def _candidates(self, tables: list[str]) -> dict[str, VersionEntry]:
        """Every name a table could have (``long`` as that name implies)."""
        found = {
            **{n: VersionEntry(t, False, False) for t, n in unique_names(tables, ".csv").items()},
            **{n: VersionEntry(t, False, True) for t, n in unique_names(tables).items()},
        }
        if self._ctx.rendered is not None:
            # Names end in .parquet, so they never collide with the CSV names.
            found |= {
                name: VersionEntry(t, True, False)
                for name, t in parquet.parquet_names(tables).items()
            }
        return found

    async def entries(self) -> Mapping[str, VersionEntry]:
        tables = await self._ctx.api.version_tables(self._ds, self._version)
        long = {t for t in tables if await self._long(t)}
        return {
            name: VersionEntry(e.table, e.as_parquet, e.table in long)
            for name, e in self._candidates(tables).items()
            if e.as_parquet or e.long == (e.table in long)
        }

    async def child(self, name: str) -> Node:
        # A lookup counts the table it names only (its render needs that count anyway).
        tables = await self._ctx.api.version_tables(self._ds, self._version)
        entry = self._candidates(tables).get(name)
        if entry is None:
            raise NotFound("/".join((*self.key, name)))
        rendered, api, table = self._ctx.rendered, self._ctx.api, entry.table
        # In the cache as one file: a later mount reads it with no request at all.
        if (
            entry.as_parquet
            and rendered is not None
            and parquet.rendered_whole(api, rendered, self._ds, self._version, table)
        ):
            return self.node(name, entry)
        long = await self._long(entry.table)
        if not entry.as_parquet and entry.long != long:
            raise NotFound("/".join((*self.key, name)))
        return self.node(name, VersionEntry(entry.table, entry.as_parquet, long))

    def node(self, name: str, entry: VersionEntry) -> Node:
        ctx, ds, version, table = self._ctx, self._ds, self._version, entry.table
        key = (*self.key, name)
        if entry.as_parquet:
            assert ctx.rendered is not None  # listed only with a cache
            if entry.long:
                return ParquetPartsDir(key, ctx, ctx.rendered, ds, version, table)
            return parquet.VersionParquet(key, ctx.api, ctx.rendered, ds, version, table)
        if entry.long:
            return frozen_pages(key, ctx, ds, version, table)
        api = ctx.api

        async def render() -> bytes:
            async def fetch() -> bytes:
                fmt = await table_format(api, ds, table)
                rows = await api.version_rows(ds, version, table)
                rows.sort(key=lambda r: int(r.get("id") or 0))
                return render_csv(fmt, rows)

            return await api.version_text(ds, version, table, fetch)

        # ``ls versions/<n>/`` renders no table; ``stat`` of one renders that one.
        return GeneratedFile(key, render, immutable=True, costly=True)


class StatesDir(Directory):
    """Neuroglancer states by id, each as ``<id>.json`` and its link ``<id>.url``. Reading
    needs the id: the service has no listing, so the directory shows the states this mount
    has seen or made."""

    accepts_scratch = True

    def __init__(self, key: NodePath, ctx: CaveContext, datastack: str) -> None:
        super().__init__(key)
        self._ctx = ctx
        self._ds = datastack
        self._known = ctx.memory(datastack).state_ids  # the mount's, shared by every rebuild

    async def stat(self) -> Attrs:
        return Attrs(Kind.DIRECTORY, 0, 0.0, writable=True)

    def _file(self, state_id: str) -> GeneratedFile:
        return _static((*self.key, f"{state_id}.json"), lambda: self._ctx.api.state(state_id))

    def _link(self, state_id: str) -> GeneratedFile:
        api, ds = self._ctx.api, self._ds

        async def render() -> bytes:
            return f"{await api.state_link(ds, state_id)}\n".encode()

        # Costly: its viewer is asked which form of link it reads, which a listing of the
        # states should not wait for.
        return GeneratedFile((*self.key, f"{state_id}.url"), render, costly=True)

    async def children(self) -> Sequence[Node]:
        ids = sorted(self._known, key=int)
        return [node for i in ids for node in (self._file(i), self._link(i))]

    async def child(self, name: str) -> Node:
        stem, dot, suffix = name.rpartition(".")
        if dot and suffix in ("json", "url") and stem.isdigit():
            try:
                await self._ctx.api.state(stem)
            except RemoteError as exc:
                raise NotFound(name) from exc
            self._known.add(stem)
            return self._file(stem) if suffix == "json" else self._link(stem)
        raise NotFound(name)

    def creates_from(self, name: str) -> bool:
        return name.endswith(".json") and not name.startswith(".")

    async def create_from_file(self, name: str, data: bytes) -> bytes:
        try:
            state = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InvalidContent(f"not a JSON state: {exc}") from None
        except RecursionError:
            raise InvalidContent("not a JSON state: nested too deeply") from None
        if not isinstance(state, dict):
            raise InvalidContent("a neuroglancer state is a JSON object")
        state_id = await self._ctx.api.post_state(state)
        self._known.add(state_id)
        return json_text({"created": [f"{state_id}.json"]})

    async def remove_child(self, name: str) -> None:
        raise ReadOnly("neuroglancer states cannot be deleted")

"""The in-memory database behind the CAVE emulator: annotation tables, versions, states.

It mirrors the real storage where clients can see it:

- Annotation rows are never removed. An update invalidates the old row (``valid`` false,
  ``deleted`` and ``superceded_id`` set) and inserts a new row with a new id; a delete sets
  ``valid`` false and ``deleted``. The count includes every row ever inserted.
- Table metadata is the annotation engine's join of the annotation metadata with the
  segmentation metadata (``DynamicAnnotationDB.get_table_metadata``), including its quirk: a
  table that has a segmentation table reports that table's ``id``, ``table_name``,
  ``created`` and ``valid``, plus ``annotation_table`` with the real name.
- A materialized version is a frozen snapshot: the rows valid at its timestamp. Writes only
  ever happen after every version's timestamp, so the snapshot is computed from row times.
- Supervoxel and root ids are a deterministic function of a point's position (the emulator's
  stand-in for the chunkedgraph), used for the sample rows and for new rows alike.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from neurofs_emulators.cave.schemas import SchemaSpec, stored_position

SUPERVOXEL_BASE = 88_000_000_000_000_000
ROOT_BASE = 864_691_135_000_000_000
ROOT_POOL = 400


def segment_ids(x: int, y: int, z: int) -> tuple[int, int]:
    """``(supervoxel_id, root_id)`` at a voxel position (deterministic, no chunkedgraph)."""
    supervoxel = SUPERVOXEL_BASE + ((x * 73856093) ^ (y * 19349663) ^ (z * 83492791)) % (1 << 40)
    root = ROOT_BASE + ((x // 4096) * 7 + (y // 4096) * 13 + (z // 256) * 17) % ROOT_POOL
    return supervoxel, root


def utcnow() -> dt.datetime:
    """Naive UTC, as the engines store times (``datetime.utcnow()``)."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


@dataclass(slots=True)
class Row:
    """One row of an annotation table (annotation and segmentation columns together).

    ``values`` holds the flat columns: ``<pt>_position`` as a float triple (what PostGIS
    stores), ``<pt>_supervoxel_id`` / ``<pt>_root_id`` for bound points, and the scalars.
    """

    id: int
    created: dt.datetime
    values: dict[str, Any]
    deleted: dt.datetime | None = None
    superceded_id: int | None = None
    valid: bool = True

    def valid_at(self, when: dt.datetime) -> bool:
        return self.created <= when and (self.deleted is None or self.deleted > when)


@dataclass
class SegmentationMeta:
    """A row of ``segmentation_table_metadata`` (made when a table is first materialized)."""

    id: int
    table_name: str
    schema_type: str
    created: dt.datetime
    segmentation_source: str | None
    pcg_table_name: str
    last_updated: dt.datetime | None
    annotation_table: str
    valid: bool = True
    deleted: dt.datetime | None = None


@dataclass
class TableMeta:
    """A row of ``annotation_table_metadata``."""

    id: int
    schema_type: str
    table_name: str
    created: dt.datetime
    user_id: str
    description: str
    voxel_resolution_x: float
    voxel_resolution_y: float
    voxel_resolution_z: float
    last_modified: dt.datetime
    valid: bool = True
    deleted: dt.datetime | None = None
    notice_text: str | None = None
    reference_table: str | None = None
    flat_segmentation_source: str | None = None
    write_permission: str = "PRIVATE"
    read_permission: str = "PUBLIC"
    segmentation: SegmentationMeta | None = None

    @property
    def voxel_resolution(self) -> tuple[float, float, float]:
        return (self.voxel_resolution_x, self.voxel_resolution_y, self.voxel_resolution_z)

    def joined(self) -> dict[str, Any]:
        """``get_table_metadata``: annotation metadata, then segmentation columns over it."""
        out: dict[str, Any] = {
            "id": self.id,
            "schema_type": self.schema_type,
            "table_name": self.table_name,
            "valid": self.valid,
            "created": self.created,
            "deleted": self.deleted,
            "user_id": self.user_id,
            "description": self.description,
            "notice_text": self.notice_text,
            "reference_table": self.reference_table,
            "flat_segmentation_source": self.flat_segmentation_source,
            "voxel_resolution_x": self.voxel_resolution_x,
            "voxel_resolution_y": self.voxel_resolution_y,
            "voxel_resolution_z": self.voxel_resolution_z,
            "write_permission": self.write_permission,
            "read_permission": self.read_permission,
            "last_modified": self.last_modified,
        }
        seg = self.segmentation
        if seg is not None:
            out.update(
                id=seg.id,
                schema_type=seg.schema_type,
                table_name=seg.table_name,
                valid=seg.valid,
                created=seg.created,
                deleted=seg.deleted,
                segmentation_source=seg.segmentation_source,
                pcg_table_name=seg.pcg_table_name,
                last_updated=seg.last_updated,
                annotation_table=seg.annotation_table,
            )
        return out


@dataclass
class AnnotationTable:
    meta: TableMeta
    spec: SchemaSpec
    rows: list[Row] = field(default_factory=list)
    by_id: dict[int, Row] = field(default_factory=dict)
    # Bumped on every write; lets readers cache renderings per revision.
    revision: int = 0

    def add(self, row: Row) -> None:
        self.rows.append(row)
        self.by_id[row.id] = row

    def next_id(self) -> int:
        # The docs: with user-provided ids the table "will autoincrement from the current max".
        return max(self.by_id, default=0) + 1

    # What the engines ask of a table. A computed table (``computed.LargeTable``) answers the
    # same questions without holding its rows.

    def row_count(self) -> int:
        """Every row ever inserted (superseded and deleted ones too)."""
        return len(self.rows)

    def find(self, row_id: int) -> Row | None:
        """The row with this id, to read or to change in place."""
        return self.by_id.get(row_id)

    def scan(self, lo: int = 0, hi: int | None = None) -> Iterator[Row]:
        """The rows with ``lo <= id < hi``, in id order (the primary key's index)."""
        picked = (r for r in self.rows if r.id >= lo and (hi is None or r.id < hi))
        return iter(sorted(picked, key=lambda r: r.id))

    def count_valid(self, when: dt.datetime, lo: int = 0, hi: int | None = None) -> int:
        """How many rows with ``lo <= id < hi`` are valid at ``when``."""
        return sum(1 for r in self.scan(lo, hi) if r.valid_at(when))

    def touch(self, when: dt.datetime) -> None:
        self.meta.last_modified = when
        self.revision += 1


@dataclass
class AnalysisTableRecord:
    """A row of ``analysistables``: one table frozen in one version."""

    id: int
    aligned_volume: str
    schema: str
    table_name: str
    created: dt.datetime
    valid: bool = True


@dataclass
class MatVersion:
    """A row of ``analysisversion`` and the tables frozen in it."""

    id: int
    datastack: str
    version: int
    time_stamp: dt.datetime
    expires_on: dt.datetime
    tables: list[AnalysisTableRecord]
    valid: bool = True
    status: str = "AVAILABLE"
    is_merged: bool = True

    def table(self, name: str) -> AnalysisTableRecord | None:
        for record in self.tables:
            if record.table_name == name:
                return record
        return None


@dataclass
class NglState:
    """A stored neuroglancer state: the raw JSON bytes as posted."""

    id: int
    body: bytes
    user_id: str
    date: dt.datetime


@dataclass
class CaveState:
    """Everything the emulator serves; one instance per process, mutated by writes."""

    tables: dict[str, AnnotationTable]
    versions: list[MatVersion]
    states: dict[int, NglState]
    next_table_id: int
    next_state_id: int

    def version(self, number: int) -> MatVersion | None:
        for version in self.versions:
            if version.version == number:
                return version
        return None


# ------------------------------------------------------------------ renderings


def _time_text(value: dt.datetime | None) -> str:
    # The engine serializes these with str(): "2024-05-01 12:00:00.123456", or "None".
    return str(value)


def annotation_row(table: AnnotationTable, row: Row) -> dict[str, Any]:
    """A row as ``GET .../annotations`` returns it (flat, positions as uint64 lists)."""
    out: dict[str, Any] = {}
    for key in table.spec.row_order:
        if key == "valid":
            out["valid"] = row.valid
        elif key.endswith("_position"):
            coords = row.values.get(key)
            out[key] = None if coords is None else stored_position(coords)
        else:
            out[key] = row.values.get(key)
    out["created"] = _time_text(row.created)
    out["superceded_id"] = row.superceded_id
    out["deleted"] = _time_text(row.deleted)
    out["id"] = row.id
    return out


def mat_record(
    table: AnnotationTable,
    row: Row,
    split_positions: bool,
    scale: tuple[float, float, float] | None = None,
) -> dict[str, Any]:
    """A row of a materialized query (positions scaled when ``scale`` is given)."""
    spec = table.spec
    out: dict[str, Any] = {"id": row.id, "valid": True}
    for f in spec.bound_point_fields:
        out[f"{f.name}_supervoxel_id"] = row.values.get(f"{f.name}_supervoxel_id")
        out[f"{f.name}_root_id"] = row.values.get(f"{f.name}_root_id")
    for f in spec.scalar_fields:
        out[f.name] = row.values.get(f.name)
    for f in spec.point_fields:
        coords = row.values.get(f"{f.name}_position")
        if coords is None:
            position: list[Any] = [None, None, None]
        elif scale is None:
            position = [int(c) for c in coords]
        else:
            position = [c * s for c, s in zip(coords, scale, strict=True)]
        if split_positions:
            for axis, value in zip("xyz", position, strict=True):
                out[f"{f.name}_position_{axis}"] = value
        else:
            out[f"{f.name}_position"] = position
    return out

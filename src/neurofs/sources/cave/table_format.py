"""Annotation tables as CSV and JSON Lines: columns from the schema, rendering, parsing, diffs.

Columns, in a stable order: ``id``; then the schema's fields, points first in the schema's
``order`` and then the rest by name. Each point is split into ``<point>_position_x/_y/_z``; a
bound point (``BoundSpatialPoint``) is followed by its read-only ``<point>_supervoxel_id`` and
``<point>_root_id``. Last come the read-only ``valid``, ``created``, ``superceded_id``,
``deleted``.

Rows come from the materialization service's query answers, flat records with split
positions (``<point>_position_x``, ...: the engine's QueryManager always splits them) and, for
bound points, the segmentation table's ``<point>_supervoxel_id`` / ``<point>_root_id``
(CAVEconnectome/EMAnnotationSchemas, ``emannotationschemas/schemas/base.py``). ``created``
arrives as epoch milliseconds (``DataFrame.to_json``) and is shown as ISO 8601 UTC text.
Parsed rows come back nested, as the annotation engine takes them (``{"<point>":
{"position": [x, y, z]}, ...}``); read-only columns are never sent.

Nothing here does I/O.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from neurofs.errors import InvalidContent
from neurofs.sources.cave.models import TableSchema
from neurofs.sources.payloads import validated

READ_ONLY = ("valid", "created", "superceded_id", "deleted")
_POINT_REFS = ("SpatialPoint", "BoundSpatialPoint")
_BOUND_POINT = "BoundSpatialPoint"
AXES = ("x", "y", "z")
# The segmentation columns of a bound point, after its position: read-only.
SEGMENT_IDS = ("supervoxel_id", "root_id")

Row = dict[str, Any]


@dataclass(frozen=True)
class Field:
    name: str
    point: bool
    type: str  # integer, number, string, boolean (points: integer positions)
    required: bool
    enum: tuple[str, ...] | None = None
    bound: bool = False  # a point with supervoxel and root ids

    @property
    def segment_columns(self) -> list[str]:
        return [f"{self.name}_{s}" for s in SEGMENT_IDS] if self.bound else []


@dataclass(frozen=True)
class TableFormat:
    fields: tuple[Field, ...]

    @property
    def columns(self) -> list[str]:
        cols = ["id"]
        for f in self.fields:
            if f.point:
                cols.extend(f"{f.name}_position_{a}" for a in AXES)
                cols.extend(f.segment_columns)
            else:
                cols.append(f.name)
        return [*cols, *READ_ONLY]


def format_from_schema(schema: TableSchema | Any) -> TableFormat:
    """The table's columns from its JSON Schema (as the schema service serves it: validated
    already, or validated here).

    The schema comes from the server: anything malformed is RemoteError, never a crash."""
    if not isinstance(schema, TableSchema):
        schema = validated(TableSchema, schema, "table schema")
    root = schema.root
    required = set(root.required)
    points: list[tuple[int, str, Field]] = []
    scalars: list[Field] = []
    for name, spec in root.properties.items():
        if name in READ_ONLY or name == "id":
            continue
        ref = spec.ref.rsplit("/", 1)[-1]
        if ref in _POINT_REFS:
            field = Field(name, True, "integer", name in required, bound=ref == _BOUND_POINT)
            points.append((int(spec.order), name, field))
        else:
            types = [spec.type] if isinstance(spec.type, str) else spec.type
            kinds = [t for t in types if t != "null"]
            scalars.append(
                Field(
                    name,
                    False,
                    kinds[0] if kinds else "string",
                    name in required,
                    tuple(str(e) for e in spec.enum) if spec.enum is not None else None,
                )
            )
    ordered = [f for _, _, f in sorted(points, key=lambda p: (p[0], p[1]))]
    return TableFormat(tuple(ordered + sorted(scalars, key=lambda f: f.name)))


# ---------------------------------------------------------------- rendering


def _cell(value: Any) -> str:
    if value is None or value == "None":
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value)) if abs(value) < 2**53 else repr(value)
    return str(value)


def _position_of(row: Row, name: str) -> list[Any]:
    """A point's ``[x, y, z]`` from a server row's split columns."""
    return [row.get(f"{name}_position_{a}") for a in AXES]


def _time_cell(value: Any) -> str:
    """``created``: epoch milliseconds from the query service, shown as ISO 8601 UTC."""
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            when = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(milliseconds=value)
        except OverflowError:
            return str(value)
        return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return _cell(value)


def flat_to_cells(fmt: TableFormat, row: Row) -> list[str]:
    cells = [_cell(row.get("id"))]
    for f in fmt.fields:
        if f.point:
            cells.extend(_cell(v) for v in _position_of(row, f.name))
            cells.extend(_cell(row.get(c)) for c in f.segment_columns)
        else:
            cells.append(_cell(row.get(f.name)))
    cells.extend(_time_cell(row.get(c)) if c == "created" else _cell(row.get(c)) for c in READ_ONLY)
    return cells


def render_csv(fmt: TableFormat, rows: Iterable[Row]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(fmt.columns)
    for row in rows:
        writer.writerow(flat_to_cells(fmt, row))
    return out.getvalue().encode()


def flat_to_nested(fmt: TableFormat, row: Row, *, segments: bool = False) -> Row:
    """A server row nested as the annotation engine takes it; with ``segments``, each bound
    point also carries its ``supervoxel_id`` and ``root_id`` (shown, never sent)."""
    nested: Row = {"id": row.get("id")}
    for f in fmt.fields:
        if f.point:
            position = _position_of(row, f.name)
            if all(v is None for v in position):
                continue  # an optional point left out, as a parsed row leaves it out
            point: Row = {"position": position}
            if segments and f.bound:
                point.update((s, row.get(f"{f.name}_{s}")) for s in SEGMENT_IDS)
            nested[f.name] = point
        elif row.get(f.name) is not None:
            nested[f.name] = row.get(f.name)
    return nested


def render_jsonl(fmt: TableFormat, rows: Iterable[Row]) -> bytes:
    return "".join(
        json.dumps(flat_to_nested(fmt, r, segments=True), separators=(", ", ": ")) + "\n"
        for r in rows
    ).encode()


# ---------------------------------------------------------------- parsing


@dataclass
class ParsedRow:
    number: int  # 1-based line number in the file (the header is line 1 in CSV)
    id: int | None
    annotation: Row  # nested, without id


@dataclass
class ParseErrors:
    problems: list[str] = field(default_factory=list)

    def add(self, number: int, message: str) -> None:
        self.problems.append(f"row {number}: {message}")

    def raise_if_any(self) -> None:
        if self.problems:
            shown = "; ".join(self.problems[:10])
            more = len(self.problems) - 10
            raise InvalidContent(shown + (f" (and {more} more)" if more > 0 else ""))


def _scalar(f: Field, text: str) -> Any:
    if "\x00" in text:  # corruption, never text: the annotation database refuses it too
        raise ValueError("holds a NUL character")
    if f.type == "integer":
        return int(text)
    if f.type == "number":
        value = float(text)
        if not math.isfinite(value):
            raise ValueError("not a finite number")
        return value
    if f.type == "boolean":
        lowered = text.lower()
        if lowered not in ("true", "false", "1", "0"):
            raise ValueError("not true or false")
        return lowered in ("true", "1")
    if f.enum is not None and text not in f.enum:
        raise ValueError(f"must be one of {', '.join(f.enum)}")
    return text


def _position(value: str) -> int:
    number = float(value)
    if not math.isfinite(number) or not number.is_integer():
        raise ValueError("not a whole number")
    return int(number)


def _id(text: str) -> int | None:
    if text == "":
        return None
    value = int(text)
    if value < 0:
        raise ValueError("negative id")
    return value


def parse_csv(fmt: TableFormat, data: bytes) -> list[ParsedRow]:
    if not data.strip():
        raise InvalidContent("the file is empty")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidContent(f"not UTF-8 text (byte {exc.start})") from None
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader)
    except (StopIteration, csv.Error) as exc:
        raise InvalidContent(f"no header row ({exc})") from None
    expected = fmt.columns
    if sorted(header) != sorted(expected):
        missing = [c for c in expected if c not in header]
        extra = [c for c in header if c not in expected]
        raise InvalidContent(
            "the header does not match the table's schema"
            + (f"; missing: {', '.join(missing)}" if missing else "")
            + (f"; unknown: {', '.join(extra)}" if extra else "")
        )
    index = {name: i for i, name in enumerate(header)}
    rows: list[ParsedRow] = []
    errors = ParseErrors()
    try:
        for number, cells in enumerate(reader, start=2):
            if not cells or all(c == "" for c in cells):
                continue
            if len(cells) != len(header):
                errors.add(number, f"{len(cells)} cells for {len(header)} columns")
                continue
            row = _row_from(
                fmt, {name: cells[i].strip() for name, i in index.items()}, number, errors
            )
            if row is not None:
                rows.append(row)
    except csv.Error as exc:
        raise InvalidContent(f"not valid CSV: {exc}") from None
    errors.raise_if_any()
    return rows


def _row_from(
    fmt: TableFormat, cells: dict[str, str], number: int, errors: ParseErrors
) -> ParsedRow | None:
    ok = True
    try:
        row_id = _id(cells["id"])
    except ValueError:
        errors.add(number, f"id '{cells['id']}' is not a whole number")
        return None
    annotation: Row = {}
    for f in fmt.fields:
        if f.point:
            values = [cells[f"{f.name}_position_{a}"] for a in AXES]
            if all(v == "" for v in values) and not f.required:
                continue
            try:
                annotation[f.name] = {"position": [_position(v) for v in values]}
            except ValueError:
                errors.add(number, f"'{f.name}' position {values} is not three whole numbers")
                ok = False
            continue
        text = cells[f.name]
        if text == "":
            if f.required:
                errors.add(number, f"'{f.name}' is required")
                ok = False
            continue
        try:
            annotation[f.name] = _scalar(f, text)
        except ValueError as exc:
            errors.add(number, f"'{f.name}' = '{text}': {exc}")
            ok = False
    return ParsedRow(number, row_id, annotation) if ok else None


def parse_jsonl(fmt: TableFormat, data: bytes) -> list[ParsedRow]:
    if not data.strip():
        raise InvalidContent("the file is empty")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidContent(f"not UTF-8 text (byte {exc.start})") from None
    rows: list[ParsedRow] = []
    errors = ParseErrors()
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            errors.add(number, f"invalid JSON: {exc.msg}")
            continue
        if not isinstance(obj, dict):
            errors.add(number, "expected a JSON object")
            continue
        cells = _cells_from_nested(fmt, obj, number, errors)
        if cells is not None:
            row = _row_from(fmt, cells, number, errors)
            if row is not None:
                rows.append(row)
    errors.raise_if_any()
    return rows


def _cells_from_nested(
    fmt: TableFormat, obj: Row, number: int, errors: ParseErrors
) -> dict[str, str] | None:
    known = {"id", *READ_ONLY, *(f.name for f in fmt.fields)}
    unknown = sorted(set(obj) - known)
    if unknown:
        errors.add(number, f"unknown fields: {', '.join(unknown)}")
        return None
    cells = {"id": "" if obj.get("id") is None else str(obj.get("id"))}
    for f in fmt.fields:
        value = obj.get(f.name)
        if f.point:
            pos = value.get("position") if isinstance(value, dict) else None
            if value is not None and not (isinstance(pos, list) and len(pos) == 3):
                errors.add(number, f"'{f.name}' must be {{\"position\": [x, y, z]}}")
                return None
            for a, v in zip(AXES, pos or ["", "", ""], strict=True):
                cells[f"{f.name}_position_{a}"] = "" if v is None else str(v)
        else:
            cells[f.name] = (
                "" if value is None else _cell(value) if not isinstance(value, str) else value
            )
    return cells


# ---------------------------------------------------------------- what a save means


@dataclass
class TableChange:
    post: list[ParsedRow]
    put: list[ParsedRow]
    delete: list[int]


def plan_change(
    rows: Sequence[ParsedRow], current: dict[int, Row], base_ids: set[int]
) -> TableChange:
    """What the saved rows mean against the server's current valid rows (id → nested row
    without id): rows without id are new; rows whose content differs are updates; rows the
    user had (``base_ids``) and removed are deletions. An id that is not a current valid row
    is an error (it was deleted or superseded meanwhile, or never existed)."""
    errors = ParseErrors()
    post: list[ParsedRow] = []
    put: list[ParsedRow] = []
    seen: set[int] = set()
    for row in rows:
        if row.id is None:
            post.append(row)
            continue
        if row.id in seen:
            errors.add(row.number, f"id {row.id} appears twice")
            continue
        seen.add(row.id)
        old = current.get(row.id)
        if old is None:
            errors.add(row.number, f"id {row.id} is not a valid row of this table (now)")
        elif _comparable(old) != _comparable(row.annotation):
            put.append(row)
    errors.raise_if_any()
    delete = sorted(i for i in base_ids & set(current) if i not in seen)
    return TableChange(post, put, delete)


def _comparable(annotation: Row) -> str:
    def norm(v: Any) -> Any:
        if isinstance(v, float) and v.is_integer():
            return int(v)
        if isinstance(v, dict):
            return {k: norm(x) for k, x in v.items() if x is not None}
        if isinstance(v, list):
            return [norm(x) for x in v]
        return v

    return json.dumps(norm({k: v for k, v in annotation.items() if k != "id"}), sort_keys=True)

"""The annotation schemas the emulator knows, and how the annotation engine validates rows.

The real engine loads every posted row with the EMAnnotationSchemas marshmallow schema
(marshmallow 3.5.1, ``unknown=EXCLUDE`` at the top level, nested points keep their default
``RAISE``) and stores it flattened: a point field ``pt`` becomes the column ``pt_position`` in the
annotation table, and for bound points ``pt_supervoxel_id`` / ``pt_root_id`` in the segmentation
table. :func:`load_annotation` reproduces that load: the same error messages in the same order,
and the same crashes after a successful load (a position with fewer than three elements fails in
the schema's ``post_load``, a non-numeric coordinate fails in PostGIS), which the engine reports
differently from validation errors.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

FieldKind = Literal["bool", "str", "float", "int", "reference", "point", "bound_point"]

MISSING = "Missing data for required field."
NULL = "Field may not be null."
UNKNOWN = "Unknown field."
INVALID_TYPE = "Invalid input type."
INVALID: dict[str, str] = {
    "bool": "Not a valid boolean.",
    "str": "Not a valid string.",
    "float": "Not a valid number.",
    "int": "Not a valid integer.",
}
NOT_FINITE = "Special numeric values (nan or infinity) are not permitted."
TOO_LARGE = "Number too large."

# marshmallow 3.5.1 Boolean's truthy / falsy sets.
_TRUTHY = {"t", "T", "true", "True", "TRUE", "on", "On", "ON", "y", "Y", "yes", "Yes", "YES", "1"}
_FALSY = {"f", "F", "false", "False", "FALSE", "off", "Off", "OFF", "n", "N", "no", "No", "NO", "0"}


@dataclass(frozen=True)
class FieldSpec:
    """One field of an annotation schema, in marshmallow's declared order."""

    name: str
    kind: FieldKind
    required: bool


@dataclass(frozen=True)
class SchemaSpec:
    """What the emulator needs of one EMAnnotationSchemas schema."""

    name: str
    fields: tuple[FieldSpec, ...]
    # Key order of a row as GET .../annotations serializes it, before created, superceded_id,
    # deleted and id (the order the real engine's flattened schema load produces).
    row_order: tuple[str, ...]
    reference: bool = False

    @cached_property  # asked for every row of a query
    def point_fields(self) -> tuple[FieldSpec, ...]:
        return tuple(f for f in self.fields if f.kind in ("point", "bound_point"))

    @cached_property  # asked for every row of a query
    def bound_point_fields(self) -> tuple[FieldSpec, ...]:
        return tuple(f for f in self.fields if f.kind == "bound_point")

    @cached_property  # asked for every row of a query
    def scalar_fields(self) -> tuple[FieldSpec, ...]:
        return tuple(
            f for f in self.fields if f.kind not in ("point", "bound_point") and f.name != "valid"
        )

    def production_columns(self, split_positions: bool) -> list[str]:
        """Columns of a live query answered from the production tables alone (the table is
        not frozen in the version the query starts from): ``id``, ``created``, the annotation
        table's columns in the flattened schema's order (``valid`` left out), then the
        segmentation table's (MaterializationEngine ``api2.py``: ``select_all_columns(table,
        ['valid', 'superceded_id'])`` on the split models, ``deleted`` dropped when combining)."""
        columns = ["id", "created"]
        for f in self.fields:
            if f.kind in ("point", "bound_point"):
                if split_positions:
                    columns += [f"{f.name}_position_{axis}" for axis in "xyz"]
                else:
                    columns.append(f"{f.name}_position")
            elif f.name != "valid":
                columns.append(f.name)
        for f in self.bound_point_fields:
            columns += [f"{f.name}_supervoxel_id", f"{f.name}_root_id"]
        return columns

    def mat_columns(self, split_positions: bool) -> list[str]:
        """Columns of a materialized query, in the order the engine returns them."""
        columns = ["id", "valid"]
        for f in self.bound_point_fields:
            columns += [f"{f.name}_supervoxel_id", f"{f.name}_root_id"]
        columns += [f.name for f in self.scalar_fields]
        for f in self.point_fields:
            if split_positions:
                columns += [f"{f.name}_position_{axis}" for axis in "xyz"]
            else:
                columns.append(f"{f.name}_position")
        return columns


def _spec(
    name: str, fields: list[tuple[str, FieldKind, bool]], row_order: list[str] | None = None
) -> SchemaSpec:
    specs = (FieldSpec("valid", "bool", False), *tuple(FieldSpec(*f) for f in fields))
    if row_order is None:
        scalars = [s.name for s in specs if s.kind not in ("point", "bound_point", "bool")]
        points = [f"{s.name}_position" for s in specs if s.kind in ("point", "bound_point")]
        row_order = [*scalars, *points, "valid"]
    reference = any(f.kind == "reference" for f in specs)
    return SchemaSpec(name, specs, tuple(row_order), reference)


SCHEMAS: dict[str, SchemaSpec] = {
    s.name: s
    for s in (
        _spec(
            "synapse",
            [
                ("pre_pt", "bound_point", True),
                ("post_pt", "bound_point", True),
                ("ctr_pt", "point", True),
                ("size", "float", False),
            ],
            # The key order of the annotation engine's serialized synapse rows.
            ["size", "pre_pt_position", "post_pt_position", "valid", "ctr_pt_position"],
        ),
        _spec(
            "microns_func_coreg",
            [("pt", "bound_point", True), ("func_id", "int", True)],
        ),
        _spec(
            "cell_type_local",
            [
                ("classification_system", "str", True),
                ("cell_type", "str", True),
                ("pt", "bound_point", True),
            ],
        ),
        _spec(
            "cell_type_reference",
            [
                ("target_id", "reference", True),
                ("classification_system", "str", True),
                ("cell_type", "str", True),
            ],
        ),
        _spec(
            "nucleus_detection",
            [
                ("volume", "float", False),
                ("pt", "bound_point", True),
                ("bb_start", "point", False),
                ("bb_end", "point", False),
            ],
        ),
        _spec(
            "bound_tag",
            [("pt", "bound_point", True), ("tag", "str", True)],
            ["tag", "pt_position", "valid"],
        ),
        _spec(
            "bound_tag_user",
            [("pt", "bound_point", True), ("tag", "str", True), ("user_id", "int", True)],
        ),
    )
}


def unknown_schema_message(schema_type: str) -> str:
    return f"Schema type: {schema_type} is not a known annotation type"


class SchemaValidationError(Exception):
    """marshmallow's ValidationError: ``messages`` is its nested message dict."""

    def __init__(self, messages: dict[str, Any]) -> None:
        super().__init__(repr(messages))
        self.messages = messages


class AfterLoadError(Exception):
    """A crash after a successful schema load: the schema's ``post_load`` or the database.

    ``str()`` is what the real exception's ``str()`` would be.
    """


@dataclass
class LoadedAnnotation:
    """A row as the engine stores it: flat values, positions as float triples."""

    values: dict[str, Any] = field(default_factory=dict)


def _load_scalar(kind: FieldKind, value: Any) -> tuple[Any, str | None]:
    """``(value, error message)`` for one scalar, following marshmallow 3.5.1."""
    if kind == "str":
        return (value, None) if isinstance(value, str) else (None, INVALID["str"])
    if kind == "bool":
        try:
            if value is True or value in _TRUTHY or (value == 1 and not isinstance(value, str)):
                return True, None
            if value is False or value in _FALSY or (value == 0 and not isinstance(value, str)):
                return False, None
        except TypeError:  # unhashable (a list or a dict)
            pass
        return None, INVALID["bool"]
    if kind == "reference":
        # ReferenceTableField calls int(value) without catching errors: a crash, not a message.
        try:
            return int(value), None
        except (TypeError, ValueError) as exc:
            raise AfterLoadError(str(exc)) from None
    if value is True or value is False:
        return None, INVALID[kind]
    try:
        number: Any = float(value) if kind == "float" else int(value)
    except (TypeError, ValueError):
        return None, INVALID[kind]
    except OverflowError:
        return None, TOO_LARGE
    if kind == "float" and not math.isfinite(number):
        return None, NOT_FINITE
    return number, None


def _load_point(spec: FieldSpec, value: Any) -> tuple[dict[str, Any] | None, Any]:
    """Load a nested (Bound)SpatialPoint: ``(data, errors)``."""
    if not isinstance(value, Mapping):
        return None, {"_schema": [INVALID_TYPE]}
    errors: dict[str, Any] = {}
    data: dict[str, Any] = {}
    if "position" not in value:
        errors["position"] = [MISSING]
    elif value["position"] is None:
        errors["position"] = [NULL]
    else:
        data["position"] = value["position"]
    known = {"position"}
    if spec.kind == "bound_point":
        known |= {"supervoxel_id", "root_id"}
        for name in ("supervoxel_id", "root_id"):
            raw = value.get(name)
            if raw is None:
                data[name] = None
                continue
            loaded, error = _load_scalar("int", raw)
            if error is not None:
                errors[name] = [error]
            else:
                data[name] = loaded
    for key in value:
        if key not in known:
            errors[str(key)] = [UNKNOWN]
    return (None, errors) if errors else (data, None)


def _point_text(position: Any) -> str:
    """The schema's post_load ``f"POINTZ({p[0]} {p[1]} {p[2]})"``, with its crashes."""
    try:
        parts = [position[0], position[1], position[2]]
    except (IndexError, KeyError, TypeError) as exc:
        raise AfterLoadError(str(exc)) from None
    return "POINTZ({} {} {})".format(*parts)


def _parse_point(text: str, parts: list[Any]) -> tuple[float, float, float]:
    """What PostGIS makes of the POINTZ text; non-numbers are a database error."""
    coords: list[float] = []
    for part in parts:
        token = str(part)
        try:
            if isinstance(part, bool):
                raise ValueError(token)
            coords.append(float(token))
        except ValueError:
            position = text.index(token) + len(token)
            raise AfterLoadError(
                "(psycopg2.errors.InternalError_) parse error - invalid geometry\n"
                f'HINT:  "{text[:position]}" <-- parse error at position {position} '
                "within geometry\n"
            ) from None
    return coords[0], coords[1], coords[2]


def load_annotation(spec: SchemaSpec, data: Any) -> LoadedAnnotation:
    """Validate and flatten one posted row like the annotation engine.

    Raises :class:`SchemaValidationError` (marshmallow messages) or :class:`AfterLoadError`.
    Unknown top-level keys are dropped; unknown keys inside a point are errors.
    """
    if not isinstance(data, Mapping):
        raise SchemaValidationError({"_schema": [INVALID_TYPE]})
    errors: dict[str, Any] = {}
    loaded: dict[str, Any] = {}
    for f in spec.fields:
        if f.name not in data:
            if f.required:
                errors[f.name] = [MISSING]
            continue
        raw = data[f.name]
        if raw is None:
            if f.required:
                errors[f.name] = [NULL]
            else:
                loaded[f.name] = None
            continue
        if f.kind in ("point", "bound_point"):
            point, point_errors = _load_point(f, raw)
            if point_errors is not None:
                errors[f.name] = point_errors
            else:
                loaded[f.name] = point
            continue
        value, error = _load_scalar(f.kind, raw)
        if error is not None:
            errors[f.name] = [error]
        else:
            loaded[f.name] = value
    if errors:
        raise SchemaValidationError(errors)
    # post_load (SpatialPoint.transform_position) runs for every point before anything is
    # written; the database then parses the POINTZ text.
    texts: dict[str, tuple[str, list[Any]]] = {}
    for f in spec.point_fields:
        point = loaded.get(f.name)
        if point is not None:
            position = point["position"]
            texts[f.name] = (_point_text(position), [position[0], position[1], position[2]])
    out = LoadedAnnotation()
    for f in spec.fields:
        if f.name == "valid" or f.name not in loaded:
            continue
        value = loaded[f.name]
        if f.kind in ("point", "bound_point"):
            if value is None:
                out.values[f"{f.name}_position"] = None
                continue
            text, parts = texts[f.name]
            out.values[f"{f.name}_position"] = _parse_point(text, parts)
            if f.kind == "bound_point":
                out.values[f"{f.name}_supervoxel_id"] = value.get("supervoxel_id")
                out.values[f"{f.name}_root_id"] = value.get("root_id")
        else:
            out.values[f.name] = value
    return out


def stored_position(coords: tuple[float, float, float]) -> list[int]:
    """A position as the engine reads it back: PostGIS doubles cast to ``numpy.uint64``."""
    return [math.trunc(c) % (1 << 64) for c in coords]

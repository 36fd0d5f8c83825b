"""Request and response payloads of the emulated CAVE services.

Request bodies are checked in two steps. First :func:`load_body` applies the services' own
marshmallow request schemas (``unknown=RAISE``, ``allow_none=False``), producing marshmallow's
messages in its order, which the engines send back; then the cleaned dict becomes a pydantic
model that the handlers use. Response payloads are pydantic models dumped in the real key order.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from neurofs_emulators.cave.schemas import (
    INVALID_TYPE,
    MISSING,
    NULL,
    UNKNOWN,
    SchemaValidationError,
    _load_scalar,
)

BodyKind = Literal[
    "str", "float", "bool", "int", "list_int", "list_dict", "dict", "list_str", "list_float3"
]


@dataclass(frozen=True)
class BodyField:
    name: str
    kind: BodyKind | tuple[BodyField, ...]
    required: bool = False


def load_body(fields: tuple[BodyField, ...], data: Any) -> dict[str, Any]:
    """marshmallow ``Schema(unknown=RAISE).load(data)`` for the request schemas below."""
    if not isinstance(data, Mapping):
        raise SchemaValidationError({"_schema": [INVALID_TYPE]})
    errors: dict[str, Any] = {}
    out: dict[str, Any] = {}
    for f in fields:
        if f.name not in data:
            if f.required:
                errors[f.name] = [MISSING]
            continue
        value = data[f.name]
        if value is None:
            errors[f.name] = [NULL]
            continue
        if isinstance(f.kind, tuple):
            try:
                out[f.name] = load_body(f.kind, value)
            except SchemaValidationError as exc:
                errors[f.name] = exc.messages
            continue
        if f.kind in ("list_int", "list_dict", "list_str", "list_float3"):
            if not isinstance(value, list | tuple):
                errors[f.name] = ["Not a valid list."]
                continue
            items: list[Any] = []
            item_errors: dict[int, list[str]] = {}
            for index, item in enumerate(value):
                if f.kind == "list_dict":
                    if isinstance(item, Mapping):
                        items.append(dict(item))
                    else:
                        item_errors[index] = ["Not a valid mapping type."]
                    continue
                kind: Any = {"list_int": "int", "list_str": "str", "list_float3": "float"}[f.kind]
                loaded, error = _load_scalar(kind, item)
                if item is None:
                    item_errors[index] = [NULL]
                elif error is not None:
                    item_errors[index] = [error]
                else:
                    items.append(loaded)
            if item_errors:
                errors[f.name] = item_errors
            elif f.kind == "list_float3" and len(items) != 3:
                errors[f.name] = ["Length must be 3."]
            else:
                out[f.name] = items
            continue
        if f.kind == "dict":
            if isinstance(value, Mapping):
                out[f.name] = dict(value)
            else:
                errors[f.name] = ["Not a valid mapping type."]
            continue
        scalar: Any = f.kind
        loaded, error = _load_scalar(scalar, value)
        if error is not None:
            errors[f.name] = [error]
        else:
            out[f.name] = loaded
    known = {f.name for f in fields}
    for key in data:
        if key not in known:
            errors[str(key)] = [UNKNOWN]
    if errors:
        raise SchemaValidationError(errors)
    return out


# ---------------------------------------------------------------- annotation engine schemas

TABLE_METADATA_FIELDS = (
    BodyField("reference_table", "str"),
    BodyField("track_target_id_updates", "bool"),
)
METADATA_FIELDS = (
    BodyField("user_id", "str"),
    BodyField("description", "str", True),
    BodyField("table_metadata", TABLE_METADATA_FIELDS),
    BodyField("flat_segmentation_source", "str"),
    BodyField("voxel_resolution_x", "float", True),
    BodyField("voxel_resolution_y", "float", True),
    BodyField("voxel_resolution_z", "float", True),
    BodyField("read_permission", "str"),
    BodyField("write_permission", "str"),
    BodyField("notice_text", "str"),
)
CREATE_TABLE_FIELDS = (
    BodyField("table_name", "str", True),
    BodyField("schema_type", "str", True),
    BodyField("metadata", METADATA_FIELDS, True),
)
UPDATE_METADATA_FIELDS = (
    BodyField("table_name", "str", True),
    BodyField(
        "metadata",
        (
            BodyField("user_id", "str"),
            BodyField("description", "str"),
            BodyField("flat_segmentation_source", "str"),
            BodyField("read_permission", "str"),
            BodyField("write_permission", "str"),
            BodyField("notice_text", "str"),
        ),
        True,
    ),
)
ANNOTATIONS_FIELDS = (BodyField("annotations", "list_dict", True),)
DELETE_FIELDS = (BodyField("annotation_ids", "list_int", True),)

_QUERY_FILTERS = (
    BodyField("filter_in_dict", "dict"),
    BodyField("filter_notin_dict", "dict"),
    BodyField("filter_equal_dict", "dict"),
    BodyField("filter_greater_dict", "dict"),
    BodyField("filter_less_dict", "dict"),
    BodyField("filter_greater_equal_dict", "dict"),
    BodyField("filter_less_equal_dict", "dict"),
    BodyField("filter_spatial_dict", "dict"),
    BodyField("filter_regex_dict", "dict"),
)
SIMPLE_QUERY_FIELDS = (
    *_QUERY_FILTERS,
    BodyField("select_columns", "list_str"),
    BodyField("offset", "int"),
    BodyField("limit", "int"),
    BodyField("desired_resolution", "list_float3"),
)
LIVE_QUERY_FIELDS = (
    BodyField("table", "str", True),
    BodyField("timestamp", "str", True),
    BodyField("join_tables", "list_dict"),
    *_QUERY_FILTERS,
    BodyField("select_columns", "dict"),
    BodyField("offset", "int"),
    BodyField("limit", "int"),
    BodyField("suffixes", "dict"),
    BodyField("desired_resolution", "list_float3"),
)


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TableMetadataOptions(Body):
    reference_table: str | None = None
    track_target_id_updates: bool | None = None


class NewTableMetadata(Body):
    user_id: str | None = None
    description: str
    table_metadata: TableMetadataOptions | None = None
    flat_segmentation_source: str | None = None
    voxel_resolution_x: float
    voxel_resolution_y: float
    voxel_resolution_z: float
    read_permission: str | None = None
    write_permission: str | None = None
    notice_text: str | None = None


class CreateTableRequest(Body):
    table_name: str
    schema_type: str
    metadata: NewTableMetadata


class MetadataChanges(Body):
    user_id: str | None = None
    description: str | None = None
    flat_segmentation_source: str | None = None
    read_permission: str | None = None
    write_permission: str | None = None
    notice_text: str | None = None


class UpdateMetadataRequest(Body):
    table_name: str
    metadata: MetadataChanges


class AnnotationsRequest(Body):
    annotations: list[dict[str, Any]]


class DeleteAnnotationsRequest(Body):
    annotation_ids: list[int]


class QueryRequest(Body):
    """The materialization engine's simple query (``SimpleQuerySchema``) and live query
    (``V2QuerySchema``) bodies; filters are ``{table: {column: value}}``."""

    table: str | None = None
    timestamp: dt.datetime | None = None
    join_tables: list[Any] | None = None
    filter_in_dict: dict[str, Any] | None = None
    filter_notin_dict: dict[str, Any] | None = None
    filter_equal_dict: dict[str, Any] | None = None
    filter_greater_dict: dict[str, Any] | None = None
    filter_less_dict: dict[str, Any] | None = None
    filter_greater_equal_dict: dict[str, Any] | None = None
    filter_less_equal_dict: dict[str, Any] | None = None
    filter_spatial_dict: dict[str, Any] | None = None
    filter_regex_dict: dict[str, Any] | None = None
    select_columns: list[str] | dict[str, list[str]] | None = None
    offset: int | None = None
    limit: int | None = None
    suffixes: dict[str, Any] | None = None
    desired_resolution: list[float] | None = None


# ---------------------------------------------------------------- response payloads


class Payload(BaseModel):
    def dump(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


class AlignedVolumeInfo(Payload):
    id: int
    name: str
    display_name: str | None
    description: str
    image_source: str


class DatastackInfo(Payload):
    """``DataStackSchemaFull`` of the info service (marshmallow dump order)."""

    aligned_volume: AlignedVolumeInfo
    segmentation_source: str
    skeleton_source: str | None
    analysis_database: str | None
    viewer_site: str
    synapse_table: str
    soma_table: str | None
    local_server: str
    description: str
    viewer_resolution_x: float
    viewer_resolution_y: float
    viewer_resolution_z: float
    proofreading_status_table: str | None
    cell_identification_table: str | None
    proofreading_review_table: str | None


class VersionMetadata(Payload):
    """``AnalysisVersionSchema`` dump (``parent_version`` is a foreign key, not dumped)."""

    id: int
    datastack: str
    version: int
    time_stamp: dt.datetime
    valid: bool
    expires_on: dt.datetime
    status: str
    is_merged: bool


class AnalysisTablePayload(Payload):
    """``AnalysisTableSchema`` dump, the start of a frozen table's metadata."""

    id: int
    aligned_volume: str
    schema_: str
    table_name: str
    valid: bool
    created: dt.datetime

    def dump(self) -> dict[str, Any]:
        out = self.model_dump(mode="json")
        out = {("schema" if k == "schema_" else k): v for k, v in out.items()}
        return out

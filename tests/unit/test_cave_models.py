"""The CAVE payload models against the services' recorded answers (``tests/fixtures/cave``,
provenance in ``tests/fixtures/SOURCES.md``), and a malformed answer as RemoteError."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import TypeAdapter

from neurofs.errors import RemoteError
from neurofs.sources.cave.models import (
    AnnotationRow,
    DatastackInfo,
    StateId,
    TableMetadata,
    TableSchema,
    VersionMetadata,
)
from neurofs.sources.cave.table_format import format_from_schema
from neurofs.sources.payloads import adapted, shown

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "cave"
ROWS = TypeAdapter(list[AnnotationRow])

# Each recorded JSON answer → how it is read. The Arrow stream is not: neurofs asks the
# materialization service for JSON records (its JSON twin is here).
READERS: dict[str, Any] = {
    "info_datastack_full.json": lambda d: shown(DatastackInfo, d["data"], "info"),
    "mat_version_metadata.json": lambda d: shown(VersionMetadata, d["data"], "version"),
    "generated/schema_api_v2_type_synapse.json": lambda d: shown(TableSchema, d, "schema"),
    "generated/schema_api_v2_type_bound_tag.json": lambda d: shown(TableSchema, d, "schema"),
    "generated/schema_api_v2_type_cell_type_local.json": lambda d: shown(TableSchema, d, "schema"),
    "generated/ae_get_annotations_synapse_simulated.json": lambda d: adapted(ROWS, d, "rows"),
    "generated/ae_get_annotations_bound_tag_simulated.json": lambda d: adapted(ROWS, d, "rows"),
    "generated/mat_query_synapse_split_5rows_json_records.json": lambda d: adapted(ROWS, d, "rows"),
}


def _load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def test_every_recorded_json_answer_has_a_reader() -> None:
    recorded = {str(p.relative_to(FIXTURES)) for p in FIXTURES.rglob("*.json")}
    assert recorded == set(READERS)


@pytest.mark.parametrize("name", sorted(READERS))
def test_each_recorded_answer_validates(name: str) -> None:
    READERS[name](_load(name))


def test_what_the_mount_reads_from_the_recorded_answers() -> None:
    info = shown(DatastackInfo, _load("info_datastack_full.json")["data"], "info")
    assert info.model.local_server == "https://local.cave.com"
    assert info.model.aligned_volume is not None
    assert info.model.aligned_volume.name == "test_volume"
    assert list(info.document) == list(_load("info_datastack_full.json")["data"])  # as served
    synapse = _load("generated/schema_api_v2_type_synapse.json")
    columns = format_from_schema(shown(TableSchema, synapse, "schema").model).columns
    assert columns[:4] == ["id", "pre_pt_position_x", "pre_pt_position_y", "pre_pt_position_z"]
    rows = adapted(ROWS, _load("generated/mat_query_synapse_split_5rows_json_records.json"), "r")
    assert [type(r) for r in rows] == [dict] * 5 and rows[0]["id"] == 263650120


@pytest.mark.parametrize(
    ("model", "answer"),
    [
        (DatastackInfo, {"aligned_volume": {"name": "v"}}),  # no local server
        (DatastackInfo, ["not", "an", "object"]),
        (TableMetadata, {"description": "no schema type"}),
        (TableSchema, {"definitions": {"A": {"properties": {"x": 5}}}}),
    ],
)
def test_a_malformed_answer_is_a_remote_error(model: Any, answer: Any) -> None:
    with pytest.raises(RemoteError, match="unexpected answer"):
        shown(model, answer, "answer")


@pytest.mark.parametrize("page", [[{"id": True}], [{"id": "7"}], [{"tag": "x"}], {"id": 1}])
def test_rows_need_an_integer_id(page: Any) -> None:
    with pytest.raises(RemoteError):
        adapted(ROWS, page, "rows")


def test_a_posted_state_answer_gives_its_id() -> None:
    ids = TypeAdapter(StateId)
    assert ids.validate_python('"https://global.cave/nglstate/api/v1/5713"') == "5713"
    assert ids.validate_python("https://global.cave/nglstate/api/v1/5713/") == "5713"
    assert ids.validate_python(5713) == "5713"
    for bad in ("https://global.cave/nglstate/api/v1/post", {"id": 1}, True):
        with pytest.raises(RemoteError):
            adapted(ids, bad, "nglstate post")

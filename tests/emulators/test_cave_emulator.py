"""The CAVE emulator over real HTTP: hosts, auth, annotation engine, materialization, states.

Expectations come from the real services' code (CAVEconnectome's AnnotationEngine,
MaterializationEngine, middle_auth_client, NeuroglancerJsonServer), the fixtures in
tests/fixtures/cave, and :class:`SampleCave`, the ground truth of what the emulator serves.
Tests that write start their own emulator, so the module's one always serves the pristine
sample.
"""

from __future__ import annotations

import datetime as dt
import json
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pyarrow as pa
import pytest

from neurofs_emulators.cave.definitions import DEFINITIONS
from neurofs_emulators.cave.http import flask_json
from neurofs_emulators.cave.materialize import QUERY_LIMIT_ENV
from neurofs_emulators.cave.sample import (
    ALIGNED_VOLUME,
    CELL_TYPE_NOTICE,
    DATASTACK,
    EDITOR_TOKEN,
    OTHER_TOKEN,
    OWNER_TOKEN,
    STATE_ID,
    TOS_TOKEN,
    VERSION_TIMES,
    VIEWER_BUILD,
    SampleCave,
    build_state,
    sample_state_json,
)
from neurofs_emulators.cave.state import segment_ids
from neurofs_emulators.launch import RunningEmulator, start_emulator

# Copied from the CAVE repositories; provenance and licences in tests/fixtures/SOURCES.md.
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "cave"

OWNER = {"Authorization": f"Bearer {OWNER_TOKEN}"}
EDITOR = {"Authorization": f"Bearer {EDITOR_TOKEN}"}
OTHER = {"Authorization": f"Bearer {OTHER_TOKEN}"}
TOS = {"Authorization": f"Bearer {TOS_TOKEN}"}
# middle_auth answers JSON errors only to "programmatic" requests.
PROGRAMMATIC = {"X-Requested-With": "XMLHttpRequest"}


def av(emulator: RunningEmulator) -> str:
    return f"{emulator.urls[1]}/annotation/api/v2/aligned_volume/{ALIGNED_VOLUME}"


def mat(emulator: RunningEmulator, api: int = 3) -> str:
    return f"{emulator.urls[1]}/materialize/api/v{api}/datastack/{DATASTACK}"


def engine_message(response: httpx.Response) -> str:
    """The annotation engine's catch-all error: HTTP 500 with the real status in the message."""
    assert response.status_code == 500, response.text
    body = response.json()
    assert body["code"] == 500 and isinstance(body["traceback"], list)
    return str(body["message"])


def read_arrow(response: httpx.Response) -> pa.Table:
    assert response.headers["content-type"] == "data.arrow"
    with pa.ipc.open_stream(response.content) as reader:
        return reader.read_all()


@pytest.fixture
def fresh() -> Iterator[RunningEmulator]:
    """A private emulator for tests that write."""
    with start_emulator("cave") as emulator:
        yield emulator


# ---------------------------------------------------------------------------- hosts, info


def test_ready_line_has_global_and_local_origins(cave: RunningEmulator) -> None:
    glob, local = (urlsplit(u) for u in cave.urls)
    assert glob.hostname == local.hostname and glob.port != local.port
    # Each origin serves only its own services.
    assert httpx.get(cave.urls[1] + "/info/version").status_code == 404
    assert httpx.get(cave.urls[0] + "/materialize/version").status_code == 404
    assert httpx.get(cave.urls[0] + "/info/version").json() == "4.3.3"
    assert httpx.get(cave.urls[1] + "/materialize/version").json() == "5.26.4"
    assert httpx.get(cave.urls[1] + "/materialize/api/versions").json() == [2, 3]
    assert httpx.get(cave.urls[1] + "/annotation/api/versions").json() == [2]


def test_datastack_info_names_the_local_server(cave: RunningEmulator) -> None:
    r = httpx.get(f"{cave.urls[0]}/info/api/v2/datastack/full/{DATASTACK}", headers=OWNER)
    assert r.status_code == 200
    info = r.json()
    assert info["local_server"] == cave.urls[1]
    assert info["aligned_volume"]["name"] == ALIGNED_VOLUME
    assert info["synapse_table"] == "synapse"
    assert info["segmentation_source"].startswith("graphene://")
    assert (info["viewer_resolution_x"], info["viewer_resolution_z"]) == (4.0, 40.0)
    # Same keys as the client's own test fixture of this route (plus newer optional ones).
    fixture = json.loads((FIXTURES / "info_datastack_full.json").read_text())["data"]
    assert set(fixture) <= set(info)
    unknown = httpx.get(f"{cave.urls[0]}/info/api/v2/datastack/full/nope", headers=OWNER)
    assert unknown.status_code == 400 and unknown.json()["error"] == "invalid_table_id"


def test_schemas_are_the_real_definitions(cave: RunningEmulator) -> None:
    names = httpx.get(cave.urls[0] + "/schema/api/v2/type").json()
    assert {"synapse", "bound_tag", "cell_type_local"} <= set(names)
    for name in ("synapse", "bound_tag", "cell_type_local"):
        got = httpx.get(f"{cave.urls[0]}/schema/api/v2/type/{name}").json()
        fixture = FIXTURES / "generated" / f"schema_api_v2_type_{name}.json"
        assert got == json.loads(fixture.read_text()) == DEFINITIONS[name]
    missing = httpx.get(cave.urls[0] + "/schema/api/v2/type/no_such_schema")
    assert missing.status_code == 404
    assert "/schema/api/v2/type/no_such_schema" in missing.json()["message"]


# ---------------------------------------------------------------------------- auth


def test_auth_error_bodies(cave: RunningEmulator) -> None:
    url = av(cave) + "/table"
    r = httpx.get(url, headers=PROGRAMMATIC)
    assert r.status_code == 401 and r.json()["error"] == "no_token"
    assert r.headers["www-authenticate"].startswith('Bearer realm="')
    r = httpx.get(url, headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401 and r.json()["error"] == "invalid_token"
    r = httpx.get(url, headers={"Authorization": "Basic abc"})
    assert r.status_code == 400 and r.json()["error"] == "bad_auth_header"
    r = httpx.post(url.replace("/table", "/table/bound_tag/annotations"), headers=OTHER, json={})
    assert r.status_code == 403
    assert r.json() == {
        "data": {"auth_dataset": DATASTACK, "required_permission": "edit"},
        "error": "missing_permission",
        "message": f"Missing permission: edit for dataset {DATASTACK}",
    }
    r = httpx.get(url, headers=TOS)
    assert r.status_code == 403
    body = r.json()
    assert body["error"] == "missing_tos"
    assert set(body["data"]) == {"tos_id", "tos_name", "tos_form_url"}
    assert body["data"]["tos_form_url"].endswith("/accept")


def test_token_from_cookie_or_query(cave: RunningEmulator) -> None:
    url = av(cave) + "/table"
    by_cookie = httpx.get(url, cookies={"middle_auth_token": OWNER_TOKEN})
    assert by_cookie.status_code == 200
    by_query = httpx.get(url, params={"middle_auth_token": OWNER_TOKEN}, headers=PROGRAMMATIC)
    assert by_query.json() == ["synapse", "bound_tag", "cell_type_local"]
    # A browser-like request with the token in the query is redirected to the bare URL and
    # gets the cookie; without any token it is sent to the authorize page.
    browser = httpx.get(url, params={"middle_auth_token": OWNER_TOKEN})
    assert browser.status_code == 302 and browser.headers["location"] == url
    assert "middle_auth_token=" + OWNER_TOKEN in browser.headers["set-cookie"]
    anonymous = httpx.get(url)
    assert anonymous.status_code == 302
    assert "/sticky_auth/api/v1/authorize?redirect=" in anonymous.headers["location"]


# ---------------------------------------------------------------------------- annotation reads


def test_table_list_metadata_and_notice(cave: RunningEmulator, cave_sample: SampleCave) -> None:
    assert httpx.get(av(cave) + "/table", headers=OWNER).json() == cave_sample.table_names
    r = httpx.get(av(cave) + "/table/cell_type_local", headers=OWNER)
    # The annotation engine answers table metadata with 201.
    assert r.status_code == 201
    assert r.headers["warning"] == f"Table Owner Notice: {CELL_TYPE_NOTICE}"
    md = r.json()
    assert md["schema_type"] == "cell_type_local" and md["notice_text"] == CELL_TYPE_NOTICE
    # The join with the segmentation metadata overwrites table_name (a real quirk).
    assert md["annotation_table"] == "cell_type_local"
    assert md["table_name"] == "cell_type_local__neurofs_demo_pcg"
    assert (md["voxel_resolution_x"], md["voxel_resolution_z"]) == (4.0, 40.0)
    assert md["read_permission"] == "PUBLIC" and md["write_permission"] == "PRIVATE"
    plain = httpx.get(av(cave) + "/table/synapse", headers=OWNER)
    assert plain.status_code == 201 and "warning" not in plain.headers
    missing = httpx.get(av(cave) + "/table/no_such_table", headers=OWNER)
    assert engine_message(missing) == "'NoneType' object has no attribute 'get'"


def test_count_includes_superseded_and_deleted(
    cave: RunningEmulator, cave_sample: SampleCave
) -> None:
    count = httpx.get(av(cave) + "/table/synapse/count", headers=OWNER).json()
    assert count == cave_sample.count("synapse") > 50_000
    assert count > len(cave_sample.rows("synapse", valid_only=True)) >= 50_000


def test_get_annotations_by_id(cave: RunningEmulator, cave_sample: SampleCave) -> None:
    table = cave_sample.table("synapse")
    superseded = next(r for r in table.rows if r.superceded_id)
    deleted = next(r for r in table.rows if r.deleted and not r.superceded_id)
    ids = [1, 2, superseded.id, deleted.id, superseded.superceded_id or 0]
    r = httpx.get(
        av(cave) + "/table/synapse/annotations",
        params={"annotation_ids": ",".join(map(str, ids))},
        headers=OWNER,
    )
    assert r.status_code == 200
    got = {row["id"]: row for row in r.json()}
    assert got == {i: cave_sample.row("synapse", i) for i in ids}
    assert got[superseded.id]["valid"] is False
    assert got[superseded.id]["superceded_id"] == superseded.superceded_id
    assert got[deleted.id]["deleted"] != "None" and got[1]["deleted"] == "None"
    # Same keys and order as the engine's serialized rows (shared fixture).
    fixture = json.loads(
        (FIXTURES / "generated" / "ae_get_annotations_synapse_simulated.json").read_text()
    )
    assert list(got[1]) == list(fixture[0])
    tags = httpx.get(
        av(cave) + "/table/bound_tag/annotations", params={"annotation_ids": "5"}, headers=OWNER
    ).json()
    fixture = json.loads(
        (FIXTURES / "generated" / "ae_get_annotations_bound_tag_simulated.json").read_text()
    )
    assert list(tags[0]) == list(fixture[0])
    none = httpx.get(
        av(cave) + "/table/synapse/annotations", params={"annotation_ids": "999999"}, headers=OWNER
    )
    assert none.status_code == 200 and none.json() == []
    bad = httpx.get(
        av(cave) + "/table/synapse/annotations", params={"annotation_ids": "1,x"}, headers=OWNER
    )
    assert bad.status_code == 500
    assert bad.json()["message"] == "Input payload validation failed"


# ---------------------------------------------------------------------------- annotation writes


def test_post_update_delete_roundtrip(fresh: RunningEmulator, cave_sample: SampleCave) -> None:
    url = av(fresh) + "/table/bound_tag/annotations"
    before = httpx.get(av(fresh) + "/table/bound_tag/count", headers=OWNER).json()
    new = [
        {"pt": {"position": [100, 200, 30]}, "tag": "apical", "ignored_key": 1},
        {"pt": {"position": [101.9, 201, 31]}, "tag": "basal"},
    ]
    r = httpx.post(url, json={"annotations": new}, headers=OWNER)
    assert r.status_code == 200, r.text
    ids = r.json()
    assert ids == [before + 1, before + 2]
    rows = httpx.get(url, params={"annotation_ids": f"{ids[0]},{ids[1]}"}, headers=OWNER).json()
    assert [row["tag"] for row in rows] == ["apical", "basal"]
    # Positions come back as the database's uint64 cast: truncated.
    assert rows[1]["pt_position"] == [101, 201, 31]
    assert "ignored_key" not in rows[0] and rows[0]["valid"] is True

    update = {"id": ids[0], "pt": {"position": [5, 6, 7]}, "tag": "soma"}
    r = httpx.put(url, json={"annotations": [update]}, headers=OWNER)
    assert r.status_code == 200
    mapping = r.json()
    assert list(mapping) == [str(ids[0])]
    new_id = mapping[str(ids[0])]
    assert new_id == ids[1] + 1
    old, replacement = httpx.get(
        url, params={"annotation_ids": f"{ids[0]},{new_id}"}, headers=OWNER
    ).json()
    assert old["valid"] is False and old["superceded_id"] == new_id
    assert replacement["tag"] == "soma" and replacement["valid"] is True
    again = httpx.put(url, json={"annotations": [update]}, headers=OWNER)
    assert engine_message(again).startswith(f"409 Conflict: Error update ID {ids[0]} -> ")

    r = httpx.request("DELETE", url, json={"annotation_ids": [ids[1]]}, headers=OWNER)
    assert r.status_code == 200 and r.json() == [ids[1]]
    gone = httpx.request("DELETE", url, json={"annotation_ids": [987654]}, headers=OWNER)
    assert gone.status_code == 404
    assert gone.json() == "annotation_id [987654] not in table bound_tag"
    count = httpx.get(av(fresh) + "/table/bound_tag/count", headers=OWNER).json()
    assert count == before + 3  # nothing is physically removed

    writes = [rec for rec in fresh.requests() if rec["method"] in ("POST", "PUT", "DELETE")]
    assert writes[0]["body"]["annotations"][0]["tag"] == "apical"
    assert writes[-1]["body"] == {"annotation_ids": [987654]}


def test_validation_errors_arrive_as_500_with_the_real_status(fresh: RunningEmulator) -> None:
    url = av(fresh) + "/table/bound_tag/annotations"

    def post(annotations: Any, headers: dict[str, str] = OWNER) -> httpx.Response:
        return httpx.post(url, json={"annotations": annotations}, headers=headers)

    missing = engine_message(post([{"pt": {"position": [1, 2, 3]}}]))
    assert missing == "422 Unprocessable Entity: {'tag': ['Missing data for required field.']}"
    unknown = engine_message(post([{"pt": {"position": [1, 2, 3], "x": 1}, "tag": "a"}]))
    assert unknown == "422 Unprocessable Entity: {'pt': {'x': ['Unknown field.']}}"
    wrong = engine_message(post([{"pt": {"position": [1, 2, 3]}, "tag": 5}]))
    assert wrong == "422 Unprocessable Entity: {'tag': ['Not a valid string.']}"
    short = engine_message(post([{"pt": {"position": [1, 2]}, "tag": "a"}]))
    assert short == "404 Not Found: list index out of range"
    # flask-accepts' schema errors: status 500, body is the error data.
    r = httpx.post(url, json={"rows": []}, headers=OWNER)
    assert r.status_code == 500
    assert r.json() == {
        "schema_errors": {
            "annotations": ["Missing data for required field."],
            "rows": ["Unknown field."],
        }
    }
    # The table belongs to user 1: an editor who is not the owner may not write.
    editor = engine_message(post([{"pt": {"position": [1, 2, 3]}, "tag": "a"}], EDITOR))
    assert editor == "401 Unauthorized: Unauthorized: The table can only be written to by owner"
    no_table = httpx.post(
        av(fresh) + "/table/nope/annotations", json={"annotations": []}, headers=OWNER
    )
    assert engine_message(no_table) == "'NoneType' object is not subscriptable"
    assert httpx.get(av(fresh) + "/table/bound_tag/count", headers=OWNER).json() == 240


def test_insert_cap_is_10000_rows(fresh: RunningEmulator) -> None:
    url = av(fresh) + "/table/bound_tag/annotations"
    rows = [{"pt": {"position": [i, i, 1]}, "tag": "t"} for i in range(10_001)]
    message = engine_message(httpx.post(url, json={"annotations": rows}, headers=OWNER, timeout=60))
    assert message.startswith("413 Request Entity Too Large: ")
    assert "The insertion limit is 10000, 10001 were attempted" in message
    ok = httpx.post(url, json={"annotations": rows[:10_000]}, headers=OWNER, timeout=60)
    assert ok.status_code == 200 and len(ok.json()) == 10_000


def test_create_table_and_update_metadata(fresh: RunningEmulator) -> None:
    url = av(fresh) + "/table"
    body = {
        "table_name": "my_tags",
        "schema_type": "bound_tag",
        "metadata": {
            "description": "Tags of mine",
            "voxel_resolution_x": 4.0,
            "voxel_resolution_y": 4.0,
            "voxel_resolution_z": 40.0,
        },
    }
    r = httpx.post(url, json=body, headers=EDITOR)
    assert r.status_code == 200 and r.text == "my_tags"
    dup = engine_message(httpx.post(url, json=body, headers=EDITOR))
    assert dup == "400 Bad Request: Table my_tags already exists"
    bad_name = engine_message(
        httpx.post(url, json={**body, "table_name": "Bad-Name"}, headers=EDITOR)
    )
    assert bad_name.startswith("400 Bad Request: Table name error: Invalid table name.")
    bad_schema = engine_message(
        httpx.post(url, json={**body, "table_name": "x", "schema_type": "nope"}, headers=EDITOR)
    )
    assert bad_schema == "400 Bad Request: Schema type: nope is not a known annotation type"
    md = httpx.get(url + "/my_tags", headers=EDITOR).json()
    assert md["user_id"] == "2" and md["table_name"] == "my_tags" and md["notice_text"] is None

    change = {"table_name": "my_tags", "metadata": {"notice_text": "beware"}}
    not_owner = engine_message(httpx.put(url, json=change, headers=OWNER))
    assert not_owner.startswith(
        "401 Unauthorized: You cannot do this because you are not the owner"
    )
    r = httpx.put(url, json=change, headers=EDITOR)
    assert r.status_code == 200 and r.json()["notice_text"] == "beware"
    assert (
        httpx.get(url + "/my_tags", headers=EDITOR).headers["warning"]
        == "Table Owner Notice: beware"
    )
    cleared = httpx.put(
        url, json={"table_name": "my_tags", "metadata": {"notice_text": ""}}, headers=EDITOR
    )
    assert cleared.json()["notice_text"] is None
    # caveclient sends user_id as an int, which the engine's schema refuses.
    r = httpx.put(url, json={"table_name": "my_tags", "metadata": {"user_id": 2}}, headers=EDITOR)
    assert r.status_code == 500
    assert r.json() == {"schema_errors": {"metadata": {"user_id": ["Not a valid string."]}}}
    post = httpx.post(
        url + "/my_tags/annotations",
        json={"annotations": [{"pt": {"position": [1, 2, 3]}, "tag": "x"}]},
        headers=EDITOR,
    )
    assert post.json() == [1]
    deleted = httpx.request("DELETE", url + "/my_tags", headers=EDITOR)
    assert deleted.json() is True
    # Deleting only marks the table; it stays listed.
    assert "my_tags" in httpx.get(url, headers=EDITOR).json()


# ---------------------------------------------------------------------------- materialization


def test_versions_and_metadata(cave: RunningEmulator, cave_sample: SampleCave) -> None:
    assert httpx.get(mat(cave) + "/versions", headers=OWNER).json() == [1, 2]
    md = httpx.get(mat(cave) + "/version/1", headers=OWNER).json()
    assert md["version"] == 1 and md["valid"] is True and md["datastack"] == DATASTACK
    assert md["time_stamp"] == VERSION_TIMES[0].isoformat()
    assert set(json.loads((FIXTURES / "mat_version_metadata.json").read_text())["data"]) <= set(md)
    missing = httpx.get(mat(cave) + "/version/9", headers=OWNER)
    assert missing.status_code == 404 and missing.json() == "No version found"
    assert len(httpx.get(mat(cave) + "/metadata", headers=OWNER).json()) == 2
    tables = httpx.get(mat(cave, 2) + "/version/2/tables", headers=OWNER).json()
    assert tables == cave_sample.table_names
    tmd = httpx.get(mat(cave) + "/version/2/table/synapse/metadata", headers=OWNER).json()
    assert tmd["table_name"] == "synapse" and tmd["schema"] == "synapse"
    assert tmd["voxel_resolution_z"] == 40.0 and "id" in tmd and "deleted" not in tmd
    for version in (1, 2):
        count = httpx.get(mat(cave, 2) + f"/version/{version}/table/synapse/count", headers=OWNER)
        assert count.json() == len(cave_sample.materialized("synapse", version))


def test_query_arrow_equals_json_and_ground_truth(
    cave: RunningEmulator, cave_sample: SampleCave
) -> None:
    url = mat(cave) + "/version/1/table/synapse/query"
    params = {"return_pyarrow": "true", "arrow_format": "true", "split_positions": "true"}
    body = {"offset": 100, "limit": 250}
    arrow = httpx.post(url, params=params, json=body, headers={**OWNER, "Accept-Encoding": "zstd"})
    assert arrow.status_code == 200
    table = read_arrow(arrow)
    as_json = httpx.post(
        url, params={**params, "return_pyarrow": "false"}, json=body, headers=OWNER
    )
    assert as_json.headers["content-type"] == "application/json"
    assert table.to_pylist() == as_json.json() == cave_sample.materialized("synapse", 1)[100:350]
    assert arrow.headers.get_list("warning") == ['201 - "Limited query to 250 rows'] or any(
        "Limited query to 250 rows" in w for w in arrow.headers.get_list("warning")
    )
    assert arrow.headers.get_list("dataframe_resolution") == ["4.0", "4.0", "40.0"]
    # Same columns and types as an answer built by the real engine's code (shared fixture),
    # except size, which the synapse schema declares as a float.
    with pa.ipc.open_stream(
        (FIXTURES / "generated" / "mat_query_synapse_split_5rows.arrows").read_bytes()
    ) as reader:
        fixture_schema = reader.schema
    assert table.schema.names == fixture_schema.names
    for field in table.schema:
        if field.name != "size":
            assert field.type == fixture_schema.field(field.name).type
    assert b"pandas" in (table.schema.metadata or {})


def test_page_through_all_synapses(cave: RunningEmulator, cave_sample: SampleCave) -> None:
    url = mat(cave) + "/version/2/table/synapse/query"
    params = {"split_positions": "true", "arrow_format": "true"}
    ids: list[int] = []
    offset = 0
    while True:
        r = httpx.post(
            url, params=params, json={"offset": offset, "limit": 20_000}, headers=OWNER, timeout=60
        )
        page = read_arrow(r).column("id").to_pylist()
        ids += page
        if len(page) < 20_000:
            break
        offset += len(page)
    expected = [row["id"] for row in cave_sample.materialized("synapse", 2)]
    assert ids == expected and len(ids) >= 50_000


def test_query_filters_and_columns(cave: RunningEmulator, cave_sample: SampleCave) -> None:
    url = mat(cave) + "/version/2/table/bound_tag/query"
    truth = cave_sample.materialized("bound_tag", 2)

    def query(body: dict[str, Any], split: bool = True) -> list[dict[str, Any]]:
        params = {"return_pyarrow": "false", "split_positions": str(split).lower()}
        r = httpx.post(url, params=params, json=body, headers=OWNER)
        assert r.status_code == 200, r.text
        return list(r.json())

    def f(kind: str, value: Any) -> dict[str, Any]:
        return {kind: {"bound_tag": value}}

    assert query(f("filter_equal_dict", {"tag": "apical"})) == [
        r for r in truth if r["tag"] == "apical"
    ]
    assert query(f("filter_in_dict", {"id": [3, 4, 999]})) == [
        r for r in truth if r["id"] in (3, 4)
    ]
    assert query(f("filter_regex_dict", {"tag": "^a"})) == [
        r for r in truth if r["tag"].startswith("a")
    ]
    box = [[20_000, 20_000, 1_000], [70_000, 70_000, 2_000]]
    inside = [
        r
        for r in truth
        if all(box[0][i] <= r[f"pt_position_{a}"] <= box[1][i] for i, a in enumerate("xyz"))
    ]
    assert query(f("filter_spatial_dict", {"pt_position": box})) == inside and inside
    assert query(f("filter_greater_dict", {"id": 230})) == [r for r in truth if r["id"] > 230]
    # The simple query ignores filter_notin_dict (it reads filter_out_dict): a real quirk.
    assert query(f("filter_notin_dict", {"tag": ["apical"]})) == truth
    selected = query({"select_columns": ["tag", "pt_position", "id"], "limit": 2})
    assert list(selected[0]) == ["tag", "id", "pt_position_x", "pt_position_y", "pt_position_z"]
    lists = query({"limit": 1}, split=False)
    assert lists[0]["pt_position"] == [truth[0][f"pt_position_{a}"] for a in "xyz"]
    r = httpx.post(url, json={"filter_equal_dict": {"bound_tag": {"nope": 1}}}, headers=OWNER)
    assert r.status_code == 500 and "has no attribute 'nope'" in r.json()["message"]
    bad = httpx.post(url, json={"bogus": 1}, headers=OWNER)
    assert bad.status_code == 400 and "Error parsing request body" in bad.text


def test_query_row_cap_warning() -> None:
    with start_emulator("cave", env={QUERY_LIMIT_ENV: "1000"}) as emulator:
        r = httpx.post(
            mat(emulator) + "/version/2/table/synapse/query",
            params={"split_positions": "true", "arrow_format": "true"},
            json={},
            headers=OWNER,
        )
        assert read_arrow(r).num_rows == 1000
        assert '201 - "Limited query to 1000 rows' in r.headers.get_list("warning")
        asked = httpx.post(
            mat(emulator) + "/version/2/table/synapse/query",
            json={"limit": 5000},
            headers=OWNER,
        )
        assert read_arrow(asked).num_rows == 1000


def test_live_query_sees_writes(fresh: RunningEmulator, cave_sample: SampleCave) -> None:
    url = mat(fresh) + "/query"
    between = "2024-05-15T00:00:00+00:00"
    body = {"table": "bound_tag", "timestamp": between}
    params = {"return_pyarrow": "false", "split_positions": "true"}
    r = httpx.post(url, params=params, json=body, headers=OWNER)
    t = cave_sample.table("bound_tag")
    when = dt.datetime(2024, 5, 15)
    assert [row["id"] for row in r.json()] == sorted(x.id for x in t.rows if x.valid_at(when))
    posted = httpx.post(
        av(fresh) + "/table/bound_tag/annotations",
        json={"annotations": [{"pt": {"position": [1, 2, 3]}, "tag": "new"}]},
        headers=OWNER,
    ).json()
    now = dt.datetime.now(dt.UTC).isoformat()
    live = httpx.post(
        url, params=params, json={"table": "bound_tag", "timestamp": now}, headers=OWNER
    ).json()
    assert live[-1]["id"] == posted[0] and live[-1]["tag"] == "new"
    excluded = httpx.post(
        url,
        params=params,
        json={**body, "filter_notin_dict": {"bound_tag": {"tag": ["apical"]}}},
        headers=OWNER,
    ).json()
    assert excluded and all(row["tag"] != "apical" for row in excluded)


def test_live_query_returns_segment_ids(cave: RunningEmulator, cave_sample: SampleCave) -> None:
    """Every bound point comes with ``<pt>_supervoxel_id`` and ``<pt>_root_id`` (int64), the
    emulator's stand-in for the chunkedgraph: a function of the point's voxel position."""
    now = dt.datetime.now(dt.UTC).isoformat()
    body = {"table": "synapse", "timestamp": now, "limit": 300}
    params = {"return_pyarrow": "false", "split_positions": "true"}
    rows = httpx.post(mat(cave) + "/query", params=params, json=body, headers=OWNER).json()
    assert list(rows[0]) == cave_sample.table("synapse").spec.mat_columns(True)
    assert rows == cave_sample.materialized("synapse", 2)[:300]
    for row in rows:
        for pt in ("pre_pt", "post_pt"):
            position = [row[f"{pt}_position_{a}"] for a in "xyz"]
            expected = segment_ids(*position)
            assert (row[f"{pt}_supervoxel_id"], row[f"{pt}_root_id"]) == expected
    arrow = read_arrow(
        httpx.post(
            mat(cave) + "/query",
            params={**params, "return_pyarrow": "true"},
            json=body,
            headers=OWNER,
        )
    )
    assert arrow.to_pylist() == rows
    assert arrow.schema.field("pre_pt_root_id").type == pa.int64()
    assert arrow.schema.field("post_pt_supervoxel_id").type == pa.int64()
    assert "created" not in arrow.schema.names  # synapse is frozen in version 2, merged


def test_live_query_of_a_table_changed_since_its_version_concatenates(
    cave: RunningEmulator, cave_sample: SampleCave
) -> None:
    """Between versions 1 and 2 bound_tag changed after version 1: the engine concatenates the
    production rows (first, so their columns lead) with the frozen ones (adding ``valid`` at
    the end); rows that only the production tables hold have ``valid`` null."""
    when = dt.datetime(2024, 5, 15)
    body = {"table": "bound_tag", "timestamp": when.isoformat() + "+00:00"}
    params = {"return_pyarrow": "false", "split_positions": "true"}
    rows = httpx.post(mat(cave) + "/query", params=params, json=body, headers=OWNER).json()
    assert list(rows[0]) == [
        "id",
        "pt_position_x",
        "pt_position_y",
        "pt_position_z",
        "tag",
        "pt_supervoxel_id",
        "pt_root_id",
        "valid",
    ]
    v1 = VERSION_TIMES[0]
    truth = {r.id: r for r in cave_sample.table("bound_tag").rows}
    assert [r["id"] for r in rows] == sorted(i for i, r in truth.items() if r.valid_at(when))
    added = [r["id"] for r in rows if r["valid"] is None]
    assert added == [r["id"] for r in rows if truth[r["id"]].created > v1] and added
    assert all(r["valid"] is True for r in rows if r["id"] not in added)
    arrow = read_arrow(
        httpx.post(
            mat(cave) + "/query",
            params={**params, "return_pyarrow": "true"},
            json=body,
            headers=OWNER,
        )
    )
    assert arrow.to_pylist() == rows and arrow.schema.field("valid").type == pa.bool_()


def test_live_query_of_a_table_made_since_the_last_version_keeps_created(
    fresh: RunningEmulator,
) -> None:
    """A table not frozen in the version the live query starts from is read from the
    production tables alone: ``created`` stays (epoch milliseconds in JSON, a UTC timestamp
    in Arrow), ``valid`` does not, and the columns follow the split models' order."""
    made = httpx.post(
        av(fresh) + "/table",
        json={
            "table_name": "new_tags",
            "schema_type": "bound_tag",
            "metadata": {
                "description": "made after the versions",
                "voxel_resolution_x": 4.0,
                "voxel_resolution_y": 4.0,
                "voxel_resolution_z": 40.0,
            },
        },
        headers=OWNER,
    )
    assert made.status_code == 200, made.text
    url = mat(fresh) + "/query"
    params = {"return_pyarrow": "false", "split_positions": "true"}
    empty = httpx.post(
        url,
        params=params,
        json={"table": "new_tags", "timestamp": dt.datetime.now(dt.UTC).isoformat()},
        headers=OWNER,
    )
    assert empty.status_code == 200 and empty.json() == []
    before = dt.datetime.now(dt.UTC)
    ids = httpx.post(
        av(fresh) + "/table/new_tags/annotations",
        json={"annotations": [{"pt": {"position": [4096, 8192, 300]}, "tag": "soma"}]},
        headers=OWNER,
    ).json()
    after = dt.datetime.now(dt.UTC)
    body = {"table": "new_tags", "timestamp": dt.datetime.now(dt.UTC).isoformat()}
    rows = httpx.post(url, params=params, json=body, headers=OWNER).json()
    supervoxel, root = segment_ids(4096, 8192, 300)
    assert rows == [
        {
            "id": ids[0],
            "created": rows[0]["created"],
            "pt_position_x": 4096,
            "pt_position_y": 8192,
            "pt_position_z": 300,
            "tag": "soma",
            "pt_supervoxel_id": supervoxel,
            "pt_root_id": root,
        }
    ]
    created_ms = rows[0]["created"]
    assert isinstance(created_ms, int)
    assert before.timestamp() * 1000 - 1 <= created_ms <= after.timestamp() * 1000 + 1
    arrow = read_arrow(
        httpx.post(url, params={**params, "return_pyarrow": "true"}, json=body, headers=OWNER)
    )
    assert arrow.schema.field("created").type == pa.timestamp("ns", tz="UTC")
    created = arrow.column("created").to_pylist()[0]
    assert created_ms == int(created.timestamp() * 1000)
    assert arrow.to_pandas()["created"].dtype == "datetime64[ns, UTC]"


# ---------------------------------------------------------------------------- states


def test_neuroglancer_states(fresh: RunningEmulator) -> None:
    base = fresh.urls[0] + "/nglstate/api/v1"
    got = httpx.get(f"{base}/{STATE_ID}", headers=OWNER)
    assert got.status_code == 200 and got.json() == sample_state_json()
    new_state = {"layers": [], "title": "mine"}
    r = httpx.post(f"{base}/post", content=json.dumps(new_state), headers=OWNER)
    assert r.status_code == 200
    url = r.json()
    assert url.startswith(base + "/")
    new_id = int(url.rsplit("/", 1)[1])
    assert httpx.get(f"{base}/{new_id}", headers=OWNER).json() == new_state
    # Accept-Encoding with deflate but without gzip: zlib bytes, unlabelled (real quirk).
    raw = httpx.get(f"{base}/{new_id}", headers={**OWNER, "Accept-Encoding": "deflate"})
    assert "content-encoding" not in raw.headers
    assert json.loads(zlib.decompress(raw.content)) == new_state
    unknown = httpx.get(f"{base}/123", headers=OWNER)
    assert unknown.status_code == 500 and "Internal Server Error" in unknown.text
    assert httpx.post(f"{base}/post", content=b"not json", headers=OWNER).status_code == 500
    assert httpx.get(f"{base}/{STATE_ID}", headers=PROGRAMMATIC).status_code == 401


def test_the_datastacks_viewer_publishes_its_version_json(cave: RunningEmulator) -> None:
    """The viewer the datastack info names is a spelunker deployment: its version.json is
    public, served at ``{viewer_site}/version.json`` as caveclient asks it (a doubled slash
    after a viewer_site ending with one), and written as its build writes it."""
    info = httpx.get(f"{cave.urls[0]}/info/api/v2/datastack/full/{DATASTACK}", headers=OWNER)
    viewer = info.json()["viewer_site"]
    assert viewer == cave.urls[0] + "/neuroglancer/"
    for url in (f"{viewer}/version.json", f"{viewer}version.json"):
        r = httpx.get(url)
        assert r.status_code == 200 and r.headers["content-type"] == "application/json"
        assert r.json() == VIEWER_BUILD and r.text.endswith("}\n")
    # The viewer is no route of the local server.
    assert httpx.get(f"{cave.urls[1]}/neuroglancer/version.json").status_code == 404


# ---------------------------------------------------------------------------- determinism


def test_sample_is_deterministic(cave: RunningEmulator) -> None:
    a, b = build_state(), build_state()
    for name in a.tables:
        ra, rb = a.tables[name].rows, b.tables[name].rows
        assert [(r.id, r.created, r.deleted, r.values) for r in ra] == [
            (r.id, r.created, r.deleted, r.values) for r in rb
        ]
    url = mat(cave) + "/version/1/table/cell_type_local/query"
    params = {"split_positions": "true", "arrow_format": "true"}
    first = httpx.post(url, params=params, json={}, headers=OWNER).content
    with start_emulator("cave") as other:
        second = httpx.post(
            mat(other) + "/version/1/table/cell_type_local/query",
            params=params,
            json={},
            headers=OWNER,
        ).content
    assert first == second


def test_annotation_rows_page_by_ids(cave: RunningEmulator, cave_sample: SampleCave) -> None:
    # A reader of the annotation engine asks for ids in batches; 1,000 ids keep the URL short.
    url = av(cave) + "/table/synapse/annotations"
    got: list[dict[str, Any]] = []
    for start in range(1, 3001, 1000):
        ids = ",".join(str(i) for i in range(start, start + 1000))
        r = httpx.get(url, params={"annotation_ids": ids}, headers=OWNER, timeout=60)
        assert r.status_code == 200
        got += r.json()
    assert got == cave_sample.rows("synapse")[:3000]


def test_network_knobs_apply(cave: RunningEmulator) -> None:
    cave.set_knobs(fault_rate=1.0, seed=3)
    try:
        r = httpx.get(av(cave) + "/table", headers=OWNER)
        assert r.status_code in (429, 500, 502, 503)
    except httpx.RemoteProtocolError:  # an injected connection cut
        pass
    cave.set_knobs()
    assert httpx.get(av(cave) + "/table", headers=OWNER).status_code == 200
    assert any(rec["fault"] for rec in cave.requests())


# ---------------------------------------------------------------------------- chunkedgraph


def pcg(emulator: RunningEmulator) -> str:
    """The graph's routes as caveclient builds them: the local server and the table named
    last in the info's ``segmentation_source``."""
    info = httpx.get(
        f"{emulator.urls[0]}/info/api/v2/datastack/full/{DATASTACK}", headers=OWNER
    ).json()
    table = info["segmentation_source"].split("/")[-1]
    return f"{info['local_server']}/segmentation/api/v1/table/{table}"


def test_chunkedgraph_roots_and_leaves(cave: RunningEmulator) -> None:
    from neurofs_emulators.cave import chunkedgraph as cg

    base = pcg(cave)
    assert httpx.get(cave.urls[1] + "/segmentation/api/versions").json() == [0, 1]
    for root in cg.ROOTS.values():
        if root.id == cg.ROOT_HUGE:
            continue
        r = httpx.get(f"{base}/node/{root.id}/leaves", headers=OWNER)
        assert r.status_code == 200
        # flask's bytes, whether sent whole or (computed roots) in pieces.
        assert r.content == flask_json({"leaf_ids": list(root.leaf_ids())}).body
    # The huge root's answer: streamed, every id once, in order.
    with httpx.stream("GET", f"{base}/node/{cg.ROOT_HUGE}/leaves", headers=OWNER) as r:
        text = b"".join(r.iter_bytes())
    assert text.startswith(b'{"leaf_ids":[') and text.endswith(b"]}\n")
    ids = text[len(b'{"leaf_ids":[') : -len(b"]}\n")].split(b",")
    assert len(ids) == cg.HUGE_LEAVES
    assert int(ids[0]) == cg.HUGE_FIRST_LEAF and int(ids[-1]) == cg.HUGE_FIRST_LEAF + len(ids) - 1
    assert len(text) > 64 * 1024 * 1024
    del text, ids
    big = httpx.get(f"{base}/node/{cg.ROOT_BIG}/leaves", headers=OWNER).json()["leaf_ids"]
    assert len(big) == cg.BIG_LEAVES >= 100_000 and len(set(big)) == len(big)
    # Every supervoxel's current root: the merged halves' E, the split-off B.
    left, right = cg.ROOTS[cg.ROOT_B].leaves[0], cg.ROOTS[cg.ROOT_C].leaves[0]
    for supervoxel, root in ((left, cg.ROOT_B), (right, cg.ROOT_E), (big[-1], cg.ROOT_BIG)):
        r = httpx.get(f"{base}/node/{supervoxel}/root", headers=OWNER)
        assert r.json() == {"root_id": root}
    # Before the split, both were A's.
    before = {"timestamp": str(cg.SPLIT_TIME - 1)}
    r = httpx.get(f"{base}/node/{right}/root", params=before, headers=OWNER)
    assert r.json() == {"root_id": cg.ROOT_A}
    r = httpx.post(f"{base}/roots", json={"node_ids": [left, 12345]}, headers=OWNER)
    assert r.json() == [cg.ROOT_B, 0]  # fail_to_zero


def test_chunkedgraph_latest_and_lineage(cave: RunningEmulator) -> None:
    from neurofs_emulators.cave import chunkedgraph as cg

    base = pcg(cave)
    ids = [cg.ROOT_A, cg.ROOT_B, cg.ROOT_C, cg.ROOT_E]
    r = httpx.post(f"{base}/is_latest_roots", json={"node_ids": ids}, headers=OWNER)
    assert r.json() == {"is_latest": [False, True, False, True]}
    r = httpx.post(f"{base}/root_timestamps", json={"node_ids": [cg.ROOT_B]}, headers=OWNER)
    assert r.json() == {"timestamp": [cg.SPLIT_TIME]}
    r = httpx.post(f"{base}/lineage_graph_multiple", json={"root_ids": [cg.ROOT_A]}, headers=OWNER)
    graph = r.json()
    assert list(graph) == ["directed", "graph", "links", "multigraph", "nodes"]  # jsonify
    assert {(link["source"], link["target"]) for link in graph["links"]} == {
        (cg.ROOT_A, cg.ROOT_B),
        (cg.ROOT_A, cg.ROOT_C),
        (cg.ROOT_C, cg.ROOT_E),
    }
    # A node's operation is the edit that replaced it (none for a current root).
    ops = {n["id"]: n.get("operation_id") for n in graph["nodes"]}
    assert ops == {
        cg.ROOT_A: cg.SPLIT_OPERATION,
        cg.ROOT_B: None,
        cg.ROOT_C: cg.MERGE_OPERATION,
        cg.ROOT_E: None,
    }
    # From a root, backwards only through what it was made from and forwards only through
    # what it became: D's graph has neither A nor B nor C.
    r = httpx.post(f"{base}/lineage_graph_multiple", json={"root_ids": [cg.ROOT_D]}, headers=OWNER)
    assert {n["id"] for n in r.json()["nodes"]} == {cg.ROOT_D, cg.ROOT_E}
    # Bounded in time: a walk stops at a root made outside the bounds and keeps the link to
    # it (caveclient may drop such links itself).
    after_split = str(cg.SPLIT_TIME + 1)
    r = httpx.post(
        f"{base}/lineage_graph_multiple",
        params={"timestamp_future": after_split, "timestamp_past": after_split},
        json={"root_ids": [cg.ROOT_C]},
        headers=OWNER,
    )
    assert {(link["source"], link["target"]) for link in r.json()["links"]} == {
        (cg.ROOT_C, cg.ROOT_E)
    }


def test_chunkedgraph_refusals(cave: RunningEmulator) -> None:
    from neurofs_emulators.cave import chunkedgraph as cg

    base = pcg(cave)
    # Not a root: PyChunkedGraph's BadRequest, its status and its error body.
    r = httpx.post(f"{base}/is_latest_roots", json={"node_ids": [12345]}, headers=OWNER)
    assert r.status_code == 400
    body = r.json()
    assert set(body) == {"code", "duration", "message", "timestamp", "traceback"}
    assert body["code"] == 400 and body["message"] == "Some ids are not root ids."
    assert httpx.get(f"{base}/node/12345/leaves", headers=OWNER).status_code == 400
    assert httpx.get(f"{base}/node/12345/root", headers=OWNER).status_code == 400
    assert httpx.get(f"{base}/node/abc/root", headers=OWNER).status_code == 500
    # Auth as every CAVE service: a token, and view on the table's dataset.
    leaves = f"{base}/node/{cg.ROOT_B}/leaves"
    assert httpx.get(leaves, headers=PROGRAMMATIC).status_code == 401
    assert httpx.get(leaves, headers=TOS).json()["error"] == "missing_tos"
    other = httpx.get(leaves.replace("neurofs_demo_pcg", "nope"), headers=OWNER)
    assert other.status_code == 400 and other.json()["error"] == "invalid_table_id"

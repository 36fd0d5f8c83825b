"""The official ``caveclient`` (PyPI, in .venv-conformance-cave) against the CAVE emulator.

If the real client builds a ``CAVEclient`` on the emulator, reads and writes annotations,
queries materialized tables through the Arrow path, and stores neuroglancer states, the
emulator has not drifted from the real services where neurofs relies on them. Each test also
checks which requests the client made.
"""

from __future__ import annotations

import csv
import json
import os
from datetime import datetime

import pytest

from neurofs_emulators.cave.definitions import DEFINITIONS
from neurofs_emulators.cave.sample import (
    ALIGNED_VOLUME,
    CELL_TYPE_NOTICE,
    DATASTACK,
    STATE_ID,
    SampleCave,
    sample_state_json,
)
from neurofs_emulators.launch import RunningEmulator
from tests.support.fixtures import MakeMount

from .conftest import CaveClientRunner

pytestmark = pytest.mark.conformance

AV = f"/annotation/api/v2/aligned_volume/{ALIGNED_VOLUME}"
M3 = f"/materialize/api/v3/datastack/{DATASTACK}"


def calls(emulator: RunningEmulator) -> list[tuple[str, str]]:
    return [(r["method"], r["path"]) for r in emulator.requests()]


def test_info_schema_and_tables(
    run_cave_client: CaveClientRunner, cave_emulator: RunningEmulator, cave_sample: SampleCave
) -> None:
    result = run_cave_client(
        """
        info = client.info.get_datastack_info()
        md = client.annotation.get_table_metadata("cell_type_local")
        emit({
            "local_server": info["local_server"],
            "aligned_volume": info["aligned_volume"]["name"],
            "tables": client.annotation.get_tables(),
            "metadata": md,
            "count": client.annotation.get_annotation_count("synapse"),
            "schema": client.schema.schema_definition("synapse"),
            "rows": client.annotation.get_annotation("synapse", [1, 2]),
        })
        """
    )
    assert result["local_server"] == cave_emulator.urls[1]
    assert result["aligned_volume"] == ALIGNED_VOLUME
    assert result["tables"] == cave_sample.table_names
    assert result["metadata"]["voxel_resolution"] == [4.0, 4.0, 40.0]
    assert result["metadata"]["notice_text"] == CELL_TYPE_NOTICE
    assert result["count"] == cave_sample.count("synapse")
    assert result["schema"] == DEFINITIONS["synapse"]
    assert result["rows"] == [cave_sample.row("synapse", 1), cave_sample.row("synapse", 2)]
    made = calls(cave_emulator)
    assert ("GET", f"/info/api/v2/datastack/full/{DATASTACK}") in made
    assert ("GET", f"{AV}/table/cell_type_local") in made
    assert ("GET", f"{AV}/table/synapse/count") in made
    assert ("GET", "/schema/api/v2/type/synapse") in made


def test_post_update_delete_annotations(
    run_cave_client: CaveClientRunner, cave_emulator: RunningEmulator
) -> None:
    result = run_cave_client(
        """
        ids = client.annotation.post_annotation(
            "bound_tag",
            [{"pt": {"position": [10, 20, 3]}, "tag": "apical"},
             {"pt": {"position": [11, 21, 3]}, "tag": "basal"}],
        )
        mapping = client.annotation.update_annotation(
            "bound_tag", [{"id": ids[0], "pt": {"position": [12, 22, 3]}, "tag": "soma"}]
        )
        deleted = client.annotation.delete_annotation("bound_tag", [ids[1]])
        new_id = list(mapping.values())[0]
        rows = client.annotation.get_annotation("bound_tag", [ids[0], ids[1], new_id])
        try:
            client.annotation.update_annotation(
                "bound_tag", [{"id": ids[0], "pt": {"position": [1, 1, 1]}, "tag": "x"}]
            )
            conflict = None
        except Exception as exc:
            conflict = str(exc)
        emit({"ids": ids, "mapping": mapping, "deleted": deleted, "rows": rows,
              "conflict": conflict})
        """
    )
    first, second = result["ids"]
    assert second == first + 1
    new_id = result["mapping"][str(first)]
    assert result["deleted"] == [second]
    rows = {r["id"]: r for r in result["rows"]}
    assert rows[first]["valid"] is False and rows[first]["superceded_id"] == new_id
    assert rows[second]["valid"] is False and rows[second]["deleted"] != "None"
    assert rows[new_id]["tag"] == "soma" and rows[new_id]["pt_position"] == [12, 22, 3]
    # The engine's catch-all handler: HTTP 500 carrying the real 409 in its message.
    assert "500 Server Error: 409 Conflict: Error update ID" in result["conflict"]
    methods = [m for m, p in calls(cave_emulator) if p == f"{AV}/table/bound_tag/annotations"]
    assert methods == ["POST", "PUT", "DELETE", "GET", "PUT"]


def test_query_table_arrow_path(
    run_cave_client: CaveClientRunner, cave_emulator: RunningEmulator, cave_sample: SampleCave
) -> None:
    result = run_cave_client(
        """
        df = client.materialize.query_table("synapse", offset=10, limit=500, split_positions=True)
        tags = client.materialize.query_table(
            "bound_tag", filter_equal_dict={"tag": "apical"}, materialization_version=1
        )
        emit({
            "versions": client.materialize.get_versions(),
            "columns": list(df.columns),
            "dtypes": {c: str(t) for c, t in df.dtypes.items()},
            "records": json.loads(df.to_json(orient="records")),
            "tag_ids": tags["id"].tolist(),
            "tag_position": [int(v) for v in tags["pt_position"].iloc[0]],
        })
        """
    )
    assert result["versions"] == [1, 2]
    truth = cave_sample.materialized("synapse", 2)[10:510]
    assert result["columns"] == list(truth[0])
    assert result["records"] == truth
    assert result["dtypes"]["pre_pt_root_id"] == "int64" and result["dtypes"]["valid"] == "bool"
    apical = [r for r in cave_sample.materialized("bound_tag", 1) if r["tag"] == "apical"]
    assert result["tag_ids"] == [r["id"] for r in apical]
    assert result["tag_position"] == [apical[0][f"pt_position_{a}"] for a in "xyz"]
    requests = cave_emulator.requests()
    queries = [r for r in requests if r["path"].endswith("/table/synapse/query")]
    assert queries and queries[0]["path"] == f"{M3}/version/2/table/synapse/query"
    assert "return_pyarrow=True" in queries[0]["query"]
    assert "split_positions=True" in queries[0]["query"]


def test_live_queries(run_cave_client: CaveClientRunner, cave_sample: SampleCave) -> None:
    result = run_cave_client(
        """
        import datetime
        ts = client.materialize.get_timestamp(1)
        at_version = client.materialize.live_query("bound_tag", ts)
        new = [{"pt": {"position": [5, 5, 5]}, "tag": "new"}]
        client.annotation.post_annotation("bound_tag", new)
        now = datetime.datetime.now(datetime.timezone.utc)
        live = client.materialize.live_live_query("bound_tag", now)
        emit({"at_version": sorted(at_version["id"].tolist()),
              "live_tags": live["tag"].tolist(), "live_ids": live["id"].tolist()})
        """
    )
    assert result["at_version"] == [r["id"] for r in cave_sample.materialized("bound_tag", 1)]
    valid_now = [r["id"] for r in cave_sample.materialized("bound_tag", 2)]
    assert result["live_ids"][:-1] == valid_now
    assert result["live_tags"][-1] == "new"


def test_neuroglancer_states(
    run_cave_client: CaveClientRunner, cave_emulator: RunningEmulator
) -> None:
    result = run_cave_client(
        f"""
        stored = client.state.get_state_json({STATE_ID})
        new_id = client.state.upload_state_json({{"layers": [], "title": "from caveclient"}})
        emit({{"stored": stored, "new_id": new_id, "back": client.state.get_state_json(new_id)}})
        """
    )
    assert result["stored"] == sample_state_json()
    assert result["back"] == {"layers": [], "title": "from caveclient"}
    assert ("POST", "/nglstate/api/v1/post") in calls(cave_emulator)
    assert ("GET", f"/nglstate/api/v1/{result['new_id']}") in calls(cave_emulator)


@pytest.mark.mount
def test_the_mounts_state_links_are_the_clients(
    make_mount: MakeMount, run_cave_client: CaveClientRunner, cave_emulator: RunningEmulator
) -> None:
    """``states/<id>.url`` is, line for line, what ``state.build_neuroglancer_url(id)`` gives:
    the same viewer (the datastack's ``viewer_site``), the same form of link (chosen from the
    viewer's version.json, which both ask at one URL), the same state URL; for the sample's
    state and for one the client stored, which the mount finds by its id."""
    result = run_cave_client(
        f"""
        new_id = client.state.upload_state_json({{"layers": [], "title": "linked"}})
        emit({{
            "viewer": client.info.viewer_site(),
            "new_id": new_id,
            "stored": client.state.build_neuroglancer_url({STATE_ID}),
            "new": client.state.build_neuroglancer_url(new_id),
        }})
        """
    )
    assert result["viewer"] == cave_emulator.urls[0] + "/neuroglancer/"
    assert result["stored"].startswith(result["viewer"] + "#!middleauth+")  # spelunker's form
    client_asked = [p for m, p in calls(cave_emulator) if p.endswith("version.json")]
    assert client_asked == ["/neuroglancer//version.json"] * 2
    cave_emulator.clear_requests()
    states = make_mount(cave_emulator) / f"cave/{DATASTACK}/states"
    assert (states / f"{STATE_ID}.url").read_text() == result["stored"] + "\n"
    assert (states / f"{result['new_id']}.url").read_text() == result["new"] + "\n"
    mount_asked = [p for m, p in calls(cave_emulator) if p.endswith("version.json")]
    assert mount_asked == ["/neuroglancer//version.json"]  # once for both links


def _csv(path: os.PathLike[str]) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.mount
def test_the_mounts_segment_ids_and_created_equal_the_clients(
    make_mount: MakeMount,
    run_cave_client: CaveClientRunner,
    cave_emulator: RunningEmulator,
) -> None:
    """The official client's frames and the mount's CSV files, on the same server: supervoxel
    and root ids of ``query_table`` (a frozen version) and ``live_query`` equal the mount's
    ``versions/<n>/<table>.csv`` and ``annotations.csv``; ``created`` of ``live_live_query``
    (the route the mount reads) equals the mount's ISO text, to the millisecond."""
    mount = make_mount(cave_emulator)
    root = mount / f"cave/{DATASTACK}"
    tables = root / "tables"
    os.mkdir(tables / "fresh_tags")
    template = json.loads((tables / "fresh_tags/metadata.json").read_text())
    template.update(schema_type="bound_tag", description="made after the versions")
    (tables / "fresh_tags/metadata.json").write_text(json.dumps(template))
    fresh = tables / "fresh_tags/annotations.csv"
    fresh.write_text(fresh.read_text() + ",4096,8192,300,,,soma,,,,\n,5000,9000,310,,,axon,,,,\n")
    result = run_cave_client(
        """
        import datetime
        def ids(df, pt):
            return {str(i): [int(s), int(r)] for i, s, r in
                    zip(df["id"], df[pt + "_supervoxel_id"], df[pt + "_root_id"])}
        frozen = client.materialize.query_table("synapse", materialization_version=1)
        ts = client.materialize.get_timestamp(2)
        live = client.materialize.live_query("cell_type_local", ts)
        now = datetime.datetime.now(datetime.timezone.utc)
        fresh = client.materialize.live_live_query("fresh_tags", now)
        emit({
            "frozen_pre": ids(frozen, "pre_pt"), "frozen_post": ids(frozen, "post_pt"),
            "live": ids(live, "pt"),
            "fresh": ids(fresh, "pt"),
            "created": {str(i): int(t.value) for i, t in zip(fresh["id"], fresh["created"])},
            "created_dtype": str(fresh["created"].dtype),
        })
        """
    )

    def mount_ids(rows: list[dict[str, str]], pt: str) -> dict[str, list[int]]:
        return {r["id"]: [int(r[f"{pt}_supervoxel_id"]), int(r[f"{pt}_root_id"])] for r in rows}

    frozen = _csv(root / "versions/1/synapse.csv")
    assert len(frozen) > 40_000
    assert mount_ids(frozen, "pre_pt") == result["frozen_pre"]
    assert mount_ids(frozen, "post_pt") == result["frozen_post"]
    live = _csv(tables / "cell_type_local/annotations.csv")
    assert mount_ids(live, "pt") == result["live"] and len(live) == 300
    fresh_rows = _csv(fresh)
    assert mount_ids(fresh_rows, "pt") == result["fresh"] and len(fresh_rows) == 2
    assert result["created_dtype"] == "datetime64[ns, UTC]"
    for row in fresh_rows:
        shown = datetime.fromisoformat(row["created"])
        assert row["created"].endswith("Z") and shown.utcoffset() is not None
        ms = (shown - datetime.fromisoformat("1970-01-01T00:00:00Z")).total_seconds() * 1000
        assert round(ms) == result["created"][row["id"]] // 1_000_000


@pytest.mark.mount
def test_the_mounts_segments_and_supervoxels_are_the_clients(
    make_mount: MakeMount, run_cave_client: CaveClientRunner, cave_emulator: RunningEmulator
) -> None:
    """``segments/<root>/leaves``, ``latest`` and ``lineage.json`` and
    ``supervoxels/<id>`` are what ``chunkedgraph.get_leaves``, ``get_latest_roots``,
    ``get_lineage_graph`` and ``get_root_id`` give, for outdated and current roots (the
    client finds the graph's server and table from the datastack info as the mount does)."""
    from neurofs_emulators.cave import chunkedgraph as cg

    roots = [cg.ROOT_A, cg.ROOT_B, cg.ROOT_C, cg.ROOT_D, cg.ROOT_E, cg.ROOT_BIG]
    supervoxels = [
        cg.ROOTS[cg.ROOT_B].leaves[0],
        cg.ROOTS[cg.ROOT_C].leaves[-1],
        cg.ROOTS[cg.ROOT_D].leaves[0],
        cg.BIG_FIRST_LEAF + 7,
    ]
    result = run_cave_client(
        f"""
        graph = client.chunkedgraph
        roots = {roots!r}
        emit({{
            "table": graph.table_name,
            "leaves": {{str(r): [int(i) for i in graph.get_leaves(r)] for r in roots}},
            "latest": {{str(r): sorted(int(i) for i in graph.get_latest_roots(r)) for r in roots}},
            "lineage": {{str(r): graph.get_lineage_graph(r) for r in roots}},
            "root": {{str(s): int(graph.get_root_id(s)) for s in {supervoxels!r}}},
        }})
        """
    )
    client_asked = {p for m, p in calls(cave_emulator) if p.startswith("/segmentation/")}
    base = f"/segmentation/api/v1/table/{result['table']}"
    assert f"{base}/node/{cg.ROOT_A}/leaves" in client_asked
    assert f"{base}/lineage_graph_multiple" in client_asked
    assert f"{base}/node/{supervoxels[0]}/root" in client_asked
    root = make_mount(cave_emulator) / f"cave/{DATASTACK}"
    for r in roots:
        segment = root / "segments" / str(r)
        leaves = [int(line) for line in (segment / "leaves").read_text().splitlines()]
        assert leaves == result["leaves"][str(r)]
        latest = [int(line) for line in (segment / "latest").read_text().splitlines()]
        assert latest == result["latest"][str(r)]
        assert json.loads((segment / "lineage.json").read_text()) == result["lineage"][str(r)]
    assert len(result["leaves"][str(cg.ROOT_BIG)]) == cg.BIG_LEAVES
    assert result["latest"][str(cg.ROOT_A)] == [cg.ROOT_B, cg.ROOT_E]
    for s in supervoxels:
        assert (root / "supervoxels" / str(s)).read_text() == f"{result['root'][str(s)]}\n"

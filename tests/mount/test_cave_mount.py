"""CAVE through a real mount: tables read as CSV equal the server's rows; appends, rewrites
and deletions become exactly the POST / PUT / DELETE they mean; bad input is refused."""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from neurofs_emulators.cave.sample import (
    DATASTACK,
    STATE_ID,
    TOS_TOKEN,
    SampleCave,
)
from neurofs_emulators.cave.sample import (
    OWNER_TOKEN as SAMPLE_TOKEN,
)
from tests.support.memory import high_water_mark, reset_high_water_mark, resident

from .conftest import CaveEmulator, Mount

pytestmark = pytest.mark.mount

SAMPLE = SampleCave()


@pytest.fixture
def mount(make_mount, cave_emulator: CaveEmulator) -> Mount:
    m = make_mount(cave_emulator, retry_seconds=1)
    cave_emulator.clear_refusals()
    cave_emulator.reset()
    return m


def table(mount: Mount, name: str) -> Path:
    return mount / f"cave/{DATASTACK}/tables/{name}"


def annotation_writes(emulator: CaveEmulator) -> list[dict]:
    return [w for w in emulator.writes() if "/annotations" in w["path"]]


def live_ids(emulator: CaveEmulator, name: str) -> set[int]:
    import pandas as pd

    return set(pd.read_csv(io.StringIO(_server_csv(emulator, name)))["id"])


def _server_csv(emulator: CaveEmulator, name: str) -> str:
    """The table as the server has it now, rendered by a second, fresh mount would be
    circular: ask the materialization service directly instead."""
    with emulator.local() as c:
        rows = c.post(
            f"materialize/api/v3/datastack/{DATASTACK}/query",
            params={"return_pyarrow": "false", "split_positions": "true"},
            json={
                "table": name,
                "offset": 0,
                "limit": 200_000,
                "timestamp": datetime.now(UTC).isoformat(),
            },
        ).json()
    import pandas as pd

    return pd.DataFrame(rows).to_csv(index=False)


def test_tree(mount: Mount):
    root = mount / f"cave/{DATASTACK}"
    assert sorted(os.listdir(root)) == [
        "info.json",
        "segments",
        "states",
        "supervoxels",
        "tables",
        "versions",
    ]
    info = json.loads((root / "info.json").read_text())
    assert info["aligned_volume"]["name"] == SAMPLE.aligned_volume
    assert sorted(os.listdir(root / "tables")) == sorted(SAMPLE.table_names)
    for name in SAMPLE.table_names:
        assert sorted(os.listdir(table(mount, name))) == [
            "annotations.csv",
            "annotations.jsonl",
            "at",
            "count",
            "metadata.json",
            "schema.json",
        ]
        assert int((table(mount, name) / "count").read_text()) == SAMPLE.count(name)
        schema = json.loads((table(mount, name) / "schema.json").read_text())
        assert schema == SAMPLE.schema_definition(SAMPLE.schema_of(name))


def test_annotations_csv_equals_the_servers_valid_rows(mount: Mount):
    import pandas as pd

    path = table(mount, "synapse") / "annotations.csv"
    text = path.read_text()
    assert os.stat(path).st_size == len(text.encode())  # the size is exact
    frame = pd.read_csv(path)
    expected = SAMPLE.rows("synapse", valid_only=True)
    assert len(frame) == len(expected) > 50_000
    assert list(frame["id"]) == [r["id"] for r in expected]
    first = expected[0]
    assert list(
        frame.loc[0, ["pre_pt_position_x", "pre_pt_position_y", "pre_pt_position_z"]]
    ) == list(first["pre_pt_position"])
    lines = (table(mount, "bound_tag") / "annotations.jsonl").read_text().splitlines()
    assert len(lines) == len(SAMPLE.rows("bound_tag", valid_only=True))
    assert set(json.loads(lines[0])) >= {"id", "pt", "tag"}


def _synapses_and_cells_per_section(synapses, cells):
    """A typical analysis: large synapses and cell types counted per 200-slice section,
    side by side (read_csv'd frames in, one frame out)."""
    big = synapses[synapses["size"] > 1000]
    per_section = (
        big.assign(section=big["post_pt_position_z"] // 200)
        .groupby("section")
        .agg(synapses=("id", "size"), mean_size=("size", "mean"))
        .reset_index()
    )
    cell_types = (
        cells.assign(section=cells["pt_position_z"] // 200)
        .groupby(["section", "cell_type"])
        .size()
        .unstack(fill_value=0)
        .reset_index()
    )
    merged = per_section.merge(cell_types, on="section", how="inner")
    return merged.sort_values("section").reset_index(drop=True)


def test_pandas_pipeline_on_the_mount_equals_it_on_the_servers_rows(
    mount: Mount, cave_emulator: CaveEmulator
):
    import pandas as pd

    got = _synapses_and_cells_per_section(
        pd.read_csv(table(mount, "synapse") / "annotations.csv"),
        pd.read_csv(table(mount, "cell_type_local") / "annotations.csv"),
    )
    expected = _synapses_and_cells_per_section(
        pd.read_csv(io.StringIO(_server_csv(cave_emulator, "synapse"))),
        pd.read_csv(io.StringIO(_server_csv(cave_emulator, "cell_type_local"))),
    )
    assert len(got) >= 5 and got["synapses"].sum() > 10_000  # the pipeline kept real data
    assert {"pyramidal", "basket"} <= set(got.columns)
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)


# bound_tag's CSV: id, pt_position_x/_y/_z, pt_supervoxel_id, pt_root_id, tag, then read-only.
TAG = 6


def _new_rows(n: int, start: int = 0) -> str:
    return "".join(f",{100 + i},{200 + i},{30 + i},,,apical,,,,\n" for i in range(start, start + n))


def test_echo_append_posts_exactly_those_rows(mount: Mount, cave_emulator: CaveEmulator):
    path = table(mount, "bound_tag") / "annotations.csv"
    header = path.read_text().splitlines()[0]
    assert header == (
        "id,pt_position_x,pt_position_y,pt_position_z,pt_supervoxel_id,pt_root_id,"
        "tag,valid,created,superceded_id,deleted"
    )
    before = live_ids(cave_emulator, "bound_tag")
    cave_emulator.reset()
    subprocess.run(["sh", "-c", f"printf '%s' '{_new_rows(3)}' >> '{path}'"], check=True)
    writes = annotation_writes(cave_emulator)
    assert [w["method"] for w in writes] == ["POST"]
    posted = writes[0]["body"]["annotations"]
    assert [a["pt"]["position"] for a in posted] == [[100, 200, 30], [101, 201, 31], [102, 202, 32]]
    assert all(a["tag"] == "apical" for a in posted)
    assert len(live_ids(cave_emulator, "bound_tag") - before) == 3
    # The file now shows the new rows with their ids; the service reads rows added since its
    # version from the production tables, which have no valid column.
    import pandas as pd

    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    new = frame[frame["pt_position_x"].isin(["100", "101", "102"]) & (frame["tag"] == "apical")]
    assert len(new) >= 3 and set(new["valid"]) == {""}
    assert (new["pt_root_id"] != "").all()
    first = frame[frame["id"] == str(min(before))]
    assert list(first["valid"]) == ["true"]


def test_pandas_append(mount: Mount, cave_emulator: CaveEmulator):
    import pandas as pd

    path = table(mount, "bound_tag") / "annotations.csv"
    new = pd.DataFrame(
        {
            "id": [None] * 3,
            "pt_position_x": [1, 2, 3],
            "pt_position_y": [4, 5, 6],
            "pt_position_z": [7, 8, 9],
            "pt_supervoxel_id": [None] * 3,
            "pt_root_id": [None] * 3,
            "tag": ["basal"] * 3,
            "valid": [None] * 3,
            "created": [None] * 3,
            "superceded_id": [None] * 3,
            "deleted": [None] * 3,
        }
    )
    cave_emulator.reset()
    new.to_csv(path, mode="a", header=False, index=False)
    writes = annotation_writes(cave_emulator)
    assert [w["method"] for w in writes] == ["POST"]
    assert len(writes[0]["body"]["annotations"]) == 3


def test_rewrite_with_one_change_and_one_new_row(mount: Mount, cave_emulator: CaveEmulator):
    path = table(mount, "bound_tag") / "annotations.csv"
    lines = path.read_text().splitlines()
    cells = lines[1].split(",")
    old_id = int(cells[0])
    cells[TAG] = "soma" if cells[TAG] != "soma" else "axon"
    lines[1] = ",".join(cells)
    cave_emulator.reset()
    path.write_text("\n".join([*lines, _new_rows(1, 50).strip()]) + "\n")
    writes = annotation_writes(cave_emulator)
    assert sorted(w["method"] for w in writes) == ["POST", "PUT"]
    put = next(w for w in writes if w["method"] == "PUT")["body"]["annotations"]
    assert [a["id"] for a in put] == [old_id] and put[0]["tag"] == cells[TAG]
    ids = live_ids(cave_emulator, "bound_tag")
    assert old_id not in ids  # an update makes a new id
    assert f",{cells[TAG]}," in path.read_text()


@pytest.mark.expect_log(r"write refused \(EPERM\): the save removes \d+ rows")
def test_removing_rows_needs_the_delete_option(make_mount, cave_emulator: CaveEmulator):
    plain = make_mount(cave_emulator, retry_seconds=1)
    path = table(plain, "bound_tag") / "annotations.csv"
    lines = path.read_text().splitlines()
    removed = int(lines[-1].split(",")[0])
    cave_emulator.reset()
    with pytest.raises(OSError) as info:
        path.write_text("\n".join(lines[:-1]) + "\n")
    assert info.value.errno == errno.EPERM
    assert annotation_writes(cave_emulator) == []
    allowed = make_mount(cave_emulator, retry_seconds=1, fuse_options=["allow_delete"])
    path = table(allowed, "bound_tag") / "annotations.csv"
    lines = path.read_text().splitlines()
    removed = int(lines[-1].split(",")[0])
    path.write_text("\n".join(lines[:-1]) + "\n")
    writes = annotation_writes(cave_emulator)
    assert [w["method"] for w in writes] == ["DELETE"]
    assert writes[0]["body"] == {"annotation_ids": [removed]}
    assert removed not in live_ids(cave_emulator, "bound_tag")


def _write(path: Path, data: bytes) -> int:
    fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    except OSError as exc:
        with contextlib.suppress(OSError):  # close repeats the refusal
            os.close(fd)
        return exc.errno or -1
    try:
        os.close(fd)
    except OSError as exc:
        return exc.errno or -1
    return 0


def _append(cells: str):
    return lambda text: text + cells + "\n"


BAD_TABLE_INPUTS = {
    "empty file": lambda text: "",
    "only a wrong header": lambda text: "a,b,c\n",
    "a column missing": lambda text: text.replace(",tag,", ",", 1),
    "an unknown column": lambda text: text.replace("deleted", "deleted,extra", 1),
    "non-numeric position": _append(",x,2,3,,,apical,,,,"),
    "fractional position": _append(",1.5,2,3,,,apical,,,,"),
    "missing position": _append(",,2,3,,,apical,,,,"),
    "missing required tag": _append(",1,2,3,,,,,,,"),
    "too few cells": _append(",1,2,3"),
    "too many cells": _append(",1,2,3,,,apical,,,,,,"),
    "non-numeric id": _append("abc,1,2,3,,,apical,,,,"),
    "unknown id": _append("999999999,1,2,3,,,apical,,,,"),
    "duplicate id": lambda text: text + text.splitlines()[1] + "\n",
    "binary garbage": lambda text: "\x00\x01\x02 garbage",
    "unterminated quote": _append(',1,2,3,,,"apical,,,,'),
}


@pytest.mark.parametrize("case", BAD_TABLE_INPUTS)
@pytest.mark.expect_log(r"write refused \(EINVAL\)")
def test_bad_table_input_is_einval_and_sends_nothing(
    mount: Mount, cave_emulator: CaveEmulator, case: str
):
    path = table(mount, "bound_tag") / "annotations.csv"
    text = path.read_text()
    data = BAD_TABLE_INPUTS[case](text).encode()
    before = live_ids(cave_emulator, "bound_tag")
    cave_emulator.reset()
    assert _write(path, data) == errno.EINVAL
    assert annotation_writes(cave_emulator) == []
    assert live_ids(cave_emulator, "bound_tag") == before
    kept = mount / ".neurofs/rejected/cave" / DATASTACK / "tables/bound_tag"
    assert any(p.read_bytes() == data for p in kept.iterdir())
    assert "annotations.csv" in (mount / ".neurofs/errors.log").read_text().splitlines()[-1]


@pytest.mark.expect_log(r"write refused \(EINVAL\): rows .*: the server refused: .*422")
def test_server_refusal_inside_a_500_is_einval(mount: Mount, cave_emulator: CaveEmulator):
    path = table(mount, "bound_tag") / "annotations.csv"
    data = (path.read_text() + _new_rows(1, 70)).encode()
    cave_emulator.refuse(
        "POST",
        "/annotation/",
        500,
        {"code": 500, "message": "422 Unprocessable Entity: {'tag': ['Not a valid string.']}"},
        times=50,
    )
    assert _write(path, data) == errno.EINVAL
    posts = [w for w in annotation_writes(cave_emulator) if w["method"] == "POST"]
    assert len(posts) == 1  # read by its message: never retried as a server error
    assert "Not a valid string" in (mount / ".neurofs/errors.log").read_text()


@pytest.mark.expect_log(r"write refused \(EFBIG\): the file grew beyond")
def test_huge_table_write_is_efbig(mount: Mount, cave_emulator: CaveEmulator):
    path = table(mount, "bound_tag") / "annotations.csv"
    assert _write(path, b"x" * (65 * 1024 * 1024)) == errno.EFBIG
    assert annotation_writes(cave_emulator) == []


def test_terms_of_service_not_accepted_is_eacces(make_mount, cave_emulator: CaveEmulator):
    mount = make_mount(cave_emulator, token=TOS_TOKEN, retry_seconds=1)
    with pytest.raises(PermissionError):
        os.listdir(mount / f"cave/{DATASTACK}/tables")
    log = (mount / ".neurofs/errors.log").read_text()
    assert "terms of service" in log and "accept the terms at http" in log


@pytest.mark.expect_log(r"metadata\.json: write refused \(EINVAL\)")
def test_metadata_json_edit_and_refusals(mount: Mount, cave_emulator: CaveEmulator):
    path = table(mount, "bound_tag") / "metadata.json"
    doc = json.loads(path.read_text())
    doc["description"] = "Edited through the mount"
    cave_emulator.reset()
    path.write_text(json.dumps(doc))
    writes = cave_emulator.writes()
    assert [w["method"] for w in writes] == ["PUT"]
    assert writes[0]["body"]["table_name"] == "bound_tag"
    assert writes[0]["body"]["metadata"]["description"] == "Edited through the mount"
    assert json.loads(path.read_text())["description"] == "Edited through the mount"
    for bad in ({**doc, "schema_type": "synapse"}, {**doc, "read_permission": "EVERYONE"}):
        cave_emulator.reset()
        with pytest.raises(OSError) as info:
            path.write_text(json.dumps(bad))
        assert info.value.errno == errno.EINVAL
        assert cave_emulator.writes() == []


@pytest.mark.expect_log(r"write refused \(EINVAL\): 'schema_type' is required")
def test_creating_a_table(mount: Mount, cave_emulator: CaveEmulator):
    tables = mount / f"cave/{DATASTACK}/tables"
    os.mkdir(tables / "my_tags")
    template = json.loads((tables / "my_tags/metadata.json").read_text())
    template.update(
        schema_type="bound_tag",
        description="Tags made through the mount",
        voxel_resolution_x=4.0,
        voxel_resolution_y=4.0,
        voxel_resolution_z=40.0,
    )
    cave_emulator.reset()
    (tables / "my_tags/metadata.json").write_text(json.dumps(template))
    assert [w["method"] for w in cave_emulator.writes()] == ["POST"]
    assert "annotations.csv" in os.listdir(tables / "my_tags")
    # An invalid one: the directory disappears and the reason is logged.
    os.mkdir(tables / "bad_table")
    with pytest.raises(OSError) as info:
        (tables / "bad_table/metadata.json").write_text(json.dumps({**template, "schema_type": ""}))
    assert info.value.errno == errno.EINVAL
    assert "bad_table" not in os.listdir(tables)
    assert "schema_type" in (mount / ".neurofs/errors.log").read_text()


def test_states(mount: Mount, cave_emulator: CaveEmulator):
    states = mount / f"cave/{DATASTACK}/states"
    state = json.loads((states / f"{STATE_ID}.json").read_text())
    assert "layers" in state
    state["layout"] = "4panel"
    (states / "mine.json").write_text(json.dumps(state))
    created = json.loads((states / "mine.json").read_text())["created"][0]
    assert json.loads((states / created).read_text())["layout"] == "4panel"
    assert created in os.listdir(states)


# An unknown state id crashes the state server's handler (HTTP 500, retried).
@pytest.mark.expect_log(r"nglstate/api/v1/123: giving up after \d+ tries: HTTP 500")
def test_a_states_url_is_its_neuroglancer_link(mount: Mount, cave_emulator: CaveEmulator):
    """``states/<id>.url`` is the state's link in the datastack's viewer (a spelunker
    deployment: ``#!middleauth+`` and the state server's URL), one line; it is listed beside
    ``<id>.json`` at no cost, read-only, and named only for a state that exists."""
    states = mount / f"cave/{DATASTACK}/states"
    global_url = cave_emulator.urls[0]
    link = (states / f"{STATE_ID}.url").read_text()
    assert link == (
        f"{global_url}/neuroglancer/#!middleauth+{global_url}/nglstate/api/v1/{STATE_ID}\n"
    )
    asked = [(r["method"], r["path"]) for r in cave_emulator.requests()]
    assert ("GET", "/neuroglancer//version.json") in asked  # where caveclient asks it

    (states / "mine.json").write_text(json.dumps({"layers": []}))
    created = json.loads((states / "mine.json").read_text())["created"][0]
    new_id = created.removesuffix(".json")
    cave_emulator.reset()
    listed = set(os.listdir(states))
    assert {f"{STATE_ID}.json", f"{STATE_ID}.url", created, f"{new_id}.url"} <= listed
    # The links cost the listing nothing: it asks only what listing the states' JSON asks.
    asked = {r["path"] for r in cave_emulator.requests()}
    assert asked <= {f"/nglstate/api/v1/{STATE_ID}", f"/nglstate/api/v1/{new_id}"}
    assert (states / f"{new_id}.url").read_text() == (
        f"{global_url}/neuroglancer/#!middleauth+{global_url}/nglstate/api/v1/{new_id}\n"
    )

    for write in (
        lambda: (states / f"{STATE_ID}.url").write_text("https://elsewhere.org/\n"),
        lambda: os.truncate(states / f"{STATE_ID}.url", 0),
    ):
        with pytest.raises(OSError) as info:
            write()
        assert info.value.errno == errno.EROFS
    assert (states / f"{STATE_ID}.url").read_text() == link
    with pytest.raises(OSError) as info:
        os.unlink(states / f"{STATE_ID}.url")
    assert info.value.errno == errno.EPERM  # as any unlink on a mount without allow_delete
    assert not (states / "123.url").exists()  # no such state
    assert not (states / "abc.url").exists()


def _rebuild_datastack(mount: Mount, how: str) -> None:
    """Make the mount build the datastack's nodes anew, as every lookup of it does."""
    if how == "refresh":
        (mount / ".neurofs/control").write_bytes(f"refresh cave/{DATASTACK}\n".encode())
    else:  # the parents listed again: the kernel gets the new nodes with the listing
        os.listdir(mount / "cave")
        os.listdir(mount / f"cave/{DATASTACK}")


@pytest.mark.parametrize("rebuild", ["refresh", "listing"])
def test_a_table_being_created_outlives_a_rebuild_of_its_datastack(
    mount: Mount, cave_emulator: CaveEmulator, rebuild: str
):
    tables = mount / f"cave/{DATASTACK}/tables"
    name = f"later_tags_{rebuild}"
    os.mkdir(tables / name)
    _rebuild_datastack(mount, rebuild)
    assert name in os.listdir(tables)
    template = json.loads((tables / name / "metadata.json").read_text())
    template.update(schema_type="bound_tag", voxel_resolution_z=40.0)
    cave_emulator.reset()
    (tables / name / "metadata.json").write_text(json.dumps(template))
    assert [w["method"] for w in cave_emulator.writes()] == ["POST"]
    assert "annotations.csv" in os.listdir(tables / name)


@pytest.mark.parametrize("rebuild", ["refresh", "listing"])
def test_known_states_outlive_a_rebuild_of_their_datastack(mount: Mount, rebuild: str):
    states = mount / f"cave/{DATASTACK}/states"
    (states / f"{STATE_ID}.json").read_text()
    (states / "mine.json").write_text(json.dumps({"layers": []}))
    created = json.loads((states / "mine.json").read_text())["created"][0]
    _rebuild_datastack(mount, rebuild)
    assert {f"{STATE_ID}.json", created} <= set(os.listdir(states))


def test_materialized_versions(mount: Mount):
    import pandas as pd

    versions = mount / f"cave/{DATASTACK}/versions"
    assert sorted(os.listdir(versions)) == [str(v) for v in SAMPLE.versions]
    for v in SAMPLE.versions:
        frame = pd.read_csv(versions / str(v) / "synapse.csv")
        expected = SAMPLE.materialized("synapse", v)
        assert list(frame["id"]) == [r["id"] for r in expected]
        assert list(frame["pre_pt_position_x"]) == [r["pre_pt_position_x"] for r in expected]
    with pytest.raises(OSError) as info:
        (versions / "1" / "synapse.csv").write_text("x")
    assert info.value.errno == errno.EROFS


def test_the_official_client_sees_what_the_filesystem_wrote(
    mount: Mount, cave_emulator: CaveEmulator
):
    from tests.conformance.venvs import ensure_venv

    python = ensure_venv("conformance-venv-cave", ".venv-conformance-cave")
    path = table(mount, "bound_tag") / "annotations.csv"
    path.write_text(path.read_text() + ",11,22,33,,,spine,,,,\n")
    code = (
        "import json, os\n"
        "from caveclient import CAVEclient\n"
        f"c = CAVEclient({DATASTACK!r}, server_address={cave_emulator.api_url!r},"
        f" auth_token={SAMPLE_TOKEN!r})\n"
        "n = c.annotation.get_annotation_count('bound_tag')\n"
        "ids = list(range(max(1, n - 5), n + 1))\n"
        "rows = c.annotation.get_annotation('bound_tag', ids)\n"
        "print(json.dumps([r['pt_position'] for r in rows if r['tag'] == 'spine'], default=list))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    home = mount.path.parent / "home"
    home.mkdir(exist_ok=True)
    result = subprocess.run(
        [str(python), "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
        env={**env, "HOME": str(home)},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert [11, 22, 33] in json.loads(result.stdout.strip().splitlines()[-1])


def _live_rows(emulator: CaveEmulator, name: str) -> list[dict]:
    """The live query's JSON records now, asked of the materialization service directly."""
    with emulator.local() as c:
        rows: list[dict] = c.post(
            f"materialize/api/v3/datastack/{DATASTACK}/query",
            params={"return_pyarrow": "false", "split_positions": "true"},
            json={"table": name, "limit": 200_000, "timestamp": datetime.now(UTC).isoformat()},
        ).json()
    return rows


def test_segment_ids_follow_each_bound_point(mount: Mount, cave_emulator: CaveEmulator):
    """Supervoxel and root ids of every bound point, as the live query gives them, right after
    the point's position; a plain point (ctr_pt) has none."""
    import pandas as pd

    frame = pd.read_csv(table(mount, "synapse") / "annotations.csv")
    columns = list(frame.columns)
    assert columns[columns.index("pre_pt_position_z") + 1 :][:2] == [
        "pre_pt_supervoxel_id",
        "pre_pt_root_id",
    ]
    assert columns[columns.index("post_pt_position_z") + 1 :][:2] == [
        "post_pt_supervoxel_id",
        "post_pt_root_id",
    ]
    assert not any(c.startswith("ctr_pt_") and c.endswith("_id") for c in columns)
    assert frame["pre_pt_root_id"].dtype == "int64"
    live = {r["id"]: r for r in _live_rows(cave_emulator, "synapse")}
    assert len(frame) == len(live) > 50_000
    for column in ("pre_pt_supervoxel_id", "pre_pt_root_id", "post_pt_root_id"):
        assert list(frame[column]) == [live[i][column] for i in frame["id"]]
    assert len(set(frame["pre_pt_root_id"])) > 100  # real ids, not one constant
    lines = (table(mount, "bound_tag") / "annotations.jsonl").read_text().splitlines()
    tags = {r["id"]: r for r in _live_rows(cave_emulator, "bound_tag")}
    for line in lines:
        row = json.loads(line)
        want = tags[row["id"]]
        assert row["pt"] == {
            "position": [want[f"pt_position_{a}"] for a in "xyz"],
            "supervoxel_id": want["pt_supervoxel_id"],
            "root_id": want["pt_root_id"],
        }


def test_versions_show_the_frozen_segment_ids(mount: Mount):
    import pandas as pd

    for v in SAMPLE.versions:
        frame = pd.read_csv(mount / f"cave/{DATASTACK}/versions/{v}/cell_type_local.csv")
        expected = SAMPLE.materialized("cell_type_local", v)
        columns = list(frame.columns)
        assert columns[:6] == [
            "id",
            "pt_position_x",
            "pt_position_y",
            "pt_position_z",
            "pt_supervoxel_id",
            "pt_root_id",
        ]
        assert list(frame["pt_supervoxel_id"]) == [r["pt_supervoxel_id"] for r in expected]
        assert list(frame["pt_root_id"]) == [r["pt_root_id"] for r in expected]


def test_a_save_never_sends_segment_ids(mount: Mount, cave_emulator: CaveEmulator):
    """Segment ids are read-only like valid and created: a file that still carries them saves,
    an edit of one alone sends nothing, and a changed row is sent without them."""
    path = table(mount, "bound_tag") / "annotations.csv"
    lines = path.read_text().splitlines()
    header = lines[0].split(",")
    root = header.index("pt_root_id")
    cells = lines[1].split(",")
    cells[root] = "12345"
    lines[1] = ",".join(cells)
    cave_emulator.reset()
    path.write_text("\n".join(lines) + "\n")
    assert annotation_writes(cave_emulator) == []
    cells[TAG] = "soma" if cells[TAG] != "soma" else "axon"
    lines[1] = ",".join(cells)
    path.write_text("\n".join(lines) + "\n")
    writes = annotation_writes(cave_emulator)
    assert [w["method"] for w in writes] == ["PUT"]
    sent = writes[0]["body"]["annotations"]
    assert sent == [
        {
            "id": int(cells[0]),
            "pt": {"position": [int(c) for c in cells[1:4]]},
            "tag": cells[TAG],
        }
    ]


def test_created_is_iso_text_when_the_live_query_gives_it(
    mount: Mount, cave_emulator: CaveEmulator
):
    """A table made since the last materialized version is answered from the production
    tables, with ``created``: the file shows it as ISO 8601 UTC, to the millisecond the
    service sends."""
    import pandas as pd

    tables = mount / f"cave/{DATASTACK}/tables"
    os.mkdir(tables / "fresh_tags")
    template = json.loads((tables / "fresh_tags/metadata.json").read_text())
    template.update(schema_type="bound_tag", description="new", voxel_resolution_z=40.0)
    (tables / "fresh_tags/metadata.json").write_text(json.dumps(template))
    path = tables / "fresh_tags/annotations.csv"
    path.write_text(path.read_text() + _new_rows(2))
    frame = pd.read_csv(path, dtype=str)
    live = {r["id"]: r for r in _live_rows(cave_emulator, "fresh_tags")}
    assert len(frame) == len(live) == 2
    for _, row in frame.iterrows():
        created = row["created"]
        assert created.endswith("Z") and "T" in created
        when = datetime.fromisoformat(created)
        assert when.tzinfo is not None
        assert int(when.timestamp() * 1000) == live[int(row["id"])]["created"]
    assert frame["pt_root_id"].notna().all()


def test_at_shows_the_table_at_a_named_instant(mount: Mount, cave_emulator: CaveEmulator):
    """``at/<time>.csv``: the rows valid at that instant with that instant's ids, from one
    live query with that timestamp; nothing is listed, a name that is no time is ENOENT, and
    the file is read-only."""
    import pandas as pd

    at = table(mount, "bound_tag") / "at"
    assert os.listdir(at) == []
    when = datetime(2024, 5, 15, 12, 0, tzinfo=UTC)
    cave_emulator.reset()
    frame = pd.read_csv(at / "2024-05-15T12:00:00Z.csv")
    rows = SAMPLE.table("bound_tag").rows
    valid = sorted((r for r in rows if r.valid_at(when.replace(tzinfo=None))), key=lambda r: r.id)
    assert list(frame["id"]) == [r.id for r in valid] and 0 < len(valid) < len(rows)
    assert list(frame["pt_root_id"]) == [r.values["pt_root_id"] for r in valid]
    queries = [r for r in cave_emulator.writes() if r["path"].endswith(f"{DATASTACK}/query")]
    # The query's count, then one page (the table is under the row cap), asked at that instant.
    assert [datetime.fromisoformat(q["body"]["timestamp"]) for q in queries] == [when, when]
    assert os.path.getsize(at / "2024-05-15T12:00:00+00:00.csv") == os.path.getsize(
        at / "2024-05-15T12:00:00Z.csv"
    )
    for bad in ("yesterday.csv", "2024-05-15T12:00:00Z", "2024-13-01.csv"):
        with pytest.raises(FileNotFoundError):
            os.stat(at / bad)
    with pytest.raises(OSError) as info:
        (at / "2024-05-15T12:00:00Z.csv").write_text("x")
    assert info.value.errno in (errno.EROFS, errno.EACCES)


# ---------------------------------------------------------------------------- chunkedgraph


def _segments(mount: Mount) -> Path:
    return mount / f"cave/{DATASTACK}/segments"


def _graph_requests(emulator: CaveEmulator) -> list[str]:
    return [r["path"] for r in emulator.requests() if r["path"].startswith("/segmentation/")]


def test_segments_leaves_latest_and_lineage(mount: Mount, cave_emulator: CaveEmulator):
    """A root's files: its supervoxels as the graph has them, the current roots an outdated
    root became (a split, then a merge of one half), its lineage graph as the server wrote
    it; a supervoxel's file is its current root."""
    from neurofs_emulators.cave import chunkedgraph as cg

    segments = _segments(mount)
    for root in cg.ROOTS.values():
        if root.leaves:
            leaves = (segments / str(root.id) / "leaves").read_text()
            assert leaves == "".join(f"{i}\n" for i in root.leaves)
    assert sorted(os.listdir(segments / str(cg.ROOT_A))) == ["latest", "leaves", "lineage.json"]
    latest = {
        cg.ROOT_A: [cg.ROOT_B, cg.ROOT_E],  # split, then one half merged
        cg.ROOT_C: [cg.ROOT_E],
        cg.ROOT_B: [cg.ROOT_B],  # current: itself
        cg.ROOT_E: [cg.ROOT_E],
    }
    for root, current in latest.items():
        assert (segments / str(root) / "latest").read_text() == "".join(f"{i}\n" for i in current)
    lineage = json.loads((segments / str(cg.ROOT_C) / "lineage.json").read_text())
    with cave_emulator.local() as c:
        server = c.post(
            f"segmentation/api/v1/table/{cg_table()}/lineage_graph_multiple",
            json={"root_ids": [cg.ROOT_C]},
        ).json()
    assert lineage == server
    supervoxels = mount / f"cave/{DATASTACK}/supervoxels"
    for supervoxel, root in (
        (cg.ROOTS[cg.ROOT_B].leaves[0], cg.ROOT_B),
        (cg.ROOTS[cg.ROOT_D].leaves[0], cg.ROOT_E),
        (cg.BIG_FIRST_LEAF + cg.BIG_LEAVES - 1, cg.ROOT_BIG),
    ):
        assert (supervoxels / str(supervoxel)).read_text() == f"{root}\n"


def cg_table() -> str:
    from neurofs_emulators.cave.sample import PCG_TABLE

    return PCG_TABLE


def test_a_large_segments_leaves_are_read_only_when_asked(
    mount: Mount, cave_emulator: CaveEmulator
):
    """10⁵ supervoxels: a listing of the root asks nothing of them, the file's size is known
    when it is itself stat'ed, and its lines are the graph's leaves."""
    from neurofs_emulators.cave import chunkedgraph as cg

    big = _segments(mount) / str(cg.ROOT_BIG)
    cave_emulator.reset()
    assert "leaves" in os.listdir(big)
    assert not [p for p in _graph_requests(cave_emulator) if p.endswith("/leaves")]
    size = os.stat(big / "leaves").st_size
    with open(big / "leaves") as f:
        count = 0
        for count, line in enumerate(f, 1):
            assert int(line) == cg.BIG_FIRST_LEAF + count - 1
    assert count == cg.BIG_LEAVES
    assert size == sum(len(f"{cg.BIG_FIRST_LEAF + i}\n") for i in range(cg.BIG_LEAVES))
    # Read again at once: the held text (or the kernel's pages) answers, nothing is asked.
    cave_emulator.reset()
    assert len((big / "leaves").read_bytes()) == size
    assert not [p for p in _graph_requests(cave_emulator) if p.endswith("/leaves")]


def test_a_roots_millions_of_leaves_stream_to_disk_in_bounded_memory(
    mount: Mount, cave_emulator: CaveEmulator
):
    """4,000,000 supervoxels, a 72 MB answer (past what the HTTP client reads whole): the
    file's size is exact at its first stat, its lines are the graph's leaves, the daemon's
    memory rises far less than the answer's length, and after a remount the file is read
    from the cache directory with no request."""
    from neurofs_emulators.cave import chunkedgraph as cg

    assert mount.pid is not None
    huge = _segments(mount) / str(cg.ROOT_HUGE) / "leaves"
    expected_size = len(f"{cg.HUGE_FIRST_LEAF}\n") * cg.HUGE_LEAVES  # ids of equal length
    before = resident(mount.pid)
    reset_high_water_mark(mount.pid)
    assert os.stat(huge).st_size == expected_size > 64 * 1024 * 1024
    rise = high_water_mark(mount.pid) - before
    assert rise < 40 * 1024 * 1024, f"the daemon grew {rise / 2**20:.0f} MB"
    assert len([p for p in _graph_requests(cave_emulator) if p.endswith("/leaves")]) == 1
    count = 0
    with open(huge, "rb") as f:
        for count, line in enumerate(f, 1):
            if count in (1, cg.HUGE_LEAVES // 2, cg.HUGE_LEAVES):
                assert int(line) == cg.HUGE_FIRST_LEAF + count - 1
    assert count == cg.HUGE_LEAVES
    mount.remount()
    cave_emulator.reset()
    with open(huge, "rb") as f:
        f.seek(-len(f"{cg.HUGE_FIRST_LEAF}\n"), os.SEEK_END)
        assert int(f.read()) == cg.HUGE_FIRST_LEAF + cg.HUGE_LEAVES - 1
    assert not [p for p in _graph_requests(cave_emulator) if p.endswith("/leaves")]


def test_a_broken_or_cut_leaves_answer_is_eio_and_leaves_no_file(
    mount: Mount, cave_emulator: CaveEmulator
):
    """The graph answers 200 with something that is no list of ids, then a body cut before
    its end: each is EIO with an errors.log line, and no file is kept; the next good answer
    makes the file, with the graph's ids."""
    from neurofs_emulators.cave import chunkedgraph as cg

    leaves = _segments(mount) / str(cg.ROOT_D) / "leaves"
    graph = f"/segmentation/api/v1/table/{cg_table()}/node/{cg.ROOT_D}/leaves"
    cave_emulator.refuse("GET", graph, 200, {"leaf_ids": [1, "x"]})
    with pytest.raises(OSError) as info:
        os.stat(leaves)
    assert info.value.errno == errno.EIO
    assert "graph's answer is refused" in (mount / ".neurofs/errors.log").read_text()
    # A cut body is retried, and the retry's bytes alone make the file.
    cave_emulator.refuse("GET", graph, 200, None, cut=True)
    assert leaves.read_text() == "".join(f"{i}\n" for i in cg.ROOTS[cg.ROOT_D].leaves)
    rendered = mount.cache_dir / "rendered"
    assert [p.name for p in rendered.iterdir() if p.name.endswith(".tmp")] == []


def test_segments_lookup_only_unknown_ids_and_writes(mount: Mount, cave_emulator: CaveEmulator):
    """Listing the lookup-only directories shows nothing and costs no request; an id the
    graph does not have (or a name that is no id) is ENOENT; nothing is writable."""
    from neurofs_emulators.cave import chunkedgraph as cg

    segments = _segments(mount)
    supervoxels = mount / f"cave/{DATASTACK}/supervoxels"
    cave_emulator.reset()
    assert os.listdir(segments) == [] and os.listdir(supervoxels) == []
    assert _graph_requests(cave_emulator) == []
    for missing in (
        segments / "12345",
        segments / str(cg.ROOTS[cg.ROOT_B].leaves[0]),  # a supervoxel is no root
        segments / "abc",
        segments / f"0{cg.ROOT_B}",
        supervoxels / "12345",
        supervoxels / str(cg.ROOT_B + 10**6),
        supervoxels / "x",
    ):
        with pytest.raises(FileNotFoundError):
            os.stat(missing)
    leaf = supervoxels / str(cg.ROOTS[cg.ROOT_B].leaves[0])
    for path in (segments / str(cg.ROOT_B) / "leaves", segments / str(cg.ROOT_B) / "latest", leaf):
        before = path.read_bytes()
        with pytest.raises(OSError) as info:
            path.write_text("1\n")
        assert info.value.errno == errno.EROFS
        assert path.read_bytes() == before
    with pytest.raises(OSError) as info:
        os.mkdir(segments / "1")
    assert info.value.errno == errno.EROFS

"""Tasks, task types and projects as JSON files through a real mount."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest

from neurofs_emulators.webknossos.sample import (
    DATASET_L4,
    PROJECT_DEMO,
    TASK_IDS,
    TASK_TYPE_SKELETON,
    TEAM_ALPHA,
    USER_OWNER,
)
from tests.support.nml import nml, zipped

from .conftest import Mount, WkEmulator

pytestmark = pytest.mark.mount

PARAMETERS = (
    "taskTypeId",
    "neededExperience",
    "pendingInstances",
    "projectName",
    "scriptId",
    "boundingBox",
    "datasetId",
    "editPosition",
    "editRotation",
)


@pytest.fixture
def mount(make_mount, wk_emulator: WkEmulator) -> Mount:
    m = make_mount(wk_emulator, retry_seconds=2)
    wk_emulator.reset()
    return m


def tasks(mount: Mount) -> Path:
    return mount / "webknossos/tasks"


def server_tasks(emulator: WkEmulator) -> dict[str, dict]:
    with emulator.wk() as c:
        return {t["id"]: t for t in c.post("tasks/list", json={}).json()}


def test_tasks_are_listed_with_their_annotations(mount: Mount, wk_emulator: WkEmulator):
    names = set(os.listdir(tasks(mount)))
    for tid in server_tasks(wk_emulator):
        assert f"{tid}.json" in names and f"{tid}.annotations.json" in names
    tid = next(iter(server_tasks(wk_emulator)))
    doc = json.loads((tasks(mount) / f"{tid}.json").read_text())
    assert doc["id"] == tid and set(PARAMETERS) <= set(doc)
    with wk_emulator.wk() as c:
        assert (
            json.loads((tasks(mount) / f"{tid}.annotations.json").read_text())
            == c.get(f"tasks/{tid}/annotations").json()
        )


def test_editing_a_task_puts_its_parameters(mount: Mount, wk_emulator: WkEmulator):
    tid = next(iter(server_tasks(wk_emulator)))
    path = tasks(mount) / f"{tid}.json"
    doc = json.loads(path.read_text())
    doc["pendingInstances"] = doc["pendingInstances"] + 2
    wk_emulator.reset()
    path.write_text(json.dumps(doc))
    writes = wk_emulator.writes()
    assert [(w["method"], w["path"].rsplit("/", 2)[-2:]) for w in writes] == [
        ("PUT", ["tasks", tid])
    ]
    assert writes[0]["body"] == {k: doc[k] for k in PARAMETERS}
    assert json.loads(path.read_text())["pendingInstances"] == doc["pendingInstances"]


def _new_task(mount: Mount, emulator: WkEmulator) -> dict:
    tid = next(iter(server_tasks(emulator)))
    doc = json.loads((tasks(mount) / f"{tid}.json").read_text())
    return {k: doc[k] for k in PARAMETERS}


def test_creating_one_and_many_tasks(mount: Mount, wk_emulator: WkEmulator):
    params = _new_task(mount, wk_emulator)
    before = set(server_tasks(wk_emulator))
    (tasks(mount) / "new.json").write_text(json.dumps(params))
    receipt = json.loads((tasks(mount) / "new.json").read_text())
    created = set(server_tasks(wk_emulator)) - before
    assert len(created) == 1 and receipt["created"] == [f"{created.pop()}.json"]
    for name in receipt["created"]:
        assert (tasks(mount) / name).is_file()
    (tasks(mount) / "batch.json").write_text(json.dumps([params, params, params]))
    assert len(json.loads((tasks(mount) / "batch.json").read_text())["created"]) == 3
    assert len(server_tasks(wk_emulator)) == len(before) + 4


@pytest.mark.expect_log(r"write refused \(EINVAL\): \d+ of \d+ tasks refused")
def test_partial_failure_keeps_the_refused_items(mount: Mount, wk_emulator: WkEmulator):
    good = _new_task(mount, wk_emulator)
    bad = {**good, "taskTypeId": "000000000000000000000000"}
    before = set(server_tasks(wk_emulator))
    fd = os.open(tasks(mount) / "mixed.json", os.O_WRONLY | os.O_CREAT, 0o644)
    os.write(fd, json.dumps([good, bad]).encode())
    with pytest.raises(OSError) as info:
        os.close(fd)
    assert info.value.errno == errno.EINVAL
    assert len(set(server_tasks(wk_emulator)) - before) == 1  # the good one was made
    receipt = json.loads((tasks(mount) / "mixed.json").read_text())
    assert len(receipt["created"]) == 1 and [r["item"] for r in receipt["refused"]] == [1]
    kept_dir = mount / ".neurofs/rejected/webknossos/tasks"
    kept = [json.loads(p.read_text()) for p in kept_dir.iterdir() if p.name.startswith("mixed")]
    assert any(k[0]["parameters"] == bad and k[0]["error"] for k in kept)
    assert "mixed.json" in (mount / ".neurofs/errors.log").read_text()


@pytest.mark.expect_log(r"write refused \(EINVAL\)")
def test_invalid_task_files_send_nothing(mount: Mount, wk_emulator: WkEmulator):
    good = _new_task(mount, wk_emulator)
    for i, bad in enumerate(
        [
            {**good, "taskTypeId": None},
            {**good, "pendingInstances": -1},
            {**good, "editPosition": [1, 2]},
            [],
        ]
    ):
        wk_emulator.reset()
        with pytest.raises(OSError) as info:
            (tasks(mount) / f"bad{i}.json").write_text(json.dumps(bad))
        assert info.value.errno == errno.EINVAL
        assert wk_emulator.writes() == []
    # Editors' scratch files are not requests.
    (tasks(mount) / ".new.json.swp").write_bytes(b"\0vim")
    (tasks(mount) / "notes~").write_text("x")
    assert wk_emulator.writes() == []


def test_task_types_and_projects(mount: Mount, wk_emulator: WkEmulator):
    types = mount / "webknossos/task-types"
    existing = json.loads(next(types.iterdir()).read_text())
    new = {
        k: existing[k]
        for k in ("summary", "description", "teamId", "teamName", "tracingType", "settings")
    }
    new["summary"] = "Created from the mount"
    (types / "new.json").write_text(json.dumps(new))
    created = json.loads((types / "new.json").read_text())["created"][0]
    assert json.loads((types / created).read_text())["summary"] == "Created from the mount"
    with pytest.raises(OSError) as info:  # the API cannot update task types
        (types / created).write_text("{}")
    assert info.value.errno == errno.EROFS
    projects = mount / "webknossos/projects"
    path = next(projects.iterdir())
    doc = json.loads(path.read_text())
    doc["priority"] = doc["priority"] + 1
    wk_emulator.reset()
    path.write_text(json.dumps(doc))
    writes = wk_emulator.writes()
    assert [w["method"] for w in writes] == ["PUT"] and writes[0]["body"]["priority"] == doc[
        "priority"
    ]


# ---------------------------------------------------------------------------- projects

PROJECT_PARAMETERS = {
    "name",
    "team",
    "priority",
    "paused",
    "expectedTime",
    "owner",
    "isBlacklistedFromReport",
}


def project_file(mount: Mount) -> Path:
    return mount / "webknossos/projects/demo_project.json"


def server_project(emulator: WkEmulator) -> dict:
    with emulator.wk() as c:
        return c.get(f"projects/{PROJECT_DEMO}").json()


def error_log(mount: Mount) -> str:
    return (mount / ".neurofs/errors.log").read_text()


def test_project_save_sends_the_parameters_with_the_owner(mount: Mount, wk_emulator: WkEmulator):
    path = project_file(mount)
    doc = json.loads(path.read_text())
    assert doc["owner"] == "olivia.owner@neurofs.example"  # shown by email
    doc.update(priority=doc["priority"] + 5, expectedTime=7_200_000)
    wk_emulator.reset()
    path.write_text(json.dumps(doc))
    writes = wk_emulator.writes()
    assert [(w["method"], w["path"]) for w in writes] == [
        ("PUT", f"/api/v{wk_emulator.api_version}/projects/{PROJECT_DEMO}")
    ]
    body = writes[0]["body"]
    assert set(body) == PROJECT_PARAMETERS and body["owner"] == USER_OWNER
    assert (body["priority"], body["expectedTime"]) == (doc["priority"], 7_200_000)
    assert writes[0]["status"] == 200
    shown = json.loads(path.read_text())
    assert (shown["priority"], shown["expectedTime"]) == (doc["priority"], 7_200_000)
    assert server_project(wk_emulator)["priority"] == doc["priority"]


def test_pausing_and_resuming_a_project(mount: Mount, wk_emulator: WkEmulator):
    path = project_file(mount)
    for paused, route in ((True, "pause"), (False, "resume")):
        doc = json.loads(path.read_text())
        doc["paused"] = paused
        wk_emulator.reset()
        path.write_text(json.dumps(doc))
        assert [(w["method"], w["path"]) for w in wk_emulator.writes()] == [
            ("PATCH", f"/api/v{wk_emulator.api_version}/projects/{PROJECT_DEMO}/{route}")
        ]
        assert json.loads(path.read_text())["paused"] is paused
        assert server_project(wk_emulator)["paused"] is paused
    # Paused and priority at once: the parameters, then the pause route.
    doc = json.loads(path.read_text())
    doc.update(paused=True, priority=doc["priority"] + 1)
    wk_emulator.reset()
    path.write_text(json.dumps(doc))
    assert [(w["method"], w["path"].rsplit("/", 1)[-1]) for w in wk_emulator.writes()] == [
        ("PUT", PROJECT_DEMO),
        ("PATCH", "pause"),
    ]
    assert server_project(wk_emulator)["paused"] is True


@pytest.mark.expect_log(r"write refused \(EINVAL\): 'name' cannot be changed")
def test_renaming_a_project_is_refused(mount: Mount, wk_emulator: WkEmulator):
    path = project_file(mount)
    before = path.read_text()
    doc = json.loads(before)
    doc.update(name="renamed_project", priority=doc["priority"] + 1)
    edited = json.dumps(doc)
    wk_emulator.reset()
    with pytest.raises(OSError) as info:
        path.write_text(edited)
    assert info.value.errno == errno.EINVAL
    assert wk_emulator.writes() == []
    assert "'name' cannot be changed" in error_log(mount).splitlines()[-1]
    kept = mount / ".neurofs/rejected/webknossos/projects"
    assert any(p.read_text() == edited for p in kept.iterdir())
    assert path.read_text() == before
    assert server_project(wk_emulator)["name"] == "demo_project"


def test_a_new_project_is_owned_by_the_signed_in_user(mount: Mount, wk_emulator: WkEmulator):
    projects = mount / "webknossos/projects"
    (projects / "new.json").write_text(
        json.dumps({"name": "made_here", "team": TEAM_ALPHA, "priority": 3})
    )
    assert json.loads((projects / "new.json").read_text()) == {"created": ["made_here.json"]}
    made = json.loads((projects / "made_here.json").read_text())
    assert made["owner"] == "olivia.owner@neurofs.example" and made["priority"] == 3


@pytest.mark.parametrize(
    ("status", "code"), [(400, errno.EINVAL), (403, errno.EACCES), (409, errno.EBUSY)]
)
@pytest.mark.expect_log(r"write refused \(E[A-Z]+\): PUT .*: HTTP \d{3}")
def test_server_messages_are_shown_as_text(
    mount: Mount, wk_emulator: WkEmulator, status: int, code: int
):
    path = project_file(mount)
    doc = json.loads(path.read_text())
    doc["priority"] += 1
    wk_emulator.refuse(
        "PUT",
        f"/api/v{wk_emulator.api_version}/projects/{PROJECT_DEMO}",
        status,
        {"messages": [{"error": "Project update failed"}, {"error": "Team “x” is full"}]},
    )
    try:
        with pytest.raises(OSError) as info:
            path.write_text(json.dumps(doc))
    finally:
        wk_emulator.clear_refusals()
    assert info.value.errno == code
    line = error_log(mount).splitlines()[-1]
    assert "Project update failed; Team “x” is full" in line
    assert "messages" not in line and "{" not in line


def test_requests_use_the_version_the_server_announces(mount: Mount, wk_emulator: WkEmulator):
    wk_emulator.reset()
    os.listdir(mount / "webknossos/projects")
    os.listdir(tasks(mount))
    chunk = "webknossos/datasets/neurofs_lab/l4_demo/color.ome.zarr/1/0/1/2"
    assert len((mount / chunk).read_bytes()) == 64**3
    paths = [r["path"] for r in wk_emulator.requests()]
    api = [p for p in paths if p.startswith("/api/") and p != "/api/buildinfo"]
    assert api and all(p.startswith(f"/api/v{wk_emulator.api_version}/") for p in api), paths
    data = [p for p in paths if p.startswith("/data/")]
    assert data and all(p.startswith(f"/data/v{wk_emulator.api_version}/") for p in data), paths


# ---------------------------------------------------------------------------- task bounding boxes


@pytest.mark.expect_log(r"write refused \(EINVAL\): 'boundingBox' must be null")
def test_a_task_without_a_bounding_box(mount: Mount, wk_emulator: WkEmulator):
    tid = TASK_IDS[1]
    assert server_tasks(wk_emulator)[tid]["boundingBox"] is None  # as the real server sends
    path = tasks(mount) / f"{tid}.json"
    doc = json.loads(path.read_text())
    assert doc["boundingBox"] is None
    doc["pendingInstances"] += 1
    wk_emulator.reset()
    path.write_text(json.dumps(doc))
    assert [w["body"]["boundingBox"] for w in wk_emulator.writes()] == [None]
    assert server_tasks(wk_emulator)[tid]["boundingBox"] is None
    assert json.loads(path.read_text())["boundingBox"] is None
    box = {"topLeft": [70, 40, 20], "width": 32, "height": 32, "depth": 8}
    for bad in ({**box, "width": -1}, {**box, "topLeft": [1, 2]}, [0, 0, 0, 1, 1, 1]):
        wk_emulator.reset()
        with pytest.raises(OSError) as info:
            path.write_text(json.dumps({**doc, "boundingBox": bad}))
        assert info.value.errno == errno.EINVAL
        assert wk_emulator.writes() == []
    path.write_text(json.dumps({**doc, "boundingBox": box}))
    assert server_tasks(wk_emulator)[tid]["boundingBox"] == box
    assert json.loads(path.read_text())["boundingBox"] == box


# ---------------------------------------------------------------- tasks from annotations


def _annotation_request(paths: list[str]) -> dict:
    return {
        "taskTypeId": TASK_TYPE_SKELETON,
        "neededExperience": {"domain": "tracing", "value": 1},
        "pendingInstances": 2,
        "projectName": "demo_project",
        "baseAnnotations": paths,
    }


def _from_files(emulator: WkEmulator) -> list[dict]:
    return [w for w in emulator.writes() if w["path"].endswith("/tasks/createFromFiles")]


def _sent(emulator: WkEmulator) -> list[dict]:
    """Writes, without the listing's POST tasks/list (a read)."""
    return [w for w in emulator.writes() if not w["path"].endswith("/tasks/list")]


def test_a_task_from_an_nml(mount: Mount, wk_emulator: WkEmulator, tmp_path: Path):
    path = tmp_path / "base.nml"
    path.write_bytes(nml(DATASET_L4, position=(11, 22, 33)))
    before = set(server_tasks(wk_emulator))
    wk_emulator.reset()
    (tasks(mount) / "from-nml.json").write_text(json.dumps(_annotation_request([str(path)])))
    [sent] = _from_files(wk_emulator)
    assert json.loads(sent["body"]["form"]["formJSON"]) == {
        **{k: v for k, v in _annotation_request([]).items() if k != "baseAnnotations"},
        "scriptId": None,
        "boundingBox": None,
    }
    assert [(f["field"], f["filename"]) for f in sent["body"]["files"]] == [
        ("base.nml", "base.nml")
    ]
    receipt = json.loads((tasks(mount) / "from-nml.json").read_text())
    [created] = set(server_tasks(wk_emulator)) - before
    assert receipt["created"] == [f"{created}.json"]
    shown = json.loads((tasks(mount) / f"{created}.json").read_text())
    assert (shown["datasetId"], shown["editPosition"], shown["creationInfo"]) == (
        DATASET_L4,
        [11, 22, 33],
        "base.nml",
    )


@pytest.mark.expect_log(r"write refused \(EINVAL\): 1 of 2 tasks refused")
def test_a_refused_annotation_keeps_its_item(mount: Mount, wk_emulator: WkEmulator, tmp_path: Path):
    good = tmp_path / "good.nml"
    good.write_bytes(nml(DATASET_L4))
    # A zip of two NMLs: two tasks; an NML on a dataset that does not exist: refused.
    pair = tmp_path / "pair.zip"
    pair.write_bytes(zipped(**{"one.nml": nml(DATASET_L4), "two.nml": nml(DATASET_L4)}))
    missing = tmp_path / "missing.nml"
    missing.write_bytes(nml("000000000000000000000000"))
    before = set(server_tasks(wk_emulator))
    fd = os.open(tasks(mount) / "nml-mixed.json", os.O_WRONLY | os.O_CREAT, 0o644)
    os.write(fd, json.dumps(_annotation_request([str(good), str(missing)])).encode())
    with pytest.raises(OSError) as info:
        os.close(fd)
    assert info.value.errno == errno.EINVAL
    assert len(set(server_tasks(wk_emulator)) - before) == 1
    receipt = json.loads((tasks(mount) / "nml-mixed.json").read_text())
    assert len(receipt["created"]) == 1
    assert [(r["item"], r["baseAnnotation"]) for r in receipt["refused"]] == [(1, str(missing))]
    kept_dir = mount / ".neurofs/rejected/webknossos/tasks"
    kept = [json.loads(p.read_text()) for p in kept_dir.iterdir() if p.name.startswith("nml-mixed")]
    assert any(k[0]["baseAnnotation"] == str(missing) and k[0]["error"] for k in kept)
    # A zip's annotations are tasks of their own.
    (tasks(mount) / "pair.json").write_text(json.dumps(_annotation_request([str(pair)])))
    assert len(json.loads((tasks(mount) / "pair.json").read_text())["created"]) == 2


@pytest.mark.expect_log(r"write refused \(EINVAL\)")
def test_invalid_annotation_requests_send_nothing(
    mount: Mount, wk_emulator: WkEmulator, tmp_path: Path
):
    good = tmp_path / "good.nml"
    good.write_bytes(nml(DATASET_L4))
    text = tmp_path / "notes.nml"
    text.write_text("just some notes")
    fake_zip = tmp_path / "fake.zip"
    fake_zip.write_text("not a zip")
    other = tmp_path / "base.txt"
    other.write_bytes(nml(DATASET_L4))
    inside = str(tasks(mount) / "x.nml")  # the mount itself: refused, never read
    link = tmp_path / "link.nml"
    link.symlink_to(inside)
    cases = [
        ([str(tmp_path / "absent.nml")], "absent.nml"),
        ([str(text)], "notes.nml"),
        ([str(fake_zip)], "fake.zip"),
        ([str(other)], "base.txt"),
        ([inside], "x.nml"),
        ([str(link)], "link.nml"),
        (["relative.nml"], "relative.nml"),
        ([], "baseAnnotations"),
    ]
    for i, (paths, named) in enumerate(cases):
        wk_emulator.reset()
        data = json.dumps(_annotation_request(paths)).encode()
        with pytest.raises(OSError) as info:
            (tasks(mount) / f"bad-nml{i}.json").write_bytes(data)
        assert info.value.errno == errno.EINVAL, named
        assert _sent(wk_emulator) == [], named
        assert named in (mount / ".neurofs/errors.log").read_text().splitlines()[-1]
        kept_dir = mount / ".neurofs/rejected/webknossos/tasks"
        assert any(
            p.read_bytes() == data for p in kept_dir.iterdir() if p.name.startswith(f"bad-nml{i}")
        )
    wk_emulator.reset()
    with pytest.raises(OSError) as info:
        (tasks(mount) / "unknown.json").write_text(
            json.dumps({**_annotation_request([str(good)]), "editPosition": [1, 2, 3]})
        )
    assert info.value.errno == errno.EINVAL and _sent(wk_emulator) == []


@pytest.mark.expect_log(r"write refused \(EIO\): POST .*", r"POST .*: HTTP 50\d")
def test_an_outage_keeps_the_annotation_request(
    mount: Mount, wk_emulator: WkEmulator, tmp_path: Path
):
    good = tmp_path / "good.nml"
    good.write_bytes(nml(DATASET_L4))
    data = json.dumps(_annotation_request([str(good)])).encode()
    route = f"/api/v{wk_emulator.api_version}/tasks/createFromFiles"
    wk_emulator.refuse("POST", route, 503, {"messages": [{"error": "down"}]}, times=50)
    try:
        with pytest.raises(OSError) as info:
            (tasks(mount) / "outage-nml.json").write_bytes(data)
    finally:
        wk_emulator.clear_refusals()
    assert info.value.errno == errno.EIO
    kept_dir = mount / ".neurofs/rejected/webknossos/tasks"
    assert any(
        p.read_bytes() == data for p in kept_dir.iterdir() if p.name.startswith("outage-nml")
    )

"""Tasks, task types and projects as JSON files through a real mount."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest

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

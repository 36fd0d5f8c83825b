"""The official ``webknossos`` client (PyPI, in .venv-conformance-webknossos) against the
WEBKNOSSOS emulator.

If the real client reads the emulator's voxels exactly, edits dataset settings through it and
manages tasks with it, the emulator has not drifted from the real server where neurofs relies
on it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from neurofs_emulators.launch import RunningEmulator, start_emulator
from neurofs_emulators.webknossos.sample import (
    DATASET_L4,
    DATASET_RETINA,
    FOLDER_ARCHIVE,
    ORGANIZATION,
    OTHER_TOKEN,
    OWNER_TOKEN,
    TASK_IDS,
    TASK_TYPE_SKELETON,
    TEAM_ALPHA,
    TEAM_BETA,
    USER_OWNER,
    SampleWorld,
)
from tests.support.emulators import WkEmulator
from tests.support.fixtures import MakeMount
from tests.support.nml import nml

from .conftest import WkClientRunner

pytestmark = pytest.mark.conformance

OWNER = {"X-Auth-Token": OWNER_TOKEN}
NEUROFS = str(Path(sys.executable).with_name("neurofs"))


def save(path: Path, array: np.ndarray) -> str:
    np.save(path, array)
    return str(path)


def test_remote_dataset_reads_ground_truth(
    run_wk_client: WkClientRunner,
    wk_sample: SampleWorld,
    wk_emulator: RunningEmulator,
    tmp_path: Path,
) -> None:
    # Absolute (mag-1) boxes; expected values in mag coordinates from the ground truth.
    save(
        tmp_path / "color_1.npy",
        wk_sample.voxels(DATASET_L4, "color", (1, 1, 1), 96, 64, 24, 160, 128, 40),
    )
    save(
        tmp_path / "color_2.npy",
        wk_sample.voxels(DATASET_L4, "color", (2, 2, 1), 48, 32, 24, 80, 64, 40),
    )
    save(
        tmp_path / "seg_4.npy",
        wk_sample.voxels(DATASET_L4, "segmentation", (4, 4, 2), 16, 8, 8, 96, 72, 56),
    )
    save(
        tmp_path / "rgb_2.npy",
        wk_sample.voxels(DATASET_RETINA, "rgb", (2, 2, 1), 80, 48, 16, 112, 64, 32),
    )
    result = run_wk_client(
        f"""
        import numpy as np
        import webknossos as wk

        def same(array, name):
            expected = np.load(os.path.join(TMP, name + ".npy"))
            return [list(array.shape), str(array.dtype), bool(np.array_equal(array, expected))]

        ds = wk.RemoteDataset.open(dataset_id="{DATASET_L4}")
        color = ds.get_layer("color")
        seg = ds.get_layer("segmentation")
        box = wk.BoundingBox((96, 64, 24), (64, 64, 16))
        out = {{
            "layers": sorted(ds.layers),
            "bbox": [list(color.bounding_box.topleft), list(color.bounding_box.size)],
            "mags": [m.to_layer_name() for m in color.mags],
            "voxel_size": list(ds.voxel_size),
            "largest_segment_id": seg.largest_segment_id,
            "color_1": same(color.get_mag("1").read(absolute_bounding_box=box), "color_1"),
            "color_2": same(color.get_mag("2-2-1").read(absolute_bounding_box=box), "color_2"),
            # The whole layer at mag 4-4-2, including the chunks the bounding box only touches.
            "seg_4": same(seg.get_mag("4-4-2").read(), "seg_4"),
        }}
        by_name = wk.RemoteDataset.open("retina_rgb", organization_id="{ORGANIZATION}")
        rgb = by_name.get_layer("rgb")
        out["rgb_channels"] = rgb.num_channels
        rgb_box = wk.BoundingBox((160, 96, 16), (64, 32, 16))
        out["rgb_2"] = same(rgb.get_mag("2-2-1").read(absolute_bounding_box=rgb_box), "rgb_2")
        emit(out)
        """
    )
    spec = wk_sample.dataset(DATASET_L4)
    assert result["layers"] == ["color", "segmentation"]
    assert result["bbox"] == [[64, 32, 16], [320, 256, 96]]
    assert result["mags"] == ["1", "2-2-1", "4-4-2"]
    assert result["voxel_size"] == list(spec.voxel_size)
    assert result["largest_segment_id"] == spec.layer("segmentation").largest_segment_id()
    assert result["color_1"] == [[1, 64, 64, 16], "uint8", True]
    assert result["color_2"] == [[1, 32, 32, 16], "uint8", True]
    assert result["seg_4"] == [[1, 80, 64, 48], "uint32", True]
    assert result["rgb_channels"] == 3
    assert result["rgb_2"] == [[3, 32, 16, 16], "uint8", True]
    # The client streamed zarr chunks from the datastore (zarr streaming, API v14).
    paths = [r["path"] for r in wk_emulator.requests()]
    assert f"/data/v14/zarr/{DATASET_L4}/datasource-properties.json" in paths
    assert f"/data/v14/zarr/{DATASET_L4}/color/2-2-1/.zarray" in paths
    assert any(p.startswith(f"/data/v14/zarr/{DATASET_RETINA}/rgb/2-2-1/0.") for p in paths)


def test_remote_dataset_settings(
    run_wk_client: WkClientRunner, wk_emulator: RunningEmulator
) -> None:
    result = run_wk_client(
        f"""
        import webknossos as wk
        ds = wk.RemoteDataset.open(dataset_id="{DATASET_RETINA}")
        ds.description = "edited by the official client"
        ds.tags = ["LM", "edited"]
        ds.is_public = True
        ds.metadata = {{"species": "zebrafish", "age_days": 5, "stains": ["dapi"]}}
        ds.allowed_teams = [wk.Team.get_by_name("team_beta")]
        ds.folder = wk.RemoteFolder.get_by_id("{FOLDER_ARCHIVE}")
        emit({{
            "description": ds.description,
            "tags": list(ds.tags),
            "teams": [t.name for t in ds.allowed_teams],
            "folder": ds.folder.name,
            "sharing_token": ds.sharing_token,
        }})
        """
    )
    assert result["description"] == "edited by the official client"
    assert result["tags"] == ["LM", "edited"]
    assert result["teams"] == ["team_beta"]
    assert result["folder"] == "Archive"
    seen = httpx.get(
        f"{wk_emulator.urls[0]}/api/v14/datasets/{DATASET_RETINA}", headers=OWNER
    ).json()
    assert seen["description"] == "edited by the official client"
    assert seen["tags"] == ["LM", "edited"]
    assert seen["isPublic"] is True
    assert [t["id"] for t in seen["allowedTeams"]] == [TEAM_BETA]
    assert seen["folderId"] == FOLDER_ARCHIVE
    assert {m["key"]: m for m in seen["metadata"]}["age_days"] == {
        "key": "age_days",
        "type": "number",
        "value": 5,
    }
    assert result["sharing_token"] == SampleWorld().sharing_token(DATASET_RETINA)
    # Each setter sent one updatePartial with just its key.
    patches = [r["body"] for r in wk_emulator.requests() if r["path"].endswith("/updatePartial")]
    assert {"description": "edited by the official client"} in patches
    assert {"tags": ["LM", "edited"]} in patches
    assert all(len(body) == 1 for body in patches)


def test_tasks_and_task_types(run_wk_client: WkClientRunner, wk_emulator: RunningEmulator) -> None:
    result = run_wk_client(
        f"""
        import webknossos as wk
        task_type = wk.TaskType.create(
            "Conformance type", "made by the official client", "team_alpha", "skeleton"
        )
        project = wk.Project.get_by_name("demo_project")
        created = wk.Task.create(
            task_type_id=task_type,
            project_name=project,
            needed_experience_domain="tracing",
            needed_experience_value=2,
            starting_position=(150, 120, 40),
            dataset_id="{DATASET_L4}",
            instances=3,
            bounding_box=wk.BoundingBox((128, 96, 32), (64, 64, 16)),
        )
        listed = wk.Task.get_list()
        sample = wk.Task.get_by_id("{TASK_IDS[0]}")
        emit({{
            "task_type": [task_type.task_type_id, task_type.name, task_type.team_name],
            "type_ids": [t.task_type_id for t in wk.TaskType.get_list()],
            "created": [
                [t.task_id, t.dataset_id, t.status.pending_instance_count,
                 list(t.bounding_box.topleft), list(t.bounding_box.size), list(t.edit_position)]
                for t in created
            ],
            "listed": [t.task_id for t in listed],
            "sample_status": [
                sample.status.pending_instance_count,
                sample.status.active_instance_count,
                sample.status.finished_instance_count,
            ],
            "sample_annotations": [str(a.state.value) for a in sample.get_annotation_infos()],
            "project_tasks": [t.task_id for t in project.get_tasks()],
        }})
        """
    )
    type_id, type_name, type_team = result["task_type"]
    assert (type_name, type_team) == ("Conformance type", "team_alpha")
    assert type_id in result["type_ids"]
    # The client drops tracingType when it parses task types; check it on the server.
    stored = httpx.get(f"{wk_emulator.urls[0]}/api/v14/taskTypes/{type_id}", headers=OWNER).json()
    assert stored["tracingType"] == "skeleton"
    [[task_id, dataset_id, pending, top_left, size, position]] = result["created"]
    assert (dataset_id, pending, top_left, size, position) == (
        DATASET_L4,
        3,
        [128, 96, 32],
        [64, 64, 16],
        [150, 120, 40],
    )
    assert result["listed"] == [*TASK_IDS, task_id]
    assert result["sample_status"] == [1, 1, 1]
    assert result["sample_annotations"] == ["Active", "Finished"]
    assert task_id in result["project_tasks"] and TASK_IDS[0] in result["project_tasks"]
    seen = httpx.get(f"{wk_emulator.urls[0]}/api/v14/tasks/{task_id}", headers=OWNER).json()
    assert seen["type"]["summary"] == "Conformance type"
    assert seen["neededExperience"] == {"domain": "tracing", "value": 2}


def test_the_client_refuses_the_emulators_default_api_version(
    run_wk_client: WkClientRunner,
) -> None:
    # The emulator announces what a recorded real server announces (v12), which this client
    # does not speak: that is why the other tests run the emulator at v14.
    with start_emulator("webknossos") as default:
        result = run_wk_client(
            """
            import webknossos as wk
            try:
                wk.User.get_current_user()
            except RuntimeError as exc:
                emit(str(exc))
            """,
            WK_URL=default.urls[0],
        )
    assert "Server supports 5 to 12, client supports 13 to 16" in result


def test_projects_through_the_client(
    run_wk_client: WkClientRunner, wk_emulator: RunningEmulator
) -> None:
    result = run_wk_client(
        f"""
        import webknossos as wk
        made = wk.Project.create("conformance_project", "{TEAM_ALPHA}", expected_time=90)
        updated = made.update(priority=7, expected_time=120)
        emit({{
            "id": made.project_id,
            "owner": made.owner_id,
            "updated": [updated.name, updated.priority, updated.expected_time, updated.paused],
        }})
        """
    )
    assert result["owner"] == USER_OWNER  # the client sends the signed-in user as owner
    assert result["updated"] == ["conformance_project", 7, 120, False]
    writes = [r for r in wk_emulator.requests() if r["method"] == "PUT"]
    assert [w["path"] for w in writes] == [f"/api/v14/projects/{result['id']}"]
    assert writes[0]["body"]["owner"] == USER_OWNER


def _reloads(emulator: WkEmulator) -> list[tuple[Any, ...]]:
    """The datastore reloads the emulator saw: method, path, query, status, host."""
    return [
        (r["method"], r["path"], r["query"], r["status"], r["host"])
        for r in emulator.requests()
        if "/triggers/reload/" in r["path"]
    ]


@pytest.mark.mount
def test_dataset_url_and_datastore_reload_agree_with_the_mount(
    make_mount: MakeMount, wk_emulator: WkEmulator, run_wk_client: WkClientRunner
) -> None:
    """``RemoteDataset.url`` is the ``url`` of the mount's dataset.json, and the client's
    ``trigger_reload_in_datastore`` reaches the emulator as ``neurofs refresh
    --reload-datastore`` does: the same request to the same datastore, granted to the owner
    and refused to a user who may not administer datasets."""
    owner = make_mount(wk_emulator)
    other = make_mount(wk_emulator, token=OTHER_TOKEN)
    dataset = f"webknossos/datasets/{ORGANIZATION}/l4_demo"
    url = json.loads((owner / dataset / "dataset.json").read_text())["url"]
    snippet = f"""
        import webknossos as wk
        from webknossos.client.api_client.errors import UnexpectedStatusError
        out = {{"url": wk.RemoteDataset.open(dataset_id="{DATASET_L4}").url}}
        try:
            wk.RemoteDataset.trigger_reload_in_datastore(
                dataset_id="{DATASET_L4}", organization_id="{ORGANIZATION}"
            )
            out["reload"] = "done"
        except UnexpectedStatusError as exc:
            out["reload"] = "refused" if "Got response status 403" in str(exc) else str(exc)
        emit(out)
        """
    seen: dict[str, list[tuple[Any, ...]]] = {}
    cases = [
        ("owner", owner, OWNER_TOKEN, ("done", 0)),
        ("other", other, OTHER_TOKEN, ("refused", 1)),
    ]
    for who, mount, token, outcome in cases:
        wk_emulator.reset()
        result = run_wk_client(snippet, WK_TOKEN=token)
        seen[f"client {who}"] = _reloads(wk_emulator)
        assert result["url"] == url  # RemoteDataset.url is dataset.json's url
        wk_emulator.reset()
        cli = subprocess.run(
            [NEUROFS, "refresh", "--reload-datastore", str(mount / dataset)],
            capture_output=True,
            text=True,
            timeout=300,
        )
        seen[f"mount {who}"] = _reloads(wk_emulator)
        assert (result["reload"], cli.returncode) == outcome, cli.stderr
    datastore = wk_emulator.urls[1].split("://", 1)[1].rstrip("/")
    path = f"/data/v14/triggers/reload/{ORGANIZATION}/{DATASET_L4}"
    assert seen == {
        "client owner": [("POST", path, "", 200, datastore)],
        "mount owner": [("POST", path, "", 200, datastore)],
        "client other": [("POST", path, "", 403, datastore)],
        "mount other": [("POST", path, "", 403, datastore)],
    }


@pytest.mark.mount
def test_default_view_configuration_agrees_with_the_mount(
    make_mount: MakeMount, wk_emulator: WkEmulator, run_wk_client: WkClientRunner
) -> None:
    """``RemoteDataset.default_view_configuration`` and each layer's
    ``default_view_configuration`` are what dataset.json's ``defaultViewConfiguration`` shows;
    a layer's defaults set through the mount are what the client reads, and the other way."""
    mount = make_mount(wk_emulator)
    dataset = mount / f"webknossos/datasets/{ORGANIZATION}/l4_demo"
    path = dataset / "dataset.json"
    snippet = f"""
        import webknossos as wk
        from webknossos.dataset_properties import LayerViewConfiguration
        from webknossos.dataset_properties.structuring import get_dataset_converter
        convert = get_dataset_converter()
        ds = wk.RemoteDataset.open(dataset_id="{DATASET_L4}")
        if SET_SEGMENTATION:
            ds.get_layer("segmentation").default_view_configuration = LayerViewConfiguration(
                alpha=55, is_disabled=True
            )
        emit({{
            "dataset": convert.unstructure(ds.default_view_configuration),
            "layers": {{
                name: convert.unstructure(layer.default_view_configuration) or {{}}
                for name, layer in ds.layers.items()
            }},
        }})
        """
    original = json.loads(path.read_text())["defaultViewConfiguration"]
    try:
        seen = run_wk_client(snippet.replace("SET_SEGMENTATION", "False"))
        # The server sends no dataset-wide defaults: the client reads None, the mount shows
        # only the layers'.
        assert seen["dataset"] is None and set(original) == {"layers"}
        assert seen["layers"] == original["layers"]
        # Set through the mount, read by the client.
        doc = json.loads(path.read_text())
        doc["defaultViewConfiguration"]["layers"]["color"] = {
            "color": [255, 0, 0],
            "alpha": 40,
            "intensityRange": [10, 200],
            "isInverted": True,
        }
        path.write_text(json.dumps(doc, indent=2))
        seen = run_wk_client(snippet.replace("SET_SEGMENTATION", "False"))
        assert seen["layers"]["color"] == doc["defaultViewConfiguration"]["layers"]["color"]
        # Set by the client, shown by the mount (once it asks the server again).
        seen = run_wk_client(snippet.replace("SET_SEGMENTATION", "True"))
        assert seen["layers"]["segmentation"] == {"alpha": 55, "isDisabled": True}
        subprocess.run([NEUROFS, "refresh", str(dataset)], check=True, timeout=300)
        shown = json.loads(path.read_text())["defaultViewConfiguration"]
        assert shown["layers"] == seen["layers"]
    finally:
        with httpx.Client(base_url=f"{wk_emulator.urls[0]}/api/v14/", headers=OWNER) as c:
            source = c.get(f"datasets/{DATASET_L4}").json()["dataSource"]
            for layer in source["dataLayers"]:
                layer["defaultViewConfiguration"] = original["layers"][layer["name"]]
            c.patch(
                f"datasets/{DATASET_L4}/updatePartial", json={"dataSource": source}
            ).raise_for_status()


@pytest.mark.mount
def test_explore_and_add_remote_agrees_with_the_mount(
    make_mount: MakeMount, wk_emulator: WkEmulator, run_wk_client: WkClientRunner
) -> None:
    """The client's ``explore_and_add_remote`` and a request file written into the mount's
    ``datasets/<organization>/`` send the same request, and the two datasets they add look
    the same to the client (layers, voxel size, bounding box, voxels) and in the mount."""
    mount = make_mount(wk_emulator)
    org = mount / f"webknossos/datasets/{ORGANIZATION}"
    with httpx.Client(base_url=f"{wk_emulator.urls[0]}/api/v14/", headers=OWNER) as c:
        store = c.get(f"datasets/{DATASET_L4}").json()["dataStore"]["url"]
    uri = f"{store.rstrip('/')}/data/v14/zarr/{DATASET_L4}/color"

    def explore_requests() -> list[Any]:
        return [
            w["body"]
            for w in wk_emulator.writes()
            if w["path"].endswith("/datasets/exploreAndAddRemote")
        ]

    wk_emulator.reset()
    added = run_wk_client(
        f"""
        import webknossos as wk
        folder = wk.RemoteFolder.get_by_path("neurofs_lab/EM/Cortex")
        ds = wk.RemoteDataset.explore_and_add_remote("{uri}", "by_client", folder=folder)
        emit({{"id": ds._dataset_id}})
        """
    )
    by_client = explore_requests()
    wk_emulator.reset()
    (org / "by_mount.json").write_text(
        json.dumps({"remoteUri": uri, "datasetName": "by_mount", "folder": "EM/Cortex"})
    )
    by_mount = explore_requests()
    assert [{**b, "datasetName": "by_client"} for b in by_mount] == by_client
    assert len(by_client) == 1
    mount_id = json.loads((org / "by_mount.json").read_text())["id"]

    seen = run_wk_client(
        f"""
        import numpy as np
        import webknossos as wk
        out = {{}}
        for key, dataset_id in (("client", "{added["id"]}"), ("mount", "{mount_id}")):
            ds = wk.RemoteDataset.open(dataset_id=dataset_id)
            layer = ds.get_layer("color")
            box = layer.bounding_box
            data = layer.get_mag(1).read(absolute_offset=box.topleft, size=(64, 32, 16))
            out[key] = {{
                "layers": sorted(ds.layers),
                "voxel_size": list(ds.voxel_size),
                "box": [list(box.topleft), list(box.size)],
                "mags": [m.to_list() for m in layer.mags],
                "sum": int(np.asarray(data, dtype=np.int64).sum()),
                "folder": ds.folder.id,
            }}
        emit(out)
        """
    )
    assert seen["client"] == seen["mount"]
    assert seen["mount"]["layers"] == ["color"] and seen["mount"]["sum"] > 0
    subprocess.run([NEUROFS, "refresh", str(org)], check=True, timeout=300)
    properties = [
        json.loads((org / name / "datasource-properties.json").read_text())["dataLayers"]
        for name in ("by_client", "by_mount")
    ]
    assert properties[0] == properties[1]


def test_tasks_from_annotations_agree_with_the_mount(
    make_mount: MakeMount,
    wk_emulator: WkEmulator,
    run_wk_client: WkClientRunner,
    tmp_path: Path,
) -> None:
    """The client's ``Task.create_from_annotations`` and a task request naming the same
    annotation file in the mount's ``tasks/`` send one ``createFromFiles`` upload each with
    the same form, and make equal tasks."""
    mount = make_mount(wk_emulator)
    base = tmp_path / "base.nml"
    base.write_bytes(nml(DATASET_L4, position=(131, 97, 33)))

    def uploads() -> list[Any]:
        return [
            w["body"] for w in wk_emulator.writes() if w["path"].endswith("/tasks/createFromFiles")
        ]

    def shown(task_id: str) -> list[Any]:
        with httpx.Client(base_url=f"{wk_emulator.urls[0]}/api/v14/", headers=OWNER) as c:
            task = c.get(f"tasks/{task_id}").json()
        return [
            task["datasetId"],
            task["editPosition"],
            task["editRotation"],
            task["boundingBox"],
            task["status"]["pending"],
            task["type"]["id"],
            task["projectName"],
            task["neededExperience"],
        ]

    wk_emulator.reset()
    by_client = run_wk_client(
        f"""
        import webknossos as wk
        annotation = wk.Annotation.load("{base}")
        created = wk.Task.create_from_annotations(
            task_type_id="{TASK_TYPE_SKELETON}",
            project_name="demo_project",
            base_annotations=[annotation],
            needed_experience_domain="tracing",
            needed_experience_value=1,
            instances=2,
        )
        emit([t.task_id for t in created])
        """
    )
    [client_upload] = uploads()
    wk_emulator.reset()
    request = {
        "taskTypeId": TASK_TYPE_SKELETON,
        "neededExperience": {"domain": "tracing", "value": 1},
        "pendingInstances": 2,
        "projectName": "demo_project",
        "baseAnnotations": [str(base)],
    }
    tasks_dir = mount / "webknossos/tasks"
    (tasks_dir / "from-annotation.json").write_text(json.dumps(request))
    [mount_upload] = uploads()
    assert json.loads(mount_upload["form"]["formJSON"]) == json.loads(
        client_upload["form"]["formJSON"]
    )
    # One annotation file each (the client zips its own copy of the NML; the mount sends the
    # file it was given).
    assert len(client_upload["files"]) == len(mount_upload["files"]) == 1
    receipt = json.loads((tasks_dir / "from-annotation.json").read_text())
    [mount_task] = [name.removesuffix(".json") for name in receipt["created"]]
    [client_task] = by_client
    assert shown(mount_task) == shown(client_task)


def test_a_segments_mesh_is_the_clients(
    make_mount: MakeMount,
    wk_emulator: WkEmulator,
    wk_sample: SampleWorld,
    run_wk_client: WkClientRunner,
    tmp_path: Path,
) -> None:
    """The client's ``download_mesh`` of a segment (an ad-hoc mesh at the layer's finest
    mag, as the mount asks it) and ``<segmentation>.meshes/<id>.stl`` are the same bytes,
    through the same route."""
    mount = make_mount(wk_emulator)
    box = (64, 32, 16, 384, 288, 112)
    labels = wk_sample.voxels(DATASET_L4, "segmentation", (1, 1, 1), *box)[0]  # one channel
    segment = int(np.unique(labels)[3])
    # The client needs a voxel of the segment for an ad-hoc mesh (a datastore without a
    # segment index starts there); the emulator's layers have one, as the mount assumes.
    seed = [int(v) for v in np.argwhere(labels == segment)[0] + np.array([64, 32, 16])]

    def mesh_requests() -> list[Any]:
        return [
            (r["method"], r["path"].split("/datasets/", 1)[1])
            for r in wk_emulator.requests()
            if r["path"].endswith("/meshes/fullMesh.stl")
        ]

    wk_emulator.reset()
    path = run_wk_client(
        f"""
        import webknossos as wk
        ds = wk.RemoteDataset.open(dataset_id="{DATASET_L4}")
        layer = ds.get_segmentation_layer("segmentation")
        emit(str(layer.download_mesh({segment}, TMP, mag=(1, 1, 1), seed_position={seed})))
        """
    )
    by_client = mesh_requests()
    wk_emulator.reset()
    name = wk_sample.dataset(DATASET_L4).name
    mesh = mount / f"webknossos/datasets/{ORGANIZATION}/{name}/segmentation.meshes/{segment}.stl"
    data = mesh.read_bytes()
    assert mesh_requests() == by_client and len(by_client) == 1
    assert data == Path(path).read_bytes()
    assert int.from_bytes(data[80:84], "little") > 0

"""WEBKNOSSOS through a real mount: volumes read by zarr-python and numpy equal the ground
truth voxel for voxel; dataset.json edits become the API's own calls."""

from __future__ import annotations

import errno
import json
import os
import subprocess
from pathlib import Path

import httpx
import numpy as np
import pytest

from neurofs_emulators.webknossos.sample import DATASET_L4, ORGANIZATION, SampleWorld
from neurofs_emulators.webknossos.sample import OWNER_TOKEN as WK_OWNER_TOKEN

from .conftest import Mount, WkEmulator

pytestmark = pytest.mark.mount

WORLD = SampleWorld()


@pytest.fixture
def mount(make_mount, wk_emulator: WkEmulator) -> Mount:
    m = make_mount(wk_emulator, retry_seconds=2)
    wk_emulator.reset()
    return m


def ds_dir(mount: Mount, name: str) -> Path:
    return mount / f"webknossos/datasets/{ORGANIZATION}/{name}"


def expected_ome(dataset: str, layer: str, mag, box) -> np.ndarray:
    """Ground truth in the OME-Zarr view's axis order: (z, y, x), or (c, z, y, x)."""
    (x0, y0, z0), (x1, y1, z1) = box
    v = WORLD.voxels(dataset, layer, mag, x0, y0, z0, x1, y1, z1).transpose(0, 3, 2, 1)
    return v[0] if v.shape[0] == 1 else v


def test_tree(mount: Mount):
    assert sorted(os.listdir(mount / "webknossos")) == [
        "datasets",
        "folders",
        "projects",
        "task-types",
        "tasks",
    ]
    names = sorted(os.listdir(mount / f"webknossos/datasets/{ORGANIZATION}"))
    assert names == sorted(d.name for d in WORLD.datasets.values())
    entries = set(os.listdir(ds_dir(mount, "retina_rgb")))
    assert {
        "dataset.json",
        "datasource-properties.json",
        "sharing-token",
        "color.ome.zarr",
        "color",
        "segmentation.ome.zarr",
        "segmentation",
        "rgb.ome.zarr",
        "rgb",
    } <= entries
    token = (ds_dir(mount, "retina_rgb") / "sharing-token").read_text().strip()
    assert token == WORLD.sharing_token("retina_rgb")


@pytest.mark.parametrize(
    ("dataset", "layer"), [("l4_demo", "color"), ("l4_demo", "segmentation"), ("retina_rgb", "rgb")]
)
def test_zarr_reads_every_mag_of_the_ome_view(mount: Mount, dataset: str, layer: str):
    import zarr

    spec = WORLD.layer(dataset, layer)
    group = zarr.open_group(str(ds_dir(mount, dataset) / f"{layer}.ome.zarr"), mode="r")
    multiscale = group.attrs["multiscales"][0]
    assert [a["name"] for a in multiscale["axes"]][-3:] == ["z", "y", "x"]
    for d in multiscale["datasets"]:
        mag = next(m for m in spec.mags if WORLD.mag_name(m) == d["path"])
        arr = group[d["path"]]
        # A region crossing chunk borders inside the bounding box, and one over its edge.
        start = [t // m for t, m in zip(spec.top_left, mag, strict=True)]
        end = [(t + s) // m for t, s, m in zip(spec.top_left, spec.size, mag, strict=True)]
        box = (tuple(start), tuple(min(s + 45, e) for s, e in zip(start, end, strict=True)))
        (x0, y0, z0), (x1, y1, z1) = box
        got = arr[..., z0:z1, y0:y1, x0:x1]
        np.testing.assert_array_equal(got, expected_ome(dataset, layer, mag, box))
        edge = ((end[0] - 20, end[1] - 20, end[2] - 5), tuple(end))
        (x0, y0, z0), (x1, y1, z1) = edge
        np.testing.assert_array_equal(
            arr[..., z0:z1, y0:y1, x0:x1], expected_ome(dataset, layer, mag, edge)
        )


def test_segmentation_carries_image_label(mount: Mount):
    attrs = json.loads((ds_dir(mount, "l4_demo") / "segmentation.ome.zarr/.zattrs").read_text())
    # Standing alone it labels no image in that directory: no source (optional in 0.4).
    assert attrs["image-label"] == {"version": "0.4"}


def test_numpy_memmap_of_raw_equals_ground_truth(mount: Mount):
    for layer, mag in (("color", (2, 2, 1)), ("segmentation", (1, 1, 1)), ("rgb", (1, 1, 1))):
        dataset = "retina_rgb"
        spec = WORLD.layer(dataset, layer)
        name = WORLD.mag_name(mag)
        raw = ds_dir(mount, dataset) / layer / f"{name}.raw"
        start = [t // m for t, m in zip(spec.top_left, mag, strict=True)]
        end = [-(-(t + s) // m) for t, s, m in zip(spec.top_left, spec.size, mag, strict=True)]
        nx, ny, nz = (e - s for s, e in zip(start, end, strict=True))
        truth = WORLD.voxels(dataset, layer, mag, *start, *end)  # (c, x, y, z)
        c = truth.shape[0]
        mm = np.memmap(raw, dtype=truth.dtype, mode="r", shape=(nz, ny, nx, c))
        np.testing.assert_array_equal(mm, truth.transpose(3, 2, 1, 0))
        header = (ds_dir(mount, dataset) / layer / f"{name}.mhd").read_text()
        assert f"DimSize = {nx} {ny} {nz}" in header
        assert f"ElementDataFile = {name}.raw" in header


def test_native_view_as_served(mount: Mount):
    import zarr

    arr = zarr.open_array(str(ds_dir(mount, "l4_demo") / "color" / "1"), mode="r")
    spec = WORLD.layer("l4_demo", "color")
    x0, y0, z0 = spec.top_left
    np.testing.assert_array_equal(
        arr[:, x0 : x0 + 40, y0 : y0 + 40, z0 : z0 + 40],
        WORLD.voxels("l4_demo", "color", (1, 1, 1), x0, y0, z0, x0 + 40, y0 + 40, z0 + 40),
    )


def _patches(emulator: WkEmulator) -> list[dict]:
    return [w for w in emulator.writes() if w["method"] == "PATCH"]


def test_dataset_json_edit_sends_only_the_changed_keys(mount: Mount, wk_emulator: WkEmulator):
    path = ds_dir(mount, "l4_demo") / "dataset.json"
    doc = json.loads(path.read_text())
    doc["description"] = "Edited through the mount"
    doc["tags"] = [*doc["tags"], "edited"]
    wk_emulator.reset()
    path.write_text(json.dumps(doc, indent=2))
    patches = _patches(wk_emulator)
    assert len(patches) == 1 and patches[0]["path"].endswith("/updatePartial")
    assert patches[0]["body"] == {"description": "Edited through the mount", "tags": doc["tags"]}
    assert json.loads(path.read_text())["description"] == "Edited through the mount"
    # sed -i on one key: one request, that key only.
    wk_emulator.reset()
    subprocess.run(["sed", "-i", 's/"isPublic": true/"isPublic": false/', str(path)], check=True)
    patches = _patches(wk_emulator)
    assert [p["body"] for p in patches] == [{"isPublic": False}]


@pytest.mark.expect_log(r"write refused \(EINVAL\)")
def test_allowed_teams_and_folder(mount: Mount, wk_emulator: WkEmulator):
    path = ds_dir(mount, "l4_demo") / "dataset.json"
    doc = json.loads(path.read_text())
    with wk_emulator.wk() as c:
        teams = {t["name"]: t["id"] for t in c.get("teams").json()}
    new_teams = sorted(teams)[:2]
    doc["allowedTeams"] = new_teams
    wk_emulator.reset()
    path.write_text(json.dumps(doc))
    patches = _patches(wk_emulator)
    assert [(p["path"].rsplit("/", 1)[-1], p["body"]) for p in patches] == [
        ("teams", [teams[t] for t in new_teams])
    ]
    for bad in (
        {**doc, "allowedTeams": ["no such team"]},
        {**doc, "folder": "no/such/folder"},
        {**doc, "isPublic": "yes"},
        {**doc, "metadata": [{"key": "k", "type": "number", "value": "x"}]},
    ):
        wk_emulator.reset()
        with pytest.raises(OSError) as info:
            path.write_text(json.dumps(bad))
        assert info.value.errno == errno.EINVAL
        assert _patches(wk_emulator) == []


@pytest.mark.expect_log(r"write refused \(EINVAL\)")
def test_dataset_json_url_is_the_web_address_and_read_only(mount: Mount, wk_emulator: WkEmulator):
    path = ds_dir(mount, "l4_demo") / "dataset.json"
    text = path.read_text()
    doc = json.loads(text)
    # The official client's RemoteDataset.url: the server's URL, /datasets/, the dataset id.
    assert doc["url"] == f"{wk_emulator.api_url.rstrip('/')}/datasets/{DATASET_L4}"
    edited = json.dumps({**doc, "url": "https://elsewhere.example/datasets/other"}, indent=2)
    wk_emulator.reset()
    with pytest.raises(OSError) as info:
        path.write_text(edited)
    assert info.value.errno == errno.EINVAL
    assert wk_emulator.writes() == []
    assert path.read_text() == text
    last = (mount / ".neurofs/errors.log").read_text().splitlines()[-1]
    assert "only server-computed keys were changed (url)" in last
    kept = mount / ".neurofs/rejected/webknossos/datasets" / ORGANIZATION / "l4_demo"
    assert any(p.read_text() == edited for p in kept.iterdir())


def test_reload_in_datastore_through_the_control_file(mount: Mount, wk_emulator: WkEmulator):
    path = ds_dir(mount, "l4_demo") / "dataset.json"
    before = json.loads(path.read_text())["description"]
    with wk_emulator.wk() as c:  # changed on the server, not through the mount
        route = f"datasets/{DATASET_L4}/updatePartial"
        c.patch(route, json={"description": "changed elsewhere"}).raise_for_status()
    try:
        assert json.loads(path.read_text())["description"] == before  # still the held answer
        wk_emulator.reset()
        command = f"reload-datastore webknossos/datasets/{ORGANIZATION}/l4_demo\n"
        (mount / ".neurofs/control").write_bytes(command.encode())
        datastore = wk_emulator.urls[1].split("://", 1)[1].rstrip("/")
        assert [(w["method"], w["path"], w["status"], w["host"]) for w in wk_emulator.writes()] == [
            (
                "POST",
                f"/data/v{wk_emulator.api_version}/triggers/reload/{ORGANIZATION}/{DATASET_L4}",
                200,
                datastore,
            )
        ]
        # Then the mount shows the dataset as the server has it now.
        assert json.loads(path.read_text())["description"] == "changed elsewhere"
    finally:
        with wk_emulator.wk() as c:
            c.patch(route, json={"description": before}).raise_for_status()


def test_mv_between_folders_sets_the_folder(mount: Mount, wk_emulator: WkEmulator):
    folders = mount / "webknossos/folders"
    link = next(p for p in folders.rglob("l4_demo"))
    assert (link / "dataset.json").is_file()  # the symlink leads to the dataset
    target_dir = next(
        p
        for p in folders.rglob("*")
        if p.is_dir() and not p.is_symlink() and p != link.parent and "l4_demo" not in str(p)
    )
    wk_emulator.reset()
    os.rename(link, target_dir / "l4_demo")
    patches = _patches(wk_emulator)
    assert len(patches) == 1 and list(patches[0]["body"]) == ["folderId"]
    assert (target_dir / "l4_demo").is_symlink()
    folder = json.loads((ds_dir(mount, "l4_demo") / "dataset.json").read_text())["folder"]
    assert folder == str(target_dir.relative_to(folders))


def test_ome_zarr_metadata_validates(mount: Mount):
    import zarr
    from ome_zarr_models.v04.image import Image, ImageAttrs

    for layer in ("color", "segmentation", "rgb"):
        root = ds_dir(mount, "retina_rgb") / f"{layer}.ome.zarr"
        ImageAttrs.model_validate(json.loads((root / ".zattrs").read_text()))
        # The whole group: every dataset path exists with as many dimensions as axes.
        Image.from_zarr(zarr.open_group(str(root), mode="r"))


def test_tensorstore_reads_the_ome_view(mount: Mount):
    import tensorstore as ts

    spec = WORLD.layer("l4_demo", "segmentation")
    for mag in spec.mags:
        path = ds_dir(mount, "l4_demo") / "segmentation.ome.zarr" / WORLD.mag_name(mag)
        arr = ts.open(
            {"driver": "zarr", "kvstore": {"driver": "file", "path": str(path)}}, read=True
        ).result()
        start = [t // m for t, m in zip(spec.top_left, mag, strict=True)]
        box = (tuple(start), tuple(s + 33 for s in start))
        (x0, y0, z0), (x1, y1, z1) = box
        np.testing.assert_array_equal(
            arr[z0:z1, y0:y1, x0:x1].read().result(),
            expected_ome("l4_demo", "segmentation", mag, box),
        )


@pytest.mark.parametrize("header", ["mhd", "nhdr"])
def test_simpleitk_opens_the_plain_volume(mount: Mount, header: str):
    import SimpleITK as sitk

    dataset, layer, mag = "l4_demo", "color", (2, 2, 1)
    spec = WORLD.dataset(dataset)
    lspec = WORLD.layer(dataset, layer)
    image = sitk.ReadImage(str(ds_dir(mount, dataset) / layer / f"{WORLD.mag_name(mag)}.{header}"))
    spacing = tuple(v * m for v, m in zip(spec.voxel_size, mag, strict=True))
    assert image.GetSpacing() == pytest.approx(spacing)
    start = [t // m for t, m in zip(lspec.top_left, mag, strict=True)]
    assert image.GetOrigin() == pytest.approx(
        [s * sp for s, sp in zip(start, spacing, strict=True)]
    )
    end = [-(-(t + s) // m) for t, s, m in zip(lspec.top_left, lspec.size, mag, strict=True)]
    truth = WORLD.voxels(dataset, layer, mag, *start, *end)[0].transpose(2, 1, 0)  # (z, y, x)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(image), truth)


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"tags": ["EM"]}, ["l4_demo"]),
        ({"search": "retina"}, ["retina_rgb"]),
        ({"folder": "EM"}, ["cerebellum_beta"]),
        ({"organization": ORGANIZATION}, sorted(d.name for d in WORLD.datasets.values())),
    ],
)
def test_dataset_filters(make_mount, wk_emulator: WkEmulator, options: dict, expected: list):
    mount = make_mount(wk_emulator, **options)
    assert sorted(os.listdir(mount / f"webknossos/datasets/{ORGANIZATION}")) == expected


def test_a_sharing_token_alone_opens_a_private_dataset(make_mount, wk_emulator: WkEmulator):
    import zarr

    spec = WORLD.dataset("retina_rgb")
    assert not spec.is_public
    mount = make_mount(
        wk_emulator, token=None, datasets=[spec.id], sharing_token=spec.sharing_token
    )
    assert os.listdir(mount / f"webknossos/datasets/{ORGANIZATION}") == ["retina_rgb"]
    arr = zarr.open_group(str(ds_dir(mount, "retina_rgb") / "color.ome.zarr"), mode="r")["1"]
    layer = WORLD.layer("retina_rgb", "color")
    x0, y0, z0 = layer.top_left
    box = ((x0, y0, z0), (x0 + 20, y0 + 20, z0 + 5))
    np.testing.assert_array_equal(
        arr[z0 : z0 + 5, y0 : y0 + 20, x0 : x0 + 20],
        expected_ome("retina_rgb", "color", (1, 1, 1), box),
    )
    assert spec.sharing_token not in (mount / ".neurofs/config.json").read_text()


def test_vim_edit_of_dataset_json_is_one_patch(mount: Mount, wk_emulator: WkEmulator):
    path = ds_dir(mount, "cerebellum_beta") / "dataset.json"
    wk_emulator.reset()
    result = subprocess.run(
        [
            "vim",
            "-u",
            "NONE",
            "-i",
            "NONE",
            "-N",
            "-es",
            "-c",
            r'%s/"description": .*/"description": "via vim",/',
            "-c",
            "wq",
            str(path),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert [p["body"] for p in _patches(wk_emulator)] == [{"description": "via vim"}]


BAD_DATASET_JSON = {
    "invalid JSON": b'{"name": ',
    "empty": b"",
    "a list": b"[]",
    "blank name": {"name": "  "},
    "tags not a list": {"tags": "EM"},
    "isPublic not a bool": {"isPublic": 1},
    "unknown key": {"descripton": "typo"},
    "computed key only": {"id": "other"},
    "metadata wrong type": {"metadata": [{"key": "k", "type": "date", "value": "x"}]},
    "unknown team": {"allowedTeams": ["nobody"]},
    "unknown folder": {"folder": "Nowhere"},
}


@pytest.mark.parametrize("case", BAD_DATASET_JSON)
@pytest.mark.expect_log(r"write refused \(EINVAL\)")
def test_bad_dataset_json_is_einval_and_sends_nothing(
    mount: Mount, wk_emulator: WkEmulator, case: str
):
    path = ds_dir(mount, "l4_demo") / "dataset.json"
    bad = BAD_DATASET_JSON[case]
    data = (
        bad
        if isinstance(bad, bytes)
        else json.dumps({**json.loads(path.read_text()), **bad}).encode()
    )
    before = path.read_text()
    wk_emulator.reset()
    fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
    os.write(fd, data)
    with pytest.raises(OSError) as info:
        os.close(fd)
    assert info.value.errno == errno.EINVAL
    assert wk_emulator.writes() == []
    assert path.read_text() == before
    kept = mount / ".neurofs/rejected/webknossos/datasets" / ORGANIZATION / "l4_demo"
    assert any(p.read_bytes() == data for p in kept.iterdir())


def test_reading_along_an_axis_fetches_the_next_chunks_ahead(mount: Mount, wk_emulator: WkEmulator):
    import time

    mag_dir = ds_dir(mount, "l4_demo") / "color" / "1"  # the native view's 32³ chunks
    z, y = 1, 2
    wk_emulator.reset()
    # A reader walking along x: its second step that widens what it read earns read-ahead.
    for x in (1, 2, 3):
        (mag_dir / f"0.{x}.{y}.{z}").read_bytes()
    deadline = time.monotonic() + 10
    wanted = {f"/0.{x}.{y}.{z}" for x in (4, 5)}
    while time.monotonic() < deadline:
        asked = {r["path"][r["path"].rfind("/") :] for r in wk_emulator.requests()}
        if wanted <= asked:
            break
        time.sleep(0.05)
    assert wanted <= asked, sorted(asked)
    wk_emulator.reset()
    (mag_dir / f"0.4.{y}.{z}").read_bytes()  # already cached: no request
    assert not any(r["path"].endswith(f"/0.4.{y}.{z}") for r in wk_emulator.requests())


def test_the_plain_volume_and_its_chunks_share_one_fetch_and_one_cache_entry(
    mount: Mount, wk_emulator: WkEmulator
):
    """The plain volume is assembled from the chunks' cache entries: a voxel read through
    both views is fetched once from the datastore and stored once."""
    import re
    import time

    root = ds_dir(mount, "l4_demo")
    chunk = re.compile(r"/color/1/0\.(\d+)\.(\d+)\.(\d+)$")

    def fetched() -> list[str]:
        return [m.group(0) for r in wk_emulator.requests() if (m := chunk.search(r["path"]))]

    def settled_stats() -> dict:
        """The cache once read-ahead and the background writes are done."""
        before, deadline = None, time.monotonic() + 30
        while time.monotonic() < deadline:
            time.sleep(0.3)
            now = (len(wk_emulator.requests()), mount.stats()["cache"]["stored_blocks"])
            if now == before:
                break
            before = now
        return mount.stats()["cache"]

    plain = (root / "color" / "1.raw").read_bytes()
    first = fetched()
    assert first and len(first) == len(set(first))
    spec = WORLD.layer("l4_demo", "color")
    (x0, y0, z0), size = spec.top_left, spec.size
    (x1, y1, z1) = (x0 + size[0], y0 + size[1], z0 + size[2])
    inside = {
        f"/color/1/0.{x}.{y}.{z}"
        for x in range(x0 // 32, (x1 - 1) // 32 + 1)
        for y in range(y0 // 32, (y1 - 1) // 32 + 1)
        for z in range(z0 // 32, (z1 - 1) // 32 + 1)
    }
    assert set(first) == inside
    stored = settled_stats()
    assert stored["stored_blocks"] == len(inside)
    assert stored["stored_bytes"] == len(inside) * 32**3
    # The same voxels through the chunk files: from the cache, which grows no more.
    wk_emulator.reset()
    for key in sorted(inside):
        assert len((root / "color" / "1" / key.rsplit("/", 1)[1]).read_bytes()) == 32**3
    assert fetched() == []
    assert settled_stats()["stored_blocks"] == len(inside)
    assert len(plain) == size[0] * size[1] * size[2]


def test_color_ome_zarr_lists_the_segmentation_as_labels(mount: Mount, wk_emulator: WkEmulator):
    import zarr

    root = ds_dir(mount, "l4_demo")
    image = root / "color.ome.zarr"
    assert json.loads((image / "labels/.zattrs").read_text()) == {"labels": ["segmentation"]}
    label_dir = image / "labels/segmentation"
    attrs = json.loads((label_dir / ".zattrs").read_text())
    # source.image leads back from the label image to the image it labels.
    source = attrs["image-label"]["source"]["image"]
    assert os.path.samefile(label_dir / source, image)
    standalone = json.loads((root / "segmentation.ome.zarr/.zattrs").read_text())
    assert attrs["multiscales"] == standalone["multiscales"]

    label = zarr.open_group(str(label_dir), mode="r")
    seg = zarr.open_group(str(root / "segmentation.ome.zarr"), mode="r")
    spec = WORLD.layer("l4_demo", "segmentation")
    paths = [d["path"] for d in attrs["multiscales"][0]["datasets"]]
    assert paths == [WORLD.mag_name(m) for m in spec.mags]
    for path in paths:
        assert (label_dir / path / ".zarray").read_bytes() == (
            root / "segmentation.ome.zarr" / path / ".zarray"
        ).read_bytes()
        np.testing.assert_array_equal(label[path][...], seg[path][...])


def test_labels_share_the_segmentation_chunks(mount: Mount, wk_emulator: WkEmulator):
    """The label image is the segmentation itself, not a copy: a chunk read through one is
    in the cache for the other."""
    root = ds_dir(mount, "l4_demo")
    chunk = "1/1/2/3"  # z, y, x of 64³: served chunks 6-7, 4-5, 2
    wk_emulator.reset()
    first = (root / "segmentation.ome.zarr" / chunk).read_bytes()
    assert any(first)
    assert [r for r in wk_emulator.requests() if "/segmentation/" in r["path"]]
    wk_emulator.reset()
    assert (root / "color.ome.zarr/labels/segmentation" / chunk).read_bytes() == first
    assert not [r for r in wk_emulator.requests() if "/segmentation/" in r["path"]]


def test_only_single_channel_images_get_labels(mount: Mount):
    root = ds_dir(mount, "retina_rgb")
    assert "labels" in os.listdir(root / "color.ome.zarr")
    # The RGB layer has a channel axis the segmentation lacks; a segmentation labels nothing.
    assert "labels" not in os.listdir(root / "rgb.ome.zarr")
    assert "labels" not in os.listdir(root / "segmentation.ome.zarr")


def test_labels_validate_with_ome_zarr_models(mount: Mount):
    import zarr
    from ome_zarr_models.v04.image import Image
    from ome_zarr_models.v04.image_label import ImageLabel

    image_dir = ds_dir(mount, "l4_demo") / "color.ome.zarr"
    image = Image.from_zarr(zarr.open_group(str(image_dir), mode="r"))
    labels = image.labels
    assert labels is not None and labels.attributes.labels == ["segmentation"]
    label = ImageLabel.from_zarr(zarr.open_group(str(image_dir / "labels/segmentation"), mode="r"))
    assert label.attributes.image_label.source is not None
    assert label.attributes.image_label.source.image == "../../"


# ------------------------------------------------------------------ datasource-properties.json


def _datastore_get(emulator: WkEmulator, path: str) -> httpx.Response:
    """A datastore route at the API version the server announces (the one neurofs speaks)."""
    info = httpx.get(f"{emulator.api_url}/api/buildinfo").json()
    version = min(info["httpApiVersioning"]["currentApiVersion"], 14)
    return httpx.get(
        f"{emulator.running.urls[1]}/data/v{version}/{path}",
        headers={"X-Auth-Token": WK_OWNER_TOKEN},
    )


@pytest.mark.parametrize("dataset", ["l4_demo", "retina_rgb"])
def test_datasource_properties_is_what_the_datastore_serves(
    mount: Mount, wk_emulator: WkEmulator, dataset: str
):
    props = json.loads((ds_dir(mount, dataset) / "datasource-properties.json").read_text())
    served = _datastore_get(
        wk_emulator, f"zarr/{WORLD.dataset(dataset).id}/datasource-properties.json"
    )
    assert props == served.json()
    layers = {layer["name"]: layer for layer in props["dataLayers"]}
    color, seg = layers["color"], layers["segmentation"]
    assert color["dataFormat"] == "zarr" and color["elementClass"] == "uint8"
    assert color["mags"][1] == {
        "mag": [2, 2, 1],
        "path": "./color/2-2-1",
        "axisOrder": {"c": 0, "x": 1, "y": 2, "z": 3},
    }
    assert color["resolutions"] == [[1, 1, 1], [2, 2, 1], [4, 4, 2]]
    assert color["numChannels"] == 1 and "largestSegmentId" not in color
    assert color["defaultViewConfiguration"] == {
        "color": [255, 255, 255],
        "intensityRange": [0, 255],
    }
    assert seg["largestSegmentId"] == WORLD.layer(dataset, "segmentation").largest_segment_id()
    assert props["scale"]["unit"] == "nanometer"
    assert props["id"] == {"name": dataset, "team": ORGANIZATION}


# ------------------------------------------------------------------ a wrong route is an error


def _refuse_route(emulator: WkEmulator, dataset: str, below: str, message: str) -> None:
    """The datastore answers 404 for everything below ``zarr/<dataset id>/<below>`` and for
    the raw route's boxes of that layer (of the dataset, for ``below`` empty), as it does for
    a dataset, layer or mag it does not have, while the main server still lists them."""
    info = httpx.get(f"{emulator.api_url}/api/buildinfo").json()
    version = min(info["httpApiVersioning"]["currentApiVersion"], 14)
    dataset_id = WORLD.dataset(dataset).id
    layer = below.split("/", 1)[0]
    boxes = f"datasets/{dataset_id}/layers/{layer}/data" if layer else f"datasets/{dataset_id}/"
    for route in (f"zarr/{dataset_id}/{below}", boxes):
        emulator.refuse(
            "GET",
            f"/data/v{version}/{route}",
            404,
            {"messages": [{"error": message}]},
            times=10_000,
        )


@pytest.mark.parametrize(
    ("below", "message", "still_served"),
    [
        ("color/2-2-1/", "DataLayer “color” does not have mag “2-2-1”", "color/1/0.2.1.1"),
        ("color/", "DataLayer “color” not found", "segmentation/1/0.2.1.1"),
        ("", "Datasource not found on datastore server. Might still be initializing.", None),
    ],
)
def test_a_route_the_datastore_does_not_serve_is_eio_not_zeros(
    mount: Mount, wk_emulator: WkEmulator, below: str, message: str, still_served: str | None
):
    root = ds_dir(mount, "l4_demo")
    _refuse_route(wk_emulator, "l4_demo", below, message)
    try:
        # Chunks inside the bounding box, in both views, and the plain volume.
        for path in (
            root / "color" / "2-2-1" / "0.2.1.1",
            root / "color.ome.zarr" / "2-2-1" / "1" / "1" / "2",
            root / "color" / "2-2-1.raw",
        ):
            with pytest.raises(OSError) as failed, path.open("rb") as f:
                f.read(4096)
            assert failed.value.errno == errno.EIO, path
        log = (mount / ".neurofs" / "errors.log").read_text()
        assert "does not serve this dataset, layer or mag" in log
        assert message in log
        if still_served is not None:  # what the datastore still serves reads as before
            assert any((root / still_served).read_bytes())
    finally:
        wk_emulator.clear_refusals()


def test_a_missing_chunk_of_a_served_mag_reads_as_zeros(mount: Mount, wk_emulator: WkEmulator):
    mag = ds_dir(mount, "l4_demo") / "color" / "1"
    wk_emulator.reset()
    # Outside the bounding box (it starts at x = 64): the datastore has no chunk there.
    assert (mag / "0.0.0.0").read_bytes() == bytes(32**3)
    assert (mag / "0.0.5.2").read_bytes() == bytes(32**3)
    # Each 404 is checked against the mag's .zarray, once while it is remembered.
    zarrays = [r for r in wk_emulator.requests() if r["path"].endswith("/color/1/.zarray")]
    assert len(zarrays) == 1


# ------------------------------------------------------------------ default view configuration


def _restore_views(emulator: WkEmulator, views: dict) -> None:
    with emulator.wk() as c:
        source = c.get(f"datasets/{DATASET_L4}").json()["dataSource"]
        for layer in source["dataLayers"]:
            layer["defaultViewConfiguration"] = views["layers"][layer["name"]]
        c.patch(
            f"datasets/{DATASET_L4}/updatePartial", json={"dataSource": source}
        ).raise_for_status()


def test_view_configuration_edit_is_the_clients_update(mount: Mount, wk_emulator: WkEmulator):
    path = ds_dir(mount, "l4_demo") / "dataset.json"
    doc = json.loads(path.read_text())
    original = doc["defaultViewConfiguration"]
    assert original["layers"]["segmentation"] == {"alpha": 20}
    doc["defaultViewConfiguration"]["layers"]["segmentation"] = {"alpha": 35, "isDisabled": True}
    wk_emulator.reset()
    try:
        path.write_text(json.dumps(doc, indent=2))
        patches = _patches(wk_emulator)
        assert len(patches) == 1 and patches[0]["path"].endswith("/updatePartial")
        body = patches[0]["body"]
        # What the official client's setter sends: the whole data source, no renamings.
        assert body["layerRenamings"] == [] and body["attachmentRenamings"] == []
        layers = {la["name"]: la for la in body["dataSource"]["dataLayers"]}
        assert layers["segmentation"]["defaultViewConfiguration"] == {
            "alpha": 35,
            "isDisabled": True,
        }
        assert layers["color"]["defaultViewConfiguration"] == original["layers"]["color"]
        assert json.loads(path.read_text())["defaultViewConfiguration"]["layers"][
            "segmentation"
        ] == {
            "alpha": 35,
            "isDisabled": True,
        }
        with wk_emulator.wk() as c:
            seen = c.get(f"datasets/{DATASET_L4}").json()["dataSource"]["dataLayers"]
        assert {la["name"]: la.get("defaultViewConfiguration") for la in seen}["segmentation"] == {
            "alpha": 35,
            "isDisabled": True,
        }
    finally:
        _restore_views(wk_emulator, original)


BAD_VIEWS = {
    "zoom not positive": {"zoom": 0},
    "position of two": {"position": [1, 2]},
    "rotation not numbers": {"rotation": [0, "x", 0]},
    "alpha above 100": {"layers": {"color": {"alpha": 101}}},
    "color above 255": {"layers": {"color": {"color": [256, 0, 0]}}},
    "misspelt layer key": {"layers": {"color": {"alhpa": 10}}},
    "unknown layer": {"layers": {"nope": {"alpha": 10}}},
    "dataset-wide position": {"position": [10, 20, 30]},
}


@pytest.mark.parametrize("case", BAD_VIEWS)
@pytest.mark.expect_log(r"write refused \(EINVAL\)")
def test_bad_view_configuration_is_einval_and_sends_nothing(
    mount: Mount, wk_emulator: WkEmulator, case: str
):
    path = ds_dir(mount, "l4_demo") / "dataset.json"
    before = path.read_text()
    doc = json.loads(before)
    views = doc["defaultViewConfiguration"]
    bad = BAD_VIEWS[case]
    doc["defaultViewConfiguration"] = {
        **views,
        **bad,
        "layers": {**views["layers"], **bad.get("layers", {})},
    }
    data = json.dumps(doc).encode()
    wk_emulator.reset()
    with pytest.raises(OSError) as info:
        path.write_bytes(data)
    assert info.value.errno == errno.EINVAL
    assert wk_emulator.writes() == []
    assert path.read_text() == before
    assert (
        "defaultViewConfiguration" in (mount / ".neurofs/errors.log").read_text().splitlines()[-1]
    )
    kept = mount / ".neurofs/rejected/webknossos/datasets" / ORGANIZATION / "l4_demo"
    assert any(p.read_bytes() == data for p in kept.iterdir())


@pytest.mark.parametrize(
    ("status", "expected"), [(403, errno.EACCES), (503, errno.EIO)], ids=["refused", "outage"]
)
@pytest.mark.expect_log(
    r"write refused \(E[A-Z]+\): PATCH .*: HTTP \d{3}",
    r"PATCH .*: giving up after \d+ tries: HTTP 50\d",
    # After an outage the sidecar is shown from the answer kept on disk for a while.
    r"server unreachable; serving the answer kept on disk",
)
def test_view_configuration_refused_or_unreachable_keeps_the_bytes(
    mount: Mount, wk_emulator: WkEmulator, status: int, expected: int
):
    path = ds_dir(mount, "l4_demo") / "dataset.json"
    before = path.read_text()
    doc = json.loads(before)
    doc["defaultViewConfiguration"]["layers"]["color"]["alpha"] = 10
    data = json.dumps(doc).encode()
    route = f"/api/v{wk_emulator.api_version}/datasets/{DATASET_L4}/updatePartial"
    wk_emulator.refuse("PATCH", route, status, {"messages": [{"error": "no"}]}, times=50)
    try:
        with pytest.raises(OSError) as info:
            path.write_bytes(data)
    finally:
        wk_emulator.clear_refusals()
    assert info.value.errno == expected
    assert path.read_text() == before
    with wk_emulator.wk() as c:
        seen = c.get(f"datasets/{DATASET_L4}").json()["dataSource"]["dataLayers"]
    assert {la["name"]: la.get("defaultViewConfiguration") for la in seen}["color"] == json.loads(
        before
    )["defaultViewConfiguration"]["layers"]["color"]
    kept = mount / ".neurofs/rejected/webknossos/datasets" / ORGANIZATION / "l4_demo"
    assert any(p.read_bytes() == data for p in kept.iterdir())


# ---------------------------------------------------------------- remote datasets


def _datastore_zarr(wk_emulator: WkEmulator, dataset: str) -> str:
    """The zarr streaming address of a dataset on the emulator's own datastore: a remote
    URI the server can explore."""
    with wk_emulator.wk() as c:
        store = c.get(f"datasets/{dataset}").json()["dataStore"]["url"]
    return f"{store.rstrip('/')}/data/v{wk_emulator.api_version}/zarr/{dataset}"


def _explore_requests(wk_emulator: WkEmulator) -> list[dict]:
    return [w for w in wk_emulator.writes() if w["path"].endswith("/datasets/exploreAndAddRemote")]


def test_a_remote_dataset_added_by_a_request_file(mount: Mount, wk_emulator: WkEmulator):
    """A new *.json in datasets/<org>/ is the client's exploreAndAddRemote; the file becomes a
    receipt and the new dataset is listed with its layer, whose voxels read as the source's."""
    org = mount / f"webknossos/datasets/{ORGANIZATION}"
    uri = _datastore_zarr(wk_emulator, DATASET_L4) + "/color"
    with wk_emulator.wk() as c:
        # The server explores as an anonymous reader: the source must be public (an earlier
        # test of this module made it private).
        c.patch(f"datasets/{DATASET_L4}/updatePartial", json={"isPublic": True}).raise_for_status()
    wk_emulator.reset()
    (org / "new.json").write_text(
        json.dumps({"remoteUri": uri, "datasetName": "added_l4", "folder": "EM/Cortex"})
    )
    [sent] = _explore_requests(wk_emulator)
    with wk_emulator.wk() as c:
        folders = {f["name"]: f["id"] for f in c.get("folders/tree").json()}
    assert sent["body"] == {
        "remoteUri": uri,
        "datasetName": "added_l4",
        "folderId": folders["Cortex"],
        "dataStoreName": None,
        "credentialIdentifier": None,
        "credentialSecret": None,
    }
    receipt = json.loads((org / "new.json").read_text())
    assert receipt["created"] == ["added_l4"]
    assert "added_l4" in os.listdir(org)
    layers = json.loads((org / "added_l4/datasource-properties.json").read_text())["dataLayers"]
    assert [layer["name"] for layer in layers] == ["color"]
    import zarr

    added = zarr.open(str(org / "added_l4/color.ome.zarr/1"), mode="r")
    source = zarr.open(str(org / "l4_demo/color.ome.zarr/1"), mode="r")
    assert np.array_equal(added[:, :32, :64], source[:, :32, :64])


@pytest.mark.expect_log(r"write refused \(EINVAL\)")
@pytest.mark.parametrize(
    "data",
    [
        b"{not json",
        b"[]",
        b'{"datasetName": "xyz"}',
        b'{"remoteUri": "no-scheme", "datasetName": "xyz"}',
        b'{"remoteUri": "https://a.org/x.zarr", "datasetName": "  "}',
        # The server's name rules (DatasetService.assertValidDatasetName), checked here.
        b'{"remoteUri": "https://a.org/x.zarr", "datasetName": "my data"}',
        b'{"remoteUri": "https://a.org/x.zarr", "datasetName": ".hidden"}',
        b'{"remoteUri": "https://a.org/x.zarr", "datasetName": "ab"}',
        b'{"remoteUri": "https://a.org/x.zarr", "datasetName": "xyz", "voxelSize": [1, 1, 1]}',
        b'{"remoteUri": "https://a.org/x.zarr", "datasetName": "xyz", "folder": "No/Such"}',
    ],
    ids=[
        "json",
        "list",
        "no-uri",
        "no-scheme",
        "blank-name",
        "name-characters",
        "name-dot",
        "name-short",
        "unknown-key",
        "folder",
    ],
)
def test_an_invalid_remote_dataset_request_is_einval_and_sends_nothing(
    mount: Mount, wk_emulator: WkEmulator, data: bytes
):
    org = mount / f"webknossos/datasets/{ORGANIZATION}"
    wk_emulator.reset()
    fd = os.open(org / "bad.json", os.O_WRONLY | os.O_CREAT, 0o644)
    os.write(fd, data)
    with pytest.raises(OSError) as info:
        os.close(fd)
    assert info.value.errno == errno.EINVAL
    assert wk_emulator.writes() == []
    kept = mount / ".neurofs/rejected/webknossos/datasets" / ORGANIZATION
    assert any(p.read_bytes() == data for p in kept.iterdir() if p.name.startswith("bad.json"))
    assert "bad.json" in (mount / ".neurofs/errors.log").read_text().splitlines()[-1]


@pytest.mark.expect_log(r"write refused \(EINVAL\): POST .*: HTTP 400")
def test_a_refused_exploration_keeps_the_message_and_the_bytes(
    mount: Mount, wk_emulator: WkEmulator
):
    org = mount / f"webknossos/datasets/{ORGANIZATION}"
    uri = "https://data.example.org/nothing.zarr"
    data = json.dumps({"remoteUri": uri, "datasetName": "unreachable"}).encode()
    before = sorted(os.listdir(org))
    with pytest.raises(OSError) as info:
        (org / "remote.json").write_bytes(data)
    assert info.value.errno == errno.EINVAL
    assert len(_explore_requests(wk_emulator)) == 1
    line = (mount / ".neurofs/errors.log").read_text().splitlines()[-1]
    # The server's Msg.Dataset.Explore.failed (scalableminds/webknossos, util/.../Msg.scala,
    # DatasetController.exploreAndAddRemoteDataset): its exploration report is not sent.
    assert "remote.json" in line and "Could not explore remote dataset." in line
    kept = mount / ".neurofs/rejected/webknossos/datasets" / ORGANIZATION
    assert any(p.read_bytes() == data for p in kept.iterdir() if p.name.startswith("remote"))
    assert "unreachable" not in os.listdir(org)
    assert sorted(n for n in os.listdir(org) if n != "remote.json") == before


@pytest.mark.expect_log(
    r"write refused \(EIO\): POST .*",
    r"POST .*: HTTP 50\d",
)
def test_an_outage_keeps_the_remote_dataset_request(mount: Mount, wk_emulator: WkEmulator):
    org = mount / f"webknossos/datasets/{ORGANIZATION}"
    uri = _datastore_zarr(wk_emulator, DATASET_L4)
    data = json.dumps({"remoteUri": uri, "datasetName": "during_outage"}).encode()
    route = f"/api/v{wk_emulator.api_version}/datasets/exploreAndAddRemote"
    wk_emulator.refuse("POST", route, 503, {"messages": [{"error": "down"}]}, times=50)
    try:
        with pytest.raises(OSError) as info:
            (org / "outage.json").write_bytes(data)
    finally:
        wk_emulator.clear_refusals()
    assert info.value.errno == errno.EIO
    kept = mount / ".neurofs/rejected/webknossos/datasets" / ORGANIZATION
    assert any(p.read_bytes() == data for p in kept.iterdir() if p.name.startswith("outage"))


def test_a_segment_mesh_is_binary_stl_bounded_by_its_voxels(mount: Mount, wk_emulator: WkEmulator):
    meshes = ds_dir(mount, "l4_demo") / "segmentation.meshes"
    assert meshes.is_dir()  # the path resolved: what follows is the listing alone
    wk_emulator.reset()
    assert os.listdir(meshes) == []
    assert not any("meshes" in r["path"] for r in wk_emulator.requests())
    labels = WORLD.voxels("l4_demo", "segmentation", (1, 1, 1), 64, 32, 16, 384, 288, 112)[0]
    segment = int(np.unique(labels)[3])
    where = np.argwhere(labels == segment) + np.array([64, 32, 16])
    data = (meshes / f"{segment}.stl").read_bytes()
    # No mesh library in the main venv: the STL is parsed with numpy.
    count = int.from_bytes(data[80:84], "little")
    assert len(data) == 84 + 50 * count and count > 0
    rows = np.dtype([("normal", "<f4", 3), ("vertices", "<f4", (3, 3)), ("attr", "<u2")])
    vertices = np.frombuffer(data, dtype=rows, offset=84)["vertices"].reshape(-1, 3)
    voxel_size = np.array([11.24, 11.24, 28.0])
    np.testing.assert_allclose(vertices.min(0), where.min(0) * voxel_size, rtol=1e-6)
    np.testing.assert_allclose(vertices.max(0), (where.max(0) + 1) * voxel_size, rtol=1e-6)
    for missing in ("99999.stl", "0.stl", "007.stl", "x.stl"):
        with pytest.raises(FileNotFoundError):
            (meshes / missing).stat()
    with pytest.raises(OSError) as refused:
        (meshes / f"{segment}.stl").open("wb")
    assert refused.value.errno in (errno.EROFS, errno.EACCES)

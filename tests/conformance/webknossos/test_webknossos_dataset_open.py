"""The official ``webknossos`` client opens a mount's dataset directory as a WEBKNOSSOS dataset
on disk: ``Dataset.open(<mount>/webknossos/datasets/<org>/<dataset>, read_only=True)`` lists the
layers and mags, and reads the same voxels as ``RemoteDataset`` (zarr streaming from the
server) and as the mount's OME-Zarr view, without writing anything into the mount."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import zarr

from neurofs_emulators.webknossos.sample import (
    DATASET_L4,
    DATASET_RETINA,
    ORGANIZATION,
    SampleWorld,
)
from tests.support.emulators import WkEmulator
from tests.support.fixtures import MakeMount
from tests.support.mounting import Mount

from .conftest import WkClientRunner

pytestmark = [pytest.mark.conformance, pytest.mark.mount]

# Mag-1 boxes (absolute coordinates): inside the bounding box, and over its far edge.
BOXES = {
    "color_1": ("color", (1, 1, 1), (96, 64, 24), (64, 64, 16)),
    "color_2": ("color", (2, 2, 1), (300, 240, 90), (84, 48, 22)),
    "seg_4": ("segmentation", (4, 4, 2), (64, 32, 16), (320, 256, 96)),
}


def _ome_region(root: Path, layer: str, mag: tuple[int, int, int], top_left, size) -> np.ndarray:
    """The box from the mount's OME-Zarr view, as (c, x, y, z) in mag coordinates."""
    arr = zarr.open_array(str(root / f"{layer}.ome.zarr" / SampleWorld.mag_name(mag)), mode="r")
    start = [t // m for t, m in zip(top_left, mag, strict=True)]
    end = [(t + s) // m for t, s, m in zip(top_left, size, mag, strict=True)]
    zyx = arr[start[2] : end[2], start[1] : end[1], start[0] : end[0]]
    return np.asarray(zyx).transpose(2, 1, 0)[np.newaxis]


def test_dataset_open_on_a_mount_reads_what_remote_dataset_reads(
    make_mount: MakeMount,
    wk_emulator: WkEmulator,
    run_wk_client: WkClientRunner,
    wk_sample: SampleWorld,
    tmp_path: Path,
) -> None:
    mount: Mount = make_mount(wk_emulator)
    root = mount / f"webknossos/datasets/{ORGANIZATION}/l4_demo"
    before = sorted(os.listdir(root))
    properties = (root / "datasource-properties.json").read_bytes()
    for name, (layer, mag, top_left, size) in BOXES.items():
        start = [t // m for t, m in zip(top_left, mag, strict=True)]
        end = [(t + s) // m for t, s, m in zip(top_left, size, mag, strict=True)]
        truth = wk_sample.voxels(DATASET_L4, layer, mag, *start, *end)
        np.testing.assert_array_equal(_ome_region(root, layer, mag, top_left, size), truth)
        np.save(tmp_path / f"{name}.npy", truth)
    result = run_wk_client(
        f"""
        import numpy as np
        import webknossos as wk

        boxes = {json.dumps(BOXES)}
        local = wk.Dataset.open(os.environ["MOUNTED_DATASET"], read_only=True)
        remote = wk.RemoteDataset.open(dataset_id="{DATASET_L4}")
        out = {{
            "layers": sorted(local.layers),
            "mags": {{n: [m.to_layer_name() for m in l.mags] for n, l in local.layers.items()}},
            "voxel_size": list(local.voxel_size),
            "largest_segment_id": local.get_layer("segmentation").largest_segment_id,
            "bbox": [list(local.get_layer("color").bounding_box.topleft),
                     list(local.get_layer("color").bounding_box.size)],
        }}
        for name, (layer, mag, top_left, size) in boxes.items():
            box = wk.BoundingBox(top_left, size)
            mag_name = wk.Mag(mag).to_layer_name()
            mine = local.get_layer(layer).get_mag(mag_name).read(absolute_bounding_box=box)
            theirs = remote.get_layer(layer).get_mag(mag_name).read(absolute_bounding_box=box)
            expected = np.load(os.path.join(TMP, name + ".npy"))
            out[name] = [
                list(mine.shape),
                str(mine.dtype),
                bool(np.array_equal(mine, expected)),
                bool(np.array_equal(mine, theirs)),
            ]
        # RGB (uint24): three channels.
        rgb_local = wk.Dataset.open(os.environ["MOUNTED_RGB"], read_only=True).get_layer("rgb")
        rgb_remote = wk.RemoteDataset.open(dataset_id="{DATASET_RETINA}").get_layer("rgb")
        box = wk.BoundingBox((160, 96, 16), (64, 32, 16))
        mine = rgb_local.get_mag("2-2-1").read(absolute_bounding_box=box)
        theirs = rgb_remote.get_mag("2-2-1").read(absolute_bounding_box=box)
        out["rgb"] = [rgb_local.num_channels, list(mine.shape), bool(np.array_equal(mine, theirs))]
        emit(out)
        """,
        MOUNTED_DATASET=str(root),
        MOUNTED_RGB=str(root.parent / "retina_rgb"),
    )
    spec = wk_sample.dataset(DATASET_L4)
    assert result["layers"] == ["color", "segmentation"]
    assert result["mags"] == {
        "color": ["1", "2-2-1", "4-4-2"],
        "segmentation": ["1", "2-2-1", "4-4-2"],
    }
    assert result["voxel_size"] == list(spec.voxel_size)
    assert result["largest_segment_id"] == spec.layer("segmentation").largest_segment_id()
    assert result["bbox"] == [[64, 32, 16], [320, 256, 96]]
    assert result["color_1"] == [[1, 64, 64, 16], "uint8", True, True]
    assert result["color_2"] == [[1, 42, 24, 22], "uint8", True, True]
    assert result["seg_4"] == [[1, 80, 64, 48], "uint32", True, True]
    assert result["rgb"] == [3, [3, 32, 16, 16], True]
    # Read-only: nothing was written into the mount (no properties, locks or metadata).
    assert sorted(os.listdir(root)) == before
    assert (root / "datasource-properties.json").read_bytes() == properties
    assert (mount / ".neurofs/errors.log").read_text() == ""

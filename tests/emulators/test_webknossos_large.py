"""The WEBKNOSSOS emulator's scale sample (``--sample large``) over real HTTP: a 40,000 ×
40,000 × 10,000 layer with mags 1–64 whose voxels are computed on request, the same through
the zarr-streaming chunks and the raw box route, in a process that stays small."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from neurofs_emulators.launch import RunningEmulator, start_emulator
from neurofs_emulators.webknossos.sample import (
    CURRENT_API_VERSION,
    DATASET_L4,
    DATASET_LARGE,
    LARGE_SIZE,
    OWNER_TOKEN,
    SampleWorld,
)

WORLD = SampleWorld("large")
V = f"v{CURRENT_API_VERSION}"
MAGS = [[m, m, m] for m in (1, 2, 4, 8, 16, 32, 64)]


@pytest.fixture(scope="module")
def large() -> Iterator[RunningEmulator]:
    with start_emulator("webknossos", ["--sample", "large"]) as emulator:
        yield emulator


@pytest.fixture(scope="module")
def data(large: RunningEmulator) -> Iterator[httpx.Client]:
    base = large.urls[1].rstrip("/") + f"/data/{V}/"
    with httpx.Client(base_url=base, headers={"X-Auth-Token": OWNER_TOKEN}) as client:
        yield client


def test_the_big_dataset_is_served_beside_the_demo(large: RunningEmulator) -> None:
    api = large.urls[0].rstrip("/") + f"/api/{V}/"
    with httpx.Client(base_url=api, headers={"X-Auth-Token": OWNER_TOKEN}) as client:
        ids = {d["id"] for d in client.get("datasets").json()}
        assert {DATASET_L4, DATASET_LARGE} <= ids
        layer = client.get(f"datasets/{DATASET_LARGE}").json()["dataSource"]["dataLayers"][0]
    assert layer["elementClass"] == "uint8"
    assert [m["mag"] for m in layer["mags"]] == MAGS
    box = layer["boundingBox"]
    assert (box["width"], box["height"], box["depth"]) == LARGE_SIZE


def test_streamed_properties_and_array_shapes(data: httpx.Client) -> None:
    props = data.get(f"zarr/{DATASET_LARGE}/datasource-properties.json").json()
    layer = props["dataLayers"][0]
    assert [m["mag"] for m in layer["mags"]] == MAGS
    assert [m["path"] for m in layer["mags"]] == [f"./color/{m[0]}" for m in MAGS]
    assert data.get(f"zarr/{DATASET_LARGE}/color/1/.zarray").json()["shape"] == [
        1,
        40_000,
        40_000,
        10_000,
    ]
    assert data.get(f"zarr/{DATASET_LARGE}/color/64/.zarray").json()["shape"] == [1, 625, 625, 157]


@pytest.mark.parametrize(("mag", "chunk"), [(1, (1000, 1100, 250)), (64, (19, 19, 4))])
def test_deep_chunks_and_boxes_hold_the_same_computed_voxels(
    data: httpx.Client, mag: int, chunk: tuple[int, int, int]
) -> None:
    m = (mag, mag, mag)
    expected = WORLD.chunk("large_volume", "color", m, *chunk)
    got = data.get(f"zarr/{DATASET_LARGE}/color/{mag}/0.{chunk[0]}.{chunk[1]}.{chunk[2]}")
    assert got.status_code == 200
    assert got.content == expected.tobytes(order="F")
    # The raw route: corner in mag-1 voxels, size in voxels of the mag.
    x, y, z = (c * 32 * mag for c in chunk)
    params = {"mag": str(mag), "x": x, "y": y, "z": z, "width": 32, "height": 32, "depth": 32}
    box = data.get(f"datasets/{DATASET_LARGE}/layers/color/data", params=params)
    assert box.status_code == 200
    assert box.content == got.content


def test_coarse_mags_stride_the_finest() -> None:
    """A voxel of mag 64 is the mag-1 voxel at its block's first corner."""
    coarse = WORLD.voxels("large_volume", "color", (64, 64, 64), 300, 200, 100, 304, 203, 101)
    for i in range(4):
        for j in range(3):
            fine = WORLD.voxels(
                "large_volume",
                "color",
                (1, 1, 1),
                (300 + i) * 64,
                (200 + j) * 64,
                100 * 64,
                (300 + i) * 64 + 1,
                (200 + j) * 64 + 1,
                100 * 64 + 1,
            )
            assert coarse[0, i, j, 0] == fine[0, 0, 0, 0]
    assert len(np.unique(coarse)) > 1


def test_outside_the_box_is_missing_and_the_process_stays_small(
    data: httpx.Client, large: RunningEmulator
) -> None:
    assert data.get(f"zarr/{DATASET_LARGE}/color/1/0.1250.0.0").status_code == 404
    # The largest box the datastore serves (512 voxels a side), deep at mag 1.
    params = {"mag": "1", "x": 20_000, "y": 20_000, "z": 5_000}
    sides = {"width": 512, "height": 512, "depth": 4}
    box = data.get(f"datasets/{DATASET_LARGE}/layers/color/data", params={**params, **sides})
    assert len(box.content) == 512 * 512 * 4
    # Rows of a whole plane at mag 16 are wider than that: refused, as a missing bucket.
    sides = {"width": 2500, "height": 420, "depth": 1}
    rows = data.get(f"datasets/{DATASET_LARGE}/layers/color/data", params={**params, **sides})
    assert (rows.content, rows.headers["MISSING-BUCKETS"]) == (b"", "[0]")
    status = Path(f"/proc/{large.process.pid}/status").read_text()
    peak_kb = int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1))  # type: ignore[union-attr]
    assert peak_kb * 1024 < 250 * 1000 * 1000  # nothing of the 16 TB layer is kept

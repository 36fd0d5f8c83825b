"""ParaView opens a WEBKNOSSOS layer's plain volume straight from the mount through its
``.nhdr`` (NRRD) and ``.mhd`` (MetaImage) headers.

``pvpython`` (Debian's ``python3-paraview``) runs ``paraview_read.py``, which needs no display:
it lets ParaView pick its reader for each header and reports the image it made. Sizes,
spacing (voxel size × mag), origin (the bounding box's corner), element type, value range,
scattered voxels and the whole volume equal the emulator's own voxels (``SampleWorld``),
computed without the mount.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from neurofs_emulators.webknossos.sample import ORGANIZATION, SampleWorld
from tests.gui.conftest import require_program
from tests.mount.conftest import WkEmulator

from .imaging import HERE, PROGRAM_SECONDS

pytestmark = pytest.mark.mount

WORLD = SampleWorld()
DATASET = "l4_demo"
SCRIPT = HERE / "paraview_read.py"
# The reader ParaView picks for each header, and the order they are given to the script.
READERS = {"nhdr": "NrrdReader", "mhd": "MetaFileSeriesReader"}


def ground_truth(layer: str, mag: tuple[int, int, int]) -> tuple[np.ndarray, list[int]]:
    """The layer's bounding box at ``mag`` from the emulator's generator, as (x, y, z), and
    its first voxel at that mag."""
    spec = WORLD.layer(DATASET, layer)
    start = [t // m for t, m in zip(spec.top_left, mag, strict=True)]
    end = [-(-(t + s) // m) for t, s, m in zip(spec.top_left, spec.size, mag, strict=True)]
    return WORLD.voxels(DATASET, layer, mag, *start, *end)[0], start


@pytest.mark.parametrize(
    ("layer", "mag", "vtk_type"),
    [("color", (1, 1, 1), "unsigned char"), ("segmentation", (2, 2, 1), "unsigned int")],
    ids=["color-uint8", "segmentation-uint32"],
)
def test_paraview_opens_the_headers(
    make_mount,
    wk_emulator: WkEmulator,
    tmp_path: Path,
    layer: str,
    mag: tuple[int, int, int],
    vtk_type: str,
):
    pvpython = require_program("pvpython")
    truth, start = ground_truth(layer, mag)
    assert truth.dtype == (np.uint8 if layer == "color" else np.uint32)
    assert truth.max() > 0  # a volume of zeros would prove nothing
    voxel = WORLD.dataset(DATASET).voxel_size
    spacing = [v * m for v, m in zip(voxel, mag, strict=True)]
    origin = [s * sp for s, sp in zip(start, spacing, strict=True)]

    # Voxels to read back: a fixed scatter, and the brightest / highest-id one.
    rng = np.random.default_rng(3)
    points = [[int(v) for v in rng.integers(0, truth.shape)] for _ in range(12)]
    points.append([int(v) for v in np.unravel_index(int(np.argmax(truth)), truth.shape)])

    mount = make_mount(wk_emulator)
    base = mount / f"webknossos/datasets/{ORGANIZATION}/{DATASET}/{layer}/{WORLD.mag_name(mag)}"
    wk_emulator.reset()
    result = subprocess.run(
        [pvpython, str(SCRIPT), json.dumps(points), str(tmp_path)]
        + [f"{base}.{ext}" for ext in READERS],
        capture_output=True,
        text=True,
        timeout=PROGRAM_SECONDS,
        check=False,
    )
    assert result.returncode == 0, f"pvpython failed: {result.stdout}\n{result.stderr[-4000:]}"
    # The bytes came through the mount from the datastore.
    assert any("/data" in r["path"] for r in wk_emulator.requests())

    reports = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert [r["reader"] for r in reports] == list(READERS.values())
    for n, r in enumerate(reports):
        assert r["dimensions"] == list(truth.shape), r["path"]
        assert r["components"] == 1
        assert r["spacing"] == pytest.approx(spacing), r["path"]
        assert r["origin"] == pytest.approx(origin), r["path"]
        assert r["type"] == vtk_type, r["path"]
        assert r["range"] == [float(truth.min()), float(truth.max())], r["path"]
        assert r["values"] == [int(truth[x, y, z]) for x, y, z in points], r["path"]
        np.testing.assert_array_equal(np.load(tmp_path / f"{n}.npy"), truth.transpose(2, 1, 0))

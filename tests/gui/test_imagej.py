"""ImageJ opens a WEBKNOSSOS layer's plain volume straight from the mount with File › Import ›
Raw, using the sizes of its ``.mhd`` header; what it measures equals the emulator's own voxels."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from neurofs_emulators.webknossos.sample import ORGANIZATION, SampleWorld
from tests.mount.conftest import WkEmulator

from .imaging import HERE, png_pixels, run_imagej

pytestmark = pytest.mark.mount

WORLD = SampleWorld()
DATASET = "l4_demo"
MACRO = HERE / "imagej_raw.ijm"


def header_sizes(layer_dir: Path, mag: str) -> tuple[int, int, int]:
    """(x, y, z) from the ``.mhd``, checked against the ``.nhdr``."""
    mhd = (layer_dir / f"{mag}.mhd").read_text()
    nhdr = (layer_dir / f"{mag}.nhdr").read_text()
    found = re.search(r"^DimSize = (\d+) (\d+) (\d+)$", mhd, re.MULTILINE)
    assert found, mhd
    x, y, z = (int(v) for v in found.groups())
    assert f"sizes: {x} {y} {z}" in nhdr
    return x, y, z


def ground_truth(layer: str, mag: tuple[int, int, int]) -> np.ndarray:
    """The layer's bounding box at ``mag`` from the emulator's generator, as (z, y, x)."""
    spec = WORLD.layer(DATASET, layer)
    start = [t // m for t, m in zip(spec.top_left, mag, strict=True)]
    end = [-(-(t + s) // m) for t, s, m in zip(spec.top_left, spec.size, mag, strict=True)]
    return WORLD.voxels(DATASET, layer, mag, *start, *end)[0].transpose(2, 1, 0)


@pytest.mark.parametrize(
    ("layer", "mag", "imagej_type"),
    [("color", (1, 1, 1), "8-bit"), ("segmentation", (2, 2, 1), "32-bit Unsigned")],
    ids=["color-uint8", "segmentation-uint32"],
)
def test_imagej_imports_the_raw_volume(
    make_mount,
    wk_emulator: WkEmulator,
    gui_env: dict[str, str],
    gui_python: Path,
    gallery_dir: Path,
    tmp_path: Path,
    layer: str,
    mag: tuple[int, int, int],
    imagej_type: str,
):
    mount = make_mount(wk_emulator)
    layer_dir = mount / f"webknossos/datasets/{ORGANIZATION}/{DATASET}/{layer}"
    name = WORLD.mag_name(mag)
    x, y, z = header_sizes(layer_dir, name)
    truth = ground_truth(layer, mag)
    assert truth.shape == (z, y, x)

    # Voxels to read back: a fixed scatter, and the brightest / highest-id one.
    rng = np.random.default_rng(7)
    points = [tuple(int(v) for v in rng.integers(0, (x, y, z))) for _ in range(12)]
    zz, yy, xx = np.unravel_index(int(np.argmax(truth)), truth.shape)
    points.append((int(xx), int(yy), int(zz)))
    png = tmp_path / "slice.png" if layer == "color" else None

    wk_emulator.reset()
    out = run_imagej(
        MACRO,
        "|".join(
            [
                str(layer_dir / f"{name}.raw"),
                imagej_type,
                str(x),
                str(y),
                str(z),
                str(png) if png else "-",
                ";".join(f"{px},{py},{pz}" for px, py, pz in points),
            ]
        ),
        gui_env,
    )
    # The bytes came through the mount from the datastore.
    assert any("/data" in r["path"] for r in wk_emulator.requests())

    bits = 8 if truth.dtype == np.uint8 else 32
    assert out["opened"] == [f"{x}x{y}x{z} bitDepth={bits}"]
    count, mean, lo, hi = out["stats"][0].split(",")
    assert int(count) == truth.size
    assert float(mean) == pytest.approx(float(truth.mean()), rel=1e-7)
    assert (int(lo), int(hi)) == (int(truth.min()), int(truth.max()))
    assert int(hi) > 0  # a volume of zeros would prove nothing
    if bits == 8:
        hist = [int(v) for v in out["hist"][0].split(",")]
        assert hist == np.bincount(truth.ravel(), minlength=256).tolist()
    rows = [[int(v) for v in line.split(",")] for line in out["voxel"]]
    got = {(px, py, pz): value for px, py, pz, value in rows}
    assert got == {(px, py, pz): int(truth[pz, py, px]) for px, py, pz in points}

    if png is not None:
        # ImageJ's PNG of the middle slice holds that slice's voxels exactly.
        np.testing.assert_array_equal(png_pixels(gui_python, png), truth[z // 2])
        (gallery_dir / "imagej.png").write_bytes(png.read_bytes())

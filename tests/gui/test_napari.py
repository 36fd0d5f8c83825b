"""napari opens a WEBKNOSSOS layer from the mount, with napari-ome-zarr, in a real window.

The viewer runs in ``.venv-gui`` (``napari_view.py``) on a virtual X display; this test
mounts the WEBKNOSSOS emulator, has it screenshot one z slice, and checks the pixels against
the emulator's own voxel formulas (``SampleWorld``), computed without the mount:

- the image alone: every canvas pixel is the slice's voxel under it mapped through the
  contrast limits (mean, mean error and correlation), so a wrong slice, a wrong region or a
  blank canvas fails;
- with the label layer shown: pixels change colour exactly where the segmentation of that
  slice is non-zero, so a missing or misplaced label layer fails.
"""

from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from neurofs_emulators.webknossos.sample import ORGANIZATION, SampleWorld
from tests.mount.conftest import Mount, WkEmulator

pytestmark = pytest.mark.mount

WORLD = SampleWorld()
DATASET = "l4_demo"
Z = 55  # at mag 1; 55 // 24 = 2: a slice whose labels differ from its neighbours' blocks'
CONTRAST = (40.0, 200.0)
CANVAS = (640, 800)  # height, width
ZOOM = 2.0  # canvas pixels per voxel of mag 1
VIEWER_SECONDS = 600  # bounds a hung viewer only

# Agreement required between the rendered canvas and the ground truth (grey levels 0-255).
# Measured: mean error 0.16 and correlation 0.99999; the same canvas one pixel off gives a
# mean error of 2.8, the neighbouring slice a mean difference of about 3.
MAX_MEAN_DIFFERENCE = 1.0
MAX_MEAN_ABS_ERROR = 1.0
MIN_CORRELATION = 0.999
# Share of pixels whose colour the label layer changes, inside and outside the labels
# (measured: 0.999 and 0).
MIN_CHANGED_INSIDE = 0.99
MAX_CHANGED_OUTSIDE = 0.01


def ome_shapes(layer: str) -> list[list[int]]:
    """The OME-Zarr arrays' shapes (z, y, x), finest mag first."""
    spec = WORLD.layer(DATASET, layer)
    end = [t + s for t, s in zip(spec.top_left, spec.size, strict=True)]
    return [[math.ceil(e / m) for e, m in zip(end, mag, strict=True)][::-1] for mag in spec.mags]


def truth_slice(layer: str, z: int) -> np.ndarray:
    """Slice z of ``layer`` at mag 1 as (y, x), over the whole array (from voxel 0)."""
    _, ny, nx = ome_shapes(layer)[0]
    return WORLD.voxels(DATASET, layer, (1, 1, 1), 0, 0, z, nx, ny, z + 1)[0, :, :, 0].T


def pixel_voxels(count: int, center: float, zoom: float) -> np.ndarray:
    """The voxel index under each canvas pixel along one axis (napari centres voxel i on
    world coordinate i; the canvas centre shows ``center``)."""
    pixel_centres = np.arange(count) + 0.5
    return np.floor(center + (pixel_centres - count / 2) / zoom + 0.5).astype(np.int64)


def on_canvas(values: np.ndarray, center_yx: tuple[float, float]) -> np.ndarray:
    """``values`` (y, x) as the canvas shows them; NaN where no voxel is under a pixel."""
    iy = pixel_voxels(CANVAS[0], center_yx[0], ZOOM)[:, None]
    ix = pixel_voxels(CANVAS[1], center_yx[1], ZOOM)[None, :]
    inside = (iy >= 0) & (iy < values.shape[0]) & (ix >= 0) & (ix < values.shape[1])
    out = np.full(CANVAS, np.nan)
    yy, xx = np.broadcast_arrays(iy, ix)
    out[inside] = values[yy[inside], xx[inside]]
    return out


def expected_grey(color: np.ndarray, center_yx: tuple[float, float]) -> np.ndarray:
    """The grey level napari should draw: the contrast-limited voxel, black off the data."""
    lo, hi = CONTRAST
    grey = np.clip((on_canvas(color, center_yx) - lo) / (hi - lo), 0, 1) * 255
    return np.nan_to_num(grey, nan=0.0)


def compare_image(shot: np.ndarray, expected: np.ndarray) -> dict[str, float]:
    """How a screenshot (RGBA) of the grey image agrees with the expected grey levels."""
    grey = shot[..., :3].astype(np.float64).mean(axis=2)
    return {
        "mean_difference": float(abs(grey.mean() - expected.mean())),
        "mean_abs_error": float(np.abs(grey - expected).mean()),
        "correlation": float(np.corrcoef(grey.ravel(), expected.ravel())[0, 1]),
    }


def compare_labels(
    plain: np.ndarray, overlaid: np.ndarray, labelled: np.ndarray
) -> dict[str, float]:
    """Where showing the label layer changed the canvas, against where labels are non-zero.
    Pixels at a label's edge (one pixel either side) are left out."""
    changed = np.abs(overlaid[..., :3].astype(np.int64) - plain[..., :3]).max(axis=2) > 8
    near = np.zeros_like(labelled)
    far = np.ones_like(labelled)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            shifted = np.roll(np.roll(labelled, dy, axis=0), dx, axis=1)
            near |= shifted
            far &= shifted
    inside, outside = far, ~near
    return {
        "changed_inside": float(changed[inside].mean()),
        "changed_outside": float(changed[outside].mean()),
        "inside_pixels": int(inside.sum()),
        "outside_pixels": int(outside.sum()),
    }


def run_viewer(
    gui_python: Path, env: dict[str, str], image: Path, out: Path, png: Path
) -> dict[str, Any]:
    center = bbox_center_yx()
    result = subprocess.run(
        [
            str(gui_python),
            str(Path(__file__).with_name("napari_view.py")),
            str(image),
            *("--z", str(Z)),
            *("--contrast", *map(str, CONTRAST)),
            *("--canvas", *map(str, CANVAS)),
            *("--zoom", str(ZOOM)),
            *("--center-yx", *map(str, center)),
            *("--out", str(out)),
            *("--png", str(png)),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=VIEWER_SECONDS,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def bbox_center_yx() -> tuple[float, float]:
    """The bounding box's centre at mag 1, in voxels (y, x)."""
    spec = WORLD.layer(DATASET, "color")
    (x0, y0, _), (sx, sy, _) = spec.top_left, spec.size
    return (y0 + sy / 2, x0 + sx / 2)


def test_napari_shows_the_image_with_all_mags_and_its_labels(
    make_mount: Any,
    wk_emulator: WkEmulator,
    gui_python: Path,
    gui_env: dict[str, str],
    gallery_dir: Path,
    tmp_path: Path,
) -> None:
    mount: Mount = make_mount(wk_emulator)
    image = mount / f"webknossos/datasets/{ORGANIZATION}/{DATASET}/color.ome.zarr"
    report = run_viewer(gui_python, gui_env, image, tmp_path / "shots", gallery_dir / "napari.png")

    # A real X11 window, the image as one multiscale layer with every mag, the segmentation
    # as a multiscale Labels layer.
    assert report["qt_platform"] == "xcb"
    by_type: dict[str, list[dict[str, Any]]] = {}
    for layer in report["layers"]:
        by_type.setdefault(layer["type"], []).append(layer)
    assert sorted(by_type) == ["Image", "Labels"], report["layers"]
    (img,), (lab,) = by_type["Image"], by_type["Labels"]
    assert img["multiscale"] and img["shapes"] == ome_shapes("color")
    assert lab["multiscale"] and lab["shapes"] == ome_shapes("segmentation")
    assert "segmentation" in lab["name"]
    assert report["image_data_level"] == 0  # drawn from mag 1, as the ground truth below
    assert report["dims_point"][0] == report["z_world"]
    assert report["canvas_shape"] == list(CANVAS)

    plain = np.load(report["screenshots"]["image"]["path"])
    overlaid = np.load(report["screenshots"]["labels"]["path"])
    center = bbox_center_yx()
    image_stats = compare_image(plain, expected_grey(truth_slice("color", Z), center))
    assert image_stats["mean_difference"] <= MAX_MEAN_DIFFERENCE, image_stats
    assert image_stats["mean_abs_error"] <= MAX_MEAN_ABS_ERROR, image_stats
    assert image_stats["correlation"] >= MIN_CORRELATION, image_stats

    labelled = np.nan_to_num(on_canvas(truth_slice("segmentation", Z), center)) > 0
    label_stats = compare_labels(plain, overlaid, labelled)
    assert label_stats["inside_pixels"] > 0 and label_stats["outside_pixels"] > 0
    assert label_stats["changed_inside"] >= MIN_CHANGED_INSIDE, label_stats
    assert label_stats["changed_outside"] <= MAX_CHANGED_OUTSIDE, label_stats
    assert (gallery_dir / "napari.png").stat().st_size > 0

"""Open an OME-Zarr image in napari with napari-ome-zarr and screenshot one z slice.

Run by ``test_napari.py`` with ``.venv-gui``'s Python on a virtual X display (Qt's xcb
platform, a real OpenGL window). It prints one JSON object: the layers napari made, the
camera, and where the screenshots are. Two canvas screenshots are taken of slice ``--z``
(voxels of the finest level): the image alone, and with the label layer shown over it. Each
is saved as ``.npy`` (RGBA) for the test; the second also as ``--png``.

The camera is placed exactly (``--zoom`` canvas pixels per voxel, centred on
``--center-yx`` in voxels), so the test can map each canvas pixel back to a voxel.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import napari
import numpy as np
from napari.layers import Image, Labels
from qtpy.QtWidgets import QApplication

# Bounds that only keep a stuck viewer from hanging the test run.
SETTLE_SECONDS = 120


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("image", help="path of the OME-Zarr image group")
    p.add_argument("--z", type=int, required=True, help="z index at the finest level")
    p.add_argument("--contrast", type=float, nargs=2, required=True, metavar=("LO", "HI"))
    p.add_argument("--canvas", type=int, nargs=2, required=True, metavar=("H", "W"))
    p.add_argument("--zoom", type=float, required=True, help="canvas pixels per voxel")
    p.add_argument("--center-yx", type=float, nargs=2, required=True, metavar=("Y", "X"))
    p.add_argument("--out", type=Path, required=True, help="directory for the .npy files")
    p.add_argument("--png", type=Path, required=True, help="the screenshot with labels")
    args = p.parse_args()

    viewer = napari.Viewer(show=True)
    viewer.open(args.image, plugin="napari-ome-zarr")
    images = [layer for layer in viewer.layers if isinstance(layer, Image)]
    labels = [layer for layer in viewer.layers if isinstance(layer, Labels)]
    if len(images) != 1 or not labels:
        sys.exit(f"expected one image layer and a labels layer, napari made: {list(viewer.layers)}")
    image = images[0]
    # Every mag the group lists must be a level of the one multiscale image.
    attrs = json.loads((Path(args.image) / ".zattrs").read_text())
    mags = len(attrs["multiscales"][0]["datasets"])
    if not image.multiscale or len(image.data) != mags:
        sys.exit(f"the image should be multiscale with {mags} levels: {_describe(image)}")

    _resize_canvas(viewer, args.canvas[0], args.canvas[1])
    image.colormap = "gray"
    image.gamma = 1.0
    image.contrast_limits = tuple(args.contrast)
    sz, sy, sx = image.scale[-3:]
    viewer.dims.set_point(0, args.z * sz)
    cy, cx = args.center_yx
    camera = _camera(viewer)
    camera.center = (args.z * sz, cy * sy, cx * sx)
    camera.zoom = args.zoom / sx  # canvas pixels per world unit

    for layer in labels:
        layer.visible = False
    plain = _screenshot(viewer)
    for layer in labels:
        layer.visible = True
        layer.opacity = 0.7
    overlaid = _screenshot(viewer)

    args.out.mkdir(parents=True, exist_ok=True)
    np.save(args.out / "image.npy", plain)
    np.save(args.out / "labels.npy", overlaid)
    _save_png(args.png, overlaid)

    report = {
        "layers": [_describe(layer) for layer in viewer.layers],
        "image_data_level": int(image.data_level),
        "dims_point": [float(v) for v in viewer.dims.point],
        "z_world": args.z * float(sz),
        "camera": {
            "center": [float(v) for v in camera.center],
            "zoom": float(camera.zoom),
        },
        "canvas_shape": list(plain.shape[:2]),
        "qt_platform": QApplication.platformName(),
        "screenshots": {
            "image": {"path": str(args.out / "image.npy"), "mean": float(plain[..., :3].mean())},
            "labels": {
                "path": str(args.out / "labels.npy"),
                "mean": float(overlaid[..., :3].mean()),
            },
            "png": str(args.png),
        },
    }
    print(json.dumps(report))
    viewer.close()


def _camera(viewer: napari.Viewer) -> Any:
    """The viewer's camera (``viewer.scene.camera`` since napari 0.9)."""
    scene = getattr(viewer, "scene", None)
    return scene.camera if scene is not None else viewer.camera


def _describe(layer: Any) -> dict[str, Any]:
    levels = layer.data if layer.multiscale else [layer.data]
    return {
        "type": type(layer).__name__,
        "name": layer.name,
        "multiscale": bool(layer.multiscale),
        "shapes": [list(level.shape) for level in levels],
        "scale": [float(v) for v in layer.scale],
        "visible": bool(layer.visible),
    }


def _resize_canvas(viewer: napari.Viewer, height: int, width: int) -> None:
    """Grow or shrink the window until the canvas has the wanted size."""
    window = viewer.window._qt_window
    canvas = viewer.window._qt_viewer.canvas
    deadline = time.monotonic() + SETTLE_SECONDS
    while tuple(canvas.size) != (height, width):
        if time.monotonic() > deadline:
            sys.exit(f"the canvas stays {tuple(canvas.size)}, not {(height, width)}")
        h, w = canvas.size
        window.resize(window.width() + width - w, window.height() + height - h)
        for _ in range(20):
            QApplication.processEvents()
            time.sleep(0.01)


def _screenshot(viewer: napari.Viewer) -> np.ndarray:
    """The canvas once every layer has its data for this view."""
    deadline = time.monotonic() + SETTLE_SECONDS
    while not all(layer.loaded for layer in viewer.layers):
        if time.monotonic() > deadline:
            sys.exit("layers did not finish loading")
        QApplication.processEvents()
        time.sleep(0.01)
    return np.asarray(viewer.screenshot(canvas_only=True, flash=False))


def _save_png(path: Path, rgba: np.ndarray) -> None:
    from PIL import Image as PILImage

    path.parent.mkdir(parents=True, exist_ok=True)
    PILImage.fromarray(rgba[..., :3]).save(path, optimize=True)


if __name__ == "__main__":
    main()

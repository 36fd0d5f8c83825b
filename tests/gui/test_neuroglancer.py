"""neuroglancer shows a WEBKNOSSOS layer read from the mount: ``neurofs ng-url`` serves the
mount and the neuroglancer Python package's own client, and headless Chromium (WebGL through
SwiftShader) opens the printed URL.

The screenshot's xy panel is compared with the emulator's voxels of the slice at the
state's position, computed without the mount: for the whole image, and for one mag given as
PATH. neuroglancer outlines the array's bounds in yellow; that outline maps panel pixels to
voxels (x and y separately: Chromium's screenshot can stretch the canvas vertically). The
match is exact to the grey level unless the canvas was stretched. A missing source draws no
outline and an empty panel, a wrong source or slice a different picture: each fails.
"""

from __future__ import annotations

import itertools
import json
import re
import signal
import subprocess
import urllib.parse
from pathlib import Path

import numpy as np
import pytest

from neurofs_emulators.webknossos.sample import ORGANIZATION, SampleWorld
from tests.mount.conftest import NEUROFS, WkEmulator

from .imaging import chromium_screenshot, neuroglancer_client, png_pixels

pytestmark = pytest.mark.mount

WORLD = SampleWorld()
DATASET = "l4_demo"
WINDOW = (1200, 900)
# Virtual time for the page: neuroglancer's start, its metadata and chunk fetches, and
# drawing. Virtual time also waits for the network, so a slow machine needs no more.
BUDGET_MS = 30_000
# Agreement required between the panel and the ground truth (grey levels 0-255). Measured:
# mean error 0.0 at mag 1 and 0.27 at mag 2-2-1 (correlation 1.0 and 0.999); when Chromium
# stretches the canvas, 1.7 (correlation 0.990 and 0.997). Against the next slice the mean
# error is 3.7 to 5.0; that is checked below, so the measure is known to be sharp enough.
MIN_CORRELATION = 0.98
MAX_MEAN_ERROR = 2.5


@pytest.mark.parametrize(
    ("target", "mag"),
    [("color.ome.zarr", (1, 1, 1)), ("color.ome.zarr/2-2-1", (2, 2, 1))],
    ids=["image", "one-mag"],
)
def test_neuroglancer_shows_the_layer_from_the_mount(
    make_mount,
    wk_emulator: WkEmulator,
    gui_python: Path,
    gallery_dir: Path,
    tmp_path: Path,
    target: str,
    mag: tuple[int, int, int],
):
    mount = make_mount(wk_emulator)
    client = neuroglancer_client(gui_python)
    dataset = mount / f"webknossos/datasets/{ORGANIZATION}/{DATASET}"
    image = dataset / target
    log = tmp_path / "ng-url.log"
    wk_emulator.reset()
    with log.open("w") as err:
        server = subprocess.Popen(
            [
                *NEUROFS,
                "ng-url",
                str(image),
                "--client-dir",
                str(client),
                "--layout",
                "xy",
                "--log-level",
                "debug",
            ],
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
        )
    try:
        assert server.stdout is not None
        url = next((line.strip() for line in server.stdout if "#!" in line), None)
        assert url, f"ng-url printed no URL: {log.read_text()}"
        assert re.match(r"http://127\.0\.0\.1:\d+/v/neurofs/#!", url)  # the local client
        state = json.loads(urllib.parse.unquote(url.split("#!", 1)[1]))
        png = tmp_path / "neuroglancer.png"
        chromium_screenshot(url, png, tmp_path / "profile", WINDOW, BUDGET_MS)
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=60)
    assert server.returncode == 0

    # The browser fetched the client, the image's metadata and its chunks from the server,
    # and the mount fetched the chunks from the datastore.
    requests = re.findall(r'"(GET|HEAD) (\S+) HTTP/1.1" (\d+)', log.read_text())
    served = {(path, status) for _, path, status in requests}
    group = "/" + (dataset / "color.ome.zarr").relative_to(mount.path).as_posix()
    assert ("/v/neurofs/", "200") in served
    assert (f"{group}/.zattrs" if mag == (1, 1, 1) else f"{group}/2-2-1/.zarray", "200") in served
    chunks = {p for p, s in served if s == "200" and re.fullmatch(rf"{group}/[^/]+/\d+/\d+/\d+", p)}
    assert len(chunks) >= 4, sorted(served)
    assert any("/data" in r["path"] for r in wk_emulator.requests())

    pixels = png_pixels(gui_python, png)[..., :3].astype(float)
    x, y, z = (int(v) for v in state["position"])
    array = dataset / "color.ome.zarr" / WORLD.mag_name(mag)
    shape_zyx = json.loads((array / ".zarray").read_text())["shape"]
    truth = WORLD.voxels(DATASET, "color", mag, 0, 0, z, shape_zyx[2], shape_zyx[1], z + 1)
    truth_yx = truth[0, :, :, 0].T.astype(float)  # (y, x)

    shown_z = agreement(pixels, truth_yx)
    neighbour = WORLD.voxels(DATASET, "color", mag, 0, 0, z + 1, shape_zyx[2], shape_zyx[1], z + 2)
    next_z = agreement(pixels, neighbour[0, :, :, 0].T.astype(float))
    print(f"agreement at z={z}: {shown_z}; at z={z + 1}: {next_z}")
    correlation, mean_error = shown_z
    assert correlation > MIN_CORRELATION, shown_z
    assert mean_error < MAX_MEAN_ERROR, shown_z
    assert next_z[1] > MAX_MEAN_ERROR, next_z
    # The state's position is the bounding box's centre, in the shown array's voxels.
    assert (x, y) == (224 // mag[0], 160 // mag[1])
    if mag == (1, 1, 1):
        (gallery_dir / "neuroglancer.png").write_bytes(png.read_bytes())


def agreement(pixels: np.ndarray, truth_yx: np.ndarray) -> tuple[float, float]:
    """Correlation and mean error (grey levels) between the panel inside the array's outline
    and ``truth_yx``, at the best of a few half-pixel shifts (the outline is 3 pixels wide,
    so its edge is known to about a pixel)."""
    left, right, top, bottom = array_outline(pixels)
    # Panel pixels well inside the outline, in grey (the axis lines are red, green, blue).
    py, px = np.mgrid[top + 4 : bottom - 3, left + 4 : right - 3]
    r, g, b = pixels[..., 0], pixels[..., 1], pixels[..., 2]
    grey = ((r == g) & (g == b))[py, px]
    shown = r[py, px][grey]
    assert shown.size > 20_000 and shown.std() > 20  # a picture, not a flat panel
    ny, nx = truth_yx.shape
    best = (0.0, float("inf"))
    for dx, dy in itertools.product((-0.5, 0.0, 0.5), repeat=2):
        vx = np.clip(((px + 0.5 - left - dx) / (right - left) * nx).astype(int), 0, nx - 1)
        vy = np.clip(((py + 0.5 - top - dy) / (bottom - top) * ny).astype(int), 0, ny - 1)
        expected = truth_yx[vy, vx][grey]
        error = float(np.abs(shown - expected).mean())
        if error < best[1]:
            best = (float(np.corrcoef(shown, expected)[0, 1]), error)
    return best


def array_outline(pixels: np.ndarray) -> tuple[int, int, int, int]:
    """Left, right, top and bottom of neuroglancer's yellow outline of the array's bounds,
    in screenshot pixels (the middle of each line)."""
    r, g, b = pixels[..., 0], pixels[..., 1], pixels[..., 2]
    yellow = (r > 200) & (g > 200) & (b < 80)
    yellow[:60] = False  # the layer bar and its badges
    ys, xs = np.nonzero(yellow)
    assert xs.size > 500, "no outline of the array: neuroglancer did not load the source"
    return int(xs.min()) + 1, int(xs.max()) - 1, int(ys.min()) + 1, int(ys.max()) - 1

"""Driving ImageJ and headless Chromium for the imaging tests, and reading their images.

ImageJ 1.x runs its macro with ``-batch`` on the virtual X display: its File › Import › Raw
needs AWT menus, which a headless JVM refuses. Chromium needs no display: it runs headless
and draws WebGL with SwiftShader (software).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np

from tests.gui.conftest import missing, require_program

IMAGEJ_JAR = Path("/usr/share/java/ij.jar")  # Debian's imagej package
HERE = Path(__file__).parent
# Bounds that only keep a stuck program from hanging the run.
PROGRAM_SECONDS = 300


def run_imagej(macro: Path, argument: str, env: dict[str, str]) -> dict[str, list[str]]:
    """Run an ImageJ macro in batch mode; its ``key=value`` output lines, grouped by key."""
    java = require_program("java")
    require_program("imagej")
    if not IMAGEJ_JAR.exists():
        missing(str(IMAGEJ_JAR))
    result = subprocess.run(
        [java, "-jar", str(IMAGEJ_JAR), "-batch", str(macro), argument],
        env=env,
        capture_output=True,
        text=True,
        timeout=PROGRAM_SECONDS,
        check=False,
    )
    out: dict[str, list[str]] = {}
    for line in result.stdout.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            out.setdefault(key, []).append(value)
    assert result.returncode == 0 and out, f"ImageJ failed: {result.stdout}\n{result.stderr}"
    return out


def png_pixels(python: Path, png: Path) -> np.ndarray:
    """A PNG's pixels as an array (H, W[, channels]), decoded with Pillow in ``python``."""
    npy = png.with_suffix(".npy")
    subprocess.run(
        [
            str(python),
            "-c",
            "import sys, numpy, PIL.Image; "
            "numpy.save(sys.argv[2], numpy.asarray(PIL.Image.open(sys.argv[1])))",
            str(png),
            str(npy),
        ],
        check=True,
        timeout=PROGRAM_SECONDS,
    )
    return np.load(npy)


def neuroglancer_client(python: Path) -> Path:
    """The static client shipped in the ``neuroglancer`` Python package of ``python``."""
    result = subprocess.run(
        [
            str(python),
            "-c",
            "import os, neuroglancer; "
            "print(os.path.join(os.path.dirname(neuroglancer.__file__), 'static', 'client'))",
        ],
        capture_output=True,
        text=True,
        timeout=PROGRAM_SECONDS,
        check=False,
    )
    if result.returncode != 0:
        missing(f"the neuroglancer package in {python}")
    path = Path(result.stdout.strip())
    assert (path / "index.html").is_file(), f"no neuroglancer client in {path}"
    return path


CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--use-angle=swiftshader",
    "--enable-unsafe-swiftshader",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]


def chromium_screenshot(
    url: str, png: Path, profile: Path, size: tuple[int, int], budget_ms: int
) -> None:
    """Open ``url`` in headless Chromium and save a screenshot once the page has had
    ``budget_ms`` of virtual time (which waits for the page's network requests)."""
    chromium = require_program("chromium")
    profile.mkdir(parents=True, exist_ok=False)  # a new, empty profile
    result = subprocess.run(
        [
            chromium,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={profile}",
            f"--window-size={size[0]},{size[1]}",
            f"--virtual-time-budget={budget_ms}",
            f"--screenshot={png}",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=PROGRAM_SECONDS,
        check=False,
    )
    assert result.returncode == 0 and png.exists(), f"Chromium failed: {result.stderr[-4000:]}"

"""Imaging software (napari, ImageJ, Chromium with neuroglancer) opening volumes from a real
mount, drawn into a virtual X display.

The programs run in their own processes: napari from ``.venv-gui`` (made by
``scripts/setup-gui``), ImageJ and Chromium from the system. The tests themselves run in
``.venv`` with the real-mount fixtures of ``tests/support/fixtures.py``. Every test here
carries the ``gui`` marker; ``scripts/test`` leaves this directory out and
``scripts/test-gui`` runs it.

A missing program or display is a failure in CI (``CI=true``) and a skip elsewhere, naming
the command that installs it.
"""

from __future__ import annotations

import os
import select
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.fixtures import (  # noqa: F401  (fixtures of this directory)
    cave_emulator,
    dandi_emulator,
    make_mount,
    wk_api_version,
    wk_emulator,
)
from tests.unavailable import unavailable

REPO = Path(__file__).resolve().parents[2]
GUI_PYTHON = REPO / ".venv-gui" / "bin" / "python"
SETUP = "scripts/setup-gui"
# Generous bounds on start-up: they only keep a broken environment from hanging the run.
XVFB_START_SECONDS = 60


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.gui)


def missing(what: str) -> None:
    """Fail in CI, skip elsewhere, saying how to get ``what``."""
    unavailable(f"{what} is missing: run {SETUP}")


def require_program(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        missing(name)
    assert path is not None
    return path


@pytest.fixture(scope="session")
def xvfb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A virtual X display (1280×1024, 24-bit) for the session; yields its DISPLAY.

    Xvfb picks a free display number itself (``-displayfd``), so parallel runs do not clash.
    """
    exe = require_program("Xvfb")
    log = tmp_path_factory.mktemp("xvfb") / "xvfb.log"
    read_end, write_end = os.pipe()
    with log.open("wb") as err:
        proc = subprocess.Popen(
            [exe, "-displayfd", str(write_end), "-screen", "0", "1280x1024x24", "-nolisten", "tcp"],
            pass_fds=(write_end,),
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    os.close(write_end)
    try:
        number = _read_display_number(read_end, proc, log)
        _wait_for_connections(number, proc)
        yield f":{number}"
    finally:
        os.close(read_end)
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _read_display_number(fd: int, proc: subprocess.Popen[bytes], log: Path) -> int:
    """Xvfb writes its display number to ``fd`` once it is ready for clients."""
    text = b""
    deadline = time.monotonic() + XVFB_START_SECONDS
    while not text.endswith(b"\n"):
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        chunk = os.read(fd, 16) if ready else b""
        if not chunk:
            pytest.fail(f"Xvfb did not start: {log.read_text(errors='replace')}")
        text += chunk
    return int(text)


def _wait_for_connections(number: int, proc: subprocess.Popen[bytes]) -> None:
    path = f"/tmp/.X11-unix/X{number}"
    deadline = time.monotonic() + XVFB_START_SECONDS
    while True:
        with socket.socket(socket.AF_UNIX) as s:
            try:
                s.connect(path)
                return
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"Xvfb on :{number} accepts no connections at {path}")
        time.sleep(0.1)


@pytest.fixture
def gui_env(xvfb: str) -> dict[str, str]:
    """The environment for a program drawing on the virtual display: Qt on X11 (xcb), and
    Mesa's software OpenGL (there is no GPU)."""
    env = {k: v for k, v in os.environ.items() if k not in ("WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    env.update(DISPLAY=xvfb, QT_QPA_PLATFORM="xcb", LIBGL_ALWAYS_SOFTWARE="1")
    return env


@pytest.fixture(scope="session")
def gui_python() -> Path:
    """The interpreter of ``.venv-gui`` (napari, PySide6, napari-ome-zarr, neuroglancer)."""
    if not GUI_PYTHON.exists():
        missing(str(GUI_PYTHON.relative_to(REPO)))
    return GUI_PYTHON


@pytest.fixture
def gallery_dir(tmp_path: Path) -> Path:
    """Where screenshots go: ``$NEUROFS_GALLERY_DIR`` when set (``docs/gallery`` refreshes
    the README's gallery), else the test's temporary directory."""
    target = os.environ.get("NEUROFS_GALLERY_DIR")
    if not target:
        return tmp_path
    path = Path(target)
    if not path.is_absolute():
        path = REPO / path
    path.mkdir(parents=True, exist_ok=True)
    return path

"""Running neurofs the way a machine keeps it mounted: a systemd unit and mount(8)/fstab.

These are real kernel mounts against the emulators, with the fixtures of
``tests/support/fixtures.py``. Tools they need (systemd-analyze, root for /sbin and mount(8))
make them skip when missing, except in CI (CI=true), where that is a failure.
"""

from __future__ import annotations

import shutil

from tests.support.fixtures import dandi_emulator  # noqa: F401  (the fixture of this directory)
from tests.support.mounting import require_fuse  # noqa: F401  (for the tests here)
from tests.unavailable import unavailable


def require(condition: bool, why: str) -> None:
    """Skip without ``condition``; in CI, fail instead."""
    if not condition:
        unavailable(why)


def require_tool(name: str) -> str:
    path = shutil.which(name)
    require(path is not None, f"{name} is not installed")
    assert path is not None
    return path

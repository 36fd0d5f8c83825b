"""Running neurofs the way a machine keeps it mounted: a systemd unit and mount(8)/fstab.

These are real kernel mounts against the emulators, with the fixtures of ``tests/mount``.
Tools they need (systemd-analyze, root for /sbin and mount(8)) make them skip when missing,
except in CI (CI=true), where that is a failure.
"""

from __future__ import annotations

import shutil

from tests.mount.conftest import *  # noqa: F403  (the mount helpers: write_config, ...)

# tests.mount.conftest's __all__ names its helpers only: the fixtures are imported by name.
from tests.mount.conftest import dandi_emulator, require_fuse  # noqa: F401
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

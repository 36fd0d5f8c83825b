"""Real kernel mounts of neurofs against emulators on loopback.

The mount runs as its own process (``neurofs mount``, background mode, exactly as a user
starts it); tests use shell tools and libraries on the mount point. Without /dev/fuse the
tests are skipped, except in CI (CI=true), where that is a failure.

The emulator and mount fixtures are those of ``tests/support/fixtures.py``; the helpers
(``Mount``, ``Emulator`` ...) live in ``tests/support`` and are re-exported here for the
tests that import them from this module.
"""

from __future__ import annotations

import pytest

from neurofs_emulators.dandi.sample import OTHER_TOKEN, OWNER_TOKEN
from neurofs_emulators.webknossos.sample import API_VERSIONS as WK_API_VERSIONS
from tests.support.emulators import CaveEmulator, Emulator, WkEmulator
from tests.support.fixtures import (  # noqa: F401  (fixtures of this directory)
    cave_emulator,
    dandi_emulator,
    make_mount,
    private_dandi_emulator,
    slow_dandi_emulator,
    wk_api_version,
    wk_emulator,
)
from tests.support.mounting import NEUROFS, Mount, require_fuse, write_config

# neurofs speaks WEBKNOSSOS API v12 to v14: the tests of these modules run against an emulator
# announcing each version (other modules get the emulator's default, v12).
WK_VERSIONED_MODULES = ("test_webknossos_mount", "test_webknossos_records")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    module = metafunc.module.__name__.rsplit(".", 1)[-1]
    if module in WK_VERSIONED_MODULES and "wk_emulator" in metafunc.fixturenames:
        metafunc.parametrize(
            "wk_api_version",
            WK_API_VERSIONS,
            indirect=True,
            scope="module",
            ids=[f"wk-v{v}" for v in WK_API_VERSIONS],
        )


__all__ = [
    "NEUROFS",
    "OTHER_TOKEN",
    "OWNER_TOKEN",
    "CaveEmulator",
    "Emulator",
    "Mount",
    "WkEmulator",
    "require_fuse",
    "write_config",
]

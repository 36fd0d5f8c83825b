"""A cluster's workers: ``neurofs://`` (neurofs.fsspec) against the emulators on loopback,
beside real mounts of the same emulators where a test compares the two; Dask's workers
reading through both; mounts sharing a tier (real nginx)."""

from __future__ import annotations

from tests.support.fixtures import (  # noqa: F401  (fixtures of this directory)
    cave_emulator,
    dandi_emulator,
    make_mount,
    wk_api_version,
    wk_emulator,
)

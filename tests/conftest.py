"""What every test gets: the emulators' ground truth."""

from __future__ import annotations

import pytest

from neurofs.emulators.cave.sample import SampleCave
from neurofs.emulators.dandi.sample import SampleArchive
from neurofs.emulators.webknossos.sample import SampleWorld


@pytest.fixture(scope="session")
def sample() -> SampleArchive:
    """The DANDI emulator's sample archive: what it serves (shares its data-dir cache)."""
    return SampleArchive()


@pytest.fixture(scope="session")
def wk_sample() -> SampleWorld:
    """Ground truth of the WEBKNOSSOS emulator's sample data."""
    return SampleWorld()


@pytest.fixture(scope="session")
def cave_sample() -> SampleCave:
    """Ground truth of the CAVE emulator's sample data."""
    return SampleCave()

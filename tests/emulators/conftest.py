"""Fixtures for the emulator tests: real emulator subprocesses on loopback, no mocks."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from neurofs_emulators.cave.sample import SampleCave
from neurofs_emulators.dandi.sample import SampleArchive
from neurofs_emulators.launch import RunningEmulator, start_emulator
from neurofs_emulators.webknossos.sample import SampleWorld


@pytest.fixture(scope="session")
def sample() -> SampleArchive:
    """Ground truth: the same archive the emulator serves (shares its data-dir cache)."""
    return SampleArchive()


@pytest.fixture(scope="session")
def dandi_emulator(sample: SampleArchive) -> Iterator[RunningEmulator]:
    # Depends on `sample` so the first-run data generation happens once, in this process.
    with start_emulator("dandi") as emulator:
        yield emulator


@pytest.fixture
def dandi(dandi_emulator: RunningEmulator) -> Iterator[RunningEmulator]:
    """The shared DANDI emulator with a clean request log and default knobs."""
    dandi_emulator.clear_requests()
    yield dandi_emulator
    dandi_emulator.set_knobs()


@pytest.fixture
def api(dandi: RunningEmulator) -> Iterator[httpx.Client]:
    """An httpx client on the API base URL (redirects not followed)."""
    with httpx.Client(base_url=dandi.api_url + "/", timeout=60) as client:
        yield client


# ---------------------------------------------------------------- WEBKNOSSOS emulator


@pytest.fixture(scope="session")
def wk_sample() -> SampleWorld:
    """Ground truth of the WEBKNOSSOS emulator's sample data."""
    return SampleWorld()


@pytest.fixture(scope="session")
def wk_emulator() -> Iterator[RunningEmulator]:
    with start_emulator("webknossos") as emulator:
        yield emulator


@pytest.fixture
def wk(wk_emulator: RunningEmulator) -> Iterator[RunningEmulator]:
    """The shared WEBKNOSSOS emulator with a clean request log and default knobs."""
    wk_emulator.clear_requests()
    yield wk_emulator
    wk_emulator.set_knobs()


@pytest.fixture
def wk_api(wk: RunningEmulator) -> Iterator[httpx.Client]:
    """An httpx client on the main server's ``/api/v12/``, its default version (no auth
    header by default)."""
    with httpx.Client(base_url=wk.urls[0] + "/api/v12/", timeout=60) as client:
        yield client


@pytest.fixture
def wk_data(wk: RunningEmulator) -> Iterator[httpx.Client]:
    """An httpx client on the datastore's ``/data/v12/``."""
    with httpx.Client(base_url=wk.urls[1] + "/data/v12/", timeout=60) as client:
        yield client


# ---------------------------------------------------------------- CAVE emulator


@pytest.fixture(scope="session")
def cave_sample() -> SampleCave:
    """Ground truth of the CAVE emulator's sample data."""
    return SampleCave()


@pytest.fixture(scope="session")
def cave_emulator() -> Iterator[RunningEmulator]:
    with start_emulator("cave") as emulator:
        yield emulator


@pytest.fixture
def cave(cave_emulator: RunningEmulator) -> Iterator[RunningEmulator]:
    """The shared CAVE emulator (never written to) with a clean request log and default knobs."""
    cave_emulator.clear_requests()
    yield cave_emulator
    cave_emulator.set_knobs()

"""Fixtures for the emulator tests: real emulator subprocesses on loopback, no mocks."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from neurofs.emulators.dandi.sample import SampleArchive
from neurofs.emulators.launch import RunningEmulator, start_emulator


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

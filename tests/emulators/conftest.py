"""Fixtures for the emulator tests: real emulator subprocesses on loopback, no mocks.

The emulators themselves are the fixtures of ``tests/support/fixtures.py`` (the DANDI one for
the session, the WEBKNOSSOS and CAVE ones per module); the ground truths (``sample``,
``wk_sample``, ``cave_sample``) are those of ``tests/conftest.py``."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.support.emulators import CaveEmulator, Emulator, WkEmulator
from tests.support.fixtures import (  # noqa: F401  (fixtures of this directory)
    cave_emulator,
    dandi_emulator,
    wk_api_version,
    wk_emulator,
)


@pytest.fixture
def dandi(dandi_emulator: Emulator) -> Iterator[Emulator]:  # noqa: F811 (the fixture)
    """The shared DANDI emulator with a clean request log and default knobs."""
    dandi_emulator.clear_requests()
    yield dandi_emulator
    dandi_emulator.set_knobs()


@pytest.fixture
def api(dandi: Emulator) -> Iterator[httpx.Client]:
    """An httpx client on the API base URL (redirects not followed)."""
    with httpx.Client(base_url=dandi.api_url + "/", timeout=60) as client:
        yield client


# ---------------------------------------------------------------- WEBKNOSSOS emulator


@pytest.fixture
def wk(wk_emulator: WkEmulator) -> Iterator[WkEmulator]:  # noqa: F811 (the fixture)
    """The module's WEBKNOSSOS emulator with a clean request log and default knobs."""
    wk_emulator.clear_requests()
    yield wk_emulator
    wk_emulator.set_knobs()


@pytest.fixture
def wk_api(wk: Emulator) -> Iterator[httpx.Client]:
    """An httpx client on the main server's ``/api/v12/``, its default version (no auth
    header by default)."""
    with httpx.Client(base_url=wk.urls[0] + "/api/v12/", timeout=60) as client:
        yield client


@pytest.fixture
def wk_data(wk: Emulator) -> Iterator[httpx.Client]:
    """An httpx client on the datastore's ``/data/v12/``."""
    with httpx.Client(base_url=wk.urls[1] + "/data/v12/", timeout=60) as client:
        yield client


# ---------------------------------------------------------------- CAVE emulator


@pytest.fixture
def cave(cave_emulator: CaveEmulator) -> Iterator[CaveEmulator]:  # noqa: F811 (the fixture)
    """The module's CAVE emulator (never written to) with a clean request log and default knobs."""
    cave_emulator.clear_requests()
    yield cave_emulator
    cave_emulator.set_knobs()

"""The emulator and real-mount fixtures, defined once.

A directory's ``conftest.py`` imports the ones its tests use. Each import registers them for
that directory, so every test directory gets its own emulator processes (a session-scoped
emulator is shared within ``tests/mount``, say, but not with ``tests/emulators``), as the
state tests leave in an emulator stays among tests that expect it.

- ``dandi_emulator`` (session), ``slow_dandi_emulator`` (session, 300 ms per response),
  ``private_dandi_emulator`` (one per test module, for tests that change server state);
- ``wk_emulator`` (per module) at ``wk_api_version`` (the emulator's default unless a
  directory parametrizes it), ``cave_emulator`` (per module);
- ``make_mount``: real kernel mounts of an emulator, unmounted after the test.

The conformance tests of the official WEBKNOSSOS and CAVE clients, which write, override
``wk_emulator`` and ``cave_emulator`` with emulators of each test's own.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from neurofs_emulators.cave.sample import DATASTACK as CAVE_DATASTACK
from neurofs_emulators.cave.sample import OWNER_TOKEN as CAVE_OWNER_TOKEN
from neurofs_emulators.dandi.sample import OWNER_TOKEN, SampleArchive
from neurofs_emulators.webknossos.sample import CURRENT_API_VERSION as WK_DEFAULT_API_VERSION
from neurofs_emulators.webknossos.sample import OWNER_TOKEN as WK_OWNER_TOKEN
from tests.support.emulators import (
    CaveEmulator,
    Emulator,
    WkEmulator,
    kind_of,
    started_cave_emulator,
    started_dandi_emulator,
    started_wk_emulator,
)
from tests.support.mounting import Mount, require_fuse, write_config

MakeMount = Callable[..., Mount]


@pytest.fixture(scope="session")
def dandi_emulator(sample: SampleArchive) -> Iterator[Emulator]:
    # Depends on `sample` so the first-run data generation happens once, in this process.
    with started_dandi_emulator() as emulator:
        yield emulator


@pytest.fixture(scope="module")
def private_dandi_emulator(sample: SampleArchive) -> Iterator[Emulator]:
    """An emulator of this test module's own, for tests that change server state."""
    with started_dandi_emulator() as emulator:
        yield emulator


@pytest.fixture(scope="session")
def slow_dandi_emulator(sample: SampleArchive) -> Iterator[Emulator]:
    """Every response waits 300 ms: long enough for concurrent readers to overlap."""
    with started_dandi_emulator(["--latency-ms", "300"]) as emulator:
        yield emulator


@pytest.fixture(scope="module")
def wk_api_version(request: pytest.FixtureRequest) -> int:
    """The API version the module's WEBKNOSSOS emulator announces: the emulator's default,
    or each of the versions where a conftest parametrizes it (indirect, module scope)."""
    version: int = getattr(request, "param", WK_DEFAULT_API_VERSION)
    return version


@pytest.fixture(scope="module")
def wk_emulator(wk_api_version: int) -> Iterator[WkEmulator]:
    with started_wk_emulator(wk_api_version) as emulator:
        yield emulator


@pytest.fixture(scope="module")
def cave_emulator() -> Iterator[CaveEmulator]:
    with started_cave_emulator() as emulator:
        yield emulator


@pytest.fixture
def make_mount(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MakeMount]:
    """make_mount(emulator, token=..., **source_options) → a started Mount."""
    require_fuse()
    mounts: list[Mount] = []

    def factory(
        emulator: Any,
        token: str | None = OWNER_TOKEN,
        start: bool = True,
        cache_dir: Path | None = None,
        fuse_options: list[str] | None = None,
        **options: Any,
    ) -> Mount:
        base = tmp_path_factory.mktemp("mount")
        (base / "mnt").mkdir()
        kind = kind_of(emulator)
        if token == OWNER_TOKEN:  # "the owner" of whichever service this is
            token = {"webknossos": WK_OWNER_TOKEN, "cave": CAVE_OWNER_TOKEN}.get(kind, token)
        if kind == "cave":
            options.setdefault("datastacks", [CAVE_DATASTACK])
        m = Mount(
            base / "mnt",
            write_config(base / "config.toml", emulator.api_url, token, kind, **options),
            cache_dir or base / "cache",
            extra=[a for o in (fuse_options or []) for a in ("-o", o)],
        )
        mounts.append(m)
        if start:
            m.start()
        return m

    yield factory
    for m in mounts:
        with contextlib.suppress(Exception):
            m.stop()

"""The fs layer driven in-process: ``Operations`` over real node trees, its handlers called
as coroutines under trio (pytest-trio), no kernel and no mount. Fast enough to run on every
change, and exact: the tests count the requests a save sends and check every errno.

Two trees: a small in-memory service (``memory_tree``) and the DANDI emulator on loopback.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from neurofs.config import SourceConfig
from neurofs.fs.operations import Operations
from neurofs.io.cache import BlockCache
from neurofs.io.fetcher import Fetcher
from neurofs.io.stats import Stats
from neurofs.sources import Source, build_source
from neurofs.tree.control import ErrorLog, build_root
from neurofs.tree.nodes import Directory
from neurofs.tree.rejected import RejectedStore
from tests.inprocess.kernel import Kernel
from tests.inprocess.memory_tree import RecordsDir, Service

# The emulator fixture of the mount tests (a private emulator per module: saves change it).
from tests.mount.conftest import (
    OWNER_TOKEN,
    Emulator,
    private_dandi_emulator,  # noqa: F401
)

CACHE_BYTES = 64 << 20


@dataclass
class Mounted:
    """An ``Operations`` and what the tests look at besides it."""

    kernel: Kernel
    # Where refused bytes are kept (shown as .neurofs/rejected/).
    rejected: Path

    def kept(self, *path: str) -> list[bytes]:
        """The bytes kept for the file at ``path``, oldest first."""
        directory = self.rejected.joinpath(*path[:-1])
        if not directory.is_dir():
            return []
        found = sorted(
            (p for p in directory.iterdir() if p.name.startswith(path[-1] + ".")),
            key=lambda p: p.name,
        )
        return [p.read_bytes() for p in found]


@dataclass
class MemoryMounted(Mounted):
    service: Service


@dataclass
class DandiMounted(Mounted):
    emulator: Emulator


class _Parts:
    """The stores behind one Operations, closed after the test."""

    def __init__(self, tmp_path: Path) -> None:
        self.errors = ErrorLog()
        self.stats = Stats()
        self.rejected_dir = tmp_path / "rejected"
        self.rejected = RejectedStore(self.rejected_dir, journal=tmp_path / "journal")
        self.cache = BlockCache(tmp_path / "cache", CACHE_BYTES)
        self.fetcher = Fetcher(self.cache, self.stats)

    def operations(self, trees: list[Directory], sources: list[Source]) -> Operations:
        root = build_root(
            trees,
            stats=lambda: {},
            config={},
            errors=self.errors,
            rejected=self.rejected,
        )
        return Operations(
            root,
            self.errors,
            self.rejected,
            allow_delete=False,
            stats=self.stats,
            cache=self.cache,
            sources=sources,
        )

    def close(self) -> None:
        self.rejected.close()
        self.cache.close()


@pytest.fixture
def memory(tmp_path: Path) -> Iterator[MemoryMounted]:
    parts = _Parts(tmp_path)
    service = Service()
    ops = parts.operations([RecordsDir(service)], [])
    yield MemoryMounted(Kernel(ops), parts.rejected_dir, service)
    parts.close()


@pytest.fixture
async def dandi(
    private_dandi_emulator: Emulator,  # noqa: F811
    tmp_path: Path,
) -> AsyncIterator[DandiMounted]:
    emulator = private_dandi_emulator
    emulator.clear_refusals()
    emulator.reset()
    parts = _Parts(tmp_path)
    config = SourceConfig(
        kind="dandi", name="dandi", url=emulator.api_url, token=OWNER_TOKEN, retry_seconds=1
    )
    source = build_source(config, parts.stats, parts.fetcher, None)
    ops = parts.operations([source.root], [source])
    try:
        yield DandiMounted(Kernel(ops), parts.rejected_dir, emulator)
    finally:
        await source.aclose()
        parts.close()

"""``refresh`` reaches the sources of its own mount, and of them only the one owning the path:
each source's API client keeps its own memo, so two mounts (or two sources of one mount) in
one process never drop each other's answers."""

from __future__ import annotations

from typing import Any

import pytest

from neurofs.fs import control_commands as control
from neurofs.fs.control_commands import ControlRunner
from neurofs.fs.inodes import InodeTable
from neurofs.io.http import HttpClient
from neurofs.io.stats import Stats
from neurofs.sources import Source
from neurofs.sources.dandi.api import DandiApi
from neurofs.tree.control import ErrorLog
from neurofs.tree.nodes import Node, NodePath, StaticDirectory


class CountingApi(DandiApi):
    """A DANDI API client whose one route counts its fetches."""

    def __init__(self) -> None:
        super().__init__(HttpClient("t", "http://server.invalid", Stats()), authenticated=False)
        self.fetches = 0

    async def draft(self) -> int:
        async def fetch() -> int:
            self.fetches += 1
            return self.fetches

        return await self.memo.get("draft", fetch)


def source(name: str) -> tuple[Source, CountingApi]:
    api = CountingApi()
    root = StaticDirectory((name,), [])
    return Source(name, root, api.http, api=api), api


async def test_refreshing_one_source_keeps_the_answers_of_another() -> None:
    (a, api_a), (b, api_b) = source("a"), source("b")
    for api in (api_a, api_b):
        assert await api.draft() == 1
    a.refresh(())
    assert await api_a.draft() == 2
    assert await api_b.draft() == 1
    await a.aclose()
    await b.aclose()


@pytest.fixture
def no_kernel(monkeypatch: pytest.MonkeyPatch) -> None:
    """No mount: the kernel has nothing to invalidate."""
    monkeypatch.setattr(control, "_invalidate", lambda notices: None)


async def _mount(names: list[str]) -> tuple[ControlRunner, list[CountingApi]]:
    built = [source(n) for n in names]
    root = StaticDirectory((), [s.root for s, _ in built])

    async def node_at(key: NodePath) -> Node:
        node: Node = root
        for name in key:
            assert isinstance(node, StaticDirectory)
            node = await node.child(name)
        return node

    sources = [s for s, _ in built]
    no_cache: Any = None  # a refresh never touches the block cache
    runner = ControlRunner(InodeTable(root), node_at, ErrorLog(), no_cache, sources)
    for _, api in built:
        assert await api.draft() == 1
    return runner, [api for _, api in built]


async def test_a_refresh_reaches_only_the_source_owning_the_path(no_kernel: None) -> None:
    runner, (dandi, other) = await _mount(["dandi", "other"])
    await runner.run(b"refresh dandi")
    assert (await dandi.draft(), await other.draft()) == (2, 1)
    await runner.run(b"refresh")  # the mount root: every source
    assert (await dandi.draft(), await other.draft()) == (3, 2)


async def test_two_mounts_in_one_process_do_not_refresh_each_other(no_kernel: None) -> None:
    first, (mine,) = await _mount(["dandi"])
    _, (theirs,) = await _mount(["dandi"])  # the same source name, another mount
    await first.run(b"refresh dandi")
    assert (await mine.draft(), await theirs.draft()) == (2, 1)

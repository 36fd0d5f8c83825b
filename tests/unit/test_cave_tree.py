"""The CAVE tree against the CAVE emulator: what the mount knows beyond the server's answers
(tables being created, neuroglancer state ids) outlives the nodes, which every lookup of a
datastack builds anew."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator

import pytest

from neurofs.config import SourceConfig
from neurofs.io.stats import Stats
from neurofs.neuroglancer import ViewerKind
from neurofs.sources import Source
from neurofs.sources.cave import build
from neurofs.sources.cave.api import CaveApi
from neurofs.tree.nodes import Directory
from neurofs_emulators.cave.sample import DATASTACK, OWNER_TOKEN, STATE_ID, VIEWER_PATH
from neurofs_emulators.launch import RunningEmulator, start_emulator


@pytest.fixture(scope="module")
def cave_emulator() -> Iterator[RunningEmulator]:
    with start_emulator("cave") as running:
        yield running


@pytest.fixture
async def source(cave_emulator: RunningEmulator) -> AsyncIterator[Source]:
    config = SourceConfig(
        kind="cave",
        name="cave",
        url=cave_emulator.urls[0],
        token=OWNER_TOKEN,
        datastacks=[DATASTACK],
    )
    built = build(config, Stats(), None, allow_delete=False)
    yield built
    await built.aclose()


async def _dir(parent: Directory, name: str) -> Directory:
    node = await parent.child(name)
    assert isinstance(node, Directory)
    return node


async def _names(directory: Directory) -> list[str]:
    return [node.name for node in await directory.children()]


async def test_a_table_being_created_outlives_a_rebuild(source: Source) -> None:
    first = await _dir(source.root, DATASTACK)
    await (await _dir(first, "tables")).make_directory("pending_tags")

    again = await _dir(source.root, DATASTACK)
    assert again is not first  # a new node, built from nothing but the context
    tables = await _dir(again, "tables")
    assert "pending_tags" in await _names(tables)
    assert await _names(await _dir(tables, "pending_tags")) == ["metadata.json"]


async def test_a_table_removed_before_it_was_made_stays_gone_after_a_rebuild(
    source: Source,
) -> None:
    tables = await _dir(await _dir(source.root, DATASTACK), "tables")
    await tables.make_directory("dropped_tags")
    await tables.remove_directory("dropped_tags")

    again = await _dir(await _dir(source.root, DATASTACK), "tables")
    assert "dropped_tags" not in await _names(again)


async def test_known_state_ids_outlive_a_rebuild(source: Source) -> None:
    states = await _dir(await _dir(source.root, DATASTACK), "states")
    await states.child(f"{STATE_ID}.json")
    receipt = await states.create_from_file("mine.json", json.dumps({"layers": []}).encode())
    created = json.loads(receipt)["created"][0]

    again = await _dir(await _dir(source.root, DATASTACK), "states")
    assert again is not states
    new_id = created.removesuffix(".json")
    assert await _names(again) == [f"{STATE_ID}.json", f"{STATE_ID}.url", created, f"{new_id}.url"]


async def test_a_state_found_by_its_link_is_known(source: Source) -> None:
    states = await _dir(await _dir(source.root, DATASTACK), "states")
    link = await states.child(f"{STATE_ID}.url")
    listed = await link.listed()
    assert listed.provisional  # a listing asks the viewer nothing
    again = await _dir(await _dir(source.root, DATASTACK), "states")
    assert f"{STATE_ID}.json" in await _names(again)


async def test_a_viewer_without_version_json_is_linked_in_the_seunglab_form(
    source: Source, cave_emulator: RunningEmulator
) -> None:
    """A deployment that publishes no version.json (a 404) reads ``?json_url=``, as
    caveclient decides: asked of an origin that has none (the local server)."""
    api = source.api
    assert isinstance(api, CaveApi)
    assert await api.viewer_kind(cave_emulator.urls[1] + "/") is ViewerKind.SEUNGLAB
    assert await api.viewer_kind(cave_emulator.urls[0] + VIEWER_PATH) is ViewerKind.MAINLINE

"""A lookup by name in a huge directory builds one node and scans nothing (counted, not timed).

Directories whose names can be computed (WEBKNOSSOS chunks) answer lookups without listing;
directories listed from an API answer look names up in an index built once per fetch of
that answer; a DANDI zarr is looked up one level at a time, one request per level.
"""

from __future__ import annotations

import bisect
from datetime import UTC, datetime
from typing import Any

import pytest

from neurofs.errors import NotFound
from neurofs.io.memo import Memo, as_fetched
from neurofs.sources.dandi.models import ZarrFile, ZarrPage
from neurofs.sources.dandi.tree import DandiContext, DandiOptions, Entry, ZarrDir
from neurofs.sources.webknossos import tree as wk_tree
from neurofs.sources.webknossos.models import Dataset, Folder
from neurofs.sources.webknossos.records import TasksDir
from neurofs.sources.webknossos.tree import (
    NativeMagDir,
    OmeMagDir,
    WkContext,
    WkOptions,
    dataset_names,
)
from neurofs.sources.webknossos.volume import CHUNK, MagGeometry
from neurofs.tree.nodes import Directory, Node, NodePath

ENTRIES = 100_000


def _dataset(chunks_xyz: tuple[int, int, int]) -> Dataset:
    width, height, depth = (n * CHUNK for n in chunks_xyz)
    return Dataset.model_validate(
        {
            "id": "ds",
            "name": "ds",
            "owningOrganization": "org",
            "dataStore": {"url": "http://ds.invalid"},
            "dataSource": {
                "dataLayers": [
                    {
                        "name": "color",
                        "category": "color",
                        "elementClass": "uint8",
                        "boundingBox": {
                            "topLeft": [0, 0, 0],
                            "width": width,
                            "height": height,
                            "depth": depth,
                        },
                        "mags": [{"mag": [1, 1, 1]}],
                    }
                ]
            },
        }
    )


class CountingNativeMag(NativeMagDir):
    built = 0

    def _chunk(self, x: int, y: int, z: int) -> Any:
        CountingNativeMag.built += 1
        return super()._chunk(x, y, z)


class CountingOmeMag(OmeMagDir):
    built = 0

    def _node(self, index: int) -> Node:
        CountingOmeMag.built += 1
        return super()._node(index)


async def _names(directory: Directory, *names: str) -> list[str | None]:
    """Each name's node name, or None where it is not found."""
    found: list[str | None] = []
    for name in names:
        try:
            found.append((await directory.child(name)).name)
        except NotFound:
            found.append(None)
    return found


async def test_chunk_lookups_in_a_listed_mag_build_only_the_chunk_asked_for():
    dataset = _dataset((100, 100, 10))  # 100,000 chunks: still listed
    g = MagGeometry(dataset.data_source.data_layers[0], (1, 1, 1))
    ctx = WkContext(None, None, WkOptions())  # type: ignore[arg-type]
    mag = CountingNativeMag(("wk", "ds", "color", "1"), ctx, dataset, g)
    assert len(await mag.children()) == ENTRIES + 1  # with .zarray
    CountingNativeMag.built = 0
    names = await _names(mag, ".zarray", "0.99.5.9", "0.100.0.0", "0.01.2.3", "nope", ".zattrs")
    assert names == [".zarray", "0.99.5.9", None, None, None, None]
    assert CountingNativeMag.built == 1


async def test_ome_lookups_in_a_listed_mag_build_only_the_node_asked_for():
    dataset = _dataset((1, 1, 2 * ENTRIES))  # the top level lists 100,000 z indices of 64³
    g = MagGeometry(dataset.data_source.data_layers[0], (1, 1, 1))
    ctx = WkContext(None, None, WkOptions())  # type: ignore[arg-type]
    mag = CountingOmeMag(("wk", "ds", "color.ome.zarr", "1"), ctx, dataset, g, ())
    assert len(await mag.children()) == ENTRIES + 1
    CountingOmeMag.built = 0
    names = await _names(mag, ".zarray", "99999", "100000", "007", "nope")
    assert names == [".zarray", "99999", None, None, None]
    assert CountingOmeMag.built == 1


class TasksApi:
    """What TasksDir asks of the API: the task listing (tasks/list, counted), memoised."""

    def __init__(self, n: int) -> None:
        self.memo = Memo()
        self.requests = 0
        self._tasks = [{"id": f"{i:024x}"} for i in range(n)]

    async def send(self, method: str, path: str, body: Any) -> Any:
        assert (method, path) == ("POST", "tasks/list")
        self.requests += 1
        return self._tasks

    async def tasks_indexed(self, index: Any) -> Any:
        async def fetch() -> Any:
            return await self.send("POST", "tasks/list", {})

        return await self.memo.view(("tasks",), fetch, index)


class CountingTasksDir(TasksDir):
    built = 0

    def _task_file(self, task_id: str, key: NodePath) -> Any:
        CountingTasksDir.built += 1
        return super()._task_file(task_id, key)

    def _annotations_file(self, task_id: str, key: NodePath) -> Any:
        CountingTasksDir.built += 1
        return super()._annotations_file(task_id, key)


async def test_lookups_in_a_listed_directory_read_its_index():
    api = TasksApi(ENTRIES)
    tasks = CountingTasksDir(("wk", "tasks"), api)  # type: ignore[arg-type]
    CountingTasksDir.built = 0
    names = [f"{7:024x}.json", f"{ENTRIES - 1:024x}.annotations.json", "nope.json"]
    for _ in range(3):
        assert await _names(tasks, *names) == [*names[:2], None]
    assert CountingTasksDir.built == 6  # two nodes per round, none for the missing name
    assert api.requests == 1
    assert len(await tasks.children()) == 2 * ENTRIES
    assert api.requests == 1


class ZarrApi:
    """The zarr routes of DandiApi over a fixed key list, as the server answers them: the
    redirect of the zarr's root (to a URL neurofs cannot list, so the API lists) and
    ``files/?prefix=&after=&limit=`` (prefix without its trailing '/'), counted."""

    def __init__(self, keys: list[str]) -> None:
        self.memo = Memo()
        self.pages: list[tuple[str, str, int]] = []
        when = datetime(2024, 1, 1, tzinfo=UTC)
        self._keys = sorted(keys)
        self._files = {
            k: ZarrFile.model_construct(key=k, last_modified=when, etag='"e"', size=1) for k in keys
        }

    async def zarr_file_url(self, zarr_id: str, key: str) -> str:
        return "http://elsewhere.invalid/object?X-Amz-Signature=x"

    async def zarr_files_page(
        self, zarr_id: str, prefix: str, after: str = "", limit: int = 1000
    ) -> ZarrPage:
        self.pages.append((prefix, after, limit))
        bare = prefix.rstrip("/")
        start = bisect.bisect_left(self._keys, bare)
        if after:
            start = max(start, bisect.bisect_right(self._keys, after.rstrip("/")))
        chosen: list[str] = []
        for key in self._keys[start:]:
            if not key.startswith(bare):
                break
            chosen.append(key)
            if len(chosen) > limit:
                break
        more = len(chosen) > limit
        return ZarrPage(
            next="files/?more" if more else None,
            results=[self._files[k] for k in chosen[:limit]],
        )


async def _walk(root: Directory, path: str) -> Node:
    node: Node = root
    for name in path.split("/"):
        assert isinstance(node, Directory)
        node = await node.child(name)
    return node


async def test_zarr_lookups_cost_a_request_per_level_and_never_list():
    keys = [".zgroup", ".zattrs", "0/.zarray", "0/5.x", "0/5/.zarray"]
    keys += [f"0/{a}/{b}/{c}" for a in range(10) for b in range(100) for c in range(100)]
    api = ZarrApi(keys)
    ctx = DandiContext(api, None, DandiOptions())  # type: ignore[arg-type]
    entry = Entry("z.zarr", "z.zarr", False, 0, 0.0, zarr_id="zid")
    root = ZarrDir(("dandi", "z.zarr"), ctx, entry, embargoed=False)
    assert (await _walk(root, "0/9/99/99")).name == "99"
    # One first-key request per level (0, 0/9, 0/9/99, 0/9/99/99), each for one key.
    assert [limit for _, _, limit in api.pages] == [1, 1, 1, 1]
    api.pages.clear()
    # `0/5.x` sorts between the key `0/5` (absent) and the directory `0/5/`: a second request.
    assert isinstance(await _walk(root, "0/5"), Directory)
    assert len(api.pages) == 2
    for path in ("0/.zarray", "0/3/42/7", "0/9/99/0", ".zattrs", "0/5.x"):
        assert (await _walk(root, path)).name == path.rsplit("/", 1)[-1]
    for missing in ("0/10", "0/3/100", "0/3/42/100", "1", "0/.zarray2"):
        with pytest.raises(NotFound):
            await _walk(root, missing)
    assert all(limit == 1 for _, _, limit in api.pages)
    api.pages.clear()
    # A level lists its own entries: 100 files in one page; `0/` skips each sub-directory's
    # keys, one request per sub-directory (the API has no delimiter), never a whole page of
    # deeper keys kept.
    leaf = await _walk(root, "0/2/17")
    api.pages.clear()
    assert isinstance(leaf, Directory) and len(await leaf.children()) == 100
    assert len(api.pages) == 1
    api.pages.clear()
    top = await _walk(root, "0")
    assert isinstance(top, Directory) and api.pages == []
    assert [n.name for n in await top.children()] == [
        ".zarray",
        "0",
        "1",
        "2",
        "3",
        "4",
        "5.x",
        "5",
        "6",
        "7",
        "8",
        "9",
    ]
    assert len(api.pages) == 10 + 1  # ten sub-directories, then the end
    assert [n.name for n in await root.children()] == [".zattrs", ".zgroup", "0"]
    # A lookup in a level that is held costs nothing.
    api.pages.clear()
    assert (await _walk(root, "0/7")).name == "7"
    assert api.pages == []


class FoldersApi:
    """The folder and dataset listings of WebknossosApi over fixed answers."""

    def __init__(self, folders: list[Folder], datasets: list[Dataset]) -> None:
        self.memo = Memo()
        self._folders, self._datasets = folders, datasets

    async def folders_indexed(self, index: Any) -> Any:
        async def fetch() -> list[Folder]:
            return self._folders

        return await self.memo.view(("folders",), fetch, index)

    async def datasets_indexed(self, index: Any) -> Any:
        async def fetch() -> list[Dataset]:
            return self._datasets

        return await self.memo.view(("datasets",), fetch, index)

    async def folders(self) -> list[Folder]:
        folders: list[Folder] = await self.folders_indexed(as_fetched)
        return folders

    async def datasets(self) -> list[Dataset]:
        datasets: list[Dataset] = await self.datasets_indexed(as_fetched)
        return datasets


async def test_a_folder_of_many_datasets_names_each_organization_once(monkeypatch):
    """folders/ used to name every dataset's organization again for each dataset listed."""
    n = 2_000
    folders = [Folder(id="root", name="root"), Folder(id="em", name="EM", parent="root")]
    datasets = [
        Dataset.model_validate(
            {
                "id": f"d{i}",
                "name": f"set{i}",
                "owningOrganization": f"org{i % 2}",
                "dataStore": {"url": "http://ds.invalid"},
                "folderId": "em",
            }
        )
        for i in range(n)
    ]
    calls: list[int] = []

    def counting(members: Any) -> Any:
        calls.append(len(members))
        return dataset_names(members)

    monkeypatch.setattr(wk_tree, "dataset_names", counting)
    ctx = WkContext(FoldersApi(folders, datasets), None, WkOptions())  # type: ignore[arg-type]
    root = wk_tree.FoldersDir(("wk", "folders"), ctx, None)
    em = await root.child("EM")
    assert isinstance(em, Directory)
    for _ in range(3):
        links = await em.children()
        assert len(links) == n
        assert (await em.child("set7")).name == "set7"
    assert sum(calls) == n  # each organization's datasets named once


async def test_a_zarr_key_with_an_unsafe_name_is_found_by_its_shown_name():
    keys = [".zattrs", "0/.zarray", "0/bad\x01name", "0/0"]
    api = ZarrApi(keys)
    ctx = DandiContext(api, None, DandiOptions())  # type: ignore[arg-type]
    entry = Entry("z.zarr", "z.zarr", False, 0, 0.0, zarr_id="zid")
    root = ZarrDir(("dandi", "z.zarr"), ctx, entry, embargoed=False)
    level = await _walk(root, "0")
    assert isinstance(level, Directory)
    shown = sorted(n.name for n in await level.children())
    unsafe = next(n for n in shown if n.startswith("bad"))
    assert unsafe != "bad\x01name"
    # A fresh mount's lookup of the shown name: the direct look-up misses, the level's
    # listing resolves it.
    fresh_api = ZarrApi(keys)
    fresh = ZarrDir(
        ("dandi", "z.zarr"),
        DandiContext(fresh_api, None, DandiOptions()),  # type: ignore[arg-type]
        entry,
        embargoed=False,
    )
    assert (await _walk(fresh, f"0/{unsafe}")).name == unsafe
    with pytest.raises(NotFound):
        await _walk(fresh, "0/bad\ufffdother")

"""The folder index a walk of a huge DANDI version is listed from, and the walk detector."""

from __future__ import annotations

import pytest

from neurofs.sources.dandi import folders
from neurofs.sources.dandi.folders import (
    WALK_FOLDERS,
    WALK_WINDOW_S,
    FolderRows,
    Row,
    WalkDetector,
    common_folder,
)
from neurofs.sources.dandi.models import AssetRow


def asset(path: str, n: int, zarr: bool = False) -> AssetRow:
    return AssetRow(
        asset_id=f"id-{n}",
        blob=None if zarr else f"blob-{n}",
        zarr=f"zarr-{n}" if zarr else None,
        path=path,
        size=n,
    )


PAGES = [
    [asset("a/x.bin", 1), asset("a/y.bin", 2)],
    [asset("a/b/z.bin", 3), asset("top.ome.zarr", 4, zarr=True)],
    [asset("a/x.bin", 5), asset("c:\x01/w.bin", 6)],  # a repeated path; an unsafe name
]


def test_pages_in_any_order_give_one_index() -> None:
    forward, backward = FolderRows(), FolderRows()
    for page in PAGES:
        forward.add(page)
    for page in reversed(PAGES):
        backward.add(page)
    index = forward.index()
    assert set(index) == {"", "a", "a/b", "c:\x01"}
    assert index[""] == {
        "a": Row("a"),
        "top.ome.zarr": Row("top.ome.zarr", 4, "id-4", None, "zarr-4"),
        "c:\ufffd": Row("c:\x01"),
    }
    assert index["a"]["b"].is_folder and not index["a"]["y.bin"].is_folder
    assert index["a/b"] == {"z.bin": Row("a/b/z.bin", 3, "id-3", "blob-3", None)}
    assert index["a"]["x.bin"].asset_id == "id-1"  # the first occurrence wins
    # Pages arrive in any order from parallel requests: only "first" differs.
    assert backward.index()["a"]["x.bin"].asset_id == "id-5"


def test_a_walk_is_distinct_folders_within_the_window(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr(folders.time, "monotonic", lambda: now[0])
    walks = WalkDetector()
    for _ in range(3):
        assert walks.listed("000100", "draft", "") is None  # the same folder again is no walk
    assert all(walks.listed("000100", "draft", f"f{k}") is None for k in range(WALK_FOLDERS - 2))
    assert walks.listed("000100", "0.1.0", "other") is None  # another version counts apart
    assert walks.listed("000100", "draft", "last") == ""  # the walk covers the whole version
    # Folders listed longer ago than the window do not count.
    assert all(walks.listed("000100", "draft", f"g{k}") is None for k in range(WALK_FOLDERS - 1))
    now[0] += WALK_WINDOW_S + 1
    assert walks.listed("000100", "draft", "late") is None


def test_a_walk_covers_the_common_ancestor_of_its_folders() -> None:
    walks = WalkDetector()
    found = [walks.listed("000100", "draft", "sub-42")]
    found += [walks.listed("000100", "draft", f"sub-42/ses-{k}") for k in range(WALK_FOLDERS - 1)]
    assert found == [None] * (WALK_FOLDERS - 1) + ["sub-42"]
    assert common_folder(["a/b/c", "a/b", "a/bc/d"]) == "a"
    assert common_folder(["a/b/c", "a/b/d"]) == "a/b"
    assert common_folder(["x", "y"]) == ""
    assert common_folder(["a/b"]) == "a/b"

"""A dandiset of 100,000 assets (the emulator's ``--sample large``, dandiset 000100) through
a real mount: what ``ls``, ``stat`` and a whole-tree ``find`` cost in requests and memory.

The emulator runs at 0 latency; the bounds are request counts and the daemon's peak RSS
(times are in the bench, scenario 9).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from neurofs.sources.dandi.api import PAGE_SIZE
from neurofs.sources.dandi.folders import WALK_FOLDERS
from neurofs_emulators.dandi.large_dandiset import (
    ASSET_COUNT,
    LARGE_DANDISET,
    LARGE_RELEASE,
    ComputedAssets,
    asset_path,
)
from tests.support.emulators import Emulator, started_dandi_emulator

from .conftest import Mount

pytestmark = pytest.mark.mount

# The official client's get_assets() pages (its default page size is 100).
CLIENT_PAGES = ASSET_COUNT // 100
FLAT_PAGES = -(-ASSET_COUNT // PAGE_SIZE)
RSS_LIMIT = 300 * 1024 * 1024


@pytest.fixture(scope="module")
def large_emulator() -> Iterator[Emulator]:
    with started_dandi_emulator(["--sample", "large"]) as emulator:
        yield emulator


@pytest.fixture(scope="module")
def computed() -> ComputedAssets:
    return ComputedAssets(0)  # the emulator's default seed


def api_requests(emulator: Emulator) -> list[str]:
    """The API requests since the last reset, as ``path?query``."""
    return [
        f"{r['path']}?{r.get('query') or ''}"
        for r in emulator.requests()
        if r["path"].startswith("/api/")
    ]


def peak_rss(mount: Mount) -> int:
    assert mount.pid is not None
    for line in Path(f"/proc/{mount.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


def test_ls_and_stat_cost_constant_requests(make_mount, large_emulator, computed):
    mount = make_mount(large_emulator)
    draft = mount / f"dandi/{LARGE_DANDISET}/draft"
    large_emulator.reset()
    names = os.listdir(draft)
    root_requests = api_requests(large_emulator)
    assert sorted(names) == ["dandiset.yaml", *(f"sub-{s:04d}" for s in range(100))]
    # The dandiset, then one paths/ page of the root; never the asset list.
    assert len(root_requests) <= 3, root_requests
    assert not any("/assets/?" in r for r in root_requests), root_requests

    large_emulator.reset()
    sessions = os.listdir(draft / "sub-0042")
    folder_requests = api_requests(large_emulator)
    assert sorted(sessions) == [f"ses-{t:02d}" for t in range(10)]
    assert len(folder_requests) == 1, folder_requests
    assert "path_prefix=sub-0042" in folder_requests[0]

    # A file two folders below ones never listed: one paths/ request per folder on its way.
    i = 77_345
    large_emulator.reset()
    st = os.stat(draft / asset_path(i))
    stat_requests = api_requests(large_emulator)
    assert st.st_size == computed.size(i)
    assert len(stat_requests) == 2, stat_requests
    assert all("/assets/paths/" in r for r in stat_requests), stat_requests

    # Its bytes: the download redirect (and the asset's blob id), then the object store.
    with open(draft / asset_path(i), "rb") as f:
        data = f.read()
    assert data == computed.blob(i).source.read(0, computed.size(i))

    # A published version looks the same, and a missing name is ENOENT without a listing.
    assert os.stat(mount / f"dandi/{LARGE_DANDISET}/releases/{LARGE_RELEASE}/sub-0000").st_mode
    with pytest.raises(FileNotFoundError):
        os.stat(draft / "sub-0042/ses-99")


def test_find_lists_every_asset_once_within_the_flat_list_pages(make_mount, large_emulator):
    mount = make_mount(large_emulator)
    draft = mount / f"dandi/{LARGE_DANDISET}/draft"
    large_emulator.reset()
    out = subprocess.run(
        ["find", str(draft), "-type", "f", "-printf", "%P %s\n"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    requests = api_requests(large_emulator)
    files = [line.rsplit(" ", 1)[0] for line in out]
    assert len(files) == ASSET_COUNT + 1  # and dandiset.yaml
    assert set(files) == {"dandiset.yaml", *(asset_path(i) for i in range(ASSET_COUNT))}
    # The first folders one paths/ request each, then the flat list's pages once the walk
    # is seen: a tenth of the official client's pages, and never one request per folder.
    assert len(requests) <= FLAT_PAGES + WALK_FOLDERS + 4, len(requests)
    assert len(requests) < CLIENT_PAGES
    flat = [r for r in requests if "/versions/draft/assets/?" in r]
    assert len(flat) == FLAT_PAGES
    assert len({r.split("page=")[1].split("&")[0] for r in flat}) == FLAT_PAGES  # each once
    assert peak_rss(mount) < RSS_LIMIT, peak_rss(mount)

    # The same walk again: every listing is in memory.
    large_emulator.reset()
    again = subprocess.run(
        ["find", str(draft), "-type", "f"], capture_output=True, text=True, check=True
    ).stdout.count("\n")
    assert again == ASSET_COUNT + 1
    assert api_requests(large_emulator) == []


def test_find_in_the_metadata_tree_loads_no_asset_metadata(make_mount, large_emulator, computed):
    """``draft.meta/`` mirrors the draft's folders; each file's YAML costs a request of its own,
    so a listing shows the files without loading them, and reading one loads that one only."""
    mount = make_mount(large_emulator)
    folder = mount / f"dandi/{LARGE_DANDISET}/draft.meta/sub-0042"
    large_emulator.reset()
    found = subprocess.run(
        ["find", str(folder), "-type", "f"], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    requests = api_requests(large_emulator)
    assert len(found) == 1_000  # 10 sessions of 100 assets
    # The folders on the way and the first ones walked, one paths/ request each, then one page
    # of the flat list under sub-0042/ (the walked folder, not the version); no metadata.
    assert len(requests) <= 12, "\n".join(requests)
    assert not any("metadata=true" in r for r in requests), requests
    flat = [r for r in requests if "/versions/draft/assets/?" in r]
    assert len(flat) == 1 and "path=sub-0042%2F" in flat[0], flat

    i = next(i for i in range(ASSET_COUNT) if asset_path(i).startswith("sub-0042/"))
    large_emulator.reset()
    text = (folder.parent / asset_path(i)).read_text()
    requests = api_requests(large_emulator)
    assert f"path: {asset_path(i)}" in text
    assert len(requests) == 1 and "metadata=true" in requests[0], requests

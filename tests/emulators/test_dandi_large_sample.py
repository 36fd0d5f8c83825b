"""The DANDI emulator's scale sample (``--sample large``): dandiset 000100, 100,000 assets
computed on demand, over real HTTP with the real routes' pagination and filters.

Ground truth is :class:`ComputedAssets` with the emulator's seed (0), which the emulator
itself uses; the checks are that the routes agree with it and with each other (a folder's
aggregates are the sums of its assets, pages cover the list once), as the real server's are.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from neurofs.io.digests import dandi_etag
from neurofs_emulators.dandi.large_dandiset import (
    ASSET_COUNT,
    LARGE_DANDISET,
    LARGE_RELEASE,
    ComputedAssets,
    asset_path,
)
from neurofs_emulators.dandi.models import AssetItem
from neurofs_emulators.launch import start_emulator

VERSION = f"dandisets/{LARGE_DANDISET}/versions/draft/"


@pytest.fixture(scope="module")
def api() -> Iterator[httpx.Client]:
    with (
        start_emulator("dandi", ["--sample", "large"]) as running,
        httpx.Client(base_url=running.api_url + "/", timeout=60) as client,
    ):
        yield client


@pytest.fixture(scope="module")
def truth() -> ComputedAssets:
    return ComputedAssets(0)


def test_nothing_is_built_at_start() -> None:
    with start_emulator("dandi", ["--sample", "large"]) as running:
        status = Path(f"/proc/{running.process.pid}/status").read_text()
    rss_kb = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM"))
    # 100,000 stored asset objects would take hundreds of MB; computed, the process stays
    # the size of the demo emulator (about 80 MB).
    assert rss_kb < 150 * 1024, rss_kb


def test_versions_count_and_size(api: httpx.Client, truth: ComputedAssets) -> None:
    d = api.get(f"dandisets/{LARGE_DANDISET}/").json()
    for v in (d["draft_version"], d["most_recent_published_version"]):
        assert v["asset_count"] == ASSET_COUNT
        assert v["size"] == truth.total_size
    assert d["most_recent_published_version"]["version"] == LARGE_RELEASE
    summary = api.get(VERSION).json()["assetsSummary"]
    assert summary["numberOfFiles"] == ASSET_COUNT
    assert summary["numberOfBytes"] == truth.total_size
    listed = api.get("dandisets/", params={"page_size": 1000}).json()["results"]
    assert LARGE_DANDISET in [x["identifier"] for x in listed]


def test_asset_pages_cover_the_list_once_in_path_order(api: httpx.Client) -> None:
    first = api.get(VERSION + "assets/", params={"order": "path", "page_size": 1000}).json()
    assert first["count"] == ASSET_COUNT
    assert len(first["results"]) == 1000  # the cap, also when more is asked
    capped = api.get(VERSION + "assets/", params={"page_size": 5000, "page": 100}).json()
    assert capped["count"] is None and capped["next"] is None  # lazy pagination: last page
    assert [a["path"] for a in capped["results"]] == [asset_path(i) for i in range(99_000, 100_000)]
    # LazyPagination has no last page: past the end is an empty one.
    beyond = api.get(VERSION + "assets/", params={"page_size": 1000, "page": 101}).json()
    assert beyond["results"] == [] and beyond["next"] is None
    desc = api.get(VERSION + "assets/", params={"order": "-path", "page_size": 3}).json()
    assert [a["path"] for a in desc["results"]] == [asset_path(i) for i in (99_999, 99_998, 99_997)]


def test_path_and_glob_filters(api: httpx.Client, truth: ComputedAssets) -> None:
    exact = api.get(VERSION + "assets/", params={"path": asset_path(4242)}).json()
    assert [a["path"] for a in exact["results"]] == [asset_path(4242)]
    assert exact["results"][0]["size"] == truth.size(4242)
    # A prefix matches case-insensitively, and not only at folder boundaries.
    prefix = api.get(VERSION + "assets/", params={"path": "SUB-0042/ses-0", "page_size": 1000})
    assert prefix.json()["count"] == 1000
    run_01 = "sub-0042/ses-03/sub-0042_ses-03_run-01"
    partial = api.get(VERSION + "assets/", params={"path": run_01})
    assert [a["path"] for a in partial.json()["results"]] == [
        asset_path(42_000 + 300 + r) for r in range(10, 20)
    ]
    assert api.get(VERSION + "assets/", params={"path": "sub-9"}).json()["count"] == 0
    glob = api.get(VERSION + "assets/", params={"glob": "*run-007.bin", "page_size": 1000})
    assert glob.json()["count"] == 1000
    assert api.get(VERSION + "assets/", params={"zarr": "true"}).json()["count"] == 0


def test_paths_levels_and_aggregates(api: httpx.Client, truth: ComputedAssets) -> None:
    root = api.get(VERSION + "assets/paths/").json()
    assert root["count"] == 100
    assert sum(x["aggregate_files"] for x in root["results"]) == ASSET_COUNT
    assert sum(x["aggregate_size"] for x in root["results"]) == truth.total_size
    sessions = api.get(VERSION + "assets/paths/", params={"path_prefix": "sub-0007/"}).json()
    assert [x["path"] for x in sessions["results"]] == [f"sub-0007/ses-{t:02d}" for t in range(10)]
    files = api.get(VERSION + "assets/paths/", params={"path_prefix": "sub-0007/ses-02"}).json()
    assert files["count"] == 100
    first = files["results"][0]
    assert first["path"] == asset_path(7_200)
    assert first["aggregate_size"] == truth.size(7_200)
    assert first["asset"]["asset_id"] == truth.asset_id(7_200)
    assert sum(x["aggregate_size"] for x in files["results"]) == truth.range_size(7_200, 7_300)
    assert sessions["results"][2]["aggregate_size"] == truth.range_size(7_200, 7_300)
    missing = api.get(VERSION + "assets/paths/", params={"path_prefix": "sub-0007/ses-10"})
    assert missing.status_code == 404


def test_asset_by_id_metadata_and_bytes(api: httpx.Client, truth: ComputedAssets) -> None:
    i = 54_321
    asset_id = truth.asset_id(i)
    info = api.get(f"assets/{asset_id}/info/").json()
    assert info["path"] == asset_path(i) and info["size"] == truth.size(i)
    metadata = api.get(VERSION + f"assets/{asset_id}/").json()
    assert metadata["contentSize"] == truth.size(i)
    redirect = api.get(f"assets/{asset_id}/download/")
    assert redirect.status_code == 302
    data = httpx.get(redirect.headers["location"], timeout=60).content
    assert len(data) == truth.size(i)
    assert metadata["digest"]["dandi:sha2-256"] == hashlib.sha256(data).hexdigest()
    assert metadata["digest"]["dandi:dandi-etag"] == dandi_etag(data)
    past_the_end = f"{asset_id[:-12]}{ASSET_COUNT:012x}"
    assert api.get(f"assets/{past_the_end}/info/").status_code == 404


def test_list_items_are_what_the_serializer_writes(
    api: httpx.Client, truth: ComputedAssets
) -> None:
    # Pages without metadata are written straight from the index; with metadata, through
    # the asset serializer: both show an asset alike.
    plain = api.get(VERSION + "assets/", params={"path": "sub-0099/ses-09/", "page_size": 5})
    rich = api.get(
        VERSION + "assets/", params={"path": "sub-0099/ses-09/", "page_size": 5, "metadata": "1"}
    )
    for a, b in zip(plain.json()["results"], rich.json()["results"], strict=True):
        assert a == {k: v for k, v in b.items() if k != "metadata"}
        assert b["metadata"]["path"] == a["path"]
    last = truth.asset(99_904)  # run 004, the page's last
    assert last.blob is not None
    one = AssetItem(
        asset_id=last.asset_id,
        blob=last.blob.blob_id,
        zarr=None,
        path=last.path,
        size=last.size,
        created=last.created,
        modified=last.modified,
    )
    assert plain.json()["results"][-1] == one.dump()

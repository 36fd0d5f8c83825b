"""The 1,000,003-key zarr of the scale sample through a real mount: every operation costs a
small, fixed number of requests (counted in the emulator's log), never a listing of the
zarr, and the daemon's peak memory stays under 300 MB.

Each test mounts afresh (empty caches), so the counts are those of a cold first access."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from neurofs_emulators.dandi import large_zarr
from neurofs_emulators.dandi.sample import SCALE_ZARR_DANDISET, SCALE_ZARR_PATH
from tests.support.emulators import Emulator, started_dandi_emulator
from tests.support.mounting import Mount

RSS_LIMIT = 300 * 1024 * 1024


@pytest.fixture(scope="module")
def big() -> Iterator[Emulator]:
    with started_dandi_emulator(["--sample", "large"]) as emulator:
        yield emulator


@pytest.fixture
def zarr_root(big: Emulator, make_mount: Any) -> Iterator[tuple[Mount, Path]]:
    mount = make_mount(big)
    root = mount / f"dandi/{SCALE_ZARR_DANDISET}/draft/{SCALE_ZARR_PATH}"
    assert root.is_dir()  # reaching the zarr's directory lists nothing of the zarr
    big.reset()
    yield mount, root
    assert peak_rss(mount) < RSS_LIMIT


def zarr_requests(emulator: Emulator) -> list[dict[str, Any]]:
    """The requests about the zarr: the object store's and the API's zarr routes."""
    return [r for r in emulator.requests() if r["path"].startswith(("/dandiarchive", "/api/zarr/"))]


def kinds(requests: list[dict[str, Any]]) -> list[str]:
    """Each request as `redirect`, `list` (one level), `first` (a lookup), or `get`."""
    out = []
    for r in requests:
        query = r.get("query") or ""
        if "download=true" in query:
            out.append("redirect")
        elif "list-type=2" in query:
            out.append("list" if "delimiter" in query else "first")
        elif r["path"].startswith("/api/zarr/"):
            out.append("api")
        else:
            out.append(r["method"].lower())
    return out


def peak_rss(mount: Mount) -> int:
    assert mount.pid is not None
    for line in Path(f"/proc/{mount.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


def test_ls_of_the_root_and_of_a_level_is_one_listing_each(
    big: Emulator, zarr_root: tuple[Mount, Path]
) -> None:
    _, root = zarr_root
    assert sorted(os.listdir(root)) == [".zattrs", ".zgroup", "0"]
    # Where the keys are public (one redirect, once per zarr), then one level listed.
    assert kinds(zarr_requests(big)) == ["redirect", "list"]
    big.reset()
    names = os.listdir(root / "0")
    assert len(names) == 101 and ".zarray" in names and "99" in names
    # `0` was found in the root's listing, which the mount holds: only the level's listing.
    assert kinds(zarr_requests(big)) == ["list"]
    big.reset()
    assert len(os.listdir(root / "0/42/17")) == 100
    assert kinds(zarr_requests(big)) == ["first", "list"]  # 42 was in the listing of 0/


def test_cat_zattrs_costs_three_requests(big: Emulator, zarr_root: tuple[Mount, Path]) -> None:
    _, root = zarr_root
    attrs = (root / ".zattrs").read_text()
    assert '"multiscales"' in attrs
    assert kinds(zarr_requests(big)) == ["redirect", "first", "get"]


def test_stat_and_read_of_a_deep_chunk_cost_one_request_per_level(
    big: Emulator, zarr_root: tuple[Mount, Path]
) -> None:
    _, root = zarr_root
    chunk = root / "0/57/3/99"
    assert chunk.stat().st_size == 512
    # One lookup per level (0, 57, 3, 99), after the one redirect of the zarr.
    assert kinds(zarr_requests(big)) == ["redirect", "first", "first", "first", "first"]
    big.reset()
    expected = large_zarr.expected(slice(456, 464), slice(24, 32), slice(792, 800))
    assert chunk.read_bytes() == expected.tobytes()
    assert kinds(zarr_requests(big)) == ["get"]


def test_zarr_python_opens_the_store_and_reads_a_region_in_few_requests(
    big: Emulator, zarr_root: tuple[Mount, Path]
) -> None:
    import zarr

    mount, root = zarr_root
    group = zarr.open_group(str(root), mode="r")
    array = group["0"]
    assert array.shape == (800, 800, 800)
    region = (slice(400, 416), slice(600, 608), slice(96, 104))  # two chunks deep inside
    np.testing.assert_array_equal(array[region], large_zarr.expected(*region))
    cold = kinds(zarr_requests(big))
    assert cold.count("list") == 0  # nothing listed: lookups only
    assert cold.count("get") == 2 + 3  # the two chunks, .zgroup, .zattrs, 0/.zarray
    assert cold.count("redirect") == 1
    assert len(cold) <= 20, cold
    # Warm: the same region again from the same mount costs no request at all.
    big.reset()
    np.testing.assert_array_equal(array[region], large_zarr.expected(*region))
    assert zarr_requests(big) == []
    assert peak_rss(mount) < RSS_LIMIT


def test_a_bucket_that_refuses_to_list_is_listed_through_the_api(
    big: Emulator, zarr_root: tuple[Mount, Path]
) -> None:
    """Without S3 listings, a level is paged through ``files/?prefix=&after=``, skipping each
    sub-directory's keys: one request per sub-directory, none for what lies deeper."""
    _, root = zarr_root
    denied = "<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>"
    big.refuse("GET", "/dandiarchive/", 403, denied)
    try:
        assert sorted(os.listdir(root)) == [".zattrs", ".zgroup", "0"]
    finally:
        big.clear_refusals()
    # The refused listing, then the API: one page, then past the sub-directory `0/`.
    assert kinds(zarr_requests(big)) == ["redirect", "list", "api", "api"]
    big.reset()
    assert len(os.listdir(root / "0")) == 101
    assert kinds(zarr_requests(big)) == ["api"] * (100 + 1)
    big.reset()
    chunk = root / "0/3/2/1"
    expected = large_zarr.expected(slice(24, 32), slice(16, 24), slice(8, 16))
    assert chunk.read_bytes() == expected.tobytes()
    # Lookups through the API (2 and 1; 3 is in the held listing of 0/), the bytes from
    # the public object.
    assert kinds(zarr_requests(big)) == ["api", "api", "get"]

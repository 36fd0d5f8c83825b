"""``neurofs verify`` and ``prefetch --verify`` through a real mount.

The emulator's object store can serve chosen objects damaged (``PUT /__emulator__/corrupt``):
verify must name what is wrong, drop those bytes from the mount's cache and fail; once the
store is healed, the next verify fetches them again and passes. Costs are counted in the
emulator's request log.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from neurofs.io.digests import DANDI_ETAG, MD5, SHA2_256, ZARR_CHECKSUM
from neurofs_emulators.dandi.sample import BIG_BLOB_PATH, LARGE_ZARR_PATH, NWB_PATH, SampleArchive

from .conftest import NEUROFS, Emulator, Mount

pytestmark = pytest.mark.mount

SMALL = "dandi/000004/draft/README.txt"
ZARR = f"dandi/000003/draft/{LARGE_ZARR_PATH}"
BAD_KEY = "0/0.0.1"


@pytest.fixture
def emulator(private_dandi_emulator: Emulator) -> Iterator[Emulator]:
    yield private_dandi_emulator
    corrupt(private_dandi_emulator, [])


@pytest.fixture
def mount(make_mount, emulator: Emulator) -> Mount:
    m = make_mount(emulator)
    emulator.reset()
    return m


def corrupt(emulator: Emulator, objects: list[str]) -> None:
    httpx.put(
        f"{emulator.running.origin}/__emulator__/corrupt", json={"objects": objects}
    ).raise_for_status()


def neurofs(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*NEUROFS, *map(str, args)], capture_output=True, text=True, timeout=600, check=False
    )


def digest(path: Path) -> dict[str, str]:
    return json.loads(os.getxattr(path, "user.dandi.digest"))


def ranged_bytes(emulator: Emulator, suffix: str) -> int:
    """Bytes the object store was asked for, for objects whose path ends in ``suffix``."""
    total = 0
    for r in emulator.requests():
        if r["path"].startswith("/dandiarchive/") and r["path"].endswith(suffix):
            first, last = re.fullmatch(r"bytes=(\d+)-(\d+)", r["range"]).groups()
            total += int(last) - int(first) + 1
    return total


def test_digests_are_extended_attributes(mount: Mount, sample: SampleArchive) -> None:
    blob = sample.asset_by_path("000004", "README.txt").blob
    assert blob is not None
    assert digest(mount / SMALL) == {DANDI_ETAG: blob.etag, SHA2_256: blob.sha256}
    zarr = sample.asset_by_path("000003", LARGE_ZARR_PATH).zarr
    assert zarr is not None
    assert digest(mount / ZARR) == {ZARR_CHECKSUM: zarr.checksum}
    assert digest(mount / ZARR / BAD_KEY) == {MD5: zarr.files[BAD_KEY].md5}
    assert os.listxattr(mount / SMALL) == ["user.dandi.digest"]
    assert os.listxattr(mount / "dandi/000004/draft/dandiset.yaml") == []


def test_a_clean_tree_verifies_reading_each_byte_once(
    mount: Mount, emulator: Emulator, sample: SampleArchive
) -> None:
    nwb = mount / "dandi/000001/draft" / NWB_PATH
    result = neurofs("verify", nwb, mount / ZARR, mount / "dandi/000004/draft")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    nwb_blob = sample.asset_by_path("000001", NWB_PATH).blob
    zarr = sample.asset_by_path("000003", LARGE_ZARR_PATH)
    assert nwb_blob is not None and zarr.zarr is not None
    assert f"ok {nwb}: {DANDI_ETAG} {nwb_blob.etag}" in lines
    assert f"ok {mount / ZARR}: {ZARR_CHECKSUM} {zarr.zarr.checksum}" in lines
    assert sum(line.startswith("ok ") for line in lines) == 4  # nwb, zarr, two small blobs
    assert "verified 4 ok, 0 failed, 1 without a digest" in result.stderr  # dandiset.yaml
    # Each blob once, each zarr key once; one listing per zarr directory, one metadata answer each.
    assert ranged_bytes(emulator, nwb_blob.blob_id) == nwb_blob.size
    # The zarr is listed one directory at a time by the object store, each directory once.
    levels = {"", *(k.rsplit("/", 1)[0] for k in zarr.zarr.files if "/" in k)}
    listings = [r for r in emulator.requests() if "list-type=2" in r["query"]]
    assert len(listings) == len(levels), listings
    assert not any(
        r["path"] == f"/api/zarr/{zarr.zarr.zarr_id}/files/"
        for r in emulator.requests()
        if "download" not in r["query"]
    )
    paths = [r["path"] for r in emulator.requests()]
    assert paths.count(f"/api/assets/{zarr.asset_id}/") == 1
    key_bytes = sum(ranged_bytes(emulator, f"{zarr.zarr.zarr_id}/{key}") for key in zarr.zarr.files)
    assert key_bytes == zarr.size


def test_a_corrupt_blob_is_named_dropped_and_refetched_once_healed(
    mount: Mount, emulator: Emulator, sample: SampleArchive
) -> None:
    asset = sample.asset_by_path("000004", "README.txt")
    assert asset.blob is not None
    truth = sample.asset_bytes(asset)
    corrupt(emulator, [asset.blob.s3_key])
    bad = neurofs("verify", mount / SMALL)
    assert bad.returncode == 1, bad.stdout + bad.stderr
    lines = bad.stdout.splitlines()
    assert any(
        line.startswith(f"MISMATCH {mount / SMALL}: {DANDI_ETAG} expected {asset.blob.etag}, got ")
        and line.endswith("its cached bytes were dropped")
        for line in lines
    ), lines
    assert any(line.startswith(f"MISMATCH {mount / SMALL}: {SHA2_256} ") for line in lines)
    corrupt(emulator, [])
    emulator.reset()
    good = neurofs("verify", mount / SMALL)
    assert good.returncode == 0, good.stdout + good.stderr
    assert good.stdout == f"ok {mount / SMALL}: {DANDI_ETAG} {asset.blob.etag}\n"
    assert ranged_bytes(emulator, asset.blob.blob_id) == asset.size  # fetched again
    assert (mount / SMALL).read_bytes() == truth


def test_a_corrupt_zarr_key_is_named_and_only_it_is_refetched(
    mount: Mount, emulator: Emulator, sample: SampleArchive
) -> None:
    zarr = sample.asset_by_path("000003", LARGE_ZARR_PATH).zarr
    assert zarr is not None
    corrupt(emulator, [f"zarr/{zarr.zarr_id}/{BAD_KEY}"])
    bad = neurofs("verify", mount / ZARR)
    assert bad.returncode == 1, bad.stdout + bad.stderr
    lines = bad.stdout.splitlines()
    key = mount / ZARR / BAD_KEY
    assert any(
        line.startswith(f"MISMATCH {key}: {MD5} expected {zarr.files[BAD_KEY].md5} ")
        for line in lines
    ), lines
    assert any(
        line.startswith(f"MISMATCH {mount / ZARR}: {ZARR_CHECKSUM} expected {zarr.checksum}")
        for line in lines
    ), lines
    corrupt(emulator, [])
    emulator.reset()
    good = neurofs("verify", mount / ZARR)
    assert good.returncode == 0, good.stdout + good.stderr
    # Only the dropped key came from the store again; the others were still cached.
    fetched = {
        r["path"].rsplit(f"{zarr.zarr_id}/", 1)[1]
        for r in emulator.requests()
        if r["path"].startswith(f"/dandiarchive/zarr/{zarr.zarr_id}/")
    }
    assert fetched == {BAD_KEY}
    assert key.read_bytes() == zarr.files[BAD_KEY].source.read(0, zarr.files[BAD_KEY].size)


def test_prefetch_verify_fills_the_cache_then_checks_it(
    mount: Mount, emulator: Emulator, sample: SampleArchive
) -> None:
    asset = sample.asset_by_path("000004", "README.txt")
    assert asset.blob is not None
    corrupt(emulator, [asset.blob.s3_key])
    bad = neurofs("prefetch", "--verify", mount / "dandi/000004/draft")
    assert bad.returncode == 1
    assert f"MISMATCH {mount / SMALL}: {DANDI_ETAG}" in bad.stdout
    corrupt(emulator, [])
    good = neurofs("prefetch", "--verify", mount / "dandi/000004/draft")
    assert good.returncode == 0, good.stdout + good.stderr
    assert "prefetched" in good.stderr and "verified 2 ok, 0 failed" in good.stderr


def test_verify_outside_a_mount_is_a_usage_error(tmp_path: Path) -> None:
    result = neurofs("verify", tmp_path)
    assert result.returncode == 2 and "not inside a neurofs mount" in result.stderr


def test_ctrl_c_stops_a_verify_without_judging_or_dropping(
    make_mount, slow_dandi_emulator: Emulator
) -> None:
    m = make_mount(slow_dandi_emulator)
    big = m / "dandi/000001/draft" / BIG_BLOB_PATH
    proc = subprocess.Popen(
        [*NEUROFS, "verify", str(big), "--jobs", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while m.stats()["bytes_fetched"] < 8 * 2**20 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert proc.poll() is None, "the verify ended before it could be interrupted"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert out == ""  # a partial read is neither ok nor a mismatch
    summary = err.strip().splitlines()[-1]
    assert re.fullmatch(r"interrupted: [\d.]+ MiB of 1\.0 GiB in 0/1 files, .*", summary)
    assert m.stats()["cache"]["stored_bytes"] >= 4 * 2**20  # what was fetched stays cached

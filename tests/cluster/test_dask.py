"""Dask for real: a ``LocalCluster`` of three worker processes map-reduces a zarr region,
(a) through three mounts with caches of their own (three nodes) sharing one tier (real
nginx), (b) through ``neurofs://`` with the same tier. The sums equal the ground truth (the
emulator's own zarr files, read locally), and the origin's request log shows each zarr key
fetched from it once, whichever worker read it, however often."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pytest
import zarr
from distributed import Client, LocalCluster, get_worker

from neurofs_emulators.dandi.sample import LARGE_ZARR_PATH, OWNER_TOKEN, SampleArchive
from tests.support.emulators import Emulator
from tests.support.mounting import Mount, write_sources
from tests.support.tier import RunningTier, started_tier

ZARR = f"dandi/000003/draft/{LARGE_ZARR_PATH}"
SLAB = 16  # the zarr's chunk depth: a task reads whole chunks


@pytest.fixture(scope="module")
def cluster() -> Iterator[Client]:
    with (
        LocalCluster(
            n_workers=3, threads_per_worker=2, processes=True, dashboard_address=None
        ) as local,
        Client(local) as client,
    ):
        yield client


@pytest.fixture
def tier(dandi_emulator: Emulator, tmp_path: Path) -> Iterator[RunningTier]:
    origins = [f"http://{urlsplit(u).netloc}" for u in dandi_emulator.running.urls]
    with started_tier(origins, tmp_path / "tier") as running:
        yield running


@pytest.fixture(scope="module")
def truth(sample: SampleArchive, tmp_path_factory: pytest.TempPathFactory) -> np.ndarray:
    """Level 0 of the zarr, from the emulator's own files written to a local directory."""
    files = sample.asset_by_path("000003", LARGE_ZARR_PATH).zarr
    assert files is not None
    local = tmp_path_factory.mktemp("zarr-truth")
    for key in files.files:
        f = files.files[key]
        (local / key).parent.mkdir(parents=True, exist_ok=True)
        (local / key).write_bytes(f.source.read(0, f.size))
    return np.asarray(zarr.open(str(local / "0"), mode="r")[:])


def _zarr_keys_fetched(emulator: Emulator) -> list[str]:
    """Object store requests for the zarr's keys (path and byte range)."""
    return [
        f"{r['path']} {r['range']}"
        for r in emulator.data_requests()
        if "/zarr/" in r["path"] and r["path"].startswith("/dandiarchive/")
    ]


def _slab_sum_on_mount(mounts: list[str], z: int, shift: int) -> int:
    """On the worker: the sum of one z slab, read with zarr-python on the mount of this
    worker's "node" (its number, shifted so that each pass reads through other mounts)."""
    node = (int(get_worker().name) + shift) % len(mounts)
    array = zarr.open(f"{mounts[node]}/{ZARR}/0", mode="r")
    return int(array[z * SLAB : (z + 1) * SLAB].astype(np.int64).sum())


def _slab_sum_fsspec(options: dict[str, str], z: int) -> int:
    array = zarr.open(f"neurofs://{ZARR}/0", mode="r", storage_options=options)
    return int(array[z * SLAB : (z + 1) * SLAB].astype(np.int64).sum())


def test_three_mounts_sharing_a_tier(
    cluster: Client,
    make_mount: Any,
    dandi_emulator: Emulator,
    tier: RunningTier,
    truth: np.ndarray,
) -> None:
    mounts: list[Mount] = []
    for _ in range(3):
        m: Mount = make_mount(dandi_emulator, start=False)
        m.env["NEUROFS_TIER"] = tier.url
        m.start()
        mounts.append(m)
    paths = [str(m.path) for m in mounts]
    slabs = range(truth.shape[0] // SLAB)
    dandi_emulator.reset()
    for shift in range(3):  # every slab read through every mount, on every worker
        futures = [cluster.submit(_slab_sum_on_mount, paths, z, shift, pure=False) for z in slabs]
        assert sum(cluster.gather(futures)) == int(truth.astype(np.int64).sum())
    fetched = _zarr_keys_fetched(dandi_emulator)
    assert len(fetched) >= len(slabs) * 16  # 4 × 4 chunks per slab, at least
    assert len(fetched) == len(set(fetched)), "a zarr key came from the origin twice"
    hits = [m.stats().get("tier_hits", 0) for m in mounts]
    assert sum(h > 0 for h in hits) >= 2, hits
    for m in mounts:
        m.stop()


def test_workers_reading_neurofs_urls_share_the_tier(
    cluster: Client, dandi_emulator: Emulator, tier: RunningTier, truth: np.ndarray, tmp_path: Path
) -> None:
    config = write_sources(
        tmp_path / "worker.toml",
        [{"kind": "dandi", "name": "dandi", "url": dandi_emulator.api_url, "token": OWNER_TOKEN}],
    )
    cache = tmp_path / "worker-cache"
    config.write_text(f'[cache]\ndir = "{cache}"\ntier = "{tier.url}"\n' + config.read_text())
    options = {"config": str(config)}
    slabs = range(truth.shape[0] // SLAB)
    dandi_emulator.reset()
    for _ in range(2):
        futures = [cluster.submit(_slab_sum_fsspec, options, z, pure=False) for z in slabs]
        assert sum(cluster.gather(futures)) == int(truth.astype(np.int64).sum())
    fetched = _zarr_keys_fetched(dandi_emulator)
    assert len(fetched) >= len(slabs) * 16
    assert len(fetched) == len(set(fetched)), "a zarr key came from the origin twice"
    # each worker process took a cache directory of its own beside the configured one
    used = {p.name for p in tmp_path.iterdir() if p.name.startswith("worker-cache")}
    assert 1 <= len(used) <= 3 and used <= {
        "worker-cache",
        "worker-cache-worker1",
        "worker-cache-worker2",
    }

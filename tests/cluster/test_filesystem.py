"""``neurofs://``: the mount's paths and bytes through fsspec, without FUSE, and the
libraries that read it (zarr-python, h5py, pandas)."""

from __future__ import annotations

import errno
import json
import os
import pickle
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import fsspec
import h5py
import numpy as np
import pandas as pd
import pytest
import zarr

from neurofs.fsspec import NeurofsFileSystem
from neurofs_emulators.cave.sample import DATASTACK, SampleCave
from neurofs_emulators.cave.sample import OWNER_TOKEN as CAVE_TOKEN
from neurofs_emulators.dandi.archive import GeneratedSource
from neurofs_emulators.dandi.sample import (
    BIG_BLOB_KEY,
    BIG_BLOB_PATH,
    BIG_BLOB_SIZE,
    LARGE_ZARR_PATH,
    NWB_PATH,
    OWNER_TOKEN,
    PUBLISHED_DANDISET,
)
from neurofs_emulators.webknossos.sample import OWNER_TOKEN as WK_TOKEN
from tests.support.emulators import CaveEmulator, Emulator, WkEmulator
from tests.support.mounting import Mount, write_config

DRAFT = f"dandi/{PUBLISHED_DANDISET}/draft"
BLOB = f"{DRAFT}/{BIG_BLOB_PATH}"
ZARR = f"dandi/000003/draft/{LARGE_ZARR_PATH}"
LAYER = "webknossos/datasets/neurofs_lab/l4_demo/color.ome.zarr"
TRUTH = GeneratedSource(BIG_BLOB_KEY, BIG_BLOB_SIZE)
MIB = 1 << 20


def _options(
    tmp_path: Path, emulator: Any, token: str, kind: str = "dandi", **extra: Any
) -> dict[str, str]:
    config = write_config(tmp_path / f"{kind}.toml", emulator.api_url, token, kind, **extra)
    return {"config": str(config), "cache_dir": str(tmp_path / f"{kind}-cache")}


@pytest.fixture
def dandi_fs(tmp_path: Path, dandi_emulator: Emulator) -> NeurofsFileSystem:
    fs = fsspec.filesystem("neurofs", **_options(tmp_path, dandi_emulator, OWNER_TOKEN))
    assert isinstance(fs, NeurofsFileSystem)
    return fs


def _walk_names(fs: NeurofsFileSystem, path: str) -> set[str]:
    return {name.removeprefix(path + "/") for name in fs.find(path, withdirs=True)}


def test_the_paths_and_sizes_are_the_mounts(
    dandi_fs: NeurofsFileSystem, make_mount: Any, dandi_emulator: Emulator
) -> None:
    m: Mount = make_mount(dandi_emulator)
    assert set(dandi_fs.ls("", detail=False)) == {"dandi"}
    assert sorted(dandi_fs.ls("dandi", detail=False)) == sorted(
        f"dandi/{n}" for n in os.listdir(m / "dandi")
    )
    for path in (DRAFT, f"{DRAFT}/sub-01", ZARR, f"{ZARR}/0"):
        listed = {e["name"].rsplit("/", 1)[1]: e for e in dandi_fs.ls(path)}
        assert set(listed) == set(os.listdir(m / path)), path
        for name, entry in listed.items():
            st = os.stat(m / path / name)
            assert entry["type"] == ("directory" if os.path.isdir(m / path / name) else "file")
            if entry["type"] == "file":
                assert entry["size"] == st.st_size, name
    # latest is a symlink on the mount, followed here as `ls -L` would
    latest = dandi_fs.info(f"dandi/{PUBLISHED_DANDISET}/latest")
    assert latest["type"] == "directory"
    assert dandi_fs.ls(f"dandi/{PUBLISHED_DANDISET}/latest", detail=False)
    assert dandi_fs.cat_file(f"{DRAFT}/dandiset.yaml") == (m / DRAFT / "dandiset.yaml").read_bytes()
    with pytest.raises(FileNotFoundError):
        dandi_fs.info(f"{DRAFT}/no-such-file")
    assert "neurofs://" not in dandi_fs.info(f"neurofs://{BLOB}")["name"]


def test_random_reads_cost_what_a_mounts_reads_cost(
    dandi_fs: NeurofsFileSystem, dandi_emulator: Emulator
) -> None:
    """cat_ranges of 30 random 4 KiB pieces: the right bytes, in about one request each (the
    mount's fragments), and none at all the second time (the block cache)."""
    rng = np.random.default_rng(5)
    starts = [int(s) for s in rng.integers(0, BIG_BLOB_SIZE - 4096, 30)]
    dandi_emulator.reset()
    got = dandi_fs.cat_ranges([BLOB] * 30, starts, [s + 4096 for s in starts], on_error="raise")
    assert got == [TRUTH.read(s, s + 4096) for s in starts]
    ranged = [r for r in dandi_emulator.data_requests() if r["range"]]
    assert 30 <= len(ranged) <= 32
    dandi_emulator.reset()
    assert dandi_fs.cat_ranges([BLOB] * 30, starts, [s + 4096 for s in starts]) == got
    assert [r for r in dandi_emulator.data_requests() if r["range"]] == []
    assert dandi_fs.cat_file(BLOB, -10) == TRUTH.read(BIG_BLOB_SIZE - 10, BIG_BLOB_SIZE)


def test_a_stream_through_open_gets_the_mounts_read_ahead(
    dandi_fs: NeurofsFileSystem, dandi_emulator: Emulator
) -> None:
    dandi_emulator.reset()
    with dandi_fs.open(BLOB) as f:
        f.seek(100 * MIB)
        data = b"".join(f.read(MIB) for _ in range(24))
    assert data == TRUTH.read(100 * MIB, 124 * MIB)
    ranged = [r for r in dandi_emulator.data_requests() if r["range"]]
    assert len(ranged) < 24  # blocks fetched ahead in runs, not one request per read


def test_zarr_python_and_h5py_read_it(
    dandi_fs: NeurofsFileSystem, tmp_path: Path, make_mount: Any, dandi_emulator: Emulator
) -> None:
    m: Mount = make_mount(dandi_emulator)
    options = {
        "config": dandi_fs.storage_options["config"],
        "cache_dir": dandi_fs.storage_options["cache_dir"],
    }
    through_fsspec = zarr.open(f"neurofs://{ZARR}/0", mode="r", storage_options=options)
    on_mount = zarr.open(str(m / ZARR / "0"), mode="r")
    assert through_fsspec.shape == on_mount.shape
    np.testing.assert_array_equal(through_fsspec[:, 64:192, :100], on_mount[:, 64:192, :100])
    with (
        h5py.File(dandi_fs.open(f"{DRAFT}/{NWB_PATH}"), "r") as f,
        h5py.File(m / DRAFT / NWB_PATH, "r") as g,
    ):
        assert sorted(f.keys()) == sorted(g.keys())
        name = next(k for k in f["acquisition"])
        np.testing.assert_array_equal(
            f["acquisition"][name]["data"][:100], g["acquisition"][name]["data"][:100]
        )


def test_webknossos_volumes_read_as_on_the_mount(
    tmp_path: Path, wk_emulator: WkEmulator, make_mount: Any
) -> None:
    options = _options(tmp_path, wk_emulator, WK_TOKEN, "webknossos")
    m: Mount = make_mount(wk_emulator)
    through_fsspec = zarr.open(f"neurofs://{LAYER}/1", mode="r", storage_options=options)
    on_mount = zarr.open(str(m / LAYER / "1"), mode="r")
    region = (slice(0, 60), slice(40, 200), slice(70, 300))
    np.testing.assert_array_equal(through_fsspec[region], on_mount[region])
    assert through_fsspec[region].any()


def test_pandas_reads_a_cave_table(tmp_path: Path, cave_emulator: CaveEmulator) -> None:
    options = _options(tmp_path, cave_emulator, CAVE_TOKEN, "cave", datastacks=[DATASTACK])
    frame = pd.read_csv(
        f"neurofs://cave/{DATASTACK}/tables/synapse/annotations.csv", storage_options=options
    )
    expected = SampleCave().rows("synapse", valid_only=True)
    assert list(frame["id"]) == [r["id"] for r in expected]


def test_it_is_read_only(dandi_fs: NeurofsFileSystem) -> None:
    for attempt in (
        lambda: dandi_fs.open(f"{DRAFT}/dandiset.yaml", "wb"),
        lambda: dandi_fs.rm(f"{DRAFT}/dandiset.yaml"),
        lambda: dandi_fs.mkdir(f"{DRAFT}/new"),
        lambda: dandi_fs.pipe_file(f"{DRAFT}/x.txt", b"x"),
    ):
        with pytest.raises(OSError) as raised:
            attempt()
        assert raised.value.errno == errno.EROFS and "through a mount" in str(raised.value)


def test_it_pickles_for_dask_workers(dandi_fs: NeurofsFileSystem) -> None:
    again = pickle.loads(pickle.dumps(dandi_fs))
    assert again.cat_file(BLOB, 0, 100) == TRUTH.read(0, 100)


def _blob_ranges(emulator: Emulator) -> list[str]:
    return [r["range"] for r in emulator.data_requests() if r["range"]]


def test_a_mount_and_workers_share_one_cache_directory(
    tmp_path: Path, make_mount: Any, dandi_emulator: Emulator
) -> None:
    """The mount and the neurofs:// workers of one machine use one cache directory at once:
    bytes that one of them fetched cost the others no request, whatever grain they were
    stored in (a stream's blocks, a random read's fragments)."""
    m: Mount = make_mount(dandi_emulator)
    options = {"config": str(m.config), "cache_dir": str(m.cache_dir)}
    workers = [NeurofsFileSystem(**options, skip_instance_cache=True) for _ in range(2)]
    assert workers[0].session is workers[1].session  # one per configuration and process
    worker = workers[0]
    assert worker.session.cache_dir == m.cache_dir
    with (m / BLOB).open("rb") as f:  # a stream: whole blocks, and read-ahead beyond them
        assert f.read(3 * MIB) == TRUTH.read(0, 3 * MIB)
    deadline = time.monotonic() + 60
    while m.stats()["cache"]["stored_blocks"] < 3 and time.monotonic() < deadline:
        time.sleep(0.05)  # the mount writes blocks to disk just after serving them
    dandi_emulator.reset()
    assert worker.cat_file(BLOB, MIB + 5, 3 * MIB) == TRUTH.read(MIB + 5, 3 * MIB)
    with worker.open(BLOB, "rb", block_size=0) as f:  # small random reads
        f.seek(2 * MIB + 100)
        assert f.read(4000) == TRUTH.read(2 * MIB + 100, 2 * MIB + 4100)
    assert _blob_ranges(dandi_emulator) == []

    far = 60 * MIB
    with worker.open(BLOB, "rb", block_size=0) as f:
        f.seek(far + 1000)
        assert f.read(5000) == TRUTH.read(far + 1000, far + 6000)
    assert worker.cat_file(BLOB, far + 2 * MIB, far + 4 * MIB) == TRUTH.read(
        far + 2 * MIB, far + 4 * MIB
    )
    worker.session.close()  # the worker is done: its last blocks are on disk
    dandi_emulator.reset()
    with (m / BLOB).open("rb", buffering=0) as f:
        f.seek(far + 1000)
        assert f.read(5000) == TRUTH.read(far + 1000, far + 6000)
        f.seek(far + 2 * MIB)
        assert f.read(2 * MIB) == TRUTH.read(far + 2 * MIB, far + 4 * MIB)
    asked = _blob_ranges(dandi_emulator)
    # The mount's own read-ahead may go beyond; nothing it read was fetched again.
    starts = [int(r.removeprefix("bytes=").split("-")[0]) for r in asked]
    assert all(s >= far + 4 * MIB for s in starts), asked


def test_workers_need_no_fuse(tmp_path: Path, dandi_emulator: Emulator) -> None:
    """A process that cannot import pyfuse3 (no libfuse, no /dev/fuse) reads through it."""
    options = _options(tmp_path, dandi_emulator, OWNER_TOKEN)
    script = (
        "import sys, json\n"
        "sys.modules['pyfuse3'] = None  # any import of it fails\n"
        "import fsspec\n"
        f"fs = fsspec.filesystem('neurofs', **json.loads({json.dumps(json.dumps(options))}))\n"
        f"sys.stdout.buffer.write(fs.cat_file({BLOB!r}, 1000, 1100))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, check=True, timeout=120
    )
    assert out.stdout == TRUTH.read(1000, 1100)


def test_its_options_win_over_the_file_and_the_environment(
    tmp_path: Path, dandi_emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As `neurofs mount --cache-dir` does: an option given to the filesystem is over the
    configuration file and NEUROFS_TIER."""
    monkeypatch.setenv("NEUROFS_TIER", "http://127.0.0.1:9")
    options = _options(tmp_path, dandi_emulator, OWNER_TOKEN)
    fs = NeurofsFileSystem(**options, tier="", cache_size="1GiB", skip_instance_cache=True)
    assert fs.session.config.cache.tier is None
    assert fs.session.config.cache.size == 1 << 30
    assert fs.session.cache_dir == Path(options["cache_dir"])
    other = {**options, "cache_dir": str(tmp_path / "other-cache")}
    from_environment = NeurofsFileSystem(**other, skip_instance_cache=True)
    assert from_environment.session.config.cache.tier == "http://127.0.0.1:9"

"""A WEBKNOSSOS layer of 40,000 × 40,000 × 10,000 voxels (the emulator's ``--sample large``)
through a real mount: what each operation costs in datastore requests, bytes and daemon
memory does not depend on the layer's size.

One mount serves the module's tests in order, so the last test's peak RSS covers them all.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import numpy as np
import pytest

from neurofs.io.readahead import SWEEP_AHEAD
from neurofs.sources.webknossos.volume import BOX_MAX_SIDE
from neurofs_emulators.launch import start_emulator
from neurofs_emulators.webknossos.sample import ORGANIZATION, OWNER_TOKEN, SampleWorld
from tests.support.emulators import WkEmulator
from tests.support.mounting import require_fuse, write_config

from .conftest import Mount

pytestmark = pytest.mark.mount

WORLD = SampleWorld("large")
DATASET = "large_volume"
LAYER = WORLD.layer(DATASET, "color")
MiB = 1024 * 1024
# The daemon's peak resident memory through everything below.
MAX_RSS_BYTES = 300 * 1000 * 1000
CHUNK_KEY = re.compile(r"/zarr/[^/]+/color/[^/]+/\d+\.\d+\.\d+\.\d+$")


@pytest.fixture(scope="module")
def large_emulator() -> Iterator[WkEmulator]:
    with start_emulator("webknossos", ["--sample", "large"]) as running:
        yield WkEmulator(running)


@pytest.fixture(scope="module")
def mount(large_emulator: WkEmulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mount]:
    require_fuse()
    base = tmp_path_factory.mktemp("scale-mount")
    (base / "mnt").mkdir()
    config = write_config(base / "config.toml", large_emulator.api_url, OWNER_TOKEN, "webknossos")
    m = Mount(base / "mnt", config, base / "cache")
    m.start()
    try:
        yield m
    finally:
        m.stop()


@pytest.fixture
def emulator(large_emulator: WkEmulator, mount: Mount) -> WkEmulator:
    """The emulator, its request log emptied once the dataset's directory is known (so each
    test counts its own requests, the dataset listing aside)."""
    os.stat(layer_dir(mount))
    large_emulator.reset()
    return large_emulator


def layer_dir(mount: Mount, view: str = "color") -> Path:
    return mount / f"webknossos/datasets/{ORGANIZATION}/{DATASET}/{view}"


def chunk_requests(emulator: WkEmulator) -> list[dict[str, Any]]:
    return [r for r in emulator.requests() if CHUNK_KEY.search(r["path"])]


def box_requests(emulator: WkEmulator) -> list[dict[str, Any]]:
    return [r for r in emulator.requests() if r["path"].endswith("/layers/color/data")]


def box_sides(request: dict[str, Any]) -> tuple[int, int, int]:
    query = parse_qs(request["query"])
    return (int(query["width"][0]), int(query["height"][0]), int(query["depth"][0]))


def checked_box_voxels(emulator: WkEmulator) -> int:
    """The voxels of every box neurofs asked the datastore for, each of them checked to be
    within its limit of 512 voxels a side (a larger box gets no bytes, see
    ``volume.BOX_MAX_SIDE``), and served."""
    total = 0
    for request in box_requests(emulator):
        w, h, d = box_sides(request)
        assert max(w, h, d) <= BOX_MAX_SIDE, request["query"]
        assert request["status"] == 200
        total += w * h * d
    return total


def data_requests(emulator: WkEmulator) -> list[dict[str, Any]]:
    return chunk_requests(emulator) + box_requests(emulator)


def bytes_fetched(mount: Mount) -> int:
    fetched: int = mount.stats()["bytes_fetched"]
    return fetched


def test_a_deep_chunk_costs_one_request_to_stat_and_read(mount: Mount, emulator: WkEmulator):
    native = layer_dir(mount) / "1" / "0.1000.1100.250"
    ome = layer_dir(mount, "color.ome.zarr") / "1" / "150" / "600" / "550"  # 64³: z, y, x
    assert native.stat().st_size == 32**3 and ome.stat().st_size == 64**3
    assert data_requests(emulator) == []
    expected = WORLD.chunk(DATASET, "color", (1, 1, 1), 1000, 1100, 250)
    assert native.read_bytes() == expected.tobytes(order="F")
    assert len(data_requests(emulator)) == 1
    x, y, z = 550 * 64, 600 * 64, 150 * 64
    expected = WORLD.voxels(DATASET, "color", (1, 1, 1), x, y, z, x + 64, y + 64, z + 64)
    assert ome.read_bytes() == expected[0].transpose(2, 1, 0).tobytes()
    assert len(data_requests(emulator)) == 2  # its eight served chunks in one box
    with pytest.raises(FileNotFoundError):
        (layer_dir(mount) / "1" / "0.1250.0.0").stat()  # past the grid's edge


def test_a_mag_directory_and_one_level_below_list_without_requests(
    mount: Mount, emulator: WkEmulator
):
    mag = layer_dir(mount, "color.ome.zarr") / "1"
    z_levels = os.listdir(mag)
    assert len(z_levels) == 1 + 10_000 // 64 + 1  # .zarray and 157 z chunk indices (64³)
    assert sorted(os.listdir(mag / "100"), key=int)[-1] == str(40_000 // 64 - 1)
    assert len(os.listdir(mag / "100" / "600")) == 40_000 // 64
    # The native view of a mag this size lists only its .zarray (its chunks are read by name);
    # the coarsest mag lists every chunk.
    assert os.listdir(layer_dir(mount) / "1") == [".zarray"]
    assert len(os.listdir(layer_dir(mount) / "64")) == 1 + 20 * 20 * 5
    native32 = sorted(os.listdir(layer_dir(mount) / "32"))  # made page by page as listed
    assert len(native32) == 1 + 40 * 40 * 10 and native32[-1] == "0.9.9.9"
    assert data_requests(emulator) == []
    assert len(emulator.requests()) <= 2  # the mag's directory listings cost nothing remote


def read_direct(path: Path, offset: int, size: int) -> bytes:
    """Exactly these bytes, with O_DIRECT: no read-ahead, the kernel's or the daemon's."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
    try:
        return os.pread(fd, size, offset)
    finally:
        os.close(fd)


def first_rows(mag: int, nbytes: int) -> bytes:
    """The first ``nbytes`` of the layer's plain volume at ``mag`` (rows of its first plane)."""
    width = 40_000 // mag
    rows = WORLD.voxels(DATASET, "color", (mag, mag, mag), 0, 0, 0, width, nbytes // width + 1, 1)
    return rows[0, :, :, 0].T.tobytes()[:nbytes]


def test_one_mib_of_a_big_plain_volume_costs_about_one_mib(mount: Mount, emulator: WkEmulator):
    """Plain volumes of big mags are read as boxes of the datastore's raw route, each at most
    512 voxels a side (the datastore answers a larger one with no bytes): a band of rows
    2,500 voxels wide is five boxes, and the bytes fetched are exactly their voxels."""
    raw = layer_dir(mount) / "16.raw"
    assert raw.stat().st_size == 2500 * 2500 * 625  # 3.9 GB
    row, plane = 2500, 2500 * 2500

    # head -c 1MiB through the page cache: the kernel reads ahead of head (up to 4 MiB of
    # the file from its start, with the mount's 2 MiB window), and each MiB it asks for is
    # one band of rows: five boxes.
    before = bytes_fetched(mount)
    head = subprocess.run(["head", "-c", str(MiB), str(raw)], capture_output=True, check=True)
    assert head.stdout == first_rows(16, MiB)
    assert chunk_requests(emulator) == []
    assert 5 <= len(box_requests(emulator)) <= 4 * 5
    fetched = bytes_fetched(mount) - before
    assert checked_box_voxels(emulator) == fetched <= 4 * (MiB + 2 * row)

    # Exactly 1 MiB (no read-ahead, O_DIRECT) of 32.raw: 839 rows of 1,250 voxels, two bands
    # of rows (512 and 327) by three boxes across (512, 512, 226); about 1 MiB.
    emulator.reset()
    before = bytes_fetched(mount)
    assert read_direct(layer_dir(mount) / "32.raw", 0, MiB) == first_rows(32, MiB)
    assert chunk_requests(emulator) == []
    assert sorted(box_sides(r) for r in box_requests(emulator)) == sorted(
        (w, h, 1) for w in (512, 512, 226) for h in (512, 327)
    )
    fetched = bytes_fetched(mount) - before
    assert checked_box_voxels(emulator) == fetched
    assert MiB <= fetched <= MiB + 2 * 1250

    # 1 MiB across a z plane's end, deep in the file: its two blocks (the kernel sends the
    # read in pieces, so each block is a request), the one across the plane's end as rows
    # in each plane; five boxes per band of rows.
    emulator.reset()
    before = bytes_fetched(mount)
    offset = 400 * plane - MiB // 2
    z = offset // plane
    box = WORLD.voxels(DATASET, "color", (16, 16, 16), 0, 0, z, 2500, 2500, z + 2)[0]
    data = read_direct(raw, offset, MiB)
    assert data == box.transpose(2, 1, 0).tobytes()[offset % plane :][:MiB]
    assert chunk_requests(emulator) == []
    assert 2 * 5 <= len(box_requests(emulator)) <= 3 * 5
    fetched = bytes_fetched(mount) - before
    assert checked_box_voxels(emulator) == fetched <= 2 * MiB + 4 * row


def region_chunks(x0: int, y0: int, z0: int, side: int) -> set[tuple[int, int, int]]:
    """The mag-1 chunks (x, y, z) of a chunk-aligned cube of ``side`` voxels at (x0, y0, z0)."""
    return {
        (x // 32, y // 32, z // 32)
        for x in range(x0, x0 + side, 32)
        for y in range(y0, y0 + side, 32)
        for z in range(z0, z0 + side, 32)
    }


def test_zarr_reads_a_deep_region_of_the_ome_view_in_one_request_per_chunk(
    mount: Mount, emulator: WkEmulator
):
    """The OME-Zarr view's chunks are 64³, each its eight served chunks in one box: a region
    costs one request per chunk zarr reads, and nothing past the region."""
    import zarr

    array = zarr.open_array(str(layer_dir(mount, "color.ome.zarr") / "1"), mode="r")
    assert array.shape == (10_000, 40_000, 40_000) and array.chunks == (64, 64, 64)
    z0, y0, x0 = 5_120, 20_480, 30_720  # chunk-aligned, deep inside
    side = 256
    region = array[z0 : z0 + side, y0 : y0 + side, x0 : x0 + side]
    expected = WORLD.voxels(
        DATASET, "color", (1, 1, 1), x0, y0, z0, x0 + side, y0 + side, z0 + side
    )[0].transpose(2, 1, 0)
    np.testing.assert_array_equal(region, expected)
    inside = region_chunks(x0, y0, z0, side)
    sent = emulator.served_chunks("color")
    assert sorted(sent) == sorted(inside)  # each served chunk of the region once, no more
    assert chunk_requests(emulator) == []
    assert len(box_requests(emulator)) == (side // 64) ** 3  # one per chunk read


def test_zarr_reads_a_deep_region_of_the_native_view_with_fewer_requests_than_chunks(
    mount: Mount, emulator: WkEmulator
):
    """The native view keeps the served 32³ chunks; read-ahead fetches the lines of chunks
    a reader walks to next as one box each."""
    import zarr

    array = zarr.open_array(str(layer_dir(mount) / "1"), mode="r")
    assert array.shape == (1, 40_000, 40_000, 10_000)
    x0, y0, z0 = 10_240, 10_240, 2_560  # chunk-aligned, deep inside, away from the other
    side = 256
    region = array[0, x0 : x0 + side, y0 : y0 + side, z0 : z0 + side]
    expected = WORLD.voxels(
        DATASET, "color", (1, 1, 1), x0, y0, z0, x0 + side, y0 + side, z0 + side
    )[0]
    np.testing.assert_array_equal(region, expected)
    inside = region_chunks(x0, y0, z0, side)
    sent = emulator.served_chunks("color")
    assert len(sent) == len(set(sent))  # none twice, by either route
    # Every chunk of the region; past it, the first row's end (two chunks, before the
    # reader's extent is known) and SWEEP_AHEAD lines of 8 chunks along each axis the reader
    # sweeps (the rows of its first plane, then its planes): a constant, whatever the region.
    assert inside <= set(sent)
    assert len(set(sent) - inside) <= 2 + 2 * SWEEP_AHEAD * 8
    # Inside the walked span, read-ahead fetches the lines of chunks the reader goes to next
    # as one box each: far fewer requests than chunks (512 before; about 160 measured).
    requests = len(chunk_requests(emulator)) + len(box_requests(emulator))
    assert requests <= len(inside) // 2


def test_the_daemon_stays_small(mount: Mount):
    assert mount.pid is not None
    status = Path(f"/proc/{mount.pid}/status").read_text()
    peak = int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) * 1024  # type: ignore[union-attr]
    assert peak < MAX_RSS_BYTES

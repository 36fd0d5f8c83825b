"""Read sizes through a real mount: the kernel sends large read requests (the mount's read-ahead
window is raised to 1 MiB), and an HDF5 file's metadata comes in whole blocks at open."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from neurofs.fs.kernel_readahead import READ_AHEAD_KIB
from neurofs_emulators.dandi.sample import NWB_PATH, PUBLISHED_DANDISET
from tests.mount.conftest import Emulator
from tests.support.emulators import round_trips_in_a_row


def _read_ahead_kb(mountpoint: Path) -> int:
    dev = os.stat(mountpoint).st_dev
    bdi = Path(f"/sys/class/bdi/{os.major(dev)}:{os.minor(dev)}/read_ahead_kb")
    return int(bdi.read_text())


def test_sequential_reads_arrive_in_one_mib_requests(make_mount, dandi_emulator: Emulator):
    m = make_mount(dandi_emulator)
    assert _read_ahead_kb(m.path) == READ_AHEAD_KIB
    path = m / f"dandi/{PUBLISHED_DANDISET}/draft/{NWB_PATH}"
    size = path.stat().st_size
    before = m.stats().get("fuse_reads", 0)
    subprocess.run(["cp", str(path), "/dev/null"], check=True)
    reads = m.stats()["fuse_reads"] - before
    # cp asks for 128 KiB at a time; with the kernel's default window FUSE would see reads
    # of 256 KiB (four per MiB). With the raised window each request is about 1 MiB.
    assert reads <= size // (1024 * 1024) + 4, reads


def test_opening_an_hdf5_file_reads_its_metadata_in_whole_blocks(
    make_mount, slow_dandi_emulator: Emulator
):
    """h5py walking the sample NWB file's metadata through a fresh mount (300 ms a request):
    after the 64 KiB fragment of the superblock, each place it jumps to comes as its whole
    block, with the blocks near it beside it, one request each, never twice; at most
    HDF5_METADATA_BLOCKS + METADATA_GUESSES of them. The walk waits for three round trips
    one after another (the superblock; its first metadata block and the guesses beside it;
    one block further away), where one request per block it jumps to made six."""
    import h5py

    from neurofs.io.fetcher import HDF5_METADATA_BLOCKS
    from neurofs.io.readahead import METADATA_GUESSES

    emulator = slow_dandi_emulator
    m = make_mount(emulator)
    path = m / f"dandi/{PUBLISHED_DANDISET}/draft/{NWB_PATH}"
    path.stat()
    emulator.clear_requests()
    names: list[str] = []
    with h5py.File(path, "r") as f:
        f.visit(names.append)
    assert len(names) > 50
    records = [r for r in emulator.requests() if r.get("range")]
    spans = [tuple(int(v) for v in r["range"].split("=")[1].split("-")) for r in records]
    mib = 1024 * 1024
    assert spans[0] == (0, 64 * 1024 - 1)  # the superblock's fragment
    metadata = spans[1:]
    assert metadata, spans
    assert all(s % mib == 0 and e + 1 - s == mib for s, e in metadata), spans
    assert len(set(metadata)) == len(metadata) <= HDF5_METADATA_BLOCKS + METADATA_GUESSES
    trips = round_trips_in_a_row(records)
    assert trips <= 3, spans

"""The kernel sends large read requests: the mount's read-ahead window is raised to 1 MiB."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from neurofs.fs.kernel_readahead import READ_AHEAD_KIB
from neurofs_emulators.dandi.sample import NWB_PATH, PUBLISHED_DANDISET
from tests.mount.conftest import Emulator


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

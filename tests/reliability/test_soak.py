"""64 concurrent readers through one real mount for a bounded soak.

Readers work on identical files (overlapping ranges of the 1 GiB blob and of the NWB file)
and on different files (their own zarr chunks and small assets). Every read is compared
with the emulator's sample data. The daemon's open file descriptors and resident memory are
sampled throughout: after warm-up neither may keep growing.
"""

from __future__ import annotations

import random
import statistics
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.mount.conftest import Emulator, Mount

from .conftest import Figures, bounded
from .groundtruth import (
    MIB,
    Target,
    big_blob,
    daemon_pid,
    nwb_file,
    open_fds,
    random_range,
    read_range,
    rss_bytes,
    small_blobs,
    zarr_files,
)

pytestmark = pytest.mark.mount

READERS = 64
# Readers of the blob stay in its first 256 MiB, so ranges overlap and are read again
# (from the daemon's caches) while the soak also keeps fetching.
BLOB_SPAN = 256 * MIB
# After the readers stop, the daemon may keep this many more descriptors than at its busiest
# in the second third (pooled keep-alive connections are reused, not added).
FD_SLACK = 16
# Resident memory may rise this much from the second third to the last (allocator noise);
# a leak proportional to the work done grows well beyond it over the run.
RSS_SLACK = 96 * MIB
# Far above anything measured, far below what a leak of the bytes read would reach.
RSS_CAP = 2048 * MIB


@dataclass
class Tally:
    lock: threading.Lock = field(default_factory=threading.Lock)
    reads: int = 0
    bytes_verified: int = 0
    errors: list[str] = field(default_factory=list)
    mismatches: list[str] = field(default_factory=list)

    def ok(self, nbytes: int) -> None:
        with self.lock:
            self.reads += 1
            self.bytes_verified += nbytes


def _reader(
    mount: Path, targets: list[Target], largest: int, seed: int, stop: threading.Event, t: Tally
) -> None:
    rng = random.Random(seed)
    while not stop.is_set():
        target = rng.choice(targets)
        if target.size <= largest:
            offset, length = 0, target.size  # whole small files
        else:
            offset, length = random_range(rng, target.size, BLOB_SPAN, largest)
        try:
            data = read_range(mount / target.relpath, offset, length)
        except OSError as exc:
            with t.lock:
                t.errors.append(f"{target.relpath}@{offset}+{length}: {exc}")
            continue
        if data != target.expected(offset, offset + length):
            with t.lock:
                t.mismatches.append(f"{target.relpath}@{offset}+{length}")
            continue
        t.ok(length)


def _groups() -> list[tuple[list[Target], int]]:
    """(targets, largest read) per reader: a quarter each on the blob, the NWB file (both
    shared by all their readers), zarr chunks and small assets (each reader its own)."""
    zarr = [z for z in zarr_files() if z.size > 1000]  # the chunks, not the metadata
    smalls = small_blobs(READERS // 4 * 8, seed=7)
    blob, nwb = big_blob(), nwb_file()
    out: list[tuple[list[Target], int]] = []
    quarter = READERS // 4
    for i in range(quarter):
        out.append(([blob], 2 * MIB))
        out.append(([nwb], 512 * 1024))
        out.append((zarr[i::quarter] or zarr, 1 << 30))
        out.append((smalls[i * 8 : (i + 1) * 8], 1 << 30))
    return out


def _sample(pid: int, stop: threading.Event, fds: list[int], rss: list[int]) -> None:
    while not stop.wait(0.5):
        fds.append(open_fds(pid))
        rss.append(rss_bytes(pid))


def test_soak_64_concurrent_readers(make_mount, dandi_emulator: Emulator, report: Figures):
    mount: Mount = make_mount(dandi_emulator)
    duration = bounded(36, 180)
    groups = _groups()
    pid = daemon_pid(mount.path)
    tally = Tally()
    stop, sampling = threading.Event(), threading.Event()
    fds: list[int] = []
    rss: list[int] = []
    sampler = threading.Thread(target=_sample, args=(pid, sampling, fds, rss), daemon=True)
    readers = [
        threading.Thread(
            target=_reader, args=(mount.path, targets, largest, 1000 + i, stop, tally), daemon=True
        )
        for i, (targets, largest) in enumerate(groups)
    ]
    sampler.start()
    for r in readers:
        r.start()
    time.sleep(duration)
    stop.set()
    for r in readers:
        r.join(timeout=120)
    stuck = sum(r.is_alive() for r in readers)
    time.sleep(2)  # let the daemon finish read-ahead and release what the readers held
    sampling.set()
    sampler.join()
    fds_after = open_fds(pid)

    report.operations = tally.reads
    report.bytes_verified = tally.bytes_verified
    report.reader_errors = len(tally.errors) + len(tally.mismatches)
    thirds = len(fds) // 3
    mid_fds, last_fds = fds[thirds : 2 * thirds], fds[2 * thirds :]
    mid_rss, last_rss = rss[thirds : 2 * thirds], rss[2 * thirds :]
    report.note = (
        f"{READERS} readers, {duration:.0f} s; fds {fds[0]}→max {max(mid_fds)} (2nd third)→"
        f"max {max(last_fds)} (last third)→{fds_after} after; RSS MiB median "
        f"{statistics.median(mid_rss) / MIB:.0f} (2nd third)→"
        f"{statistics.median(last_rss) / MIB:.0f} (last third), max {max(rss) / MIB:.0f}"
    )
    print(report.note)

    assert stuck == 0, f"{stuck} readers did not finish"
    assert not tally.mismatches, f"wrong bytes: {tally.mismatches[:5]}"
    assert not tally.errors, f"reader errors: {tally.errors[:5]}"
    assert tally.reads > READERS, "the readers hardly got to read"
    # Descriptors: bounded by the work in flight, not by the work done.
    assert max(last_fds) <= max(mid_fds) + FD_SLACK, fds
    assert fds_after <= max(mid_fds) + FD_SLACK, (fds_after, fds)
    # Memory: no steady growth from the second third to the last, and under a generous cap.
    assert statistics.median(last_rss) <= max(mid_rss) + RSS_SLACK, [r // MIB for r in rss]
    assert max(rss) <= RSS_CAP, [r // MIB for r in rss]

"""Three mounts × 16 concurrent readers of overlapping random ranges of the same blob, through
one tier (real nginx): every byte exact, no reader error, and the origin asked for each
1 MiB slice once; then the same with the tier killed mid-run: still every byte exact."""

from __future__ import annotations

import os
import random
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from neurofs_emulators.dandi.archive import GeneratedSource
from neurofs_emulators.dandi.sample import (
    BIG_BLOB_KEY,
    BIG_BLOB_PATH,
    BIG_BLOB_SIZE,
    PUBLISHED_DANDISET,
)
from tests.support.emulators import Emulator
from tests.support.mounting import Mount
from tests.support.tier import started_tier

BLOB = f"dandi/{PUBLISHED_DANDISET}/draft/{BIG_BLOB_PATH}"
TRUTH = GeneratedSource(BIG_BLOB_KEY, BIG_BLOB_SIZE)
MIB = 1 << 20
READERS = 16  # per mount
READS = 12  # per reader


def _mounts(make_mount: Any, emulator: Emulator, tier_url: str) -> list[Mount]:
    mounts = []
    for _ in range(3):
        m: Mount = make_mount(emulator, start=False)
        m.env["NEUROFS_TIER"] = tier_url
        m.start()
        mounts.append(m)
    return mounts


def _readers(mounts: list[Mount], window: tuple[int, int], seed: int) -> list[str]:
    """All readers at once; each reads random ranges (4 KiB to 3 MiB) inside ``window``, which
    all of them share. The problems found, as text."""
    problems: list[str] = []
    lock = threading.Lock()

    def reader(m: Mount, n: int) -> None:
        rng = random.Random(seed * 1000 + n)
        try:
            fd = os.open(m / BLOB, os.O_RDONLY)
            try:
                for _ in range(READS):
                    size = rng.choice((4096, 65536, MIB, 3 * MIB))
                    offset = rng.randrange(window[0], window[1] - size)
                    if os.pread(fd, size, offset) != TRUTH.read(offset, offset + size):
                        with lock:
                            problems.append(f"wrong bytes at {offset}+{size}")
            finally:
                os.close(fd)
        except OSError as exc:
            with lock:
                problems.append(f"reader {n}: {exc}")

    threads = [
        threading.Thread(target=reader, args=(m, i * READERS + r))
        for i, m in enumerate(mounts)
        for r in range(READERS)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return problems


def _stop_all(mounts: list[Mount]) -> None:
    for m in mounts:
        m.stop()


def test_many_readers_on_three_mounts_through_one_tier(
    make_mount: Any, dandi_emulator: Emulator, tmp_path: Path
) -> None:
    origins = [f"http://{urlsplit(u).netloc}" for u in dandi_emulator.running.urls]
    with started_tier(origins, tmp_path / "tier") as tier:
        mounts = _mounts(make_mount, dandi_emulator, tier.url)
        dandi_emulator.reset()
        problems = _readers(mounts, (200 * MIB, 264 * MIB), seed=1)
        _stop_all(mounts)  # nothing in flight when the origin's log is read
        assert problems == []
        slices = [r["range"] for r in dandi_emulator.data_requests() if r["range"]]
        assert slices and len(slices) == len(set(slices)), "a slice came from the origin twice"


@pytest.mark.expect_log("shared tier .*: cannot reach it")
def test_the_tier_killed_mid_run_loses_no_byte(
    make_mount: Any, dandi_emulator: Emulator, tmp_path: Path
) -> None:
    origins = [f"http://{urlsplit(u).netloc}" for u in dandi_emulator.running.urls]
    with started_tier(origins, tmp_path / "tier") as tier:
        mounts = _mounts(make_mount, dandi_emulator, tier.url)
        timer = threading.Timer(0.5, tier.kill)
        timer.start()
        started = time.monotonic()
        problems = _readers(mounts, (500 * MIB, 564 * MIB), seed=2)
        timer.join()
        assert problems == []
        assert tier.process.poll() is not None, "the tier was not killed during the run"
        assert time.monotonic() - started > 0.5
        fallbacks = sum(m.stats().get("tier_fallbacks", 0) for m in mounts)
        _stop_all(mounts)
        assert fallbacks >= 1

"""A slow server through a real mount: responses that trickle or stop halfway.

httpx's read timeout is per socket read, so a body that trickles a little every few seconds
never trips it; the mount has its own rule (``neurofs.io.http``): an answer must start within
the retry budget, and a body must then bring 64 KiB every 10 s. These tests slow down one
file's object on the DANDI emulator (``trickle_bps`` / ``stall_after_bytes`` on its path
only) and check that

- a body below that rate ends in EIO within the retry budget;
- a body that stops halfway ends in EIO within the budget plus one stall window (10 s);
- a slow body above that rate is read whole, even when it takes longer than the budget;
- while a reader is stuck, the same daemon keeps serving other files: cached files, other
  files of the same source, and files of another source (WEBKNOSSOS), all before the stuck
  read returns.
"""

from __future__ import annotations

import errno
import hashlib
import os
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pytest

from neurofs.io.http import RetryPolicy, Timeouts
from neurofs_emulators.dandi.sample import NWB_PATH, OWNER_TOKEN
from neurofs_emulators.launch import start_emulator
from neurofs_emulators.webknossos.sample import ORGANIZATION, SampleWorld
from neurofs_emulators.webknossos.sample import OWNER_TOKEN as WK_TOKEN
from tests.mount.conftest import Emulator, Mount, WkEmulator

from .conftest import Figures, bounded
from .groundtruth import nwb_file

pytestmark = pytest.mark.mount

# The retry budget of the stuck-reader test: long enough that the other operations clearly
# run while the reader is stuck (the full run keeps the shipped default).
BUDGET = bounded(20.0, 30.0)
# The stall window of neurofs.io.http.Timeouts, and how long a failure is remembered.
STALL_SECONDS = Timeouts().stall_seconds
DOWN_SECONDS = RetryPolicy().down_seconds
MARGIN = 10.0
WORLD = SampleWorld()


@pytest.fixture(scope="module")
def slow_dandi() -> Iterator[Emulator]:
    with start_emulator("dandi", []) as running:
        yield Emulator(running)
        running.set_knobs()


@pytest.fixture
def nwb_object_path(slow_dandi: Emulator) -> Iterator[str]:
    """The object store path of the NWB file: the knobs slow down only this path."""
    asset = next(a for a in slow_dandi.all_assets("000001", "draft") if a["path"] == NWB_PATH)
    with slow_dandi.api() as api:
        location = api.get(f"assets/{asset['asset_id']}/download/").headers["Location"]
    yield urlsplit(location).path
    slow_dandi.running.set_knobs()


def two_source_mount(base: Path, dandi: Emulator, wk: WkEmulator, retry_seconds: float) -> Mount:
    """One daemon serving DANDI at dandi/ and WEBKNOSSOS at webknossos/."""
    (base / "mnt").mkdir()
    config = base / "config.toml"
    config.write_text(
        "\n".join(
            [
                "[[source]]",
                'kind = "dandi"',
                'name = "dandi"',
                f'url = "{dandi.api_url}"',
                f'token = "{OWNER_TOKEN}"',
                f"retry_seconds = {retry_seconds}",
                "[[source]]",
                'kind = "webknossos"',
                'name = "webknossos"',
                f'url = "{wk.api_url}"',
                f'token = "{WK_TOKEN}"',
                f"retry_seconds = {retry_seconds}",
            ]
        )
        + "\n"
    )
    config.chmod(0o600)
    mount = Mount(base / "mnt", config, base / "cache")
    mount.start()
    return mount


@pytest.fixture
def mounts() -> Iterator[list[Mount]]:
    started: list[Mount] = []
    yield started
    for mount in started:
        mount.stop()


def read_first(path: Path, size: int) -> bytes:
    """``size`` bytes at offset 0, without the page cache (the daemon must serve them)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        return os.pread(fd, size, 0)
    finally:
        os.close(fd)


def recovered_read(path: Path, size: int, within: float) -> bytes:
    """``read_first`` retried once a second until it succeeds, for at most ``within`` s."""
    deadline = time.monotonic() + within
    while True:
        try:
            return read_first(path, size)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


def eio_within(future: Future[Any], bound: float) -> None:
    with pytest.raises(OSError) as caught:
        future.result(timeout=bound + 60)  # a hang fails the test instead of blocking it
    assert caught.value.errno == errno.EIO


@pytest.mark.expect_log(r"GET .*/dandiarchive/blobs/.*: giving up after \d+ tries")
def test_stuck_reader_gets_eio_and_the_daemon_serves_everything_else(
    slow_dandi: Emulator,
    wk_emulator: WkEmulator,
    nwb_object_path: str,
    mounts: list[Mount],
    tmp_path: Path,
    report: Figures,
) -> None:
    mount = two_source_mount(tmp_path, slow_dandi, wk_emulator, BUDGET)
    mounts.append(mount)
    assets = [a for a in slow_dandi.all_assets("000003", "draft") if a["blob"]]
    root = mount / "dandi/000003/draft"
    cached, fresh = assets[0], assets[1:6]
    cached_bytes = (root / cached["path"]).read_bytes()
    folder = (root / cached["path"]).parent
    listing = sorted(os.listdir(folder))
    nwb = mount / f"dandi/000001/draft/{NWB_PATH}"
    os.stat(nwb)
    # 1 KB/s: far below the 64 KiB per 10 s a body must keep up.
    slow_dandi.running.set_knobs(trickle_bps=1000, slow_path_prefix=nwb_object_path)

    pool = ThreadPoolExecutor(4)
    started = time.monotonic()
    stuck = pool.submit(read_first, nwb, 65536)
    time.sleep(2)  # the read is out and trickling
    others: list[tuple[str, float]] = []

    def other(what: str, op: Any) -> Any:
        t0 = time.monotonic()
        result = pool.submit(op).result(timeout=BUDGET + 60)
        others.append((what, time.monotonic() - t0))
        return result

    assert other("stat cached", lambda: os.stat(root / cached["path"]).st_size) == cached["size"]
    assert other("cat cached", (root / cached["path"]).read_bytes) == cached_bytes
    assert sorted(other("ls cached", lambda: os.listdir(folder))) == listing
    verified = len(cached_bytes)
    for asset in fresh:  # the same source, never read before
        data = other("cat uncached, same source", (root / asset["path"]).read_bytes)
        assert hashlib.sha256(data).hexdigest() == asset["metadata"]["digest"]["dandi:sha2-256"]
        verified += len(data)
    chunk = other("read chunk, other source", lambda: _wk_chunk(mount))
    verified += chunk
    # Everything above was answered while the slow read was still waiting.
    assert not stuck.done(), f"the slow read returned first; others took {others}"
    eio_within(stuck, BUDGET + MARGIN)
    time_to_eio = time.monotonic() - started
    assert time_to_eio <= RetryPolicy().answer_seconds(BUDGET) + MARGIN
    pool.shutdown()
    report.operations = len(others) + 1
    report.bytes_verified = verified
    report.note = (
        f"trickle 1 KB/s: EIO after {time_to_eio:.1f} s (budget {BUDGET:.0f} s); meanwhile "
        f"{len(others)} other operations, slowest {max(s for _, s in others):.1f} s"
    )


def _wk_chunk(mount: Mount) -> int:
    """Reads a WEBKNOSSOS region through zarr and compares it; returns the bytes checked."""
    import zarr

    root = mount / f"webknossos/datasets/{ORGANIZATION}/l4_demo/color.ome.zarr"
    array = zarr.open_group(str(root), mode="r")["1"]
    got = np.asarray(array[16:48, 32:64, 64:96])
    expected = WORLD.voxels("l4_demo", "color", (1, 1, 1), 64, 32, 16, 96, 64, 48)
    np.testing.assert_array_equal(got, expected[0].transpose(2, 1, 0))
    return got.nbytes


@pytest.mark.expect_log(r"GET .*/dandiarchive/blobs/.*: giving up after \d+ tries")
def test_body_stopping_halfway_gives_eio(
    make_mount: Any, slow_dandi: Emulator, nwb_object_path: str, report: Figures
) -> None:
    budget = 5.0
    bound = RetryPolicy().answer_seconds(budget)
    mount = make_mount(slow_dandi, retry_seconds=budget)
    nwb = mount / f"dandi/000001/draft/{NWB_PATH}"
    os.stat(nwb)
    # More than the 64 KiB that count as progress, less than the smallest request of a read.
    slow_dandi.running.set_knobs(stall_after_bytes=80 * 1024, slow_path_prefix=nwb_object_path)
    started = time.monotonic()
    with ThreadPoolExecutor(1) as pool:
        eio_within(pool.submit(read_first, nwb, 65536), bound + STALL_SECONDS + MARGIN)
    elapsed = time.monotonic() - started
    # A body that made progress gets one stall window after its last progress.
    assert elapsed <= bound + STALL_SECONDS + MARGIN
    slow_dandi.running.set_knobs()
    # It recovers by itself: an object whose read just failed fails at once for 10 s (so that
    # the kernel's immediate re-read does not wait again), then it is asked for again.
    assert recovered_read(nwb, 65536, within=DOWN_SECONDS + MARGIN) == nwb_file().expected(0, 65536)
    report.operations = 2
    report.bytes_verified = 65536
    report.note = f"stall after 80 KiB: EIO after {elapsed:.1f} s (budget {budget:.0f} s)"


def test_slow_body_above_the_floor_is_read_whole(
    make_mount: Any, slow_dandi: Emulator, nwb_object_path: str, report: Figures
) -> None:
    """10 KB/s, above the floor of 64 KiB per 10 s: the read takes longer than the retry
    budget and than an answer may take to start, and still gets its bytes, with no retry."""
    budget, size = 5.0, 64 * 1024
    mount = make_mount(slow_dandi, retry_seconds=budget)
    nwb = mount / f"dandi/000001/draft/{NWB_PATH}"
    os.stat(nwb)
    slow_dandi.running.set_knobs(trickle_bps=10_000, slow_path_prefix=nwb_object_path)
    started = time.monotonic()
    with ThreadPoolExecutor(1) as pool:
        data = pool.submit(read_first, nwb, size).result(timeout=300)
    elapsed = time.monotonic() - started
    assert data == nwb_file().expected(0, size)
    stats = mount.stats()["sources"]["dandi"]
    assert stats.get("errors", 0) == 0 and stats.get("retries", 0) == 0
    # The scenario means something only if the transfer outlasted both.
    assert elapsed > RetryPolicy().answer_seconds(budget)
    report.operations = 1
    report.bytes_verified = len(data)
    report.note = f"trickle 10 KB/s: bytes after {elapsed:.1f} s (budget {budget:.0f} s)"

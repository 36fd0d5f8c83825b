"""Ground truth of the DANDI sample and probes of a running daemon, for the reliability tests.

Expected bytes come from :class:`SampleArchive`, the emulator's own sample data built in this
process (the 1 GiB blob is generated on the fly, range by range), never from the mount.
Reads go through the kernel with the page cache of the file dropped first, so every read
reaches the daemon instead of being answered from pages of an earlier read.
"""

from __future__ import annotations

import functools
import os
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from neurofs_emulators.dandi.sample import (
    BIG_BLOB_PATH,
    LARGE_DANDISET,
    LARGE_ZARR_PATH,
    NWB_PATH,
    PUBLISHED_DANDISET,
    SampleArchive,
)

MIB = 1024 * 1024


@functools.cache
def sample() -> SampleArchive:
    return SampleArchive()


@dataclass(frozen=True)
class Target:
    """A file of the mount (relative to the mount point) and its true bytes."""

    relpath: str
    size: int
    truth: Callable[[int, int], bytes]  # bytes [start, end)

    def expected(self, start: int, end: int) -> bytes:
        return self.truth(start, min(end, self.size))


def _blob_target(dandiset: str, path: str) -> Target:
    asset = sample().asset_by_path(dandiset, path)
    assert asset.blob is not None
    blob_id = asset.blob.blob_id
    return Target(
        f"dandi/{dandiset}/draft/{path}",
        asset.blob.size,
        lambda start, end: sample().blob_read(blob_id, start, end),
    )


def big_blob() -> Target:
    """The 1 GiB generated blob of 000001."""
    return _blob_target(PUBLISHED_DANDISET, BIG_BLOB_PATH)


def nwb_file() -> Target:
    """The 41 MiB NWB (HDF5) file of 000001."""
    return _blob_target(PUBLISHED_DANDISET, NWB_PATH)


def zarr_files() -> list[Target]:
    """Every key of the OME-Zarr store of 000003 (chunks and metadata)."""
    asset = sample().asset_by_path(LARGE_DANDISET, LARGE_ZARR_PATH)
    assert asset.zarr is not None
    zarr_id = asset.zarr.zarr_id
    out = []
    for key in sample().zarr_keys(zarr_id):
        data = sample().zarr_read(zarr_id, key)
        out.append(
            Target(
                f"dandi/{LARGE_DANDISET}/draft/{LARGE_ZARR_PATH}/{key}",
                len(data),
                lambda start, end, d=data: d[start:end],
            )
        )
    return out


def small_blobs(count: int, seed: int = 0) -> list[Target]:
    """``count`` of the 2,004 small blob assets of 000003, picked with ``seed``."""
    assets = [a for a in sample().asset_list(LARGE_DANDISET) if a.blob is not None]
    picked = random.Random(seed).sample(assets, count)
    return [_blob_target(LARGE_DANDISET, a.path) for a in picked]


# ---------------------------------------------------------------------- reading


def read_range(path: Path, offset: int, size: int, *, drop_cache: bool = True) -> bytes:
    """``size`` bytes at ``offset`` (fewer at end of file), through the kernel. With
    ``drop_cache`` the file's page cache is dropped first, so the daemon serves the read."""
    fd = os.open(path, os.O_RDONLY)
    try:
        if drop_cache:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        parts: list[bytes] = []
        done = 0
        while done < size:
            chunk = os.pread(fd, size - done, offset + done)
            if not chunk:
                break
            parts.append(chunk)
            done += len(chunk)
        return b"".join(parts)
    finally:
        os.close(fd)


def random_range(rng: random.Random, size: int, limit: int, largest: int) -> tuple[int, int]:
    """(offset, length) inside the first ``limit`` bytes of a ``size``-byte file, unaligned."""
    span = min(size, limit)
    length = rng.randint(1, min(largest, span))
    return rng.randint(0, span - length), length


# ---------------------------------------------------------------------- the daemon


def daemon_pid(mountpoint: Path) -> int:
    from neurofs.fs.daemon import pid_file

    return int(pid_file(mountpoint).read_text())


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for pid {pid}")


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"

"""What scenario 13's tools must return: the blob's bytes, computed as the emulator computes
them (never fetched), the fixed-seed offsets of the random reads, and the checks of what a
tool returned against them."""

from __future__ import annotations

import hashlib
import os
import random
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import httpx

from bench.context import Ctx
from bench.harness import PY_BENCH, Emu, MiB, drop_caches, log, run_snippet
from bench.scenarios.nwb import ROWS
from bench.scenarios.peer_tools import Target
from neurofs_emulators.dandi.archive import GENERATED_BLOCK, generated_block
from neurofs_emulators.dandi.sample import BIG_BLOB_KEY, BIG_BLOB_SIZE

SEED = 1316
SMALL = 4096
LARGE = MiB


@lru_cache(maxsize=64)
def _block(index: int) -> bytes:
    return generated_block(BIG_BLOB_KEY, index, BIG_BLOB_SIZE)


def expected(offset: int, length: int) -> bytes:
    """Bytes ``[offset, offset + length)`` of the 1 GiB blob, computed as the emulator does."""
    out = bytearray()
    pos, end = offset, min(offset + length, BIG_BLOB_SIZE)
    while pos < end:
        index, within = divmod(pos, GENERATED_BLOCK)
        take = min(end - pos, GENERATED_BLOCK - within)
        out += _block(index)[within : within + take]
        pos += take
    return bytes(out)


def offsets(count: int, length: int, salt: int) -> list[int]:
    """Fixed-seed, 4 KiB-aligned offsets of ``count`` reads of ``length`` in the blob."""
    rng = random.Random(SEED * 1000 + salt)
    return [rng.randrange((BIG_BLOB_SIZE - length) // SMALL) * SMALL for _ in range(count)]


@dataclass(frozen=True)
class Truth:
    """Digests of what each pattern must return, computed once per run of the scenario."""

    stream_bytes: int  # how much of the blob the streams read
    stream_mib: list[bytes]  # sha1 of each MiB of the streamed prefix
    rand4k: list[tuple[int, bytes]]  # (offset, sha1)
    rand1m: list[tuple[int, bytes]]
    nwb_sum: int
    nwb_local_s: float


def sha1(data: bytes) -> bytes:
    return hashlib.sha1(data, usedforsecurity=False).digest()


def verify_stream(path: Path, nbytes: int, truth: Truth) -> str | None:
    """Re-read ``nbytes`` of the file (1 MiB at a time) against the blob; the first wrong
    MiB, or None."""
    with open(path, "rb", buffering=0) as f:
        for i in range(nbytes // MiB):
            chunk = f.read(MiB)
            if len(chunk) != MiB:
                return f"short read at {i} MiB"
            if sha1(chunk) != truth.stream_mib[i]:
                return f"bytes differ in MiB {i}"
    return None


def random_reads(
    path: Path, reads: list[tuple[int, bytes]], length: int
) -> tuple[float, str | None]:
    """pread each offset in turn; (seconds, the first wrong read or None)."""
    wrong: str | None = None
    fd = os.open(path, os.O_RDONLY)
    try:
        t0 = time.perf_counter()
        got = [os.pread(fd, length, off) for off, _ in reads]
        elapsed = time.perf_counter() - t0
    finally:
        os.close(fd)
    for (off, digest), data in zip(reads, got, strict=True):
        if len(data) != length or sha1(data) != digest:
            wrong = f"{len(data)} bytes at offset {off} differ"
            break
    return elapsed, wrong


def make_truth(ctx: Ctx, emu: Emu, nwb: Target, stream_bytes: int, n4k: int, n1m: int) -> Truth:
    log("[13] computing the expected bytes (digests of the blob, the NWB slice on a local copy)")
    stream = [sha1(expected(i * MiB, MiB)) for i in range(stream_bytes // MiB)]
    rand4k = [(o, sha1(expected(o, SMALL))) for o in offsets(n4k, SMALL, 1)]
    rand1m = [(o, sha1(expected(o, LARGE))) for o in offsets(n1m, LARGE, 2)]
    local = ctx.bench.new_dir("s13-local") / "sample.nwb"
    url = f"{emu.running.urls[1].rstrip('/')}/dandiarchive/{nwb.s3_key}"
    with httpx.Client(timeout=120) as c, open(local, "wb") as f:
        f.write(c.get(url).raise_for_status().content)
    nwb_sum, nwb_local_s = 0, 0.0
    if PY_BENCH.exists():
        drop_caches()
        out = run_snippet(
            PY_BENCH, "h5_open", {"rows": ROWS, "source": "path", "target": str(local)}
        )
        nwb_sum, nwb_local_s = int(out["slice_sum"]), float(out["seconds"])
    return Truth(stream_bytes, stream, rand4k, rand1m, nwb_sum, nwb_local_s)

"""neurofs's digests (``neurofs.io.digests``) against the official client's own code.

The same files are digested by neurofs and, in the conformance venv, by dandi-cli
(``dandi.support.digests``: dandischema's ``DandiETag`` and the ``zarr_checksum`` package).
"""

from __future__ import annotations

import hashlib
import random
from pathlib import Path

import pytest

from neurofs.io.digests import (
    DandiEtagHasher,
    ZarrEntryDigest,
    etag_part_size,
    etag_parts,
    zarr_checksum,
)

from .conftest import ClientRunner

pytestmark = pytest.mark.conformance

MiB = 1 << 20
BLOB_SIZES = [0, 1, 5 * MiB + 7, 64 * MiB, 64 * MiB + 1, 130 * MiB + 3]
# Names whose orders differ between bytes, case and numbers, a directory holding only
# directories, and dot files.
ZARR_KEYS = [
    ".zattrs",
    ".zgroup",
    "B/.zarray",
    "a/.zarray",
    "a/0/0/0",
    "a/0/0/1",
    "a/0/10/0",
    "a/0/9/0",
    "a/1/0/0",
    "a.b/c/d/e",
    "zarr.json",
]
# Sizes beyond what a test can write: the part layout alone is compared.
LARGE_SIZES = [640 * 1024 * MiB - 1, 640 * 1024 * MiB, 640 * 1024 * MiB + 1, 5 * 1024**4]


def _etag(path: Path, piece: int) -> str:
    hasher = DandiEtagHasher(path.stat().st_size)
    with path.open("rb") as f:
        while data := f.read(piece):
            hasher.update(data)
    return hasher.hexdigest()


def test_digests_agree_with_dandi_cli(run_client: ClientRunner, tmp_path: Path) -> None:
    rng = random.Random(7)
    blobs = []
    for size in BLOB_SIZES:
        path = tmp_path / f"blob-{size}"
        path.write_bytes(rng.randbytes(size))
        blobs.append(path)
    zarr = tmp_path / "store.zarr"
    entries = []
    for key in ZARR_KEYS:
        data = rng.randbytes(rng.randrange(0, 3000))
        (zarr / key).parent.mkdir(parents=True, exist_ok=True)
        (zarr / key).write_bytes(data)
        entries.append(ZarrEntryDigest(key, hashlib.md5(data).hexdigest(), len(data)))

    theirs = run_client(
        f"""
        from pathlib import Path
        from dandi.support.digests import get_digest
        from dandischema.digests.dandietag import PartGenerator
        emit({{
            "etags": [get_digest(p, "dandi-etag") for p in {[str(b) for b in blobs]!r}],
            "zarr": get_digest(Path({str(zarr)!r}), "zarr-checksum"),
            "layouts": [
                [[p.offset, p.size] for p in PartGenerator.for_file_size(s)][:3]
                + [len(PartGenerator.for_file_size(s))]
                for s in {LARGE_SIZES!r}
            ],
        }})
        """
    )
    # Fed in pieces that straddle the part boundaries.
    assert theirs["etags"] == [_etag(b, 3 * MiB + 1) for b in blobs]
    assert theirs["zarr"] == zarr_checksum(entries)
    ours = [
        [*[[off, length] for off, length in etag_parts(s)][:3], len(etag_parts(s))]
        for s in LARGE_SIZES
    ]
    assert theirs["layouts"] == ours
    assert etag_part_size(LARGE_SIZES[-1]) > 64 * MiB  # grown: 10,000 parts at most

"""Digests the DANDI Archive computes: the S3 multipart ``dandi-etag`` and the zarr checksum.

Both are re-implemented from their published definitions (dandischema's ``DandiETag`` and the
``zarr_checksum`` package) so the emulator serves exactly the values the official client and
the real archive would compute for the same bytes; the conformance tests cross-check them.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass

MiB = 1 << 20
DEFAULT_PART_SIZE = 64 * MiB
MAX_PARTS = 10_000


def etag_part_size(size: int) -> int:
    """Part size of the S3 multipart upload the DANDI client uses for a file of ``size`` bytes.

    64 MiB, grown when that would need 10,000 parts or more (S3's part limit).
    """
    part_size = DEFAULT_PART_SIZE
    if size and math.ceil(size / part_size) >= MAX_PARTS:
        part_size = math.ceil(size / MAX_PARTS)
    return part_size


def etag_parts(size: int) -> list[tuple[int, int]]:
    """``(offset, length)`` of every part, in order (none for an empty file)."""
    if size == 0:
        return []
    part_size = etag_part_size(size)
    return [(off, min(part_size, size - off)) for off in range(0, size, part_size)]


def dandi_etag_from_part_md5s(part_md5s: Iterable[bytes]) -> str:
    """Combine binary part md5s into the ``<md5 of concatenation>-<number of parts>`` etag."""
    parts = list(part_md5s)
    return f"{hashlib.md5(b''.join(parts)).hexdigest()}-{len(parts)}"


def dandi_etag(data: bytes) -> str:
    """dandi-etag of an in-memory byte string."""
    return dandi_etag_from_part_md5s(
        hashlib.md5(data[off : off + length]).digest() for off, length in etag_parts(len(data))
    )


@dataclass(frozen=True)
class ZarrEntryDigest:
    """One file of a zarr store as the checksum sees it."""

    key: str  # path relative to the zarr root, "/"-separated
    md5: str  # hex md5 of the file's bytes (its S3 ETag)
    size: int


def zarr_checksum(entries: Iterable[ZarrEntryDigest]) -> str:
    """``dandi:dandi-zarr-checksum`` of a zarr store: ``<md5>-<file count>--<total size>``.

    Every directory is summarised by the md5 of a compact JSON manifest listing its
    sub-directories and files (each ``{"digest", "name", "size"}``, sorted by name);
    a directory's digest is ``<md5>-<files below it>--<bytes below it>``.
    """
    tree: dict[str, tuple[dict, list[ZarrEntryDigest]]] = {}

    def node(path: str) -> tuple[dict, list[ZarrEntryDigest]]:
        if path not in tree:
            tree[path] = ({}, [])
        return tree[path]

    for entry in entries:
        parent, _, _name = entry.key.rpartition("/")
        node(parent)[1].append(entry)
        # Register every ancestor so empty-of-files directories still link up.
        while parent:
            grand, _, _ = parent.rpartition("/")
            node(grand)
            parent = grand

    def digest(path: str) -> tuple[str, int, int]:
        subdirs = sorted(p for p in tree if p and p.rpartition("/")[0] == path)
        dirs = []
        count = 0
        size = 0
        for sub in subdirs:
            md5, n, s = digest(sub)
            dirs.append({"digest": f"{md5}-{n}--{s}", "name": sub.rpartition("/")[2], "size": s})
            count += n
            size += s
        files = [
            {"digest": e.md5, "name": e.key.rpartition("/")[2], "size": e.size}
            for e in node(path)[1]
        ]
        files.sort(key=lambda f: str(f["name"]))
        dirs.sort(key=lambda d: str(d["name"]))
        count += len(files)
        size += sum(e.size for e in node(path)[1])
        manifest = json.dumps({"directories": dirs, "files": files}, separators=(",", ":"))
        return hashlib.md5(manifest.encode()).hexdigest(), count, size

    md5, count, size = digest("")
    return f"{md5}-{count}--{size}"

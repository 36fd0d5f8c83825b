"""The digests the DANDI Archive keeps for its data, computed from the bytes.

- ``dandi:dandi-etag`` of a blob: the S3 multipart ETag of the upload the official client
  makes. The file is cut into parts of 64 MiB (larger when that would need 10,000 parts or
  more); the digest is the md5 of the concatenated binary md5s of the parts, then
  ``-<number of parts>`` (dandi/dandi-schema, dandischema/digests/dandietag.py).
- ``dandi:dandi-zarr-checksum`` of a zarr: a tree of md5s. Each directory is the md5 of a
  compact JSON manifest of its sub-directories and files (``{"digest", "name", "size"}``,
  each list sorted by name); a directory's digest is ``<md5>-<files below>--<bytes below>``
  (dandi/zarr_checksum, zarr_checksum/checksum.py and tree.py).

The emulator serves digests computed here, and ``neurofs verify`` checks the mount's bytes
with the same code; a conformance test compares both with the official client's.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

MiB = 1 << 20
DEFAULT_PART_SIZE = 64 * MiB
MAX_PARTS = 10_000

DANDI_ETAG = "dandi:dandi-etag"
SHA2_256 = "dandi:sha2-256"
ZARR_CHECKSUM = "dandi:dandi-zarr-checksum"
MD5 = "dandi:md5"


def etag_part_size(size: int) -> int:
    """Part size of the multipart upload of a file of ``size`` bytes."""
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


class DandiEtagHasher:
    """The dandi-etag of a file of known size, fed in pieces of any length: one part's md5
    state and the finished parts' 16-byte digests are all it holds."""

    def __init__(self, size: int) -> None:
        self._lengths = [length for _, length in reversed(etag_parts(size))]
        self._left = self._lengths.pop() if self._lengths else 0
        self._md5 = hashlib.md5()
        self._done: list[bytes] = []

    def update(self, data: bytes | memoryview) -> None:
        view = memoryview(data)
        while view:
            if self._left == 0:
                raise ValueError("more bytes than the file's size")
            n = min(len(view), self._left)
            self._md5.update(view[:n])
            self._left -= n
            view = view[n:]
            if self._left == 0:
                self._done.append(self._md5.digest())
                self._md5 = hashlib.md5()
                self._left = self._lengths.pop() if self._lengths else 0

    def hexdigest(self) -> str:
        if self._left or self._lengths:
            raise ValueError("fewer bytes than the file's size")
        return dandi_etag_from_part_md5s(self._done)


def dandi_etag(data: bytes) -> str:
    """dandi-etag of an in-memory byte string."""
    hasher = DandiEtagHasher(len(data))
    hasher.update(data)
    return hasher.hexdigest()


@dataclass(frozen=True)
class ZarrEntryDigest:
    """One file of a zarr store as the checksum sees it."""

    key: str  # path relative to the zarr root, "/"-separated
    md5: str  # hex md5 of the file's bytes (its S3 ETag)
    size: int


def zarr_checksum(entries: Iterable[ZarrEntryDigest]) -> str:
    """``dandi:dandi-zarr-checksum`` of a zarr store: ``<md5>-<file count>--<total size>``."""
    files: dict[str, list[ZarrEntryDigest]] = {"": []}
    subdirs: dict[str, set[str]] = {"": set()}
    for entry in entries:
        parent = entry.key.rpartition("/")[0]
        files.setdefault(parent, []).append(entry)
        # Link every ancestor to its parent, so directories holding only directories count.
        while parent:
            grand = parent.rpartition("/")[0]
            subdirs.setdefault(grand, set()).add(parent)
            files.setdefault(parent, [])
            parent = grand

    def digest(path: str) -> tuple[str, int, int]:
        dirs = [(sub.rpartition("/")[2], *digest(sub)) for sub in subdirs.get(path, ())]
        mine = [(e.key.rpartition("/")[2], e.md5, e.size) for e in files.get(path, ())]
        return zarr_directory_digest(dirs, mine)

    md5, count, size = digest("")
    return f"{md5}-{count}--{size}"


def zarr_directory_digest(
    dirs: Sequence[tuple[str, str, int, int]], files: Sequence[tuple[str, str, int]]
) -> tuple[str, int, int]:
    """One directory's step of the zarr checksum: ``(md5, file count, total size)`` from its
    sub-directories' ``(name, md5, count, size)`` and its files' ``(name, md5, size)``. A zarr
    whose keys are computed (the emulator's scale sample) digests its levels with it without
    listing every key."""
    dir_rows = [
        {"digest": f"{md5}-{n}--{s}", "name": name, "size": s}
        for name, md5, n, s in sorted(dirs, key=lambda d: d[0])
    ]
    file_rows = [
        {"digest": md5, "name": name, "size": size}
        for name, md5, size in sorted(files, key=lambda f: f[0])
    ]
    count = sum(d[2] for d in dirs) + len(files)
    size = sum(d[3] for d in dirs) + sum(f[2] for f in files)
    manifest = json.dumps({"directories": dir_rows, "files": file_rows}, separators=(",", ":"))
    return hashlib.md5(manifest.encode()).hexdigest(), count, size

"""The scale sample's zarr: an OME-Zarr of 1,000,003 keys whose keys, sizes, ETags and bytes
are computed on demand, never stored.

One multiscale level ``0/``: a zarr v2 array of ``uint8``, a grid of ``grid``³ chunks of 8³
voxels, uncompressed, with OME-NGFF 0.4's ``"/"`` dimension separator, so the chunk keys are
``0/<z>/<y>/<x>`` (100 entries per directory level, 10⁶ chunks) beside ``.zattrs``,
``.zgroup`` and ``0/.zarray``.

Voxel ``(z, y, x)`` holds ``(3z + 5y + 7x + seed) mod 251``. A chunk is therefore the chunk at
the origin plus an offset mod 251 that depends on its index alone: there are at most 251
different chunk contents, so every ETag (md5) is computed once per content, and the zarr's
``dandi-zarr-checksum`` is computed per distinct directory content (a few hundred md5s, not
10⁶) — the same value as ``zarr_checksum`` over every key (the tests check it on a small
grid).

Keys iterate lazily from any point in S3 order (:meth:`GridZarrFiles.keys_from`): a listing
page costs what it returns.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from functools import cache, cached_property

import numpy as np

from neurofs.io.digests import zarr_directory_digest
from neurofs_emulators.dandi.archive import BytesSource, ZarrFile, ZarrFiles

CHUNK = 8  # voxels per chunk side
MODULUS = 251
COEFFICIENTS = (3, 5, 7)  # of z, y, x in the voxel formula
SEED = 17
GRID = 100  # chunks per axis in the scale sample
ARRAY = "0"
_CHUNK_KEY = re.compile(r"0/(\d+)/(\d+)/(\d+)")


def expected(z: slice, y: slice, x: slice) -> np.ndarray:
    """The voxels of a region (what a reader of the array must get)."""
    zz, yy, xx = (np.arange(s.start, s.stop, dtype=np.int64) for s in (z, y, x))
    a, b, c = COEFFICIENTS
    total = a * zz[:, None, None] + b * yy[None, :, None] + c * xx[None, None, :] + SEED
    return (total % MODULUS).astype(np.uint8)


@cache
def _chunk_bytes(offset: int) -> bytes:
    """A chunk's bytes, whose values are the origin chunk's plus ``offset`` (mod 251)."""
    base = expected(slice(0, CHUNK), slice(0, CHUNK), slice(0, CHUNK)).astype(np.int64)
    return ((base - SEED + offset) % MODULUS).astype(np.uint8).tobytes()


@cache
def _chunk_md5(offset: int) -> str:
    return hashlib.md5(_chunk_bytes(offset)).hexdigest()


def _offset(z: int, y: int, x: int) -> int:
    a, b, c = COEFFICIENTS
    return (CHUNK * (a * z + b * y + c * x) + SEED) % MODULUS


class GridZarrFiles(ZarrFiles):
    """The keys of the computed OME-Zarr (see the module docstring)."""

    def __init__(self, name: str, created: datetime, grid: int = GRID) -> None:
        self.grid = grid
        self.created = created
        # Index names sort as strings in S3 order: "0" < "1" < "10" < "11" < … < "2" < …
        self._names = sorted(str(i) for i in range(grid))
        side = grid * CHUNK
        self._metadata: dict[str, bytes] = {
            ".zattrs": _json(_multiscales(name)),
            ".zgroup": _json({"zarr_format": 2}),
            f"{ARRAY}/.zarray": _json(
                {
                    "chunks": [CHUNK, CHUNK, CHUNK],
                    "compressor": None,
                    "dimension_separator": "/",
                    "dtype": "|u1",
                    "fill_value": 0,
                    "filters": None,
                    "order": "C",
                    "shape": [side, side, side],
                    "zarr_format": 2,
                }
            ),
        }

    # ---- one key

    def __getitem__(self, key: str) -> ZarrFile:
        data = self._metadata.get(key)
        if data is not None:
            return self._file(key, data, hashlib.md5(data).hexdigest(), self.created)
        index = self._chunk_index(key)
        if index is None:
            raise KeyError(key)
        z, y, x = index
        offset = _offset(z, y, x)
        # Each chunk its own upload time, a microsecond apart in grid order.
        when = self.created + timedelta(microseconds=(z * self.grid + y) * self.grid + x)
        return self._file(key, _chunk_bytes(offset), _chunk_md5(offset), when)

    @staticmethod
    def _file(key: str, data: bytes, md5: str, when: datetime) -> ZarrFile:
        return ZarrFile(
            key=key, size=len(data), md5=md5, last_modified=when, source=BytesSource(data)
        )

    def _chunk_index(self, key: str) -> tuple[int, int, int] | None:
        match = _CHUNK_KEY.fullmatch(key)
        if match is None:
            return None
        parts = match.groups()
        # Only canonical names: "007" is not a key.
        if any(str(int(p)) != p or int(p) >= self.grid for p in parts):
            return None
        z, y, x = (int(p) for p in parts)
        return z, y, x

    def __len__(self) -> int:
        return len(self._metadata) + self.grid**3

    @property
    def total_size(self) -> int:
        return sum(len(d) for d in self._metadata.values()) + self.grid**3 * CHUNK**3

    @property
    def modified(self) -> datetime:
        return self.created + timedelta(microseconds=self.grid**3)

    # ---- keys in order

    def _children(self, prefix: str) -> list[tuple[str, bool]]:
        """(name, is a directory) of a level, in S3 order (a directory's keys all start with
        ``name/``, and '/' sorts before the digits, so names sort as plain strings)."""
        depth = prefix.count("/")
        if depth == 0:
            return [(".zattrs", False), (".zgroup", False), (ARRAY, True)]
        if depth == 1:
            return [(".zarray", False), *((n, True) for n in self._names)]
        return [(n, depth == 2) for n in self._names]

    def keys_from(self, lowest: str) -> Iterator[str]:
        return self._walk("", lowest)

    def _walk(self, prefix: str, lowest: str) -> Iterator[str]:
        for name, is_dir in self._children(prefix):
            key = prefix + name
            if not is_dir:
                if key >= lowest:
                    yield key
            # Every key below `key/` sorts before `key0` ('0' follows '/'): skip the subtree
            # when all of it is below `lowest`.
            elif key + "0" > lowest:
                yield from self._walk(key + "/", lowest)

    # ---- the checksum, per distinct directory content

    @cached_property
    def checksum(self) -> str:
        md5, count, size = self._root_digest()
        return f"{md5}-{count}--{size}"

    def _root_digest(self) -> tuple[str, int, int]:
        c = CHUNK * COEFFICIENTS[2]

        @cache
        def row(part: int) -> tuple[str, int, int]:
            # A leaf 0/z/y/: its chunks' offsets depend on (z, y) only through `part`.
            files = [(n, _chunk_md5((part + c * int(n)) % MODULUS), CHUNK**3) for n in self._names]
            return zarr_directory_digest([], files)

        @cache
        def plane(z_part: int) -> tuple[str, int, int]:
            b = CHUNK * COEFFICIENTS[1]
            return zarr_directory_digest(
                [(n, *row((z_part + b * int(n) + SEED) % MODULUS)) for n in self._names], []
            )

        a = CHUNK * COEFFICIENTS[0]
        array = zarr_directory_digest(
            [(n, *plane((a * int(n)) % MODULUS)) for n in self._names],
            [(".zarray", *self._meta_digest(f"{ARRAY}/.zarray"))],
        )
        return zarr_directory_digest(
            [(ARRAY, *array)],
            [(k, *self._meta_digest(k)) for k in (".zattrs", ".zgroup")],
        )

    def _meta_digest(self, key: str) -> tuple[str, int]:
        data = self._metadata[key]
        return hashlib.md5(data).hexdigest(), len(data)


def _json(value: object) -> bytes:
    return json.dumps(value, indent=2, sort_keys=True).encode()


def _multiscales(name: str) -> dict[str, object]:
    return {
        "multiscales": [
            {
                "version": "0.4",
                "name": name,
                "axes": [{"name": axis, "type": "space", "unit": "micrometer"} for axis in "zyx"],
                "datasets": [
                    {
                        "path": ARRAY,
                        "coordinateTransformations": [{"type": "scale", "scale": [1.0, 1.0, 1.0]}],
                    }
                ],
                "type": "gaussian",
            }
        ]
    }

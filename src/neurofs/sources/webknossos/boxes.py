"""Neighbouring chunks of one mag as one box of the datastore's raw route (no I/O).

Two readers fetch several chunks at once: read-ahead, a line of the chunks a zarr reader
walks to next (``io/readahead.py``), and each chunk of the OME-Zarr view, the 2×2×2 served
chunks it covers (``volume.OME_CHUNK``). The datastore answers any box of voxels in one
request, F order over (c, x, y, z) (scalableminds/webknossos, BinaryDataController
``requestRawCuboid``), which is also the layout of each chunk its zarr streaming serves
(``volume.py``); so the box of a set of chunks, cut along its axes, gives each chunk's bytes
exactly as the chunk route sends them. Both routes read the same buckets through
``BinaryDataService.handleDataRequests``: a bucket reaching past the layer's bounding box
comes with zeros outside it from both (``clipToLayerBoundingBox``, webknossos PR #8551;
before it, with the stored voxels from both), and a bucket wholly outside it is zeros in
the box where the chunk route answers 404, which the mount reads as the fill value, 0.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from neurofs.sources.webknossos.volume import CHUNK, MagGeometry

XYZ = tuple[int, int, int]


def chunks_box(chunks: Sequence[XYZ]) -> tuple[XYZ, XYZ]:
    """The box (corner and size, in voxels of the mag) that the chunks fill, given in any
    order: a line of them, or any full box of them."""
    low = tuple(min(c[k] for c in chunks) for k in range(3))
    high = tuple(max(c[k] for c in chunks) for k in range(3))
    counts = [h - lo + 1 for lo, h in zip(low, high, strict=True)]
    if len(set(chunks)) != len(chunks) or len(chunks) != counts[0] * counts[1] * counts[2]:
        raise ValueError(f"chunks that fill no box: {list(chunks)}")
    corner = tuple(lo * CHUNK for lo in low)
    size = tuple(n * CHUNK for n in counts)
    return corner, size  # type: ignore[return-value]


def cut_box(g: MagGeometry, box: bytes, chunks: Sequence[XYZ]) -> list[bytes]:
    """Each chunk's served bytes (F order over c, x, y, z), in the order given, from the
    bytes of their ``chunks_box``."""
    corner, size = chunks_box(chunks)
    voxel = g.voxel_bytes
    # F order over (c, x, y, z) is C order over (z, y, x, the voxel's bytes).
    arr = np.frombuffer(box, dtype=np.uint8).reshape(size[2], size[1], size[0], voxel)
    out: list[bytes] = []
    for chunk in chunks:
        x, y, z = (c * CHUNK - o for c, o in zip(chunk, corner, strict=True))
        part = arr[z : z + CHUNK, y : y + CHUNK, x : x + CHUNK]
        out.append(part.tobytes())
    return out

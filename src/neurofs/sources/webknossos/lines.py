"""A line of neighbouring chunks of one mag as one box of the datastore's raw route (no I/O).

Read-ahead fetches the chunks a zarr reader walks to next a line at a time
(``io/readahead.py``). The datastore answers any box of voxels in one request, F order over
(c, x, y, z) (scalableminds/webknossos, BinaryDataController ``requestRawCuboid``), which is
also the layout of each chunk its zarr streaming serves (``volume.py``); so the box of a line
of chunks, cut along the line's axis, gives each chunk's bytes exactly as the chunk route
sends them. Only chunks wholly inside the layer's bounding box are cut from a box: outside
it, the raw route answers zeros where the chunk route may send the voxels stored there.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from neurofs.sources.webknossos.volume import CHUNK, MagGeometry

XYZ = tuple[int, int, int]


def inside_box(g: MagGeometry, chunk: XYZ) -> bool:
    """Whether all of a chunk's voxels lie inside the mag's bounding box."""
    start, end = g.box
    return all(
        s <= c * CHUNK and (c + 1) * CHUNK <= e for c, s, e in zip(chunk, start, end, strict=True)
    )


def line_box(chunks: Sequence[XYZ]) -> tuple[XYZ, XYZ]:
    """The box (corner and size, in voxels of the mag) of chunks next to each other along one
    axis, given in any order."""
    low = tuple(min(c[k] for c in chunks) for k in range(3))
    high = tuple(max(c[k] for c in chunks) for k in range(3))
    if sum(h != lo for lo, h in zip(low, high, strict=True)) > 1 or len(chunks) != 1 + max(
        h - lo for lo, h in zip(low, high, strict=True)
    ):
        raise ValueError(f"not a line of chunks: {list(chunks)}")
    corner = tuple(lo * CHUNK for lo in low)
    size = tuple((h - lo + 1) * CHUNK for lo, h in zip(low, high, strict=True))
    return corner, size  # type: ignore[return-value]


def cut_line(g: MagGeometry, box: bytes, chunks: Sequence[XYZ]) -> list[bytes]:
    """Each chunk's served bytes (F order over c, x, y, z), in the order given, from the
    bytes of their ``line_box``."""
    corner, size = line_box(chunks)
    voxel = g.voxel_bytes
    # F order over (c, x, y, z) is C order over (z, y, x, the voxel's bytes).
    arr = np.frombuffer(box, dtype=np.uint8).reshape(size[2], size[1], size[0], voxel)
    out: list[bytes] = []
    for chunk in chunks:
        x, y, z = (c * CHUNK - o for c, o in zip(chunk, corner, strict=True))
        part = arr[z : z + CHUNK, y : y + CHUNK, x : x + CHUNK]
        out.append(part.tobytes())
    return out

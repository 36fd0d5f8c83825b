"""Meshes of the emulated datastore: a segment's surface as binary STL.

The real datastore's full-mesh route (scalableminds/webknossos, webknossos-datastore/app/com/
scalableminds/webknossos/datastore/services/mesh/DSFullMeshService.scala) answers an 80-byte
header of zeros, the triangle count as a little-endian uint32, and 50 bytes per triangle
(normal and three vertices as little-endian float32, two zero bytes), with vertices in the
dataset's unit (voxel position × voxel size). Its ad-hoc meshes are marching cubes of the
voxels; here a segment is a union of boxes (``volume.segment_boxes``), so its surface is the
six faces of each box, two triangles each, normals pointing out.
"""

from __future__ import annotations

import struct

import numpy as np

from neurofs_emulators.webknossos.volume import Vec3

STL_HEADER = bytes(80)
STL_TRIANGLE = 50

# The 8 corners of a unit box by bits (x, y, z), and its 12 triangles as corner indices,
# counter-clockwise seen from outside, so that the right-hand normal points out.
_CORNERS = np.array([[(c >> 0) & 1, (c >> 1) & 1, (c >> 2) & 1] for c in range(8)])
_TRIANGLES = np.array(
    [
        (0, 2, 1), (1, 2, 3),  # z = 0
        (4, 5, 6), (5, 7, 6),  # z = 1
        (0, 1, 4), (1, 5, 4),  # y = 0
        (2, 6, 3), (3, 6, 7),  # y = 1
        (0, 4, 2), (2, 4, 6),  # x = 0
        (1, 3, 5), (3, 7, 5),  # x = 1
    ]
)  # fmt: skip


def boxes_stl(boxes: list[tuple[Vec3, Vec3]], voxel_size: tuple[float, float, float]) -> bytes:
    """Binary STL of the surfaces of ``boxes`` (mag-1 voxels, end exclusive), in the
    dataset's unit."""
    scale = np.asarray(voxel_size, dtype=np.float64)
    triangles = []
    for start, end in boxes:
        lo, hi = np.asarray(start) * scale, np.asarray(end) * scale
        corners = lo + _CORNERS * (hi - lo)
        triangles.append(corners[_TRIANGLES])
    vertices = np.concatenate(triangles) if triangles else np.zeros((0, 3, 3), dtype=np.float64)
    normals = np.cross(vertices[:, 1] - vertices[:, 0], vertices[:, 2] - vertices[:, 0])
    lengths = np.linalg.norm(normals, axis=1, keepdims=True)
    normals = normals / np.where(lengths == 0, 1, lengths)
    record = np.dtype([("normal", "<f4", 3), ("vertices", "<f4", (3, 3)), ("attr", "<u2")])
    rows = np.zeros(len(vertices), dtype=record)
    rows["normal"] = normals
    rows["vertices"] = vertices
    return STL_HEADER + struct.pack("<I", len(rows)) + rows.tobytes()

"""Deterministic synthetic voxel data of the WEBKNOSSOS emulator, computed from formulas.

Nothing is stored: every chunk, cuboid and proxied file is computed on request from the
formulas below. All arithmetic is on integers, so the values are exact and identical on every
machine (no floating point, no libm).

Coordinates ``x, y, z`` are mag-1 voxel coordinates (WEBKNOSSOS' global voxel grid). ``s`` is a
small per-dataset seed so that datasets differ.

Mag-1 formulas (``tri(v, p) = |(v mod 2p) - p|``, a triangle wave with values ``0..p``):

- **color** (``uint8``)::

      base  = 2*tri(x + 7s, 40) + 2*tri(y + 11s, 56) + 5*tri(z + 3s, 12)      # 0..252
      noise = (7x + 13y + 29z + s) mod 4                                        # 0..3
      color = base + noise, divided by 3 (integer) on the "membranes" of the segmentation
              grid, i.e. where (x + 5s) mod 40 == 0 or (y + 3s) mod 48 == 0 or z mod 24 == 0

- **rgb** (``uint24``, three ``uint8`` channels)::

      r = color(x, y, z; s)        g = color(y, z, x; s + 1)        b = (x + 2y + 3z + s) mod 256

- **segmentation** (``uint32``, blocky labels)::

      bx = (x + 5s) // 40,  by = (y + 3s) // 48,  bz = z // 24
      label = 0 if (bx + by + bz) mod 7 == 0 else 1 + bx + 16*by + 256*bz

Voxels outside the layer's bounding box are 0 at every mag.

Downsampling (mag ``(mx, my, mz)``, voxel ``(i, j, k)`` in mag coordinates):

- color and rgb: **averaging**, the floor of the mean of the mag-1 block
  ``[i*mx, (i+1)*mx) x [j*my, (j+1)*my) x [k*mz, (k+1)*mz)`` (per channel);
- segmentation: **striding**, the label at the block's first voxel ``(i*mx, j*my, k*mz)``
  (so labels are never mixed).

Bounding boxes of the demo layers are multiples of the largest mag, so a mag block is either
entirely inside or entirely outside the bounding box.

The scale sample's layer (40,000 × 40,000 × 10,000 voxels, mags up to 64) downsamples color by
**striding** too (``downsampling="stride"``): a voxel of mag ``m`` is the mag-1 formula at its
block's first voxel. Averaging would evaluate ``m³`` mag-1 voxels per voxel (2.6·10⁵ at mag 64),
and the emulator must answer any chunk of any mag in milliseconds. The formulas are evaluated
on open grids (one axis per array, broadcast), so a box costs memory for its own voxels only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

Vec3 = tuple[int, int, int]
Category = Literal["color", "segmentation"]
ElementClass = Literal["uint8", "uint24", "uint32"]
Formula = Literal["color", "rgb", "segmentation"]
Downsampling = Literal["average", "stride"]

# WEBKNOSSOS' bucket / zarr-streaming chunk edge length.
CHUNK = 32

IntArray = npt.NDArray[np.int64]


def mag_literal(mag: Vec3) -> str:
    """``1`` for (1,1,1) and ``2-2-1`` otherwise, as the datastore writes mags in paths."""
    if mag[0] == mag[1] == mag[2]:
        return str(mag[0])
    return f"{mag[0]}-{mag[1]}-{mag[2]}"


def parse_mag(text: str) -> Vec3 | None:
    """Parse ``2``, ``2-2-1`` (also ``2-2-1`` with any positive ints); None when malformed."""
    parts = text.split("-")
    if len(parts) not in (1, 3) or not all(p.isdigit() and len(p) <= 6 for p in parts):
        return None
    values = [int(p) for p in parts]
    if any(v <= 0 for v in values):
        return None
    if len(values) == 1:
        return (values[0], values[0], values[0])
    return (values[0], values[1], values[2])


@dataclass(frozen=True)
class LayerSpec:
    """One data layer of a sample dataset: geometry, type and which formula fills it."""

    name: str
    category: Category
    element_class: ElementClass
    formula: Formula
    top_left: Vec3
    size: Vec3
    mags: tuple[Vec3, ...]
    seed: int
    # How color and rgb are downsampled (segmentation always strides): see the module's text.
    downsampling: Downsampling = "average"

    @property
    def num_channels(self) -> int:
        return 3 if self.element_class == "uint24" else 1

    @property
    def dtype(self) -> np.dtype[np.generic]:
        """Per-channel numpy dtype (uint24 is three uint8 channels)."""
        return np.dtype(np.uint32) if self.element_class == "uint32" else np.dtype(np.uint8)

    @property
    def zarr_dtype(self) -> str:
        return "<u4" if self.element_class == "uint32" else "|u1"

    @property
    def bottom_right(self) -> Vec3:
        return (
            self.top_left[0] + self.size[0],
            self.top_left[1] + self.size[1],
            self.top_left[2] + self.size[2],
        )

    def has_mag(self, mag: Vec3) -> bool:
        return mag in self.mags

    def bbox_in_mag(self, mag: Vec3) -> tuple[Vec3, Vec3]:
        """The bounding box in mag coordinates: (start, end), end exclusive, rounded outwards."""
        start = tuple(t // m for t, m in zip(self.top_left, mag, strict=True))
        end = tuple(-(-b // m) for b, m in zip(self.bottom_right, mag, strict=True))
        return (start[0], start[1], start[2]), (end[0], end[1], end[2])

    def array_shape(self, mag: Vec3) -> tuple[int, int, int, int]:
        """Shape ``[c, X, Y, Z]`` of the zarr-streaming array at ``mag`` (starts at voxel 0)."""
        _, end = self.bbox_in_mag(mag)
        return (self.num_channels, end[0], end[1], end[2])

    def largest_segment_id(self) -> int | None:
        if self.category != "segmentation":
            return None
        return largest_label(self.top_left, self.bottom_right, self.seed)

    def voxels(self, mag: Vec3, start: Vec3, end: Vec3) -> npt.NDArray[np.generic]:
        """Values of the box ``[start, end)`` in mag coordinates, shape ``(c, X, Y, Z)``."""
        if not self.has_mag(mag):
            raise KeyError(f"layer {self.name} has no mag {mag_literal(mag)}")
        shape = tuple(max(0, e - s) for s, e in zip(start, end, strict=True))
        out = np.zeros((self.num_channels, *shape), dtype=self.dtype)
        lo, hi = self.bbox_in_mag(mag)
        # Clip the request to the bounding box; everything else stays 0.
        cs = tuple(max(s, b) for s, b in zip(start, lo, strict=True))
        ce = tuple(min(e, b) for e, b in zip(end, hi, strict=True))
        if any(a >= b for a, b in zip(cs, ce, strict=True)):
            return out
        for a, b in _pieces((cs[0], cs[1], cs[2]), (ce[0], ce[1], ce[2])):
            at = tuple(slice(p - s, q - s) for p, q, s in zip(a, b, start, strict=True))
            out[(slice(None), *at)] = self._compute(mag, a, b)
        return out

    def box_has_data(self, mag: Vec3, start: Vec3, end: Vec3) -> bool:
        """Whether ``[start, end)`` (mag coordinates) overlaps the bounding box."""
        lo, hi = self.bbox_in_mag(mag)
        return all(max(s, b0) < min(e, b1) for s, e, b0, b1 in zip(start, end, lo, hi, strict=True))

    def _compute(self, mag: Vec3, start: Vec3, end: Vec3) -> npt.NDArray[np.generic]:
        mx, my, mz = mag
        if self.formula == "segmentation" or self.downsampling == "stride":
            # Striding: the block's first mag-1 voxel.
            x, y, z = _grid(
                np.arange(start[0], end[0], dtype=np.int64) * mx,
                np.arange(start[1], end[1], dtype=np.int64) * my,
                np.arange(start[2], end[2], dtype=np.int64) * mz,
            )
            if self.formula == "segmentation":
                return segmentation(x, y, z, self.seed).astype(np.uint32)[np.newaxis]
            if self.formula == "rgb":
                return np.stack([c.astype(np.uint8) for c in rgb(x, y, z, self.seed)])
            return color(x, y, z, self.seed).astype(np.uint8)[np.newaxis]
        # Averaging: evaluate every mag-1 voxel of the blocks and take the floor of the mean.
        x, y, z = _grid(
            np.arange(start[0] * mx, end[0] * mx, dtype=np.int64),
            np.arange(start[1] * my, end[1] * my, dtype=np.int64),
            np.arange(start[2] * mz, end[2] * mz, dtype=np.int64),
        )
        channels = rgb(x, y, z, self.seed) if self.formula == "rgb" else [color(x, y, z, self.seed)]
        shape = (end[0] - start[0], mx, end[1] - start[1], my, end[2] - start[2], mz)
        out = [
            (c.reshape(shape).sum(axis=(1, 3, 5)) // (mx * my * mz)).astype(np.uint8)
            for c in channels
        ]
        return np.stack(out)


# Voxels computed at once, at most: a box's temporaries stay small (512 KiB at most) and its
# time grows with its voxels, as a datastore's would (with the int16 formula, a 64³ box takes
# 0.95 ms so, the same as its eight 32³ chunks; at once 1.6 ms, and 6-8 ms with int64 grids).
PIECE_VOXELS = 1 << 16


def _pieces(start: Vec3, end: Vec3) -> list[tuple[Vec3, Vec3]]:
    """``[start, end)`` cut into boxes of at most ``PIECE_VOXELS`` voxels (slabs of whole z
    planes, or rows of a plane larger than that)."""
    (x0, y0, z0), (x1, y1, z1) = start, end
    plane = (x1 - x0) * (y1 - y0)
    if plane <= PIECE_VOXELS:
        dz = max(1, PIECE_VOXELS // plane)
        return [((x0, y0, z), (x1, y1, min(z + dz, z1))) for z in range(z0, z1, dz)]
    dy = max(1, PIECE_VOXELS // (x1 - x0))
    return [
        ((x0, y, z), (x1, min(y + dy, y1), z + 1)) for z in range(z0, z1) for y in range(y0, y1, dy)
    ]


def _grid(xs: IntArray, ys: IntArray, zs: IntArray) -> tuple[IntArray, IntArray, IntArray]:
    """Open grids (shapes (X,1,1), (1,Y,1), (1,1,Z)): every formula mixes the three axes, so
    its result has the full shape while its inputs stay one axis long."""
    x, y, z = np.meshgrid(xs, ys, zs, indexing="ij", sparse=True)
    return x, y, z


def _tri(v: IntArray, period: int) -> IntArray:
    return np.abs(np.mod(v, 2 * period) - period)


def color(x: IntArray, y: IntArray, z: IntArray, s: int) -> npt.NDArray[np.int16]:
    """The mag-1 color formula (values 0..255, int16) on open grids (each argument varies
    along one axis): each term is computed along its own axis, and only the sums of the
    three are full boxes, in int16. The same values as the formula on int64 boxes, with a
    quarter of the memory traffic."""

    def along(v: IntArray) -> npt.NDArray[np.int16]:
        return v.astype(np.int16)

    base = along(2 * _tri(x + 7 * s, 40)) + along(2 * _tri(y + 11 * s, 56))
    base = base + along(5 * _tri(z + 3 * s, 12))
    # (7x + 13y + 29z + s) mod 4, from the terms' own remainders.
    noise = along(np.mod(7 * x + s, 4)) + along(np.mod(13 * y, 4))
    noise = (noise + along(np.mod(29 * z, 4))) & 3
    value = base + noise
    membrane = (np.mod(x + 5 * s, 40) == 0) | (np.mod(y + 3 * s, 48) == 0) | (np.mod(z, 24) == 0)
    return np.where(membrane, value // 3, value)


def rgb(x: IntArray, y: IntArray, z: IntArray, s: int) -> list[npt.NDArray[np.integer[Any]]]:
    """The mag-1 RGB formula: three channels, values 0..255 each."""
    return [color(x, y, z, s), color(y, z, x, s + 1), np.mod(x + 2 * y + 3 * z + s, 256)]


def segmentation(x: IntArray, y: IntArray, z: IntArray, s: int) -> IntArray:
    """The mag-1 segmentation formula (labels, 0 is background)."""
    bx = (x + 5 * s) // 40
    by = (y + 3 * s) // 48
    bz = z // 24
    label = 1 + bx + 16 * by + 256 * bz
    return np.where(np.mod(bx + by + bz, 7) == 0, 0, label)


def largest_label(top_left: Vec3, bottom_right: Vec3, s: int) -> int:
    """The largest segmentation label inside a mag-1 box (labels depend on block indices only)."""
    bxs = np.arange((top_left[0] + 5 * s) // 40, (bottom_right[0] - 1 + 5 * s) // 40 + 1)
    bys = np.arange((top_left[1] + 3 * s) // 48, (bottom_right[1] - 1 + 3 * s) // 48 + 1)
    bzs = np.arange(top_left[2] // 24, (bottom_right[2] - 1) // 24 + 1)
    bx, by, bz = np.meshgrid(bxs, bys, bzs, indexing="ij")
    labels = np.where(np.mod(bx + by + bz, 7) == 0, 0, 1 + bx + 16 * by + 256 * bz)
    return int(labels.max())


def segment_boxes(layer: LayerSpec, segment_id: int, mag: Vec3) -> list[tuple[Vec3, Vec3]]:
    """Where a segmentation layer's segment is at ``mag``: boxes ``(start, end)`` in mag-1
    voxels (end exclusive), one per block of the formula with that label, clipped to the
    bounding box and widened to whole voxels of ``mag`` (a voxel of ``mag`` strides, so it
    covers ``[i*m, (i+1)*m)`` and has its first mag-1 voxel's label). Empty for a label the
    layer does not have. The label names its block (``label - 1 = bx + 16*by + 256*bz``),
    except where ``bx`` reaches 16 (the scale sample): then every block of that sum is one,
    and no two of them touch (neighbours differ by 1, 16 or 256)."""
    if layer.formula != "segmentation" or segment_id <= 0:
        return []
    s = layer.seed
    (x0, y0, z0), (x1, y1, z1) = layer.top_left, layer.bottom_right
    bys = np.arange((y0 + 3 * s) // 48, (y1 - 1 + 3 * s) // 48 + 1, dtype=np.int64)
    bzs = np.arange(z0 // 24, (z1 - 1) // 24 + 1, dtype=np.int64)
    by, bz = np.meshgrid(bys, bzs, indexing="ij")
    bx = segment_id - 1 - 16 * by - 256 * bz
    keep = (
        (bx >= (x0 + 5 * s) // 40) & (bx <= (x1 - 1 + 5 * s) // 40) & (np.mod(bx + by + bz, 7) != 0)
    )
    boxes: list[tuple[Vec3, Vec3]] = []
    for i, j, k in zip(bx[keep].tolist(), by[keep].tolist(), bz[keep].tolist(), strict=True):
        lo = (max(40 * i - 5 * s, x0), max(48 * j - 3 * s, y0), max(24 * k, z0))
        hi = (min(40 * i + 40 - 5 * s, x1), min(48 * j + 48 - 3 * s, y1), min(24 * k + 24, z1))
        start = tuple(-(-a // m) * m for a, m in zip(lo, mag, strict=True))
        end = tuple(-(-b // m) * m for b, m in zip(hi, mag, strict=True))
        if all(a < b for a, b in zip(start, end, strict=True)):
            boxes.append(((start[0], start[1], start[2]), (end[0], end[1], end[2])))
    return boxes


def f_order_bytes(values: npt.NDArray[np.generic]) -> bytes:
    """Fortran-order bytes over (c, x, y, z), little endian: how WEBKNOSSOS sends voxels."""
    return np.asfortranarray(values.astype(values.dtype.newbyteorder("<"))).tobytes(order="F")

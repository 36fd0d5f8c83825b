"""``--bbox``: which chunk files of a zarr volume mag intersect a box (no I/O but reading
the array's ``.zarray`` and its group's ``.zattrs``).

The box is in the mag's voxel coordinates, x, y, z order, end exclusive:
``X0,Y0,Z0:X1,Y1,Z1``. Axes come from the group's OME-Zarr ``multiscales`` metadata, so the
same code serves neurofs's OME-Zarr view (``z, y, x`` or ``c, z, y, x``, keys ``z/y/x``) and
WEBKNOSSOS's native layout (``c, x, y, z``, keys ``c.x.y.z``). A channel axis is taken whole.
The chunks are listed in key order (the last axis fastest).
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

SPATIAL = ("x", "y", "z")


class BoxError(ValueError):
    """A malformed box, or a directory that is not a volume mag."""


@dataclass(frozen=True)
class Box:
    start: tuple[int, int, int]  # x, y, z
    end: tuple[int, int, int]  # exclusive


def parse_box(text: str) -> Box:
    try:
        lo, hi = text.split(":")
        start = tuple(int(v) for v in lo.split(","))
        end = tuple(int(v) for v in hi.split(","))
    except ValueError:
        raise BoxError(f"--bbox takes X0,Y0,Z0:X1,Y1,Z1 (integers), not {text!r}") from None
    if len(start) != 3 or len(end) != 3:
        raise BoxError(f"--bbox takes three coordinates on each side of ':', not {text!r}")
    if any(a < 0 for a in start) or any(b <= a for a, b in zip(start, end, strict=True)):
        raise BoxError(f"--bbox needs 0 <= start < end on every axis, not {text!r}")
    return Box((start[0], start[1], start[2]), (end[0], end[1], end[2]))


@dataclass(frozen=True)
class ArrayLayout:
    axes: tuple[str, ...]  # one name per dimension, e.g. ("c", "z", "y", "x")
    shape: tuple[int, ...]
    chunks: tuple[int, ...]
    separator: str


def chunk_keys(layout: ArrayLayout, box: Box) -> Iterator[str]:
    """Keys of the chunks that hold at least one voxel of ``box`` (clipped to the array)."""
    ranges: list[range] = []
    for axis, size, chunk in zip(layout.axes, layout.shape, layout.chunks, strict=True):
        count = math.ceil(size / chunk)
        if axis in SPATIAL:
            i = SPATIAL.index(axis)
            first = box.start[i] // chunk
            last = math.ceil(box.end[i] / chunk)
            ranges.append(range(min(first, count), min(last, count)))
        else:  # a channel (or any non-spatial) axis: all of it
            ranges.append(range(count))
    for index in itertools.product(*ranges):
        yield layout.separator.join(str(i) for i in index)


def read_layout(mag_dir: Path) -> ArrayLayout:
    """The layout of the zarr array at ``mag_dir`` (its ``.zarray``, and the axes from the
    parent group's ``.zattrs``)."""
    try:
        zarray = json.loads((mag_dir / ".zarray").read_text())
    except (OSError, ValueError) as exc:
        raise BoxError(f"{mag_dir} is not a zarr volume mag (no readable .zarray: {exc})") from None
    try:
        attrs = json.loads((mag_dir.parent / ".zattrs").read_text())
        axes = tuple(a["name"] for a in attrs["multiscales"][0]["axes"])
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        raise BoxError(
            f"{mag_dir.parent} has no OME-Zarr axes in .zattrs: --bbox needs a volume mag"
        ) from None
    shape = _ints(zarray.get("shape"))
    chunks = _ints(zarray.get("chunks"))
    if not (len(axes) == len(shape) == len(chunks)) or not set(SPATIAL) <= set(axes):
        raise BoxError(f"{mag_dir}: axes {axes} do not match the array's shape {shape}")
    separator = zarray.get("dimension_separator") or "."
    if separator not in (".", "/"):
        raise BoxError(f"{mag_dir}: unknown dimension_separator {separator!r}")
    return ArrayLayout(axes, shape, chunks, separator)


def _ints(value: object) -> tuple[int, ...]:
    if not isinstance(value, Sequence) or not all(isinstance(v, int) and v > 0 for v in value):
        raise BoxError(f"not a list of positive integers: {value!r}")
    return tuple(value)


def chunk_files(mag_dir: Path, box: Box) -> list[Path]:
    """The chunk files of ``mag_dir`` that intersect ``box``, in key order. Chunks the volume
    does not hold (no file: read as the fill value) are left out."""
    layout = read_layout(mag_dir)
    paths = (mag_dir / key for key in chunk_keys(layout, box))
    return [path for path in paths if path.is_file()]

"""The WEBKNOSSOS emulator computes voxels quickly: a box in pieces (``volume.PIECE_VOXELS``),
the color formula along each axis in int16. Neither changes a voxel: the pieces equal the box
computed at once, and the formula equals its int64 definition."""

from __future__ import annotations

import random

import numpy as np
import pytest

from neurofs_emulators.webknossos import volume
from neurofs_emulators.webknossos.sample import SampleWorld

WORLD = SampleWorld("large")  # the demo's layers and the big one
LAYERS = [(d.name, spec.name) for d in WORLD.datasets.values() for spec in d.layers]


@pytest.mark.parametrize(("dataset", "layer"), LAYERS)
def test_a_box_in_pieces_equals_the_box_computed_at_once(dataset: str, layer: str) -> None:
    spec = WORLD.layer(dataset, layer)
    rng = random.Random(7)
    for mag in spec.mags:
        lo, hi = spec.bbox_in_mag(mag)
        for shape in ((64, 64, 64), (300, 250, 2), (5, 3, 90), (1, 1, 1)):
            start = tuple(
                rng.randrange(a - 8, max(a - 7, b - s + 8))
                for a, b, s in zip(lo, hi, shape, strict=True)
            )
            end = tuple(a + s for a, s in zip(start, shape, strict=True))
            got = spec.voxels(mag, start, end)  # type: ignore[arg-type]
            cs = tuple(max(s, b) for s, b in zip(start, lo, strict=True))
            ce = tuple(min(e, b) for e, b in zip(end, hi, strict=True))
            whole = np.zeros_like(got)
            if all(a < b for a, b in zip(cs, ce, strict=True)):
                at = tuple(slice(p - s, q - s) for p, q, s in zip(cs, ce, start, strict=True))
                whole[(slice(None), *at)] = spec._compute(mag, cs, ce)  # type: ignore[arg-type]
            np.testing.assert_array_equal(got, whole)


def test_pieces_tile_the_box_within_the_limit() -> None:
    for start, end in (
        ((0, 0, 0), (64, 64, 64)),
        ((3, 5, 7), (600, 500, 10)),
        ((0, 0, 0), (1, 1, 1)),
    ):
        pieces = volume._pieces(start, end)
        covered = np.zeros(tuple(e - s for s, e in zip(start, end, strict=True)), dtype=np.int8)
        for a, b in pieces:
            n = (b[0] - a[0]) * (b[1] - a[1]) * (b[2] - a[2])
            assert 0 < n <= volume.PIECE_VOXELS
            covered[tuple(slice(p - s, q - s) for p, q, s in zip(a, b, start, strict=True))] += 1
        assert (covered == 1).all()


def _color_reference(x: np.ndarray, y: np.ndarray, z: np.ndarray, s: int) -> np.ndarray:
    """The color formula of the module's docstring, on int64 boxes, term by term."""

    def tri(v: np.ndarray, p: int) -> np.ndarray:
        return np.abs(np.mod(v, 2 * p) - p)

    base = 2 * tri(x + 7 * s, 40) + 2 * tri(y + 11 * s, 56) + 5 * tri(z + 3 * s, 12)
    value = base + np.mod(7 * x + 13 * y + 29 * z + s, 4)
    membrane = (np.mod(x + 5 * s, 40) == 0) | (np.mod(y + 3 * s, 48) == 0) | (np.mod(z, 24) == 0)
    return np.where(membrane, value // 3, value)


def test_the_color_formula_computed_along_axes_equals_the_formula() -> None:
    rng = np.random.default_rng(3)
    for s in (0, 1, 2, 5):
        for _ in range(20):
            starts = rng.integers(0, 3_000_000, size=3)
            sizes = rng.integers(1, 40, size=3)
            x, y, z = np.meshgrid(
                *(np.arange(a, a + n, dtype=np.int64) for a, n in zip(starts, sizes, strict=True)),
                indexing="ij",
                sparse=True,
            )
            full = [np.broadcast_to(v, tuple(sizes)) for v in (x, y, z)]
            np.testing.assert_array_equal(volume.color(x, y, z, s), _color_reference(*full, s))
            # As rgb's green channel calls it: the axes in another order.
            np.testing.assert_array_equal(
                volume.color(y, z, x, s + 1), _color_reference(full[1], full[2], full[0], s + 1)
            )

"""Chunks cut from one box of the raw route (a line of them, or a 2×2×2 block) equal the
chunks the zarr route serves (both F order over c, x, y, z), for every dtype, channel count
and axis."""

from __future__ import annotations

import numpy as np
import pytest

from neurofs.sources.webknossos import boxes
from neurofs.sources.webknossos.volume import CHUNK, MagGeometry
from tests.unit.test_wk_volume import layer, served_array, served_chunk


def raw_box(arr: np.ndarray, corner: tuple[int, int, int], size: tuple[int, int, int]) -> bytes:
    """What the raw route sends for a box inside the data: F order over (c, x, y, z)."""
    (x, y, z), (w, h, d) = corner, size
    return arr[:, x : x + w, y : y + h, z : z + d].tobytes(order="F")


@pytest.mark.parametrize("element_class", ["uint8", "uint32", "uint24"])
@pytest.mark.parametrize("axis", [0, 1, 2])
def test_a_box_cut_along_a_line_gives_each_chunk_as_served(element_class: str, axis: int):
    g = MagGeometry(layer(element_class, top_left=(0, 0, 0), size=(128, 128, 128)), (1, 1, 1))
    arr = served_array(g)
    base = [1, 0, 2]
    chunks = []
    for i in (3, 1, 2):  # any order: a walk may go either way
        c = list(base)
        c[axis] = i
        chunks.append((c[0], c[1], c[2]))
    corner, size = boxes.chunks_box(chunks)
    assert corner[axis] == CHUNK and size[axis] == 3 * CHUNK
    assert [size[k] for k in range(3) if k != axis] == [CHUNK, CHUNK]
    cut = boxes.cut_box(g, raw_box(arr, corner, size), chunks)
    assert cut == [served_chunk(arr, g, *c) for c in chunks]


@pytest.mark.parametrize("element_class", ["uint8", "uint24"])
def test_a_block_of_chunks_cut_from_its_box_gives_each_chunk_as_served(element_class: str):
    g = MagGeometry(layer(element_class, top_left=(0, 0, 0), size=(128, 128, 128)), (1, 1, 1))
    arr = served_array(g)
    chunks = [(x, y, z) for z in (1, 2) for x in (2, 1) for y in (0, 1)]  # any order
    corner, size = boxes.chunks_box(chunks)
    assert corner == (CHUNK, 0, CHUNK) and size == (2 * CHUNK, 2 * CHUNK, 2 * CHUNK)
    cut = boxes.cut_box(g, raw_box(arr, corner, size), chunks)
    assert cut == [served_chunk(arr, g, *c) for c in chunks]


def test_chunks_that_fill_no_box_are_refused():
    with pytest.raises(ValueError):
        boxes.chunks_box([(0, 0, 0), (1, 1, 0)])  # two corners of a square
    with pytest.raises(ValueError):
        boxes.chunks_box([(0, 0, 0), (2, 0, 0)])  # a gap
    with pytest.raises(ValueError):
        boxes.chunks_box([(0, 0, 0), (1, 0, 0), (1, 0, 0)])  # one twice

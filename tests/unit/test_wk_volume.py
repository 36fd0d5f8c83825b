"""The WEBKNOSSOS volume views, checked with zarr-python on files built from served chunks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import zarr

from neurofs.sources.webknossos import volume
from neurofs.sources.webknossos.models import DataLayer, Dataset, Scale
from neurofs.sources.webknossos.volume import CHUNK, MagGeometry, mag_name, parse_mag


def layer(element_class: str, top_left=(40, 20, 8), size=(90, 70, 50)) -> DataLayer:
    return DataLayer.model_validate(
        {
            "name": "color",
            "category": "color",
            "elementClass": element_class,
            "boundingBox": {
                "topLeft": list(top_left),
                "width": size[0],
                "height": size[1],
                "depth": size[2],
            },
            "mags": [{"mag": [1, 1, 1]}, {"mag": [2, 2, 1]}],
        }
    )


def served_array(g: MagGeometry) -> np.ndarray:
    """A deterministic array over the served extent, (c, x, y, z)."""
    x, y, z = g.shape_xyz
    rng = np.random.default_rng(sum(g.mag))
    info = np.iinfo(g.dtype) if g.dtype.kind in "ui" else None
    high = min(info.max, 10_000) if info else 1000
    return rng.integers(0, high, size=(g.channels, x, y, z)).astype(g.dtype)


def served_chunk(arr: np.ndarray, g: MagGeometry, cx: int, cy: int, cz: int) -> bytes:
    """What the datastore sends: the full 32³ chunk, F order over (c, x, y, z), zero-padded."""
    out = np.zeros((g.channels, CHUNK, CHUNK, CHUNK), dtype=g.dtype)
    part = arr[
        :,
        cx * CHUNK : (cx + 1) * CHUNK,
        cy * CHUNK : (cy + 1) * CHUNK,
        cz * CHUNK : (cz + 1) * CHUNK,
    ]
    out[:, : part.shape[1], : part.shape[2], : part.shape[3]] = part
    return out.tobytes(order="F")


@pytest.mark.parametrize("element_class", ["uint8", "uint32", "uint24"])
@pytest.mark.parametrize("mag", [(1, 1, 1), (2, 2, 1)])
def test_ome_view_equals_the_served_array(tmp_path: Path, element_class: str, mag):
    g = MagGeometry(layer(element_class), mag)
    arr = served_array(g)
    root = tmp_path / "view.ome.zarr"
    (root / mag_name(mag)).mkdir(parents=True)
    (root / ".zgroup").write_bytes(volume.dumps({"zarr_format": 2}))
    scale = Scale(factor=(4.0, 4.0, 40.0), unit="nanometer")
    (root / ".zattrs").write_bytes(volume.dumps(volume.ome_zattrs(g.layer, [mag], scale, "c")))
    (root / mag_name(mag) / ".zarray").write_bytes(volume.dumps(volume.ome_zarray(g)))
    ox, oy, oz = g.ome_chunk_counts
    for x in range(ox):
        for y in range(oy):
            for z in range(oz):
                served = {xyz: served_chunk(arr, g, *xyz) for xyz in g.served_chunks((x, y, z))}
                assert 1 <= len(served) <= 8
                chunk = volume.ome_chunk(g, (x, y, z), served)
                assert len(chunk) == g.ome_chunk_bytes
                channel = ["0"] if g.channels > 1 else []  # the c axis has one chunk
                path = root.joinpath(mag_name(mag), *channel, str(z), str(y), str(x))
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(chunk)
    got = zarr.open_group(str(root), mode="r")[mag_name(mag)][...]
    expected = arr.transpose(0, 3, 2, 1)  # (c, z, y, x)
    if g.channels == 1:
        expected = expected[0]
    np.testing.assert_array_equal(got, expected)
    multiscale = json.loads((root / ".zattrs").read_text())["multiscales"][0]
    scale_of_mag = multiscale["datasets"][0]["coordinateTransformations"][0]["scale"]
    assert scale_of_mag[-3:] == [40.0 * mag[2], 4.0 * mag[1], 4.0 * mag[0]]


def test_native_view_is_readable_as_served(tmp_path: Path):
    g = MagGeometry(layer("uint16"), (1, 1, 1))
    arr = served_array(g)
    root = tmp_path / "layer" / "1"
    root.mkdir(parents=True)
    (root / ".zarray").write_bytes(volume.dumps(volume.native_zarray(g)))
    cx, cy, cz = g.chunk_counts
    for x in range(cx):
        for y in range(cy):
            for z in range(cz):
                (root / f"0.{x}.{y}.{z}").write_bytes(served_chunk(arr, g, x, y, z))
    got = zarr.open_array(str(root), mode="r")[...]
    np.testing.assert_array_equal(got, arr)


def test_geometry_starts_at_zero_and_box_at_top_left():
    g = MagGeometry(layer("uint8", top_left=(40, 20, 8), size=(90, 70, 50)), (2, 2, 1))
    assert g.shape_xyz == (65, 45, 58)  # ceil((40+90)/2), ceil((20+70)/2), 8+50
    assert g.box == ((20, 10, 8), (65, 45, 58))
    assert g.raw_shape_xyz == (45, 35, 50)
    assert g.raw_size == 45 * 35 * 50


def test_headers_describe_the_raw_file():
    g = MagGeometry(layer("uint24"), (2, 2, 1))
    scale = Scale(factor=(4.0, 4.0, 40.0), unit="nanometer")
    nhdr = volume.nrrd_header(g, scale, "2-2-1.raw").decode()
    assert "type: uint8" in nhdr and "dimension: 4" in nhdr and "sizes: 3 45 35 50" in nhdr
    assert "data file: 2-2-1.raw" in nhdr and "endian: little" in nhdr
    mhd = volume.mhd_header(g, scale, "2-2-1.raw").decode()
    assert "DimSize = 45 35 50" in mhd and "ElementSpacing = 8 8 40" in mhd
    assert "Offset = 160 80 320" in mhd and "ElementNumberOfChannels = 3" in mhd


def test_mag_names():
    assert mag_name((1, 1, 1)) == "1" and mag_name((2, 2, 1)) == "2-2-1"
    assert parse_mag("4") == (4, 4, 4) and parse_mag("2-2-1") == (2, 2, 1)
    assert parse_mag("x") is None and parse_mag("1-2") is None


class FakeApi:
    """Serves chunks of one array like the datastore does (unit test of the assembly only)."""

    def __init__(self, arr: np.ndarray, g: MagGeometry) -> None:
        self.arr, self.g, self.requests = arr, g, 0

    async def chunk(self, dataset, layer, mag, key, size, *, identity):
        self.requests += 1
        _, x, y, z = (int(p) for p in key.split("."))
        if (x, y, z) == (0, 0, 0):
            return None  # missing on the server: reads as zeros
        return served_chunk(self.arr, self.g, x, y, z)


@pytest.mark.parametrize("element_class", ["uint8", "uint24", "uint32"])
async def test_raw_volume_is_the_bounding_box_x_fastest(tmp_path: Path, element_class: str):
    from neurofs.io.cache import BlockCache
    from neurofs.io.fetcher import Fetcher
    from neurofs.io.stats import Stats
    from neurofs.sources.webknossos.models import Dataset
    from neurofs.sources.webknossos.tree import RawVolume, WkContext, WkOptions

    g = MagGeometry(layer(element_class, top_left=(10, 5, 3), size=(70, 40, 45)), (1, 1, 1))
    arr = served_array(g)
    arr[:, :CHUNK, :CHUNK, :CHUNK] = 0  # the missing chunk
    dataset = Dataset.model_validate(
        {"id": "d1", "name": "d", "owningOrganization": "o", "dataStore": {"url": "http://ds"}}
    )
    cache = BlockCache(tmp_path / "cache", 1 << 30)
    api = FakeApi(arr, g)
    raw = RawVolume(WkContext(api, Fetcher(cache, Stats()), WkOptions()), dataset, g)  # type: ignore[arg-type]
    (x0, y0, z0), (x1, y1, z1) = g.box
    expected = arr[:, x0:x1, y0:y1, z0:z1].transpose(3, 2, 1, 0)  # (z, y, x, c)
    data = await raw.fetch(0, raw.size)
    assert len(data) == raw.size
    got = np.frombuffer(data, dtype=g.dtype).reshape(expected.shape)
    np.testing.assert_array_equal(got, expected)
    # An arbitrary byte range is the same slice of the whole.
    assert await raw.fetch(12345, 67890) == data[12345:67890]
    cache.close()


def test_datasource_properties_rewrites_the_stored_layers_as_zarr_streaming():
    """A dataset answer whose layers are Zarr 3 at absolute paths, with view defaults and
    attachments, becomes the datastore's zarr-streaming file for the mount's directories."""
    stored = {
        "id": "66a0d0000000000000000001",
        "name": "demo",
        "owningOrganization": "lab",
        "dataStore": {"url": "http://127.0.0.1:1"},
        "dataSource": {
            "id": {"name": "demo", "team": "lab"},
            "scale": {"factor": [11.24, 11.24, 28.0], "unit": "nanometer"},
            "dataLayers": [
                {
                    "name": "seg/ids",
                    "category": "segmentation",
                    "elementClass": "uint32",
                    "dataFormat": "zarr3",
                    "boundingBox": {"topLeft": [0, 0, 0], "width": 64, "height": 64, "depth": 32},
                    "mags": [{"mag": [1, 1, 1], "path": "/srv/demo/seg/1", "axisOrder": {}}],
                    "resolutions": [[1, 1, 1]],
                    "largestSegmentId": 17,
                    "defaultViewConfiguration": {"alpha": 20},
                    "attachments": {
                        "meshes": [{"name": "m", "path": "file:///m.hdf5", "dataFormat": "hdf5"}],
                        "agglomerates": [],
                        "segmentIndex": {"name": "s", "path": "/s.hdf5", "dataFormat": "hdf5"},
                        "connectomes": [],
                    },
                }
            ],
        },
    }
    dataset = Dataset.model_validate(stored)
    seg = dataset.data_source.data_layers[0]
    assert seg.attachments is not None and seg.attachments.meshes[0].data_format == "hdf5"
    props = volume.datasource_properties(dataset, {"seg/ids": "seg∕ids"})
    assert props == {
        "id": {"name": "demo", "team": "lab"},
        "dataLayers": [
            {
                "name": "seg/ids",
                "category": "segmentation",
                "boundingBox": {"topLeft": [0, 0, 0], "width": 64, "height": 64, "depth": 32},
                "elementClass": "uint32",
                "dataFormat": "zarr",
                "mags": [
                    {
                        "mag": [1, 1, 1],
                        "path": "./seg∕ids/1",
                        "axisOrder": {"c": 0, "x": 1, "y": 2, "z": 3},
                    }
                ],
                "resolutions": [[1, 1, 1]],
                "numChannels": 1,
                "largestSegmentId": 17,
                "defaultViewConfiguration": {"alpha": 20},
            }
        ],
        "scale": {"factor": [11.24, 11.24, 28.0], "unit": "nanometer"},
    }


@pytest.mark.parametrize("first", ["raw", "chunks"])
async def test_a_voxel_read_in_both_views_is_fetched_once_and_stored_once(
    tmp_path: Path, first: str
):
    """The plain volume has no cache entries of its own: it reads through the chunks'."""
    from neurofs.io.cache import BlockCache
    from neurofs.io.fetcher import Fetcher
    from neurofs.io.readahead import ReadPattern
    from neurofs.io.stats import Stats
    from neurofs.sources.webknossos.models import Dataset
    from neurofs.sources.webknossos.tree import RawVolume, WkChunk, WkContext, WkOptions

    class CountingApi(FakeApi):
        def __init__(self, arr: np.ndarray, g: MagGeometry) -> None:
            super().__init__(arr, g)
            self.keys: list[str] = []

        async def chunk(self, dataset, layer, mag, key, size, *, identity):
            self.keys.append(key)
            return await super().chunk(dataset, layer, mag, key, size, identity=identity)

    g = MagGeometry(layer("uint24", top_left=(10, 5, 3), size=(70, 40, 45)), (1, 1, 1))
    arr = served_array(g)
    arr[:, :CHUNK, :CHUNK, :CHUNK] = 0  # the missing chunk
    dataset = Dataset.model_validate(
        {"id": "d1", "name": "d", "owningOrganization": "o", "dataStore": {"url": "http://ds"}}
    )
    cache = BlockCache(tmp_path / "cache", 1 << 30)
    fetcher = Fetcher(cache, Stats())
    api = CountingApi(arr, g)
    ctx = WkContext(api, fetcher, WkOptions())  # type: ignore[arg-type]
    raw = RawVolume(ctx, dataset, g)
    (x0, y0, z0), (x1, y1, z1) = g.box
    box_chunks = [
        (x, y, z)
        for z in range(z0 // CHUNK, (z1 - 1) // CHUNK + 1)
        for y in range(y0 // CHUNK, (y1 - 1) // CHUNK + 1)
        for x in range(x0 // CHUNK, (x1 - 1) // CHUNK + 1)
    ]
    expected = arr[:, x0:x1, y0:y1, z0:z1].transpose(3, 2, 1, 0).tobytes()

    async def read_raw() -> None:
        # As the plain volume file reads it: through the fetcher, in kernel-sized pieces.
        pattern, got = ReadPattern(), b""
        for offset in range(0, raw.size, 128 * 1024):
            got += await fetcher.read(raw, offset, 128 * 1024, pattern)
        assert got == expected

    async def read_chunks() -> None:
        for xyz in box_chunks:
            chunk = WkChunk(ctx, dataset, g, xyz)
            data = await fetcher.read(chunk, 0, chunk.size, ReadPattern(grid=chunk.grid()))
            assert data == (
                bytes(g.chunk_bytes) if xyz == (0, 0, 0) else served_chunk(arr, g, *xyz)
            )

    for step in (read_raw, read_chunks) if first == "raw" else (read_chunks, read_raw):
        await step()
    assert sorted(api.keys) == sorted(f"0.{x}.{y}.{z}" for x, y, z in box_chunks)
    stored = cache.stats()
    assert stored.stored_blocks == len(box_chunks)
    assert stored.stored_bytes == len(box_chunks) * g.chunk_bytes
    assert set(cache.summary().by_kind) == {"wk"}
    cache.close()


@pytest.mark.parametrize("element_class", ["uint8", "uint24"])
async def test_an_ome_chunk_is_its_served_chunks_in_one_box_stored_as_theirs(
    tmp_path: Path, element_class: str
):
    """An OME-Zarr chunk costs one box request for its 2×2×2 served chunks, each stored as
    the native view's chunk: reading those after it costs nothing, and reading it again
    costs nothing; after a restart it comes from the disk. One at the array's end covers
    fewer served chunks: one box of those, the rest of the chunk the fill value."""
    from neurofs.io.cache import BlockCache
    from neurofs.io.fetcher import Fetcher
    from neurofs.io.readahead import ReadPattern
    from neurofs.io.stats import Stats
    from neurofs.sources.webknossos.models import Dataset
    from neurofs.sources.webknossos.tree import OmeChunk, WkChunk, WkContext, WkOptions

    class BoxApi(FakeApi):
        def __init__(self, arr: np.ndarray, g: MagGeometry) -> None:
            super().__init__(arr, g)
            self.boxes: list[tuple[tuple[int, int, int], tuple[int, int, int]]] = []

        async def cuboid(self, dataset, layer, mag, corner, size, nbytes, *, identity):
            self.boxes.append((corner, size))
            (x, y, z), (w, h, d) = corner, size
            box = np.zeros((self.g.channels, w, h, d), dtype=self.g.dtype)  # zeros past it
            part = self.arr[:, x : x + w, y : y + h, z : z + d]
            box[:, : part.shape[1], : part.shape[2], : part.shape[3]] = part
            assert len(box.tobytes()) == nbytes
            return box.tobytes(order="F")

    g = MagGeometry(layer(element_class, top_left=(0, 0, 0), size=(128, 96, 100)), (1, 1, 1))
    arr = served_array(g)
    dataset = Dataset.model_validate(
        {"id": "d1", "name": "d", "owningOrganization": "o", "dataStore": {"url": "http://ds"}}
    )
    cache = BlockCache(tmp_path / "cache", 1 << 30)
    fetcher = Fetcher(cache, Stats())
    api = BoxApi(arr, g)
    ctx = WkContext(api, fetcher, WkOptions())  # type: ignore[arg-type]
    expected = arr.transpose(0, 3, 2, 1)  # (c, z, y, x)

    def ome_array(data: bytes) -> np.ndarray:
        side = volume.OME_CHUNK
        return np.frombuffer(data, dtype=g.dtype).reshape((g.channels, side, side, side))

    inner = OmeChunk(ctx, dataset, g, (1, 0, 0))  # x 64..128, y 0..64, z 0..64: inside
    data = await fetcher.read(inner, 0, inner.size, ReadPattern())
    assert len(data) == inner.size == g.ome_chunk_bytes
    np.testing.assert_array_equal(ome_array(data), expected[:, 0:64, 0:64, 64:128])
    assert api.boxes == [((64, 0, 0), (64, 64, 64))] and api.requests == 0
    for xyz in g.served_chunks((1, 0, 0)):  # the native view's chunks: held
        native = WkChunk(ctx, dataset, g, xyz)
        assert await fetcher.read(native, 0, native.size) == served_chunk(arr, g, *xyz)
    assert await fetcher.read(inner, 1000, 5000, ReadPattern()) == data[1000:6000]
    assert len(api.boxes) == 1 and api.requests == 0
    # At the array's end: y 64..96 is one row of chunks, z 64..128 two (the second reaching
    # past the bounding box's end at 100): four served chunks, one box.
    edge = OmeChunk(ctx, dataset, g, (0, 1, 1))
    assert len(g.served_chunks((0, 1, 1))) == 4
    got = ome_array(await fetcher.read(edge, 0, edge.size, ReadPattern()))
    padded = np.zeros((g.channels, 64, 64, 64), dtype=g.dtype)
    padded[:, :36, :32, :] = expected[:, 64:100, 64:96, 0:64]
    np.testing.assert_array_equal(got, padded)
    assert api.boxes[1:] == [((0, 64, 64), (64, 32, 64))] and api.requests == 0
    cache.close()
    # After a restart: from the disk, the eight served chunks read together.
    cache = BlockCache(tmp_path / "cache", 1 << 30)
    stats = Stats()
    ctx = WkContext(api, Fetcher(cache, stats), WkOptions())  # type: ignore[arg-type]
    again = OmeChunk(ctx, dataset, g, (1, 0, 0))
    assert await ctx.fetcher.read(again, 0, again.size, ReadPattern()) == data
    assert len(api.boxes) == 2 and api.requests == 0
    assert stats.get("cache_hits") == 8
    cache.close()


@pytest.mark.parametrize("element_class", ["uint8", "uint24"])
@pytest.mark.parametrize("max_side", [512, 16])
def test_raw_plan_covers_exactly_the_read_in_boxes_within_the_limit(
    element_class: str, max_side: int
):
    """The boxes of a read, cut from the served array as the datastore would send them and
    placed, hold the read's bytes at ``skip``: every box within ``max_side`` voxels a side,
    each byte of the rows fetched once, and no more than a row of extra bytes at each end."""
    g = MagGeometry(layer(element_class, top_left=(40, 20, 8), size=(90, 70, 50)), (2, 2, 1))
    arr = served_array(g)
    (x0, y0, z0), (x1, y1, z1) = g.box
    raw = arr[:, x0:x1, y0:y1, z0:z1].tobytes(order="F")
    assert len(raw) == g.raw_size
    row = (x1 - x0) * g.voxel_bytes
    plane = row * (y1 - y0)
    rng = np.random.default_rng(7)
    cases = [(0, 1), (0, g.raw_size), (plane - 1, plane + 1), (row, 3 * plane), (5, 5 + row)]
    cases += [tuple(sorted(rng.integers(0, g.raw_size, 2))) for _ in range(200)]
    for start, end in cases:
        if start == end:
            continue
        plan = volume.raw_plan(g, start, end, max_side)
        buffer = np.full(plan.nbytes, 0xEE, dtype=np.uint8)
        for box in plan.boxes:
            assert all(0 < side <= max_side for side in box.size)
            (bx0, bx1), (by0, by1), (bz0, bz1) = box.x, box.y, box.z
            part = arr[:, bx0:bx1, by0:by1, bz0:bz1].tobytes(order="F")
            assert len(part) == box.nbytes(g)
            box.place(g, buffer, part)
        assert sum(box.nbytes(g) for box in plan.boxes) == plan.nbytes
        assert buffer.tobytes()[plan.skip : plan.skip + end - start] == raw[start:end]
        assert plan.nbytes - (end - start) < 2 * row
        rows = {box.rows for box in plan.boxes}
        assert 1 <= len(rows) <= 3
        if max_side >= 90:  # rows no wider than a box: one box per set of rows
            assert len(plan.boxes) == len(rows)


def test_a_megabyte_of_a_wide_plane_is_five_boxes_of_whole_rows():
    """Rows 2,500 voxels wide (mag 16 of a 40,000-wide layer) cost ceil(2500 / 512) = 5
    boxes per band of up to 512 rows: the fewest the datastore's limit allows."""
    big = layer("uint8", top_left=(0, 0, 0), size=(40_000, 40_000, 10_000))
    g = MagGeometry(big, (16, 16, 16))
    plan = volume.raw_plan(g, 0, 1 << 20)
    cuts = [(0, 512), (512, 1024), (1024, 1536), (1536, 2048), (2048, 2500)]
    assert [box.x for box in plan.boxes] == cuts
    assert {box.y for box in plan.boxes} == {(0, 420)} and {box.z for box in plan.boxes} == {(0, 1)}
    assert plan.nbytes == 420 * 2500 and plan.skip == 0


def test_a_computed_listing_makes_only_the_entries_asked_for():
    from neurofs.tree.nodes import ComputedListing, Symlink

    made: list[int] = []

    def node_at(i: int) -> Symlink:
        made.append(i)
        return Symlink(("d", f"e{i}"), "t")

    listing = ComputedListing(10**9, node_at)
    assert len(listing) == 10**9
    assert [n.name for n in listing[5:8]] == ["e5", "e6", "e7"]
    assert listing[-1].name == f"e{10**9 - 1}"
    assert made == [5, 6, 7, 10**9 - 1]
    with pytest.raises(IndexError):
        listing[10**9]

"""Volume geometry of WEBKNOSSOS layers and the views neurofs builds from it (no I/O here).

The datastore serves each mag as a Zarr v2 array over (c, x, y, z), Fortran order,
uncompressed, 32³ chunks, starting at voxel 0 (not at the bounding box's top-left).

- The native view (``<layer>/``) repeats that array as served.
- The OME-Zarr view (``<layer>.ome.zarr/``) is an OME-NGFF 0.4 image with axes z, y, x (and c
  first for multi-channel layers), C order, in chunks of ``OME_CHUNK``³: each is the 2×2×2
  served chunks it covers, put together (``ome_chunk``). F order over (c, x, y, z) is C
  order over (z, y, x, c), so a served chunk is a block of it as is; multi-channel chunks
  are transposed to put c first.
- Plain volumes (``<mag>.raw`` with ``.nhdr`` and ``.mhd`` headers) cover the layer's bounding
  box at that mag, x fastest, then y, then z (channels innermost), little-endian.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from neurofs.sources.webknossos.models import DataLayer, Dataset, Scale
from neurofs.tree.render import json_text

CHUNK = 32
# The OME-Zarr view's chunk side: 2×2×2 served chunks, fetched in one box. A zarr reader pays
# a few file system round trips per chunk file (lookup, open, read, flush, release), and on
# a region of 32³ chunks those, not the network, bounded it (a 256³ region: 512 chunk files,
# 1.2 s against the official client's 0.8 s); 64³ is a eighth as many files and requests.
OME_CHUNK = 2 * CHUNK
Mag = tuple[int, int, int]


def mag_name(mag: Mag) -> str:
    """'1' for (1, 1, 1), '2-2-1' for anisotropic mags: how WEBKNOSSOS names mags."""
    return str(mag[0]) if mag[0] == mag[1] == mag[2] else "-".join(map(str, mag))


def parse_mag(name: str) -> Mag | None:
    parts = name.split("-")
    if len(parts) == 1 and parts[0].isdigit():
        v = int(parts[0])
        return (v, v, v)
    if len(parts) == 3 and all(p.isdigit() for p in parts):
        return (int(parts[0]), int(parts[1]), int(parts[2]))
    return None


@dataclass(frozen=True)
class MagGeometry:
    """One mag of one layer, in voxels of that mag."""

    layer: DataLayer
    mag: Mag

    @property
    def channels(self) -> int:
        return self.layer.channels

    @property
    def dtype(self) -> np.dtype[Any]:
        return self.layer.dtype

    @property
    def shape_xyz(self) -> tuple[int, int, int]:
        """The served array's extent: from voxel 0 to the bounding box's end."""
        end = self.layer.bounding_box.end
        return tuple(math.ceil(e / m) for e, m in zip(end, self.mag, strict=True))  # type: ignore[return-value]

    @property
    def box(self) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
        """The bounding box at this mag: (start, end) per axis x, y, z."""
        bb = self.layer.bounding_box
        start = tuple(t // m for t, m in zip(bb.top_left, self.mag, strict=True))
        return start, self.shape_xyz  # type: ignore[return-value]

    @property
    def chunk_counts(self) -> tuple[int, int, int]:
        return tuple(math.ceil(s / CHUNK) for s in self.shape_xyz)  # type: ignore[return-value]

    @property
    def chunk_bytes(self) -> int:
        return CHUNK**3 * self.channels * self.dtype.itemsize

    @property
    def ome_chunk_counts(self) -> tuple[int, int, int]:
        return tuple(math.ceil(s / OME_CHUNK) for s in self.shape_xyz)  # type: ignore[return-value]

    @property
    def ome_chunk_bytes(self) -> int:
        return OME_CHUNK**3 * self.channels * self.dtype.itemsize

    def served_chunks(self, ome_xyz: tuple[int, int, int]) -> list[tuple[int, int, int]]:
        """The served chunks an OME-Zarr chunk covers (x, y, z indexes; up to 2×2×2, fewer at
        the array's end)."""
        per = OME_CHUNK // CHUNK
        ox, oy, oz = ome_xyz
        return [
            (x, y, z)
            for x in range(ox * per, ox * per + per)
            for y in range(oy * per, oy * per + per)
            for z in range(oz * per, oz * per + per)
            if self.has_chunk(x, y, z)
        ]

    def has_chunk(self, x: int, y: int, z: int) -> bool:
        cx, cy, cz = self.chunk_counts
        return 0 <= x < cx and 0 <= y < cy and 0 <= z < cz

    # ---------------------------------------------------------------- plain volume

    @property
    def raw_shape_xyz(self) -> tuple[int, int, int]:
        start, end = self.box
        return tuple(e - s for s, e in zip(start, end, strict=True))  # type: ignore[return-value]

    @property
    def voxel_bytes(self) -> int:
        return self.channels * self.dtype.itemsize

    @property
    def raw_size(self) -> int:
        x, y, z = self.raw_shape_xyz
        return x * y * z * self.voxel_bytes


@dataclass(frozen=True)
class RawRegion:
    """The voxel rows of a plain volume that hold a byte range: z in ``z``, y in ``y``
    (half-open, in voxels of the mag, like the box), x over the whole box; the range starts
    ``skip`` bytes into them."""

    z: tuple[int, int]
    y: tuple[int, int]
    skip: int


def raw_region(g: MagGeometry, start: int, end: int) -> RawRegion:
    """The rows holding bytes [start, end) of the plain volume: within one z plane only the
    rows needed, across planes whole planes."""
    (x0, y0, z0), (x1, y1, _) = g.box
    row = (x1 - x0) * g.voxel_bytes
    plane = row * (y1 - y0)
    first_z, last_z = start // plane, (end - 1) // plane
    if first_z == last_z:
        first_y, end_y = (start % plane) // row, ((end - 1) % plane) // row + 1
    else:
        first_y, end_y = 0, y1 - y0
    skip = start - first_z * plane - first_y * row
    return RawRegion((z0 + first_z, z0 + last_z + 1), (y0 + first_y, y0 + end_y), skip)


# The largest side of a box the datastore's raw route serves, in voxels of the mag: its
# Cuboid.hasValidDimensions (scalableminds/webknossos, webknossos-datastore/app/com/
# scalableminds/webknossos/datastore/models/requests/Cuboid.scala) takes 1 to 512 voxels per
# side and nothing else (no total-voxel cap, no configuration key). A larger box is not an
# HTTP error: BinaryDataService drops the failed request as a missing bucket and answers
# 200 with no bytes and ``MISSING-BUCKETS: [0]``. The official client downloads in 512³
# boxes for the same reason (webknossos-libs, webknossos/client/_download_dataset.py).
BOX_MAX_SIDE = 512


@dataclass(frozen=True)
class RawRows:
    """Whole rows of a plain volume: z in ``z``, y in ``y`` (half-open, voxels of the mag), x
    over the whole bounding box; their bytes are one contiguous range of the plain volume
    (x fastest, then y, then z), found ``offset`` bytes into the read's buffer."""

    z: tuple[int, int]
    y: tuple[int, int]
    offset: int = 0

    def nbytes(self, g: MagGeometry) -> int:
        rows = (self.z[1] - self.z[0]) * (self.y[1] - self.y[0])
        return rows * g.raw_shape_xyz[0] * g.voxel_bytes


@dataclass(frozen=True)
class RawBox:
    """One request of the datastore's raw route: voxels ``x``, ``y``, ``z`` (half-open,
    voxels of the mag), each side at most ``BOX_MAX_SIDE``; a tile of ``rows``."""

    rows: RawRows
    x: tuple[int, int]
    y: tuple[int, int]
    z: tuple[int, int]

    @property
    def corner(self) -> tuple[int, int, int]:
        return (self.x[0], self.y[0], self.z[0])

    @property
    def size(self) -> tuple[int, int, int]:
        return (self.x[1] - self.x[0], self.y[1] - self.y[0], self.z[1] - self.z[0])

    def nbytes(self, g: MagGeometry) -> int:
        w, h, d = self.size
        return w * h * d * g.voxel_bytes

    def place(self, g: MagGeometry, buffer: np.ndarray[Any, Any], data: bytes) -> None:
        """Copy the box's bytes as the datastore sends them (F order over c, x, y, z: C order
        over z, y, x, c) into its rows in ``buffer``, the read's bytes."""
        (x0, _, _), (x1, _, _) = g.box
        vb = g.voxel_bytes
        rows = self.rows
        depth, height = rows.z[1] - rows.z[0], rows.y[1] - rows.y[0]
        view = buffer[rows.offset : rows.offset + rows.nbytes(g)].reshape(
            depth, height, (x1 - x0) * vb
        )
        w, h, d = self.size
        tile = np.frombuffer(data, dtype=np.uint8).reshape(d, h, w * vb)
        za, ya, xa = self.z[0] - rows.z[0], self.y[0] - rows.y[0], (self.x[0] - x0) * vb
        view[za : za + d, ya : ya + h, xa : xa + w * vb] = tile


@dataclass(frozen=True)
class RawPlan:
    """The datastore requests that read bytes [start, end) of a plain volume: ``boxes`` fill
    a buffer of ``nbytes`` (the rows holding the range), where the range starts at ``skip``."""

    boxes: list[RawBox]
    nbytes: int
    skip: int


def raw_rows(g: MagGeometry, start: int, end: int) -> tuple[list[RawRows], int]:
    """The rows whose bytes, concatenated, cover bytes [start, end) of the plain volume, and
    where the range starts in them. At most three sets: the rows of a partial first plane,
    the whole planes between, the rows of a partial last plane; so a read costs bytes in
    proportion to its own size (plus less than a row at each end)."""
    (_, y0, z0), (_, y1, _) = g.box
    region = raw_region(g, start, end)
    (za, zb), (ya, yb) = region.z, region.y
    if zb - za == 1:
        return [RawRows((za, zb), (ya, yb))], region.skip
    height = y1 - y0
    row = g.raw_shape_xyz[0] * g.voxel_bytes
    plane = row * height
    # raw_region widened a read across planes to whole planes: narrow both ends to rows.
    first_row = (start % plane) // row
    last_row = ((end - 1) % plane) // row + 1
    spans: list[tuple[tuple[int, int], tuple[int, int]]] = []
    middle = [za, zb]
    if first_row > 0:
        spans.append(((za, za + 1), (y0 + first_row, y1)))
        middle[0] = za + 1
    if last_row < height:
        middle[1] = zb - 1
    if middle[0] < middle[1]:
        spans.append(((middle[0], middle[1]), (y0, y1)))
    if last_row < height:
        spans.append(((zb - 1, zb), (y0, y0 + last_row)))
    rows: list[RawRows] = []
    offset = 0
    for z, y in spans:
        rows.append(RawRows(z, y, offset))
        offset += rows[-1].nbytes(g)
    skip = start - ((za - z0) * plane + first_row * row)
    return rows, skip


def _cuts(a: int, b: int, side: int, aligned: bool) -> list[tuple[int, int]]:
    """[a, b) in pieces of at most ``side``: cut at multiples of ``side`` when ``aligned``
    (the datastore reads whole 32³ buckets, so aligned boxes touch no extra ones), else
    every ``side`` from ``a`` (so a read of fewer rows than ``side`` stays one piece)."""
    cuts = [a]
    nxt = (a // side + 1) * side if aligned else a + side
    while nxt < b:
        cuts.append(nxt)
        nxt += side
    cuts.append(b)
    return list(itertools.pairwise(cuts))


def raw_plan(g: MagGeometry, start: int, end: int, max_side: int = BOX_MAX_SIDE) -> RawPlan:
    """The boxes of the datastore's raw route that read bytes [start, end) of the plain
    volume, each within the datastore's limit of ``max_side`` voxels a side: the rows of
    ``raw_rows``, x cut at multiples of ``max_side``, y and z every ``max_side`` from the
    rows' start. Every byte requested is a byte of those rows, fetched once."""
    rows, skip = raw_rows(g, start, end)
    (x0, _, _), (x1, _, _) = g.box
    boxes = [
        RawBox(r, x, y, z)
        for r in rows
        for z in _cuts(*r.z, max_side, aligned=False)
        for y in _cuts(*r.y, max_side, aligned=False)
        for x in _cuts(x0, x1, max_side, aligned=True)
    ]
    return RawPlan(boxes, sum(r.nbytes(g) for r in rows), skip)


def region_chunks(g: MagGeometry, region: RawRegion) -> list[tuple[int, int, int]]:
    """Indices (x, y, z) of the chunks that hold voxels of ``region``."""
    (x0, _, _), (x1, _, _) = g.box
    (za, zb), (ya, yb) = region.z, region.y
    return [
        (cx, cy, cz)
        for cz in range(za // CHUNK, (zb - 1) // CHUNK + 1)
        for cy in range(ya // CHUNK, (yb - 1) // CHUNK + 1)
        for cx in range(x0 // CHUNK, (x1 - 1) // CHUNK + 1)
    ]


# ---------------------------------------------------------------- zarr metadata


def _dtype_str(dtype: np.dtype[Any]) -> str:
    return dtype.str if dtype.itemsize > 1 else "|" + dtype.str[1:]


def native_zarray(g: MagGeometry) -> dict[str, Any]:
    x, y, z = g.shape_xyz
    return {
        "zarr_format": 2,
        "shape": [g.channels, x, y, z],
        "chunks": [g.channels, CHUNK, CHUNK, CHUNK],
        "dtype": _dtype_str(g.dtype),
        "compressor": None,
        "filters": None,
        "order": "F",
        "fill_value": 0,
        "dimension_separator": ".",
    }


def ome_zarray(g: MagGeometry) -> dict[str, Any]:
    x, y, z = g.shape_xyz
    multi = g.channels > 1
    return {
        "zarr_format": 2,
        "shape": ([g.channels] if multi else []) + [z, y, x],
        "chunks": ([g.channels] if multi else []) + [OME_CHUNK, OME_CHUNK, OME_CHUNK],
        "dtype": _dtype_str(g.dtype),
        "compressor": None,
        "filters": None,
        "order": "C",
        "fill_value": 0,
        "dimension_separator": "/",
    }


def _unit(scale: Scale | None) -> str:
    return scale.unit if scale is not None else "nanometer"


def ome_zattrs(
    layer: DataLayer,
    mags: list[Mag],
    scale: Scale | None,
    name: str,
    source_image: str | None = None,
) -> dict[str, Any]:
    """The image group's ``.zattrs``. A segmentation layer also carries ``image-label``
    metadata; inside an image's ``labels/`` group its ``source.image`` is ``source_image``,
    the path back to that image (``../../``). Standing alone (``<seg>.ome.zarr``) it labels
    no image there, and OME-Zarr 0.4 lets ``source`` be left out."""
    vx, vy, vz = scale.factor if scale is not None else (1.0, 1.0, 1.0)
    unit = _unit(scale)
    multi = layer.channels > 1
    axes: list[dict[str, str]] = [
        {"name": "z", "type": "space", "unit": unit},
        {"name": "y", "type": "space", "unit": unit},
        {"name": "x", "type": "space", "unit": unit},
    ]
    if multi:
        axes.insert(0, {"name": "c", "type": "channel"})
    datasets = []
    for mag in mags:
        factor = [vz * mag[2], vy * mag[1], vx * mag[0]]
        datasets.append(
            {
                "path": mag_name(mag),
                "coordinateTransformations": [
                    {"type": "scale", "scale": ([1.0] if multi else []) + factor}
                ],
            }
        )
    attrs: dict[str, Any] = {
        "multiscales": [{"version": "0.4", "name": name, "axes": axes, "datasets": datasets}]
    }
    if layer.category == "segmentation":
        label: dict[str, Any] = {"version": "0.4"}
        if source_image is not None:
            label["source"] = {"image": source_image}
        attrs["image-label"] = label
    return attrs


def label_layers(image: DataLayer, layers: Sequence[DataLayer]) -> list[DataLayer]:
    """The segmentation layers an image layer's OME-Zarr ``labels/`` group lists: those with
    the same mags, for single-channel images (a label image has the image's axes, and
    segmentations have no channel axis)."""
    if image.category == "segmentation" or image.channels > 1:
        return []
    mags = sorted(m.mag for m in image.mags)
    return [
        layer
        for layer in layers
        if layer.category == "segmentation" and sorted(m.mag for m in layer.mags) == mags
    ]


def native_zattrs(layer: DataLayer, mags: list[Mag], scale: Scale | None) -> dict[str, Any]:
    """The layer's ``.zattrs`` as the datastore serves it: axes c, x, y, z."""
    vx, vy, vz = scale.factor if scale is not None else (1.0, 1.0, 1.0)
    unit = _unit(scale)
    axes = [{"name": "c", "type": "channel"}] + [
        {"name": a, "type": "space", "unit": unit} for a in ("x", "y", "z")
    ]
    datasets = [
        {
            "path": mag_name(m),
            "coordinateTransformations": [
                {"type": "scale", "scale": [1.0, vx * m[0], vy * m[1], vz * m[2]]}
            ],
        }
        for m in mags
    ]
    return {
        "multiscales": [{"version": "0.4", "name": layer.name, "axes": axes, "datasets": datasets}]
    }


# The axes of every served mag array, as the datastore names them in datasource-properties.json.
AXIS_ORDER_CXYZ = {"c": 0, "x": 1, "y": 2, "z": 3}


def datasource_properties(dataset: Dataset, layer_dirs: Mapping[str, str]) -> dict[str, Any]:
    """The dataset directory's ``datasource-properties.json``, as the datastore's zarr
    streaming writes it (scalableminds/webknossos,
    webknossos-datastore/app/com/scalableminds/webknossos/datastore/services/ZarrStreamingService.scala,
    ``convertLayerToZarrLayer``): every layer is Zarr
    v2 (``dataFormat: "zarr"``) with each mag at ``./<layer>/<mag>``, axes c, x, y, z. That is
    the native view, so webknossos-libs' ``Dataset.open`` reads the directory as a dataset.
    ``layer_dirs`` maps each layer's name to its directory in the mount."""
    source = dataset.data_source
    layers = []
    for layer in source.data_layers:
        entry: dict[str, Any] = {
            "name": layer.name,
            "category": layer.category,
            "boundingBox": layer.bounding_box.model_dump(mode="json", by_alias=True),
            "elementClass": layer.element_class,
            "dataFormat": "zarr",
            "mags": [
                {
                    "mag": list(m.mag),
                    "path": f"./{layer_dirs[layer.name]}/{mag_name(m.mag)}",
                    "axisOrder": AXIS_ORDER_CXYZ,
                }
                for m in layer.mags
            ],
            # The legacy list of mags, which the datastore still writes.
            "resolutions": [list(m.mag) for m in layer.mags],
            "numChannels": layer.channels,
        }
        if layer.category == "segmentation" and layer.largest_segment_id is not None:
            entry["largestSegmentId"] = layer.largest_segment_id
        if layer.default_view_configuration is not None:
            entry["defaultViewConfiguration"] = layer.default_view_configuration
        layers.append(entry)
    identity = source.id.model_dump() if source.id is not None else {}
    doc: dict[str, Any] = {
        "id": {
            "name": identity.get("name") or dataset.directory_name or dataset.name,
            "team": identity.get("team") or dataset.owning_organization,
        },
        "dataLayers": layers,
    }
    if source.scale is not None:
        doc["scale"] = {"factor": list(source.scale.factor), "unit": source.scale.unit}
    return doc


def dumps(doc: dict[str, Any]) -> bytes:
    return json_text(doc)


# ---------------------------------------------------------------- chunk bytes


def ome_chunk(
    g: MagGeometry, ome_xyz: tuple[int, int, int], served: Mapping[tuple[int, int, int], bytes]
) -> bytes:
    """The OME-Zarr chunk at ``ome_xyz`` (C order over [c,] z, y, x) from the served chunks
    it covers (F order over c, x, y, z, by their x, y, z indexes); past the array's end, the
    fill value."""
    side, per = OME_CHUNK, OME_CHUNK // CHUNK
    out = np.zeros((side, side, side, g.channels), dtype=g.dtype)  # z, y, x, c
    for (x, y, z), native in served.items():
        block = np.frombuffer(native, dtype=g.dtype).reshape((CHUNK, CHUNK, CHUNK, g.channels))
        lx, ly, lz = ((c - o * per) * CHUNK for c, o in zip((x, y, z), ome_xyz, strict=True))
        out[lz : lz + CHUNK, ly : ly + CHUNK, lx : lx + CHUNK] = block
    if g.channels > 1:
        return np.ascontiguousarray(out.transpose(3, 0, 1, 2)).tobytes()
    return out.tobytes()


# ---------------------------------------------------------------- plain volume headers

_NRRD_TYPES = {
    "u1": "uint8",
    "i1": "int8",
    "<u2": "uint16",
    "<i2": "int16",
    "<u4": "uint32",
    "<i4": "int32",
    "<u8": "uint64",
    "<i8": "int64",
    "<f4": "float",
    "<f8": "double",
}
_MET_TYPES = {
    "u1": "MET_UCHAR",
    "i1": "MET_CHAR",
    "<u2": "MET_USHORT",
    "<i2": "MET_SHORT",
    "<u4": "MET_UINT",
    "<i4": "MET_INT",
    "<u8": "MET_ULONG_LONG",
    "<i8": "MET_LONG_LONG",
    "<f4": "MET_FLOAT",
    "<f8": "MET_DOUBLE",
}


def _key(dtype: np.dtype[Any]) -> str:
    return dtype.str.lstrip("|")


def _spacing_origin(g: MagGeometry, scale: Scale | None) -> tuple[list[float], list[float]]:
    voxel = scale.factor if scale is not None else (1.0, 1.0, 1.0)
    spacing = [v * m for v, m in zip(voxel, g.mag, strict=True)]
    start, _ = g.box
    origin = [s * sp for s, sp in zip(start, spacing, strict=True)]
    return spacing, origin


def _num(v: float) -> str:
    return repr(float(v)).removesuffix(".0") if float(v).is_integer() else repr(float(v))


def nrrd_header(g: MagGeometry, scale: Scale | None, data_file: str) -> bytes:
    spacing, origin = _spacing_origin(g, scale)
    x, y, z = g.raw_shape_xyz
    multi = g.channels > 1
    dirs = [f"({_num(spacing[0])},0,0)", f"(0,{_num(spacing[1])},0)", f"(0,0,{_num(spacing[2])})"]
    lines = [
        "NRRD0004",
        "# Written by neurofs: a WEBKNOSSOS layer at one mag",
        f"type: {_NRRD_TYPES[_key(g.dtype)]}",
        f"dimension: {4 if multi else 3}",
        "space dimension: 3",
        f"sizes: {f'{g.channels} ' if multi else ''}{x} {y} {z}",
        f"space directions: {'none ' if multi else ''}{' '.join(dirs)}",
        f"space origin: ({','.join(_num(o) for o in origin)})",
        f"kinds: {'vector ' if multi else ''}domain domain domain",
        "space units: " + " ".join([f'"{_unit(scale)}"'] * 3),
        "encoding: raw",
        "endian: little",
        f"data file: {data_file}",
    ]
    return ("\n".join(lines) + "\n").encode()


def mhd_header(g: MagGeometry, scale: Scale | None, data_file: str) -> bytes:
    spacing, origin = _spacing_origin(g, scale)
    x, y, z = g.raw_shape_xyz
    lines = [
        "ObjectType = Image",
        "NDims = 3",
        "BinaryData = True",
        "BinaryDataByteOrderMSB = False",
        "CompressedData = False",
        f"Offset = {' '.join(_num(o) for o in origin)}",
        f"ElementSpacing = {' '.join(_num(s) for s in spacing)}",
        f"DimSize = {x} {y} {z}",
        f"ElementNumberOfChannels = {g.channels}",
        f"ElementType = {_MET_TYPES[_key(g.dtype)]}",
        f"ElementDataFile = {data_file}",
    ]
    return ("\n".join(lines) + "\n").encode()

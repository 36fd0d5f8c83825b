"""The WEBKNOSSOS part of the mount.

```
<source>/datasets/<organization>/<dataset>/
    dataset.json                 editable (see sidecars.py)
    datasource-properties.json   read-only
    sharing-token                a fresh sharing token on each read
    <layer>.ome.zarr/            OME-Zarr 0.4 view: .zgroup, .zattrs, <mag>/.zarray, <mag>/z/y/x
        labels/<segmentation>/   the segmentation layers with the same mags, as label images
    <segmentation>.meshes/<id>.stl   a segment's mesh (binary STL), looked up by id, never listed
    <layer>/                     native zarr-streaming view: <mag>/.zarray, <mag>/c.x.y.z,
                                 and <mag>.raw / .nhdr / .mhd plain volumes (up to a size cap)
<source>/datasets/<organization>/<new>.json   a request to add a remote dataset (written by
                                             the user; becomes a receipt)
<source>/folders/<folder path>/<dataset> -> ../../datasets/<organization>/<dataset>
<source>/tasks/, task-types/, projects/   see records.py
```
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import trio
from pydantic import ValidationError

from neurofs.errors import InvalidContent, NotFound, ReadOnly
from neurofs.io.fetcher import Assembled, BlocksOnly, Fetcher, RemoteObject, ServedWhole
from neurofs.io.parallel import tasks_of_one_request
from neurofs.io.readahead import GridHint, Index
from neurofs.sources.webknossos import boxes, volume
from neurofs.sources.webknossos.api import WebknossosApi, folder_paths
from neurofs.sources.webknossos.models import (
    DataLayer,
    Dataset,
    ExploreAndAddRemote,
    Folder,
    RemoteDatasetRequest,
)
from neurofs.sources.webknossos.records import ProjectsDir, TasksDir, TaskTypesDir
from neurofs.sources.webknossos.volume import CHUNK, MagGeometry, mag_name
from neurofs.tree.names import id_of_name, safe_name, unique_names
from neurofs.tree.nodes import (
    Attrs,
    BytesHandle,
    ComputedListing,
    Directory,
    File,
    FileHandle,
    GeneratedFile,
    IndexedDirectory,
    Kind,
    Node,
    NodePath,
    StaticDirectory,
    Symlink,
)
from neurofs.tree.remote import RemoteFile
from neurofs.tree.render import json_text
from neurofs.tree.sidecar import TextFormat, parse

log = logging.getLogger(__name__)

# Plain volume files are offered for mags up to this size.
DEFAULT_RAW_MAX_BYTES = 4 * 1024**3
# Chunk requests in flight for one plain-volume read.
RAW_PARALLEL = 8
# A plain volume is read from the chunks (shared with the chunk files' cache) while one z
# slab of its chunks (32 planes) is at most this big; beyond, a read of a few rows would
# fetch whole slabs, so it asks the datastore's raw route for the rows it needs instead.
RAW_CHUNKED_SLAB_MAX = 16 * 1024 * 1024
# A chunk directory with more entries than this is not listed (its chunks stay readable by
# name, which is how zarr readers open them): a listing must stay bounded in memory and time.
MAX_LISTED_CHUNKS = 100_000


@dataclass(frozen=True)
class WkOptions:
    raw_max_bytes: int = DEFAULT_RAW_MAX_BYTES


class WkContext:
    def __init__(self, api: WebknossosApi, fetcher: Fetcher, options: WkOptions) -> None:
        self.api = api
        self.fetcher = fetcher
        self.options = options


def _revision(dataset: Dataset, layer: DataLayer) -> str:
    """Changes when the layer's data may have: cache keys include it."""
    bb = layer.bounding_box
    return f"{dataset.created}-{bb.top_left}-{bb.width}x{bb.height}x{bb.depth}"


# ---------------------------------------------------------------- remote objects


class WkChunk(ServedWhole):
    """One 32³ chunk as the datastore serves it (F order over c, x, y, z).

    A chunk is a whole object: the datastore's zarr streaming ignores ``Range`` and always
    sends the full chunk. ``fetch(start, end)`` returns exactly [start, end) of it, but
    downloads it whole; as a ``ServedWhole`` object the fetcher asks for all of it in one
    request and cuts the blocks itself. The native view's chunk files, the OME-Zarr view's
    chunks and small plain volumes are all read from these, so a chunk is fetched and stored
    once whichever view reads it."""

    def __init__(
        self, ctx: WkContext, dataset: Dataset, g: MagGeometry, cxyz: tuple[int, int, int]
    ) -> None:
        self._ctx = ctx
        self._dataset = dataset
        self._g = g
        self._key = f"0.{cxyz[0]}.{cxyz[1]}.{cxyz[2]}"
        self.xyz = cxyz
        self.size = g.chunk_bytes
        # Also its name in the shared tier.
        self.content_id = (
            f"wk:{dataset.data_store.url}/{dataset.id}/{g.layer.name}/{mag_name(g.mag)}/"
            f"{self._key}@{_revision(dataset, g.layer)}"
        )

    def grid(self) -> GridHint:
        """Where this chunk sits among the chunks of its mag: the hint for read-ahead along
        the axis a reader walks, bounded by the mag's extent."""
        ctx, dataset, g = self._ctx, self._dataset, self._g

        def at(index: Index) -> WkChunk:
            x, y, z = index
            return WkChunk(ctx, dataset, g, (x, y, z))

        identity = (dataset.data_store.url, dataset.id, g.layer.name, g.mag)
        return GridHint(identity, self.xyz, g.chunk_counts, at, self.fetch_box)

    async def fetch_box(self, objects: Sequence[RemoteObject]) -> list[bytes]:
        """Two or more chunks of this mag that fill a box (a line that read-ahead fetches, an
        OME-Zarr chunk's 2×2×2) as one box of the raw route, cut into the chunks
        (``boxes.py``). The fetcher asks for a lone chunk through the chunk route instead,
        which tells a missing chunk from zeros."""
        chunks = [obj for obj in objects if isinstance(obj, WkChunk)]
        if len(chunks) != len(objects):
            raise TypeError("a box of WEBKNOSSOS chunks holds only chunks")
        g = self._g
        xyzs = [c.xyz for c in chunks]
        corner, size = boxes.chunks_box(xyzs)
        nbytes = size[0] * size[1] * size[2] * g.voxel_bytes
        data = await self._ctx.api.cuboid(
            self._dataset,
            g.layer.name,
            g.mag,
            corner,
            size,
            nbytes,
            identity=_box_identity(self._dataset, g, corner, size),
        )
        return boxes.cut_box(g, data, xyzs)

    async def fetch(self, start: int, end: int) -> bytes:
        g = self._g
        data = await self._ctx.api.chunk(
            self._dataset,
            g.layer.name,
            mag_name(g.mag),
            self._key,
            self.size,
            identity=self.content_id,
        )
        if data is None:  # missing on the server: the fill value
            return bytes(end - start)
        return data[start:end]


class OmeChunk(Assembled):
    """One chunk of the OME-Zarr view (``volume.OME_CHUNK``³): the served chunks it covers,
    fetched together as one box when none is held, put together in C order over [c,] z, y, x.

    It caches nothing of its own: its bytes are those chunks' blocks, shared with the native
    view and the plain volumes. Any read of it takes all of it (a zarr reader reads chunks
    whole), for one request."""

    def __init__(
        self, ctx: WkContext, dataset: Dataset, g: MagGeometry, oxyz: tuple[int, int, int]
    ) -> None:
        self._ctx = ctx
        self._g = g
        self._oxyz = oxyz
        self._served = [WkChunk(ctx, dataset, g, xyz) for xyz in g.served_chunks(oxyz)]
        self.size = g.ome_chunk_bytes
        x, y, z = oxyz
        self.content_id = f"{_volume_identity('wk-ome', dataset, g)}/{z}/{y}/{x}"

    def parts(self, start: int, end: int) -> list[RemoteObject]:
        return list(self._served)

    async def fetch(self, start: int, end: int) -> bytes:
        served = self._served
        datas = await self._ctx.fetcher.read_together(served, served[0].fetch_box)
        whole = volume.ome_chunk(
            self._g, self._oxyz, {c.xyz: d for c, d in zip(served, datas, strict=True)}
        )
        return whole[start:end]


class RawVolume(Assembled):
    """A mag's bounding box as one plain array (x fastest, then y, z; channels innermost).

    Its bytes are the chunks' voxels, so it caches nothing of its own: a read takes from each
    chunk it crosses the z planes it needs, through the fetcher (from the chunks' cached
    blocks, or one request per missing chunk, ``RAW_PARALLEL`` at once). A voxel read here
    and in its chunk file is fetched once and stored once, as the chunk's block."""

    def __init__(self, ctx: WkContext, dataset: Dataset, g: MagGeometry) -> None:
        self._ctx = ctx
        self._dataset = dataset
        self._g = g
        self.size = g.raw_size
        self.content_id = _volume_identity("wk-raw", dataset, g)

    def _chunk(self, xyz: tuple[int, int, int]) -> WkChunk:
        return WkChunk(self._ctx, self._dataset, self._g, xyz)

    def parts(self, start: int, end: int) -> list[RemoteObject]:
        region = volume.raw_region(self._g, start, end)
        return [self._chunk(xyz) for xyz in volume.region_chunks(self._g, region)]

    async def fetch(self, start: int, end: int) -> bytes:
        g = self._g
        region = volume.raw_region(g, start, end)
        (za, zb), (ya, yb) = region.z, region.y
        (x0, _, _), (x1, _, _) = g.box
        out = np.zeros((zb - za, yb - ya, x1 - x0, g.channels), dtype=g.dtype)
        # A chunk is F order over (c, x, y, z): z varies slowest, so the planes a read needs
        # are one contiguous range of each chunk, which is (z, y, x, c) in C order.
        chunk_plane = CHUNK * CHUNK * g.voxel_bytes
        limiter = trio.Semaphore(RAW_PARALLEL)

        async def one(cx: int, cy: int, cz: int) -> None:
            zs, ys, xs = cz * CHUNK, cy * CHUNK, cx * CHUNK
            first, last = max(za, zs) - zs, min(zb, zs + CHUNK) - zs
            async with limiter:
                raw = await self._ctx.fetcher.read(
                    self._chunk((cx, cy, cz)), first * chunk_plane, (last - first) * chunk_plane
                )
            planes = np.frombuffer(raw, dtype=g.dtype).reshape(
                (last - first, CHUNK, CHUNK, g.channels)
            )
            # Intersect this chunk with the wanted rows.
            y_a, y_b = max(ya, ys), min(yb, ys + CHUNK)
            x_a, x_b = max(x0, xs), min(x1, xs + CHUNK)
            out[zs + first - za : zs + last - za, y_a - ya : y_b - ya, x_a - x0 : x_b - x0] = (
                planes[:, y_a - ys : y_b - ys, x_a - xs : x_b - xs]
            )

        async with tasks_of_one_request() as nursery:
            for xyz in volume.region_chunks(g, region):
                nursery.start_soon(one, *xyz)
        return out.tobytes()[region.skip : region.skip + (end - start)]


class RawBoxes(BlocksOnly):
    """A big mag's plain volume, read as boxes from the datastore's raw route
    (``layers/<layer>/data?mag&x&y&z&width&height&depth``): the fetcher asks for block runs of
    this file; each is read as the rows that hold it, in boxes of at most 512 voxels a side
    (the datastore's limit), all at once, for about its own bytes (``volume.raw_plan``).
    Its blocks are cached under its own identity (dataset, layer, mag, revision; the block's
    index names the box), not shared with the chunk files: the price of reads that cost what
    they read instead of whole 32-plane slabs of chunks."""

    def __init__(self, ctx: WkContext, dataset: Dataset, g: MagGeometry) -> None:
        self._ctx = ctx
        self._dataset = dataset
        self._g = g
        self.size = g.raw_size
        self.content_id = _volume_identity("wk-raw-box", dataset, g)

    async def fetch(self, start: int, end: int) -> bytes:
        g = self._g
        plan = volume.raw_plan(g, start, end)
        buffer = np.empty(plan.nbytes, dtype=np.uint8)

        async def one(box: volume.RawBox) -> None:
            data = await self._ctx.api.cuboid(
                self._dataset,
                g.layer.name,
                g.mag,
                box.corner,
                box.size,
                box.nbytes(g),
                identity=_box_identity(self._dataset, g, box.corner, box.size),
            )
            box.place(g, buffer, data)

        async with tasks_of_one_request() as nursery:
            for box in plan.boxes:
                nursery.start_soon(one, box)
        return buffer[plan.skip : plan.skip + (end - start)].tobytes()


def plain_volume(ctx: WkContext, dataset: Dataset, g: MagGeometry) -> RawVolume | RawBoxes:
    """How a mag's plain volume is read: from its chunks while a z slab of them is small,
    else from boxes of rows (see ``RAW_CHUNKED_SLAB_MAX``)."""
    row = g.raw_shape_xyz[0] * g.voxel_bytes
    if row * g.raw_shape_xyz[1] * CHUNK <= RAW_CHUNKED_SLAB_MAX:
        return RawVolume(ctx, dataset, g)
    return RawBoxes(ctx, dataset, g)


# ---------------------------------------------------------------- helpers


def _box_identity(
    dataset: Dataset, g: MagGeometry, corner: tuple[int, int, int], size: tuple[int, int, int]
) -> str:
    """The content identity of one box of the raw route (its name in the shared tier)."""
    box = "{},{},{}+{}x{}x{}".format(*corner, *size)
    return f"{_volume_identity('wk-box', dataset, g)}/{box}"


def _volume_identity(kind: str, dataset: Dataset, g: MagGeometry) -> str:
    """A plain volume's content identity: one mag of one layer at its revision."""
    return (
        f"{kind}:{dataset.data_store.url}/{dataset.id}/{g.layer.name}/{mag_name(g.mag)}"
        f"@{_revision(dataset, g.layer)}"
    )


def _json_file(key: NodePath, doc: object, mtime: float) -> GeneratedFile:
    data = json_text(doc)

    async def render() -> bytes:
        return data

    return GeneratedFile(key, render, mtime=mtime)


def _bytes_file(key: NodePath, data: bytes, mtime: float) -> GeneratedFile:
    async def render() -> bytes:
        return data

    return GeneratedFile(key, render, mtime=mtime)


class FreshFile(File):
    """Content fetched anew at every open (a sharing token); served with direct_io."""

    direct_io = True

    def __init__(self, key: NodePath, fetch: Callable[[], Awaitable[bytes]], mtime: float) -> None:
        super().__init__(key)
        self._fetch = fetch
        self._mtime = mtime

    async def stat(self) -> Attrs:
        return Attrs(Kind.FILE, 0, self._mtime)

    async def open(self) -> FileHandle:
        return BytesHandle(await self._fetch())


def _mtime(dataset: Dataset) -> float:
    return dataset.created / 1000 if dataset.created else 0.0


def _mags(layer: DataLayer) -> list[volume.Mag]:
    return [m.mag for m in layer.mags]


# ---------------------------------------------------------------- nodes


class WkRoot(StaticDirectory):
    def __init__(self, key: NodePath, ctx: WkContext) -> None:
        now = time.time()
        super().__init__(
            key,
            [
                DatasetsDir((*key, "datasets"), ctx),
                FoldersDir((*key, "folders"), ctx, None),
                TasksDir((*key, "tasks"), ctx.api),
                TaskTypesDir((*key, "task-types"), ctx.api),
                ProjectsDir((*key, "projects"), ctx.api),
            ],
            mtime=now,
        )


def dataset_names(datasets: Sequence[Dataset]) -> dict[str, Dataset]:
    """Safe, unique names for the datasets of one organization (a clash adds the id)."""
    labels: dict[str, Dataset] = {}
    for d in sorted(datasets, key=lambda d: (d.name, d.id)):
        label = d.name
        while label in labels:
            label = f"{label}~{d.id}"
        labels[label] = d
    names = unique_names(labels)
    return {names[label]: d for label, d in labels.items()}


def organization_names(datasets: Sequence[Dataset]) -> dict[str, str]:
    """Organization → its directory name under ``datasets/``."""
    return unique_names(d.owning_organization for d in datasets)


@dataclass(frozen=True)
class DatasetLink:
    """A dataset as a folder shows it: a link to ``datasets/<organization>/<name>``."""

    path: str  # below datasets/
    dataset: Dataset


@dataclass(frozen=True)
class DatasetIndex:
    """The dataset list arranged for lookups by name, in listing order."""

    # Directory name under datasets/ → organization.
    organizations: Mapping[str, str]
    # Organization → directory name → dataset.
    by_organization: Mapping[str, Mapping[str, Dataset]]
    # Folder id → link name → link; of two datasets with one name in a folder, the first.
    by_folder: Mapping[str, Mapping[str, DatasetLink]]


def index_datasets(datasets: list[Dataset]) -> DatasetIndex:
    orgs = organization_names(datasets)
    grouped: dict[str, list[Dataset]] = {}
    for d in datasets:
        grouped.setdefault(d.owning_organization, []).append(d)
    by_organization = {org: dataset_names(members) for org, members in grouped.items()}
    name_of = {id(d): name for named in by_organization.values() for name, d in named.items()}
    by_folder: dict[str, dict[str, DatasetLink]] = {}
    for d in datasets:  # in listing order: of two links with one name, the first stays
        if d.folder_id is not None:
            name = name_of[id(d)]
            link = DatasetLink(f"{orgs[d.owning_organization]}/{name}", d)
            by_folder.setdefault(d.folder_id, {}).setdefault(name, link)
    return DatasetIndex(
        organizations={orgs[o]: o for o in sorted(orgs)},
        by_organization=by_organization,
        by_folder=by_folder,
    )


class DatasetsDir(IndexedDirectory[str]):
    def __init__(self, key: NodePath, ctx: WkContext) -> None:
        super().__init__(key)
        self._ctx = ctx

    async def stat(self) -> Attrs:
        return Attrs(Kind.DIRECTORY, 0, 0.0)

    async def entries(self) -> Mapping[str, str]:
        return (await self._ctx.api.datasets_indexed(index_datasets)).organizations

    def node(self, name: str, entry: str) -> Node:
        return OrganizationDir((*self.key, name), self._ctx, entry)


class OrganizationDir(IndexedDirectory[Dataset]):
    # A new *.json here asks the server to add a remote dataset (see create_from_file), so
    # the editors that write it may leave their scratch files here too.
    accepts_scratch = True

    def __init__(self, key: NodePath, ctx: WkContext, organization: str) -> None:
        super().__init__(key)
        self._ctx = ctx
        self._org = organization

    async def stat(self) -> Attrs:
        return Attrs(Kind.DIRECTORY, 0, 0.0, writable=True)

    def creates_from(self, name: str) -> bool:
        # Only plain *.json names are requests; editors' swap, backup and temporary files
        # stay scratch files.
        return name.endswith(".json") and not name.startswith(".")

    async def create_from_file(self, name: str, data: bytes) -> bytes:
        """Explore and add the remote dataset the file names (``remoteUri``, ``datasetName``,
        optional ``folder``); the file becomes a receipt naming the new dataset's
        directory. Everything is checked before the one request is sent."""
        request = remote_dataset_request(data)
        api = self._ctx.api
        me = await api.me()
        if me.organization != self._org:
            # The server adds a dataset to the caller's organization, whatever the directory.
            raise InvalidContent(
                f"datasets are added to your organization '{me.organization}', not to '{self._org}'"
            )
        folder_id = None
        if request.folder is not None:
            by_path = {p: i for i, p in (await api.folders_indexed(folder_paths)).items()}
            wanted = request.folder.strip("/")
            if wanted not in by_path:
                raise InvalidContent(f"unknown folder '{wanted}'")
            folder_id = by_path[wanted]
        body = ExploreAndAddRemote(
            remoteUri=request.remote_uri,
            datasetName=request.dataset_name,
            folderId=folder_id,
        )
        new_id = await api.explore_and_add_remote(body)
        index = await api.datasets_indexed(index_datasets)
        named = index.by_organization.get(self._org, {})
        created = [n for n, d in named.items() if d.id == new_id]
        return json_text({"created": created, "id": new_id})

    async def entries(self) -> Mapping[str, Dataset]:
        index = await self._ctx.api.datasets_indexed(index_datasets)
        return index.by_organization.get(self._org, {})

    def node(self, name: str, entry: Dataset) -> Node:
        return DatasetDir((*self.key, name), self._ctx, entry)


def remote_dataset_request(data: bytes) -> RemoteDatasetRequest:
    """The request file's fields, or InvalidContent naming each wrong one."""
    doc = parse(data, TextFormat.JSON)
    try:
        return RemoteDatasetRequest.model_validate(doc)
    except ValidationError as exc:
        problems = [
            f"'{'.'.join(str(p) for p in err['loc'])}': {_problem(err)}"
            for err in exc.errors(include_url=False)
        ]
        raise InvalidContent("; ".join(problems)) from None


def _problem(err: Any) -> str:
    if err["type"] == "extra_forbidden":
        return "unknown key (remoteUri, datasetName and folder are known)"
    if err["type"] == "missing":
        return "required"
    return str(err["msg"]).removeprefix("Value error, ")


class DatasetDir(Directory):
    # It holds dataset.json: editors' scratch files may be created here.
    accepts_scratch = True

    def __init__(self, key: NodePath, ctx: WkContext, dataset: Dataset) -> None:
        super().__init__(key)
        self._ctx = ctx
        self._d = dataset

    async def stat(self) -> Attrs:
        return Attrs(Kind.DIRECTORY, 0, _mtime(self._d), writable=True)

    async def children(self) -> Sequence[Node]:
        from neurofs.sources.webknossos.sidecars import dataset_json

        ctx, d, mtime = self._ctx, self._d, _mtime(self._d)
        layers = d.data_source.data_layers
        names = unique_names(layer.name for layer in layers)
        nodes: list[Node] = [
            dataset_json(ctx.api, (*self.key, "dataset.json"), d.id, mtime),
            _json_file(
                (*self.key, "datasource-properties.json"),
                volume.datasource_properties(d, names),
                mtime,
            ),
            FreshFile((*self.key, "sharing-token"), self._sharing_token, mtime),
        ]
        for layer in layers:
            name = names[layer.name]
            ome = safe_name(name, ".ome.zarr")
            labels = [(names[s.name], s) for s in volume.label_layers(layer, layers)]
            nodes.append(OmeZarrDir((*self.key, ome), ctx, d, layer, labels=labels))
            nodes.append(NativeLayerDir((*self.key, name), ctx, d, layer))
            if layer.category == "segmentation":
                meshes = safe_name(name, ".meshes")
                nodes.append(MeshesDir((*self.key, meshes), ctx, d, layer))
        return nodes

    async def reload_on_server(self) -> None:
        await self._ctx.api.reload_in_datastore(self._d)

    async def _sharing_token(self) -> bytes:
        return (await self._ctx.api.sharing_token(self._d.id) + "\n").encode()


class MeshesDir(Directory):
    """``<segmentation>.meshes/<segment id>.stl``: a segment's mesh, binary STL in the
    dataset's unit, as the datastore computes it at the layer's finest mag. A layer's
    segments cannot be listed: the directory shows nothing and costs nothing to list, and a
    name is looked up on demand (ENOENT for a segment the layer does not have)."""

    def __init__(self, key: NodePath, ctx: WkContext, dataset: Dataset, layer: DataLayer) -> None:
        super().__init__(key)
        self._ctx, self._d, self._layer = ctx, dataset, layer

    async def stat(self) -> Attrs:
        return Attrs(Kind.DIRECTORY, 0, _mtime(self._d))

    async def children(self) -> Sequence[Node]:
        return []

    async def child(self, name: str) -> Node:
        segment = id_of_name(name.removesuffix(".stl")) if name.endswith(".stl") else None
        if segment is None or not self._layer.mags:
            raise NotFound("/".join((*self.key, name)))
        api, d, layer = self._ctx.api, self._d, self._layer
        mag = min((m.mag for m in layer.mags), key=lambda m: (m[0] * m[1] * m[2], m))
        revision = _revision(d, layer)

        async def render() -> bytes:
            return await api.full_mesh(d, layer.name, segment, mag, revision=revision)

        # Asked at the lookup, so that an id the layer does not have is ENOENT there.
        await render()
        # A mesh is computed from all of a segment's voxels: never rendered for a listing.
        return GeneratedFile((*self.key, name), render, _mtime(d), costly=True)


class _LayerDir(Directory):
    """A zarr group for one layer: ``.zgroup``, ``.zattrs`` and what subclasses add."""

    def __init__(self, key: NodePath, ctx: WkContext, dataset: Dataset, layer: DataLayer) -> None:
        super().__init__(key)
        self._ctx, self._d, self._layer = ctx, dataset, layer
        self._mtime = _mtime(dataset)

    async def stat(self) -> Attrs:
        return Attrs(Kind.DIRECTORY, 0, self._mtime)

    def _group_files(self, zattrs: dict[str, object]) -> list[Node]:
        return [
            _bytes_file((*self.key, ".zgroup"), volume.dumps({"zarr_format": 2}), self._mtime),
            _bytes_file((*self.key, ".zattrs"), volume.dumps(zattrs), self._mtime),
        ]


class OmeZarrDir(_LayerDir):
    """``<layer>.ome.zarr/``: the image group with one array per mag, and a ``labels/`` group
    when ``labels`` (name, segmentation layer) is not empty. A label image there is this same
    kind of node over the segmentation layer, so its chunks are the ones of
    ``<segmentation>.ome.zarr/`` (same cache entries); only its ``.zattrs`` differs, in the
    path back to the image."""

    def __init__(
        self,
        key: NodePath,
        ctx: WkContext,
        dataset: Dataset,
        layer: DataLayer,
        labels: Sequence[tuple[str, DataLayer]] = (),
        source_image: str | None = None,
    ) -> None:
        super().__init__(key, ctx, dataset, layer)
        self._labels = labels
        self._source_image = source_image

    async def children(self) -> Sequence[Node]:
        d, layer = self._d, self._layer
        attrs = volume.ome_zattrs(
            layer, _mags(layer), d.data_source.scale, layer.name, self._source_image
        )
        nodes = self._group_files(attrs)
        for mag in _mags(layer):
            g = MagGeometry(layer, mag)
            nodes.append(OmeMagDir((*self.key, mag_name(mag)), self._ctx, d, g, ()))
        if self._labels:
            nodes.append(self._labels_group())
        return nodes

    def _labels_group(self) -> StaticDirectory:
        key = (*self.key, "labels")
        zattrs = {"labels": [name for name, _ in self._labels]}
        images: list[Node] = [
            OmeZarrDir((*key, name), self._ctx, self._d, seg, source_image="../../")
            for name, seg in self._labels
        ]
        return StaticDirectory(
            key,
            [
                _bytes_file((*key, ".zgroup"), volume.dumps({"zarr_format": 2}), self._mtime),
                _bytes_file((*key, ".zattrs"), volume.dumps(zattrs), self._mtime),
                *images,
            ],
            mtime=self._mtime,
        )


class OmeMagDir(Directory):
    """One mag of the OME-Zarr view, and its nested chunk folders ``z/y/x`` (``c/z/y/x`` for
    multi-channel layers, whose c axis is one chunk); ``prefix`` holds the chunk indices
    above this level. Lookups compute nodes without listing."""

    def __init__(
        self,
        key: NodePath,
        ctx: WkContext,
        dataset: Dataset,
        g: MagGeometry,
        prefix: tuple[int, ...],
    ) -> None:
        super().__init__(key)
        self._ctx, self._d, self._g, self._prefix = ctx, dataset, g, prefix
        self._mtime = _mtime(dataset)

    async def stat(self) -> Attrs:
        return Attrs(Kind.DIRECTORY, 0, self._mtime)

    def _levels(self) -> list[int]:
        cx, cy, cz = self._g.ome_chunk_counts
        return ([1] if self._g.channels > 1 else []) + [cz, cy, cx]

    def _count(self) -> int:
        return self._levels()[len(self._prefix)]

    def _zarray(self) -> Node:
        zarray = volume.dumps(volume.ome_zarray(self._g))
        return _bytes_file((*self.key, ".zarray"), zarray, self._mtime)

    def _node(self, index: int) -> Node:
        key = (*self.key, str(index))
        prefix = (*self._prefix, index)
        if len(prefix) < len(self._levels()):
            return OmeMagDir(key, self._ctx, self._d, self._g, prefix)
        z, y, x = prefix[-3:]
        chunk = OmeChunk(self._ctx, self._d, self._g, (x, y, z))
        return _remote_file(key, self._ctx, chunk, self._mtime)

    async def children(self) -> Sequence[Node]:
        count = self._count() if self._count() <= MAX_LISTED_CHUNKS else 0  # beyond: by name
        if self._prefix:
            return ComputedListing(count, self._node)
        return ComputedListing(1 + count, lambda i: self._node(i - 1) if i else self._zarray())

    async def child(self, name: str) -> Node:
        if name.isdigit() and int(name) < self._count() and str(int(name)) == name:
            return self._node(int(name))
        if name == ".zarray" and not self._prefix:
            return self._zarray()
        raise NotFound("/".join((*self.key, name)))


def _chunk_file(key: NodePath, ctx: WkContext, chunk: WkChunk, mtime: float) -> RemoteFile:
    async def resolve() -> WkChunk:
        return chunk

    return RemoteFile(
        key,
        size=chunk.size,
        mtime=mtime,
        fetcher=ctx.fetcher,
        resolve=resolve,
        immutable=False,
        grid=chunk.grid(),
    )


def _remote_file(
    key: NodePath, ctx: WkContext, obj: RawVolume | RawBoxes | OmeChunk, mtime: float
) -> RemoteFile:
    """A file read from ``obj`` (a plain volume, an OME-Zarr chunk) with no grid hint."""

    async def resolve() -> RawVolume | RawBoxes | OmeChunk:
        return obj

    return RemoteFile(
        key, size=obj.size, mtime=mtime, fetcher=ctx.fetcher, resolve=resolve, immutable=False
    )


class NativeLayerDir(_LayerDir):
    """``<layer>/``: the datastore's own zarr layout, plus plain volume files per mag."""

    async def children(self) -> Sequence[Node]:
        d, layer, mtime = self._d, self._layer, self._mtime
        nodes = self._group_files(volume.native_zattrs(layer, _mags(layer), d.data_source.scale))
        for mag in _mags(layer):
            g = MagGeometry(layer, mag)
            name = mag_name(mag)
            nodes.append(NativeMagDir((*self.key, name), self._ctx, d, g))
            if g.raw_size <= self._ctx.options.raw_max_bytes:
                raw = plain_volume(self._ctx, d, g)
                nodes.append(_remote_file((*self.key, f"{name}.raw"), self._ctx, raw, mtime))
                scale = d.data_source.scale
                nodes.append(
                    _bytes_file(
                        (*self.key, f"{name}.nhdr"),
                        volume.nrrd_header(g, scale, f"{name}.raw"),
                        mtime,
                    )
                )
                nodes.append(
                    _bytes_file(
                        (*self.key, f"{name}.mhd"),
                        volume.mhd_header(g, scale, f"{name}.raw"),
                        mtime,
                    )
                )
        return nodes


class NativeMagDir(Directory):
    """``<layer>/<mag>/``: ``.zarray`` and chunk files ``c.x.y.z`` as the datastore names them."""

    def __init__(self, key: NodePath, ctx: WkContext, dataset: Dataset, g: MagGeometry) -> None:
        super().__init__(key)
        self._ctx, self._d, self._g = ctx, dataset, g
        self._mtime = _mtime(dataset)

    async def stat(self) -> Attrs:
        return Attrs(Kind.DIRECTORY, 0, self._mtime)

    def _chunk(self, x: int, y: int, z: int) -> RemoteFile:
        obj = WkChunk(self._ctx, self._d, self._g, (x, y, z))
        return _chunk_file((*self.key, f"0.{x}.{y}.{z}"), self._ctx, obj, self._mtime)

    def _zarray(self) -> Node:
        zarray = volume.dumps(volume.native_zarray(self._g))
        return _bytes_file((*self.key, ".zarray"), zarray, self._mtime)

    async def children(self) -> Sequence[Node]:
        cx, cy, cz = self._g.chunk_counts
        if cx * cy * cz > MAX_LISTED_CHUNKS:  # still readable by name, as zarr readers do
            return [self._zarray()]

        def entry(i: int) -> Node:
            """``.zarray``, then the chunks in x, y, z order (z fastest)."""
            if i == 0:
                return self._zarray()
            x, rest = divmod(i - 1, cy * cz)
            y, z = divmod(rest, cz)
            return self._chunk(x, y, z)

        return ComputedListing(1 + cx * cy * cz, entry)

    async def child(self, name: str) -> Node:
        if name == ".zarray":
            return self._zarray()
        parts = name.split(".")
        if len(parts) == 4 and all(p.isdigit() for p in parts) and parts[0] == "0":
            x, y, z = (int(p) for p in parts[1:])
            if self._g.has_chunk(x, y, z) and name == f"0.{x}.{y}.{z}":
                return self._chunk(x, y, z)
        raise NotFound("/".join((*self.key, name)))


class FoldersDir(Directory):
    """``folders/``: the WEBKNOSSOS folder tree; datasets appear as symlinks into datasets/."""

    def __init__(self, key: NodePath, ctx: WkContext, folder_id: str | None) -> None:
        super().__init__(key)
        self._ctx = ctx
        self._folder_id = folder_id

    async def stat(self) -> Attrs:
        return Attrs(Kind.DIRECTORY, 0, 0.0)

    async def _id(self) -> str | None:
        """This folder's id (the single root folder's, for ``folders/`` itself)."""
        if self._folder_id is not None:
            return self._folder_id
        roots = (await self._ctx.api.folders_indexed(_subfolders)).get(None, {})
        return next(iter(roots.values())).id if len(roots) == 1 else None

    async def _entries(self) -> tuple[Mapping[str, Folder], Mapping[str, DatasetLink]]:
        """This folder's sub-folders and dataset links, by name (one organization root is
        shown as ``folders/`` itself)."""
        subfolders = await self._ctx.api.folders_indexed(_subfolders)
        folder_id = await self._id()
        if folder_id is None:  # several roots (or none): they are the sub-folders
            return subfolders.get(None, {}), {}
        datasets = await self._ctx.api.datasets_indexed(index_datasets)
        return subfolders.get(folder_id, {}), datasets.by_folder.get(folder_id, {})

    def _link(self, name: str, link: DatasetLink) -> Symlink:
        depth = len(self.key) - 1  # levels below the source directory
        return Symlink((*self.key, name), "../" * depth + f"datasets/{link.path}")

    async def children(self) -> Sequence[Node]:
        folders, links = await self._entries()
        return [
            *_folder_nodes(self.key, self._ctx, folders.values()),
            *(self._link(name, link) for name, link in links.items()),
        ]

    async def child(self, name: str) -> Node:
        folders, links = await self._entries()
        if name in folders:
            return FoldersDir((*self.key, name), self._ctx, folders[name].id)
        if name in links:
            return self._link(name, links[name])
        raise NotFound("/".join((*self.key, name)))

    async def rename_child(self, name: str, new_parent: Directory, new_name: str) -> None:
        """``mv folders/a/<dataset> folders/b/``: moves the dataset to folder b."""
        if not isinstance(new_parent, FoldersDir) or new_name != name:
            raise ReadOnly("datasets can be moved between folders, not renamed (edit dataset.json)")
        child = await self.child(name)
        target = await new_parent._id()
        if not isinstance(child, Symlink) or target is None:
            raise ReadOnly(f"{'/'.join(child.key)} is not a dataset that can be moved")
        _, links = await self._entries()
        dataset = links[name].dataset
        try:
            await self._ctx.api.send(
                "PATCH", f"datasets/{dataset.id}/updatePartial", {"folderId": target}
            )
        finally:
            self._ctx.api.forget_dataset(dataset.id)


def folder_names(folders: Iterable[Folder]) -> dict[str, Folder]:
    """Sub-folders of one folder by distinct safe names (a clash adds the id)."""
    labels: dict[str, Folder] = {}
    for f in folders:
        label = f.name
        while label in labels:
            label = f"{label}~{f.id}"
        labels[label] = f
    names = unique_names(labels)
    return {names[label]: f for label, f in labels.items()}


def _subfolders(folders: list[Folder]) -> dict[str | None, dict[str, Folder]]:
    """Parent id (None: the roots) → its sub-folders by name."""
    grouped: dict[str | None, list[Folder]] = {}
    for f in folders:
        grouped.setdefault(f.parent, []).append(f)
    return {parent: folder_names(members) for parent, members in grouped.items()}


def _folder_nodes(key: NodePath, ctx: WkContext, folders: Iterable[Folder]) -> list[Node]:
    """Sub-folders of one folder, under distinct safe names."""
    return [FoldersDir((*key, name), ctx, f.id) for name, f in folder_names(folders).items()]

"""The emulated WEBKNOSSOS datastore: ``/data/v{N}/...`` (voxel data).

Routes (datastore ``ZarrStreamingController``, ``BinaryDataController``, ``DataProxyController``):

- Zarr streaming, Zarr v2 (API ≤ 14): ``/zarr/{id}/datasource-properties.json`` (GET, HEAD;
  layers rewritten to ``dataFormat: "zarr"`` with mag paths ``./{layer}/{mag}``),
  ``.zgroup``, ``{layer}/.zgroup``, ``{layer}/.zattrs`` (OME-NGFF 0.4, axes c, x, y, z),
  ``{layer}/{mag}/.zarray`` and chunks ``{layer}/{mag}/{c}.{x}.{y}.{z}``: always the full
  32³ chunk, uncompressed, Fortran order over (c, x, y, z). ``Range`` is ignored (200, whole
  body). A chunk entirely outside the layer's bounding box is a 404 (the real server's
  ``zarr.chunkNotFound``: the storage has no bucket there); chunks partly inside are zero-padded.
  A dataset, layer or mag the datastore does not have is a 404 too, with its own message
  (``ZarrStreamingController`` answers every failure with NOT_FOUND).
- Raw cuboid: ``GET /datasets/{id}/layers/{layer}/data?mag=&x=&y=&z=&width=&height=&depth=``
  (x, y, z in mag-1 voxels, sizes in target-mag voxels) → Fortran-order bytes and a
  ``MISSING-BUCKETS`` header: ``[]``, or ``[0]`` when the cuboid has no data at all.
  Each side must be 1 to 512 voxels, the real datastore's only size limit: its
  ``Cuboid.hasValidDimensions`` (scalableminds/webknossos, webknossos-datastore/app/com/
  scalableminds/webknossos/datastore/models/requests/Cuboid.scala: ``width > 0 && width <=
  512`` and the same for height and depth; no total-voxel cap, no configuration key). A box
  outside it fails in ``BinaryDataService.handleDataRequest`` with "Invalid cuboid dimensions
  (must be > 0 and <= 512).", and ``handleDataRequests`` collects its requests with
  ``Fox.sequenceOfFulls``, which drops failures: the client gets **200 with an empty body**
  and ``MISSING-BUCKETS: [0]``, never the message (datastores since 2026 also send
  ``Failure-Bucket-Indices: [0]``). The emulator answers exactly that. The official client
  splits its raw downloads into 512³ boxes (webknossos-libs, ``webknossos/client/
  _download_dataset.py``, ``_DOWNLOAD_CHUNK_SHAPE``).
- Proxy (the files of the layer's own storage, here Zarr 3): ``/datasets/{id}/proxy/
  datasource-properties.json`` (generated, ignores Range) and ``/datasets/{id}/proxy/layers/
  {layer}/mags/{mag}/{path}``: ``zarr.json`` and chunks ``c/0/{x}/{y}/{z}`` of 64³ voxels,
  uncompressed (transpose + bytes codecs, so the bytes are Fortran order over (c, x, y, z)).
  These honour one ``Range`` (``a-b``, ``a-``, suffix ``-n``) with 206, 416 when unsatisfiable,
  and answer ``Accept-Ranges: bytes`` and ``application/octet-stream`` like the real proxy.

- Reload: ``POST /triggers/reload/{organizationId}/{datasetId}`` (``DataSourceController.
  reload``; the official client's ``trigger_reload_in_datastore``): the datastore drops its
  caches of the dataset and reads its data source again, answering it as JSON (here: the
  data source as the main server stores it; nothing is cached, so nothing else changes).
  ``datasetId`` is an ``ObjectId`` path binder (400 when malformed, before any check). Access
  is ``UserAccessRequest.administrateDatasets(organizationId)``, which the main server grants
  to an admin or team manager *of that organization* and to any dataset manager
  (``UserAccessService.tryAdministrate``); a token of no user (none, unknown, a sharing
  token) is refused "invalid access token", a user without the right with no message
  (``AccessTokenService.executeBlockOnPositiveAnswer``: plain-text 403s). A dataset the main
  server does not know is a 404 ("Failed to get data source from remote webknossos",
  ``DSRemoteWebknossosClient.getDataSource``). The organization in the path is only used for
  the access check, as on the real datastore.

- Meshes: ``POST /datasets/{id}/layers/{layer}/meshes/fullMesh.stl`` (the official client's
  ``download_mesh``): a segment's whole mesh as binary STL, in the dataset's unit; see
  ``Datastore.full_mesh`` and ``mesh.py``.

Access: the token comes from ``?token=`` or ``X-Auth-Token``; it may be a user token (of a
user who may read the dataset) or the dataset's sharing token; public datasets need none.
A denied read is the real datastore's plain-text 403.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from neurofs_emulators.routing import Router
from neurofs_emulators.webknossos import models, render
from neurofs_emulators.webknossos.http import (
    WkError,
    invalid_json,
    json_body,
    json_response,
    require_object_id,
)
from neurofs_emulators.webknossos.mesh import boxes_stl
from neurofs_emulators.webknossos.state import Dataset, World
from neurofs_emulators.webknossos.volume import (
    CHUNK,
    LayerSpec,
    Vec3,
    f_order_bytes,
    mag_literal,
    parse_mag,
    segment_boxes,
)

ACCESS_DENIED = (
    "Token may be expired, consider reloading. Access forbidden: No read access on dataset"
)
# The two refusals of an access check the main server answers for administration
# (AccessTokenService.executeBlockOnPositiveAnswer): with its message (no user behind the
# token), and without one (a user who lacks the right).
NO_USER_DENIED = "Token may be expired, consider reloading. Access forbidden: invalid access token"
NOT_ALLOWED_DENIED = "Token may be expired, consider reloading. Token authentication failed."
# DSRemoteWebknossosClient.getDataSource's failure, answered as NOT_FOUND by the reload.
DATA_SOURCE_NOT_FOUND = "Failed to get data source from remote webknossos"
# The datastore's zarr.chunkNotFound (scalableminds/webknossos, webknossos-datastore/conf/messages):
# a 404 like that of a missing dataset, layer or mag; only the message differs.
CHUNK_NOT_FOUND = "Could not find the requested chunk"
# Chunk edge of the emulated underlying Zarr 3 storage (what the proxy routes serve).
PROXY_CHUNK = 64
# Largest side of a raw cuboid, in voxels of the target mag (the datastore's
# Cuboid.hasValidDimensions; see the module docstring).
MAX_CUBOID_SIDE = 512
OCTET = "application/octet-stream"
# The full-mesh route's failures: DSMeshController.loadFullMeshStl puts
# Msg.Mesh.File.loadChunkFailed on whatever DSFullMeshService.loadFor fails with, so the answer
# is that message with the cause as its chain (scalableminds/webknossos,
# util/src/main/scala/com/scalableminds/util/Msg.scala; see http.WkError).
MESH_FAILED = "Could not load mesh chunk for segment."
# Msg.Mesh.File.lookUpFailed: the layer has no mesh file of that name (the Msg entry named for
# MeshFileService.lookUpMeshFileKey; that service's Msg version was not readable).
MESH_FILE_NOT_FOUND = "Could not look up mesh file “{name}”."
# Msg.Mesh.magNeededForAdHoc and Msg.Dataset.Layer.mustBeSegmentation (the ad-hoc mesh's
# first two checks in DSFullMeshService).
MAG_NEEDED = "A mag needs to be provided for ad-hoc mesh computation."
MUST_BE_SEGMENTATION = "Data layer must be a segmentation layer."

ZARR_KEY = re.compile(r"^(\d+)\.(\d+)\.(\d+)\.(\d+)$")
PROXY_CHUNK_KEY = re.compile(r"^c/(\d+)/(\d+)/(\d+)/(\d+)$")
RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def _json_bytes(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


class Datastore:
    """Handlers of the datastore; reads the shared :class:`World`."""

    def __init__(self, world: World) -> None:
        self.world = world

    # ------------------------------------------------------------------ access

    def readable_dataset(self, request: Request) -> Dataset:
        dataset = self.world.datasets.get(request.path_params["id"])
        if dataset is None:
            raise WkError(404, "Datasource not found on datastore server")
        token = request.query_params.get("token") or request.headers.get("x-auth-token")
        user = self.world.user_for_token(token)
        if not self.world.can_read_dataset(dataset, user, token):
            raise WkError(403, ACCESS_DENIED, plain=True)
        return dataset

    def layer_of(self, dataset: Dataset, name: str) -> LayerSpec:
        layer = dataset.layer(name)
        if layer is None:
            raise WkError(404, f"DataLayer “{name}” not found")
        return layer

    @staticmethod
    def mag_of(layer: LayerSpec, text: str) -> Vec3:
        mag = parse_mag(text)
        if mag is None:
            raise WkError(404, f"Invalid mag: {text}")
        if not layer.has_mag(mag):
            raise WkError(404, f"DataLayer “{layer.name}” does not have mag “{text}”")
        return mag

    # ------------------------------------------------------------------ zarr streaming

    async def zarr_properties(self, request: Request) -> Response:
        dataset = self.readable_dataset(request)
        return json_response(render.zarr_streaming_properties(self.world, dataset))

    async def zgroup(self, request: Request) -> Response:
        dataset = self.readable_dataset(request)
        if "layer" in request.path_params:
            self.layer_of(dataset, request.path_params["layer"])
        return json_response({"zarr_format": 2})

    async def zattrs(self, request: Request) -> Response:
        dataset = self.readable_dataset(request)
        layer = self.layer_of(dataset, request.path_params["layer"])
        vx, vy, vz = dataset.voxel_size
        unit = dataset.unit
        multiscale = {
            "version": "0.4",
            "name": layer.name,
            "axes": [
                {"name": "c", "type": "channel"},
                {"name": "x", "type": "space", "unit": unit},
                {"name": "y", "type": "space", "unit": unit},
                {"name": "z", "type": "space", "unit": unit},
            ],
            "datasets": [
                {
                    "path": mag_literal(m),
                    "coordinateTransformations": [
                        {"type": "scale", "scale": [1.0, vx * m[0], vy * m[1], vz * m[2]]}
                    ],
                }
                for m in layer.mags
            ],
        }
        return json_response({"multiscales": [multiscale]})

    async def zarray(self, request: Request) -> Response:
        dataset = self.readable_dataset(request)
        layer = self.layer_of(dataset, request.path_params["layer"])
        mag = self.mag_of(layer, request.path_params["mag"])
        header = {
            "dtype": layer.zarr_dtype,
            "fill_value": 0,
            "zarr_format": 2,
            "order": "F",
            "chunks": [layer.num_channels, CHUNK, CHUNK, CHUNK],
            "compressor": None,
            "filters": None,
            "shape": list(layer.array_shape(mag)),
            "dimension_separator": ".",
        }
        return json_response(header)

    async def zarr_chunk(self, request: Request) -> Response:
        dataset = self.readable_dataset(request)
        layer = self.layer_of(dataset, request.path_params["layer"])
        mag = self.mag_of(layer, request.path_params["mag"])
        found = ZARR_KEY.match(request.path_params["key"])
        if found is None:
            raise WkError(404, "Invalid chunk coordinates")
        c, x, y, z = (int(v) for v in found.groups())
        start = (x * CHUNK, y * CHUNK, z * CHUNK)
        end = (start[0] + CHUNK, start[1] + CHUNK, start[2] + CHUNK)
        if c != 0 or not layer.box_has_data(mag, start, end):
            raise WkError(404, CHUNK_NOT_FOUND)
        body = f_order_bytes(layer.voxels(mag, start, end))
        return Response(body, media_type=OCTET)

    async def zarr_dataset_dir(self, request: Request) -> Response:
        dataset = self.readable_dataset(request)
        entries = ["datasource-properties.json", ".zgroup", *(lay.name for lay in dataset.layers)]
        return _listing(f"Datastore zarr directory of {dataset.name}", entries)

    async def zarr_layer_dir(self, request: Request) -> Response:
        dataset = self.readable_dataset(request)
        layer = self.layer_of(dataset, request.path_params["layer"])
        entries = [".zattrs", ".zgroup", *(mag_literal(m) for m in layer.mags)]
        return _listing(f"Datastore zarr directory of {dataset.name}/{layer.name}", entries)

    async def zarr_mag_dir(self, request: Request) -> Response:
        dataset = self.readable_dataset(request)
        layer = self.layer_of(dataset, request.path_params["layer"])
        mag = self.mag_of(layer, request.path_params["mag"])
        return _listing(
            f"Datastore zarr directory of {dataset.name}/{layer.name}/{mag_literal(mag)}",
            [".zarray"],
        )

    # ------------------------------------------------------------------ raw cuboids

    async def raw_cuboid(self, request: Request) -> Response:
        dataset = self.readable_dataset(request)
        layer = self.layer_of(dataset, request.path_params["layer"])
        params: dict[str, int] = {}
        for name in ("x", "y", "z", "width", "height", "depth"):
            value = request.query_params.get(name)
            if value is None:
                raise WkError(400, f"Missing parameter: {name}")
            try:
                params[name] = int(value)
            except ValueError:
                raise WkError(400, f"Cannot parse parameter {name} as Int: {value}") from None
        mag_text = request.query_params.get("mag")
        if mag_text is None:
            raise WkError(400, "Missing parameter: mag")
        mag = self.mag_of(layer, mag_text)
        size = (params["width"], params["height"], params["depth"])
        if not all(0 < s <= MAX_CUBOID_SIDE for s in size):
            # The datastore's failed request, dropped as a missing bucket: no bytes, no error.
            return _raw_response(b"", "[0]")
        # x, y, z are mag-1 coordinates of the top-left corner.
        start = (params["x"] // mag[0], params["y"] // mag[1], params["z"] // mag[2])
        end = (start[0] + size[0], start[1] + size[1], start[2] + size[2])
        body = f_order_bytes(layer.voxels(mag, start, end))
        missing = "[]" if layer.box_has_data(mag, start, end) else "[0]"
        return _raw_response(body, missing)

    # ------------------------------------------------------------------ meshes

    async def full_mesh(self, request: Request) -> Response:
        """``POST /datasets/{id}/layers/{layer}/meshes/fullMesh.stl`` (``DSMeshController.
        loadFullMeshStl``): a segment's whole mesh as binary STL (see ``mesh.py``). The
        emulated segmentation layers have a segment index (the formula says where each
        segment is), so an ad-hoc mesh needs only ``mag``, as on a real datastore whose
        layer has a segment index file: ``seedPosition`` is ignored, and a segment the layer
        does not have is a mesh of no triangles (its index lists no buckets). A mesh it cannot
        make is the real 400 "Could not load mesh chunk for segment." with the cause chained."""
        dataset = self.readable_dataset(request)
        layer = self.layer_of(dataset, request.path_params["layer"])
        raw = await json_body(request)
        try:
            body = models.FullMeshRequest.model_validate(raw)
        except ValidationError as exc:
            raise invalid_json(exc) from None

        def failed(cause: str) -> WkError:
            return WkError(400, MESH_FAILED, causes=[cause])

        if body.mesh_file_name is not None:
            # No layer here has mesh files (MeshFileService.lookUpMeshFileKey fails).
            raise failed(MESH_FILE_NOT_FOUND.format(name=body.mesh_file_name))
        if body.mag is None:
            raise failed(MAG_NEEDED)
        if layer.category != "segmentation":
            raise failed(MUST_BE_SEGMENTATION)
        # The emulator's own causes for these two (no mappings or agglomerate files here; a
        # mag the layer lacks): the real datastore fails deeper, with texts not modelled.
        if body.mapping_name is not None:
            raise failed(f"Mapping {body.mapping_name} not found")
        if not layer.has_mag(body.mag):
            raise failed(f"DataLayer “{layer.name}” does not have mag “{mag_literal(body.mag)}”")
        boxes = segment_boxes(layer, body.segment_id, body.mag)
        return Response(boxes_stl(boxes, dataset.voxel_size), media_type=OCTET)

    # ------------------------------------------------------------------ proxy

    async def proxy_properties(self, request: Request) -> Response:
        dataset = self.readable_dataset(request)
        return json_response(render.proxy_properties(self.world, dataset))

    async def proxy_file(self, request: Request) -> Response:
        dataset = self.readable_dataset(request)
        layer = self.layer_of(dataset, request.path_params["layer"])
        mag = self.mag_of(layer, request.path_params["mag"])
        path = request.path_params["path"]
        if path == "zarr.json":
            body = _json_bytes(_zarr3_array_header(layer, mag))
        else:
            found = PROXY_CHUNK_KEY.match(path)
            if found is None:
                raise WkError(404, f"File not found: {path}")
            c, x, y, z = (int(v) for v in found.groups())
            start = (x * PROXY_CHUNK, y * PROXY_CHUNK, z * PROXY_CHUNK)
            end = (start[0] + PROXY_CHUNK, start[1] + PROXY_CHUNK, start[2] + PROXY_CHUNK)
            if c != 0 or not layer.box_has_data(mag, start, end):
                raise WkError(404, f"File not found: {path}")
            body = f_order_bytes(layer.voxels(mag, start, end))
        return ranged(request, body)

    # ------------------------------------------------------------------ actions

    async def reload(self, request: Request) -> Response:
        organization = request.path_params["organization"]
        dataset_id = require_object_id(request.path_params["id"])
        token = request.query_params.get("token") or request.headers.get("x-auth-token")
        user = self.world.user_for_token(token)
        if user is None:
            raise WkError(403, NO_USER_DENIED, plain=True)
        if not self.world.can_administrate_datasets(user, organization):
            raise WkError(403, NOT_ALLOWED_DENIED, plain=True)
        dataset = self.world.datasets.get(dataset_id)
        if dataset is None:
            raise WkError(404, DATA_SOURCE_NOT_FOUND)
        layers = [render.api_layer(self.world, dataset, layer) for layer in dataset.layers]
        return json_response(render.data_source(self.world, dataset, layers))

    # ------------------------------------------------------------------ routing

    def router(self) -> Router:
        r = Router()
        z = "/zarr/{id}"
        r.add("GET", z, self.zarr_dataset_dir)
        r.add("GET", z + "/", self.zarr_dataset_dir)
        r.add("GET", z + "/datasource-properties.json", self.zarr_properties)
        r.add("GET", z + "/.zgroup", self.zgroup)
        r.add("GET", z + "/{layer}", self.zarr_layer_dir)
        r.add("GET", z + "/{layer}/", self.zarr_layer_dir)
        r.add("GET", z + "/{layer}/.zgroup", self.zgroup)
        r.add("GET", z + "/{layer}/.zattrs", self.zattrs)
        r.add("GET", z + "/{layer}/{mag}", self.zarr_mag_dir)
        r.add("GET", z + "/{layer}/{mag}/", self.zarr_mag_dir)
        r.add("GET", z + "/{layer}/{mag}/.zarray", self.zarray)
        r.add("GET", z + "/{layer}/{mag}/{key}", self.zarr_chunk)
        r.add("GET", "/datasets/{id}/layers/{layer}/data", self.raw_cuboid)
        r.add("GET", "/datasets/{id}/proxy/datasource-properties.json", self.proxy_properties)
        r.add("GET", "/datasets/{id}/proxy/layers/{layer}/mags/{mag}/{path:path}", self.proxy_file)
        r.add("POST", "/triggers/reload/{organization}/{id}", self.reload)
        r.add("POST", "/datasets/{id}/layers/{layer}/meshes/fullMesh.stl", self.full_mesh)
        return r


def _raw_response(body: bytes, missing: str) -> Response:
    return Response(
        body,
        media_type=OCTET,
        headers={"MISSING-BUCKETS": missing, "Access-Control-Expose-Headers": "MISSING-BUCKETS"},
    )


def _zarr3_array_header(layer: LayerSpec, mag: Vec3) -> dict[str, Any]:
    return {
        "zarr_format": 3,
        "node_type": "array",
        "shape": list(layer.array_shape(mag)),
        "data_type": "uint32" if layer.element_class == "uint32" else "uint8",
        "chunk_grid": {
            "name": "regular",
            "configuration": {
                "chunk_shape": [layer.num_channels, PROXY_CHUNK, PROXY_CHUNK, PROXY_CHUNK]
            },
        },
        "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
        "fill_value": 0,
        "codecs": [
            {"name": "transpose", "configuration": {"order": [3, 2, 1, 0]}},
            {"name": "bytes", "configuration": {"endian": "little"}},
        ],
        "dimension_names": ["c", "x", "y", "z"],
        "attributes": {},
    }


def ranged(request: Request, body: bytes) -> Response:
    """Serve ``body`` honouring a single byte range like the real proxy (206 / 416)."""
    headers = {"Accept-Ranges": "bytes"}
    header = request.headers.get("range")
    if header is None:
        return Response(body, media_type=OCTET, headers=headers)
    found = RANGE.match(header.strip())
    size = len(body)
    if found is None or found.group(1) == found.group(2) == "":
        # Not a single byte range we understand: the whole body, like servers that ignore it.
        return Response(body, media_type=OCTET, headers=headers)
    first, last = found.group(1), found.group(2)
    if first == "":
        length = int(last)
        if length == 0:
            return _unsatisfiable(size)
        start, end = max(0, size - length), size - 1
    else:
        start = int(first)
        end = min(int(last), size - 1) if last != "" else size - 1
        if start >= size or (last != "" and int(last) < start):
            return _unsatisfiable(size)
    headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    return Response(body[start : end + 1], status_code=206, media_type=OCTET, headers=headers)


def _unsatisfiable(size: int) -> Response:
    return Response(
        b"", status_code=416, media_type=OCTET, headers={"Content-Range": f"bytes */{size}"}
    )


def _listing(title: str, entries: list[str]) -> Response:
    items = "".join(f'<li><a href="{e}">{e}</a></li>' for e in entries)
    return HTMLResponse(
        f"<!DOCTYPE html><html><head><title>{title}</title></head>"
        f"<body><h1>{title}</h1><ul>{items}</ul></body></html>"
    )

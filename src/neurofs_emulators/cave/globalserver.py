"""The emulated global server: info service, schema service and neuroglancer state server.

- Info (AnnotationFrameworkInfoService 4.3.3): ``/info/api/v2/datastack/full/{ds}`` needs
  ``view`` on the datastack; list routes need any valid token; ``/info/version`` and
  ``/info/api/versions`` are public.
- Schemas (EMAnnotationSchemas 5.26.3): public. An unknown schema is flask-restx's 404 with
  its "did you mean" help text.
- Auth (middle_auth 2.30.3): ``GET /auth/api/v1/user/cache`` answers the token's user as
  ``create_cache`` builds it (``permissions`` as integer levels per dataset, ``permissions_v2``
  as names, ``missing_tos``); no or a bad token is middle_auth's 401.
- States (NeuroglancerJsonServer 0.7.2): every route needs a valid token. ``POST
  /nglstate/api/v1/post`` stores the body (it must parse as JSON) and answers, as a JSON
  string, the request URL with its last segment replaced by the new id. ``GET
  /nglstate/api/v1/{id}`` answers the stored bytes; when ``Accept-Encoding`` mentions
  ``deflate`` they are sent zlib-compressed, labelled ``Content-Encoding: deflate`` only if
  ``gzip`` is accepted too (a real quirk). An unknown or non-numeric id crashes the server's
  handler: a 500 HTML page.
- The datastack's viewer (``viewer_site``): a neuroglancer deployment, public, of which only
  ``version.json`` is served (what clients ask of it to know the form of link it reads; a
  real deployment is a host of its own, here it is a path of the global server's origin).
  Its static host merges repeated slashes: caveclient asks ``{viewer_site}/version.json``
  whatever ``viewer_site`` ends with.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import Response

from neurofs_emulators.cave.auth import Authenticator
from neurofs_emulators.cave.definitions import DEFINITIONS, SCHEMA_NAMES
from neurofs_emulators.cave.http import (
    INTERNAL_ERROR_TEXT,
    NOT_FOUND_TEXT,
    flask_json,
    restx_json,
    werkzeug_html,
)
from neurofs_emulators.cave.models import AlignedVolumeInfo, DatastackInfo
from neurofs_emulators.cave.sample import (
    ALIGNED_VOLUME,
    ALIGNED_VOLUME_ID,
    AUTH_DATASET,
    AUTH_DATASET_ID,
    AUTH_GROUP,
    DATASTACK,
    IMAGE_SOURCE,
    PCG_TABLE,
    TOS_DOCUMENT_ID,
    TOS_NAME,
    VIEWER_BUILD,
    VIEWER_PATH,
    VOXEL_RESOLUTION,
)
from neurofs_emulators.cave.state import CaveState, NglState, utcnow
from neurofs_emulators.routing import Router

INFO_VERSION = "4.3.3"
STATE_SERVER_VERSION = "0.7.2"
# middle_auth's ``permission_to_level``.
PERMISSION_LEVELS = {"none": 0, "view": 1, "edit": 2}
ALIGNED_VOLUME_DESCRIPTION = "Synthetic EM volume of the neurofs demo (offline emulator)."
DATASTACK_DESCRIPTION = "The neurofs demo datastack: synthetic synapses, tags and cell types."


def aligned_volume_info() -> AlignedVolumeInfo:
    return AlignedVolumeInfo(
        id=ALIGNED_VOLUME_ID,
        name=ALIGNED_VOLUME,
        display_name="NeuroFS demo volume",
        description=ALIGNED_VOLUME_DESCRIPTION,
        image_source=IMAGE_SOURCE,
    )


def datastack_info(local_server: str, global_server: str) -> DatastackInfo:
    """The datastack's full info record; ``local_server`` and ``global_server`` are the
    emulator's origins (the viewer is served on the global one)."""
    return DatastackInfo(
        aligned_volume=aligned_volume_info(),
        segmentation_source=f"graphene://{local_server}/segmentation/table/{PCG_TABLE}",
        skeleton_source=None,
        analysis_database=None,
        viewer_site=global_server + VIEWER_PATH,
        synapse_table="synapse",
        soma_table=None,
        local_server=local_server,
        description=DATASTACK_DESCRIPTION,
        viewer_resolution_x=VOXEL_RESOLUTION[0],
        viewer_resolution_y=VOXEL_RESOLUTION[1],
        viewer_resolution_z=VOXEL_RESOLUTION[2],
        proofreading_status_table=None,
        cell_identification_table="cell_type_local",
        proofreading_review_table=None,
    )


class GlobalServer:
    """Info, schema, state and viewer routes; ``local_server`` and ``global_server`` give the
    emulator's two origins as a request reaches them."""

    def __init__(
        self,
        state: CaveState,
        auth: Authenticator,
        local_server: Callable[[Request], str],
        global_server: Callable[[Request], str],
    ) -> None:
        self.state = state
        self.auth = auth
        self.local_server = local_server
        self.global_server = global_server

    def router(self) -> Router:
        router = Router()
        router.add("GET", "/info/version", self.info_version)
        router.add("GET", "/info/api/versions", self.info_api_versions)
        router.add("GET", "/info/api/v2/datastacks", self.datastacks)
        router.add("GET", "/info/api/v2/datastack/full/{datastack}", self.datastack_full)
        router.add("GET", "/info/api/v2/datastack/{datastack}/image_sources", self.image_sources)
        router.add("GET", "/info/api/v2/aligned_volume", self.aligned_volumes)
        router.add("GET", "/info/api/v2/aligned_volume/{aligned_volume}", self.aligned_volume)
        router.add(
            "GET", "/info/api/v2/aligned_volume/{aligned_volume}/datastacks", self.av_datastacks
        )
        router.add("GET", "/schema/versions", self.schema_versions)
        router.add("GET", "/schema/api/v2/type", self.schema_types)
        router.add("GET", "/schema/api/v2/type/{schema}", self.schema_definition)
        router.add("POST", "/schema/api/v2/types", self.schema_definitions)
        router.add("GET", "/schema/api/v2/types_all", self.schema_definitions_all)
        router.add("GET", "/auth/api/v1/user/cache", self.user_cache)
        router.add("GET", "/nglstate/api/v1/version", self.state_version)
        router.add("POST", "/nglstate/api/v1/post", self.post_state)
        router.add("POST", "/nglstate/api/v1/post/{state_id}", self.post_state_with_id)
        router.add("GET", "/nglstate/api/v1/raw/{state_id}", self.get_state_raw)
        router.add("GET", "/nglstate/api/v1/{state_id}", self.get_state)
        for path in (VIEWER_PATH, VIEWER_PATH + "/"):
            router.add("GET", path + "version.json", self.viewer_version)
        return router

    # ------------------------------------------------------------------ auth

    async def user_cache(self, request: Request) -> Response:
        """middle_auth's "who am I": the token's user as the auth service caches it
        (CAVEconnectome/middle_auth, ``neuroglancer_auth/model/user.py``, ``create_cache``).

        ``permissions`` is the highest level per dataset (none 0, view 1, edit 2) and
        ``permissions_v2`` the permission names; a dataset whose terms of service are not
        accepted is left out of both (it stays in ``permissions_v2_ignore_tos``) and named in
        ``missing_tos``. Terms of service are checked by the services, not here, so such a
        token is still answered. ``affiliations`` is a list inside a list, as the real
        property returns a one-element tuple."""
        user = self.auth.user(request)
        granted = {AUTH_DATASET: list(user.permissions)} if user.accepted_tos else {}
        return flask_json(
            {
                "id": user.id,
                "parent_id": None,
                "service_account": False,
                "name": user.name,
                "email": user.email,
                "admin": False,
                "pi": "",
                "affiliations": [[]],
                "groups": [AUTH_GROUP],
                "permissions": {
                    dataset: max(PERMISSION_LEVELS.get(p, 0) for p in names)
                    for dataset, names in granted.items()
                },
                "permissions_v2": granted,
                "permissions_v2_ignore_tos": {AUTH_DATASET: list(user.permissions)},
                "missing_tos": []
                if user.accepted_tos
                else [
                    {
                        "dataset_id": AUTH_DATASET_ID,
                        "dataset_name": AUTH_DATASET,
                        "tos_id": TOS_DOCUMENT_ID,
                        "tos_name": TOS_NAME,
                    }
                ],
                "datasets_admin": [],
                "groups_admin": [],
            }
        )

    # ------------------------------------------------------------------ info

    async def info_version(self, request: Request) -> Response:
        return flask_json(INFO_VERSION)

    async def info_api_versions(self, request: Request) -> Response:
        return flask_json([2])

    async def datastacks(self, request: Request) -> Response:
        self.auth.user(request)
        return restx_json([DATASTACK])

    async def datastack_full(self, request: Request) -> Response:
        self.auth.require(request, "view", request.path_params["datastack"])
        info = datastack_info(self.local_server(request), self.global_server(request))
        return restx_json(info.dump())

    async def image_sources(self, request: Request) -> Response:
        self.auth.require(request, "view", request.path_params["datastack"])
        return restx_json([aligned_volume_info().dump()])

    async def aligned_volumes(self, request: Request) -> Response:
        self.auth.user(request)
        return restx_json([ALIGNED_VOLUME])

    async def aligned_volume(self, request: Request) -> Response:
        name = request.path_params["aligned_volume"]
        self.auth.require(request, "view", name, namespace="aligned_volume")
        return restx_json(aligned_volume_info().dump())

    async def av_datastacks(self, request: Request) -> Response:
        self.auth.user(request)
        found = [DATASTACK] if request.path_params["aligned_volume"] == ALIGNED_VOLUME else []
        return restx_json(found)

    # ------------------------------------------------------------------ schemas

    async def schema_versions(self, request: Request) -> Response:
        return flask_json([2])

    async def schema_types(self, request: Request) -> Response:
        return restx_json(list(SCHEMA_NAMES))

    @staticmethod
    def _not_found(request: Request) -> Response:
        message = (
            f"{NOT_FOUND_TEXT} You have requested this URI [{request.url.path}] but did you "
            "mean /schema/api/v2/type/<string:annotation_type> ?"
        )
        return restx_json({"message": message}, 404)

    async def schema_definition(self, request: Request) -> Response:
        definition = DEFINITIONS.get(request.path_params["schema"])
        if definition is None:
            return self._not_found(request)
        return restx_json(definition)

    async def schema_definitions(self, request: Request) -> Response:
        names = [n for n in request.query_params.get("schema_names", "").split(",") if n]
        if any(n not in DEFINITIONS for n in names):
            return self._not_found(request)
        return restx_json({n: DEFINITIONS[n] for n in names})

    async def schema_definitions_all(self, request: Request) -> Response:
        return restx_json({n: DEFINITIONS[n] for n in SCHEMA_NAMES})

    # ------------------------------------------------------------------ viewer

    async def viewer_version(self, request: Request) -> Response:
        """The deployment's static version.json, as its build writes it (``echo`` of the
        build information: items joined by ", ", a newline at the end)."""
        body = json.dumps(VIEWER_BUILD, separators=(", ", ":")) + "\n"
        return Response(body, media_type="application/json")

    # ------------------------------------------------------------------ states

    async def state_version(self, request: Request) -> Response:
        self.auth.user(request)
        return flask_json(STATE_SERVER_VERSION)

    def _stored(self, raw_id: str) -> NglState | None:
        try:
            return self.state.states.get(int(raw_id))
        except ValueError:
            return None

    async def get_state(self, request: Request) -> Response:
        self.auth.user(request)
        stored = self._stored(request.path_params["state_id"])
        if stored is None:
            return werkzeug_html(500, INTERNAL_ERROR_TEXT)
        accept = request.headers.get("accept-encoding", "")
        body = zlib.compress(stored.body) if "deflate" in accept else stored.body
        headers = {"Vary": "Accept-Encoding"}
        if "gzip" in accept:
            headers["Content-Encoding"] = "deflate"
        return Response(body, headers=headers, media_type="application/json")

    async def get_state_raw(self, request: Request) -> Response:
        self.auth.user(request)
        stored = self._stored(request.path_params["state_id"])
        if stored is None:
            return werkzeug_html(500, INTERNAL_ERROR_TEXT)
        return Response(zlib.compress(stored.body), media_type="text/html; charset=utf-8")

    async def post_state(self, request: Request) -> Response:
        user = self.auth.user(request)
        raw = await request.body()
        try:
            json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            return werkzeug_html(500, INTERNAL_ERROR_TEXT)
        state_id = self.state.next_state_id
        self.state.next_state_id += 1_000_003 * 7919
        self.state.states[state_id] = NglState(state_id, bytes(raw), str(user.id), utcnow())
        base = str(request.url).strip("/").rsplit("/", 1)[0]
        return flask_json(f"{base}/{state_id}")

    async def post_state_with_id(self, request: Request) -> Response:
        # auth_requires_admin: no emulated user is a superadmin.
        self.auth.user(request)
        return Response("Requires superadmin privilege.", 403, media_type="text/html")

"""The DANDI REST API (``/api/...``) and its S3-like object store, as one ASGI app.

Routes, status codes and bodies follow the real server (dandi/dandi-archive,
``dandiapi/api/views`` and ``dandiapi/zarr/views``; the views are in :mod:`.views`, one module
per resource). The app serves two origins: requests arriving on the blob port (the second
server of :class:`~neurofs_emulators.service.Origins`) reach only the object store
(``/dandiarchive/...``), every other port only the API. Without a blob port (in-process use)
both live on one origin. The object store serves open zarrs' keys and non-embargoed blobs to
unsigned GETs, as the public bucket does (see :mod:`.blobstore`).

Besides the reads, the draft can be edited like on the real server: ``PUT`` of a draft's
metadata, ``POST``/``PUT``/``DELETE`` of its assets (owner only; rules in :mod:`.writes`).
Writes change the in-memory :class:`Archive` only.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from neurofs_emulators.dandi import drf, writes
from neurofs_emulators.dandi.archive import Archive
from neurofs_emulators.dandi.blobstore import (
    BUCKET,
    CorruptionControl,
    S3Error,
    Signer,
    presign_ttl_from_env,
)
from neurofs_emulators.dandi.drf import APIError, RawError
from neurofs_emulators.dandi.views.asset_writes import AssetWriteViews
from neurofs_emulators.dandi.views.assets import AssetViews
from neurofs_emulators.dandi.views.base import json_response
from neurofs_emulators.dandi.views.blobs import BlobViews
from neurofs_emulators.dandi.views.dandisets import DandisetViews
from neurofs_emulators.dandi.views.info import InfoViews
from neurofs_emulators.dandi.views.versions import VersionViews
from neurofs_emulators.dandi.views.zarr import ZarrViews
from neurofs_emulators.network import NetworkKnobs, RequestLog
from neurofs_emulators.requestlog import BodyRequestLog
from neurofs_emulators.routing import ANY, Converter, Handler, Router
from neurofs_emulators.service import Dispatcher, EmulatorApp, Origins


class DandiAPI(
    InfoViews,
    DandisetViews,
    VersionViews,
    AssetViews,
    AssetWriteViews,
    ZarrViews,
    BlobViews,
):
    """Every view of the API and of the object store, one group of handlers per resource
    (:mod:`neurofs_emulators.dandi.views`); all state lives in the :class:`Archive`."""


# ------------------------------------------------------------------ routing


SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def _methods(api: DandiAPI, handlers: Mapping[str, Handler], viewset: bool = False) -> Handler:
    """DRF-style method dispatch: HEAD follows GET; anything else is a JSON 405.

    Background validation that is due is finished first (:meth:`DandiAPI.settle`). On the
    archive's viewsets (``viewset``) DRF checks authentication and the default permission
    classes before it looks for a handler, so an anonymous write to a read-only route is a
    401, not a 405.
    """

    async def endpoint(request: Request) -> Response:
        api.settle()
        method = request.method
        if method == "HEAD" and "GET" in handlers:
            return await handlers["GET"](request)
        handler = handlers.get(method)
        if handler is not None:
            return await handler(request)
        if viewset:
            user = api.authenticate(request)
            if method not in SAFE_METHODS:
                if user is None:
                    raise drf.not_authenticated()
                if not user.admin and user.status != "APPROVED":
                    raise drf.permission_denied()
        raise drf.method_not_allowed(method)

    return endpoint


# Django's URL patterns only match well-formed ids; anything else is an unrouted URL (HTML 404).
CONVERTERS = {
    "dandiset_id": Converter(r"\d{6}"),
    "dandi_version": Converter(r"0\.\d{6}\.\d{4}|draft"),
    "uuid4": Converter(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"),
    # An object key: the rest of the path, possibly empty (then a NoSuchKey).
    "key": Converter(r".*"),
}


def api_routes(api: DandiAPI) -> Router:
    ds = "/api/dandisets/{dandiset_id:dandiset_id}"
    ver = ds + "/versions/{version:dandi_version}"
    nested = ver + "/assets/{asset_id:uuid4}"
    top = "/api/assets/{asset_id:uuid4}"
    table: list[tuple[str, dict[str, Handler], bool]] = [
        ("/api/info/", {"GET": api.info}, False),
        ("/api/auth/token/", {"GET": api.auth_token}, False),
        ("/api/users/me/", {"GET": api.users_me}, False),
        ("/api/dandisets/", {"GET": api.dandiset_list}, True),
        (ds + "/", {"GET": api.dandiset_detail}, True),
        (ds + "/versions/", {"GET": api.version_list}, True),
        (
            ver + "/",
            {"GET": api.version_detail, "PUT": api.version_update, "DELETE": api.version_delete},
            True,
        ),
        (ver + "/info/", {"GET": api.version_info}, True),
        (ver + "/assets/", {"GET": api.asset_list, "POST": api.asset_create}, True),
        (ver + "/assets/paths/", {"GET": api.asset_paths}, True),
        (
            nested + "/",
            {"GET": api.nested_asset_detail, "PUT": api.asset_update, "DELETE": api.asset_delete},
            True,
        ),
        (nested + "/info/", {"GET": api.nested_asset_info}, True),
        (nested + "/download/", {"GET": api.nested_asset_download}, True),
        (top + "/", {"GET": api.asset_detail}, True),
        (top + "/info/", {"GET": api.asset_info}, True),
        (top + "/download/", {"GET": api.asset_download}, True),
        ("/api/zarr/", {"GET": api.zarr_list}, False),
        ("/api/zarr/{zarr_id:uuid4}/", {"GET": api.zarr_detail}, False),
        ("/api/zarr/{zarr_id:uuid4}/files/", {"GET": api.zarr_files}, False),
        ("/api/blobs/digest/", {"POST": api.blob_digest}, False),
    ]
    router = Router(CONVERTERS)
    for path, handlers, viewset in table:
        router.add(ANY, path, _methods(api, handlers, viewset))
    return router


def blob_routes(api: DandiAPI) -> Router:
    router = Router(CONVERTERS)
    # The S3 handlers answer every method (405 for writes). `/dandiarchive/` is the object of
    # the empty key (a NoSuchKey).
    router.add(ANY, f"/{BUCKET}/{{key:key}}", api.object_get)
    router.add(ANY, f"/{BUCKET}", api.bucket_root)
    return router


def _is_blob_path(path: str) -> bool:
    return path == f"/{BUCKET}" or path.startswith(f"/{BUCKET}/")


class DandiDispatcher(Dispatcher):
    """Origin split (API or object store, by port), routing, and the answers of errors."""

    def __init__(self, api: DandiAPI, origins: Origins) -> None:
        self.api = api
        self.origins = origins
        self.api_router = api_routes(api)
        self.blob_router = blob_routes(api)

    async def handle(self, request: Request) -> Response:
        # Django routes the decoded path as it came, before any URL parsing.
        path: str = request.scope["path"]
        blob_path = _is_blob_path(path)
        on_blob_port = self.origins.on_second(request.scope)
        if on_blob_port is not None:
            if on_blob_port and not blob_path:
                return S3Error(404, "NoSuchBucket", "The specified bucket does not exist").response(
                    request.method == "HEAD"
                )
            if not on_blob_port and blob_path:
                return HTMLResponse(drf.DJANGO_NOT_FOUND_HTML, status_code=404)
        router = self.blob_router if blob_path else self.api_router
        matched = router.match(request.method, path)
        if matched is None:
            return self.unrouted(request)
        try:
            return await matched(request)
        except APIError as exc:
            return json_response(exc.body, exc.status, exc.headers)
        except RawError as exc:
            return HTMLResponse(exc.body, status_code=exc.status)

    def unrouted(self, request: Request) -> Response:
        # Django's APPEND_SLASH: a URL that only lacks its trailing slash → 301 (relative).
        path = request.url.path
        if not path.endswith("/") and self.api_router.methods(path + "/"):
            query = request.scope.get("query_string", b"").decode("latin-1")
            location = quote(path + "/", safe="/-_.~!$&'()*+,;=:@") + (f"?{query}" if query else "")
            return Response(
                status_code=301,
                headers={"Location": location, "Content-Type": "text/html; charset=utf-8"},
            )
        return HTMLResponse(drf.DJANGO_NOT_FOUND_HTML, status_code=404)


def create_app(
    archive: Archive,
    knobs: NetworkKnobs,
    *,
    origins: Origins | None = None,
    presign_ttl: float | None = None,
    request_log: RequestLog | None = None,
    validation_delay: float | None = None,
) -> EmulatorApp:
    """The emulator's ASGI app.

    ``origins.second_port`` (settable after creation) is the port of the object store; until
    set, blob URLs point at the API's own origin. ``presign_ttl`` defaults to 6 hours or the
    ``NEUROFS_EMULATOR_PRESIGN_TTL`` environment variable. ``validation_delay`` (seconds a
    written draft or asset stays Pending) defaults to 1 s or the
    ``NEUROFS_EMULATOR_VALIDATION_DELAY`` environment variable. The request log (default: a
    :class:`BodyRequestLog`) records the JSON body of writes.
    """
    origins = origins if origins is not None else Origins()
    signer = Signer(presign_ttl if presign_ttl is not None else presign_ttl_from_env())
    delay = validation_delay if validation_delay is not None else writes.validation_delay_from_env()
    api = DandiAPI(archive, origins, signer, delay)
    return EmulatorApp(
        DandiDispatcher(api, origins),
        knobs,
        request_log if request_log is not None else BodyRequestLog(),
        # The corruption switch is a control route: in front of the network knobs.
        controls=lambda app: CorruptionControl(app, api.corruption),
    )

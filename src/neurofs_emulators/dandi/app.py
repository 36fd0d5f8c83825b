"""The DANDI REST API (``/api/...``) and its S3-like object store, as one ASGI app.

Routes, status codes and bodies follow the real server (dandi/dandi-archive,
``dandiapi/api/views`` and ``dandiapi/zarr/views``). The app serves two origins: requests
arriving on the blob port (the second server of :class:`~neurofs_emulators.service.Origins`)
reach only the object store
(``/dandiarchive/...``), every other port only the API. Without a blob port (in-process use)
both live on one origin. The object store serves open zarrs' keys and non-embargoed blobs to
unsigned GETs, as the public bucket does (see :mod:`.blobstore`).

Besides the reads, the draft can be edited like on the real server: ``PUT`` of a draft's
metadata, ``POST``/``PUT``/``DELETE`` of its assets (owner only; rules in :mod:`.writes`).
Writes change the in-memory :class:`Archive` only.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from neurofs_emulators.dandi import drf, models, writes
from neurofs_emulators.dandi.archive import Archive, Asset, Blob, Dandiset, User, Version, Zarr
from neurofs_emulators.dandi.blobstore import (
    BUCKET,
    Corruption,
    CorruptionControl,
    S3Error,
    Signer,
    presign_ttl_from_env,
    serve_object,
)
from neurofs_emulators.dandi.drf import APIError, QueryParams, RawError
from neurofs_emulators.dandi.sample import (
    ALLOWED_SCHEMA_VERSIONS,
    INSTANCE_NAME,
    JUPYTERHUB_URL,
    SCHEMA_VERSION,
    SERVER_VERSION,
    WEB_APP_URL,
)
from neurofs_emulators.network import NetworkKnobs, RequestLog
from neurofs_emulators.requestlog import BodyRequestLog
from neurofs_emulators.routing import ANY, Converter, Handler, Router
from neurofs_emulators.service import Dispatcher, EmulatorApp, Origins


def _json(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> JSONResponse:
    if isinstance(payload, models.Payload):
        payload = payload.dump()
    return JSONResponse(payload, status_code=status, headers=headers)


class DandiAPI:
    """Request handlers; all state lives in the :class:`Archive`."""

    def __init__(
        self,
        archive: Archive,
        origins: Origins,
        signer: Signer,
        validation_delay: float = writes.DEFAULT_VALIDATION_DELAY,
    ) -> None:
        self.archive = archive
        self.origins = origins
        self.signer = signer
        self.validation_delay = validation_delay
        self.corruption = Corruption()

    def settle(self) -> None:
        """Finish the emulated background validation that is due (before each request)."""
        writes.settle(self.archive)

    # ---------------------------------------------------------------- helpers

    def authenticate(self, request: Request) -> User | None:
        """DRF TokenAuthentication: only the ``token`` scheme is checked, case-insensitively."""
        header = request.headers.get("authorization")
        if not header:
            return None
        parts = header.split()
        if not parts or parts[0].lower() != "token":
            return None
        if len(parts) == 1:
            raise drf.authentication_failed("Invalid token header. No credentials provided.")
        if len(parts) > 2:
            raise drf.authentication_failed(
                "Invalid token header. Token string should not contain spaces."
            )
        user = self.archive.user_for_token(parts[1])
        if user is None:
            raise drf.authentication_failed("Invalid token.")
        return user

    @staticmethod
    def api_origin(request: Request) -> str:
        host = request.headers.get("host") or f"{request.url.hostname}:{request.url.port}"
        return f"{request.url.scheme}://{host}"

    def blob_origin(self, request: Request) -> str:
        if self.origins.second_port is None:
            return self.api_origin(request)
        return self.origins.second_url(request)

    def require_dandiset_access(self, dandiset: Dandiset, user: User | None) -> None:
        if dandiset.is_open:
            return
        if user is None:
            raise drf.not_authenticated()
        if not self.archive.is_owner(user, dandiset):
            raise drf.permission_denied()

    def get_dandiset(self, request: Request) -> Dandiset:
        dandiset = self.archive.dandisets.get(request.path_params["dandiset_id"])
        if dandiset is None:
            raise drf.not_found()
        return dandiset

    def get_version(self, request: Request, user: User | None) -> Version:
        dandiset = self.get_dandiset(request)
        self.require_dandiset_access(dandiset, user)
        version = dandiset.versions.get(request.path_params["version"])
        if version is None:
            raise drf.not_found()
        return version

    def nested_asset(self, request: Request, user: User | None) -> Asset:
        version = self.get_version(request, user)
        asset = version.asset_by_id(request.path_params["asset_id"])
        if asset is None:
            raise drf.not_found()
        return asset

    def top_level_asset(self, request: Request, user: User | None) -> Asset:
        asset = self.archive.assets.get(request.path_params["asset_id"])
        if asset is None:
            raise drf.not_found()
        if asset.is_embargoed:
            if user is None:
                raise drf.not_authenticated()
            if not user.admin and not any(
                self.archive.is_owner(user, d) for d in self.archive.asset_dandisets(asset)
            ):
                raise drf.permission_denied()
        return asset

    # ---------------------------------------------------------------- rendering

    @staticmethod
    def contact_person(version: Version) -> str:
        for contributor in version.metadata.get("contributor") or []:
            if isinstance(contributor, dict):
                name = contributor.get("name")
                roles = contributor.get("roleName")
                if name is not None and roles is not None and "dcite:ContactPerson" in roles:
                    return str(name)
        return ""

    def dandiset_base(self, dandiset: Dandiset, contact_version: Version | None) -> dict[str, Any]:
        return {
            "identifier": dandiset.identifier,
            "created": dandiset.created,
            "modified": dandiset.modified,
            "contact_person": self.contact_person(contact_version) if contact_version else "",
            "embargo_status": dandiset.embargo_status,
            "star_count": dandiset.star_count,
            "is_starred": False,
        }

    @staticmethod
    def version_fields(version: Version) -> dict[str, Any]:
        return {
            "version": version.version,
            "name": version.name,
            "asset_count": version.asset_count,
            "size": version.size,
            "status": version.status,
            "created": version.created,
            "modified": version.modified,
        }

    def version_child(self, version: Version) -> models.VersionChild:
        return models.VersionChild(
            **self.version_fields(version),
            active_uploads=0,
            release_notes=str(version.metadata.get("releaseNotes", "")),
        )

    def version_item(self, version: Version) -> dict[str, Any]:
        dandiset = version.dandiset
        return {
            **self.version_fields(version),
            "active_uploads": 0,
            "dandiset": self.dandiset_base(dandiset, dandiset.latest_version),
            "release_notes": str(version.metadata.get("releaseNotes", "")),
        }

    def version_metadata(self, request: Request, version: Version) -> dict[str, Any]:
        dandiset_id = version.dandiset.identifier
        if version.is_draft:
            manifest = [
                f"{self.api_origin(request)}/api/dandisets/{dandiset_id}/versions/draft/assets/"
            ]
        else:
            manifest = [
                f"{self.blob_origin(request)}/{BUCKET}/dandisets/{dandiset_id}/"
                f"{version.version}/assets.yaml"
            ]
        return {**version.metadata, "manifestLocation": manifest}

    def s3_url(self, request: Request, asset: Asset) -> str:
        if asset.blob is not None:
            key = asset.blob.s3_key
        else:
            assert asset.zarr is not None
            key = asset.zarr.s3_prefix
        return f"{self.blob_origin(request)}/{BUCKET}/{quote(key)}"

    def full_metadata(self, request: Request, asset: Asset) -> dict[str, Any]:
        """Stored metadata plus the computed keys (``Asset.full_metadata`` on the server)."""
        access: dict[str, Any] = {
            "schemaKey": "AccessRequirements",
            "status": "dandi:EmbargoedAccess" if asset.is_embargoed else "dandi:OpenAccess",
        }
        if asset.is_embargoed:
            ends = [
                d.embargo_end_date
                for d in self.archive.asset_dandisets(asset)
                if d.embargo_end_date is not None
            ]
            if ends:
                access["embargoedUntil"] = min(ends).isoformat()
        if asset.blob is not None:
            digest = {"dandi:dandi-etag": asset.blob.etag, "dandi:sha2-256": asset.blob.sha256}
        else:
            assert asset.zarr is not None
            digest = {"dandi:dandi-zarr-checksum": asset.zarr.checksum or ""}
        metadata = {
            **asset.metadata,
            "id": f"dandiasset:{asset.asset_id}",
            "access": [access],
            "path": asset.path,
            "identifier": asset.asset_id,
            "contentUrl": [
                f"{self.api_origin(request)}/api/assets/{asset.asset_id}/download/",
                self.s3_url(request, asset),
            ],
            "contentSize": asset.size,
            "digest": digest,
        }
        metadata["@context"] = (
            "https://raw.githubusercontent.com/dandi/schema/master/releases/"
            f"{metadata['schemaVersion']}/context.json"
        )
        if asset.zarr is not None:
            metadata["encodingFormat"] = "application/x-zarr"
        return metadata

    def asset_item(self, request: Request, asset: Asset, metadata: bool) -> models.Payload:
        fields: dict[str, Any] = {
            "asset_id": asset.asset_id,
            "blob": asset.blob.blob_id if asset.blob else None,
            "zarr": asset.zarr.zarr_id if asset.zarr else None,
            "path": asset.path,
            "size": asset.size,
            "created": asset.created,
            "modified": asset.modified,
        }
        if metadata:
            return models.AssetWithMetadata(
                **fields, metadata=models.AssetMetadata(**self.full_metadata(request, asset))
            )
        return models.AssetItem(**fields)

    @staticmethod
    def zarr_out(zarr: Zarr) -> models.ZarrArchiveOut:
        return models.ZarrArchiveOut(
            name=zarr.name,
            dandiset=zarr.dandiset,
            zarr_id=zarr.zarr_id,
            status=zarr.status,
            checksum=zarr.checksum,
            file_count=zarr.file_count,
            size=zarr.size,
        )

    def page(
        self, request: Request, items: Sequence[Any], lazy: bool = False
    ) -> tuple[list[Any], dict[str, Any]]:
        return drf.paginate_lazy(request, items) if lazy else drf.paginate(request, items)

    # ---------------------------------------------------------------- info, auth, users

    async def info(self, request: Request) -> Response:
        self.authenticate(request)
        origin = self.api_origin(request)
        payload = {
            "instance_config": {
                "instance_name": INSTANCE_NAME,
                "instance_identifier": "RRID:SCR_017571",
                "instance_url": WEB_APP_URL,
                "doi_prefix": None,
                "licenses": ["spdx:CC0-1.0", "spdx:CC-BY-4.0"],
            },
            "schema_version": SCHEMA_VERSION,
            "schema_url": f"{origin}/api/schemas/?model=Dandiset",
            "allowed_schema_versions": ALLOWED_SCHEMA_VERSIONS,
            "version": SERVER_VERSION,
            "services": {
                "api": {"url": f"{origin}/api"},
                "webui": {"url": WEB_APP_URL},
                "jupyterhub": {"url": JUPYTERHUB_URL},
            },
            # dandi-cli reads these hyphenated names to refuse too-old clients.
            "cli-minimal-version": "0.74.0",
            "cli-requires-python": ">=3.10",
            "cli-bad-versions": [],
        }
        return _json(models.ServerInfo.model_validate(payload))

    async def auth_token(self, request: Request) -> Response:
        user = self.authenticate(request)
        if user is None:
            raise drf.not_authenticated()
        return _json(user.token)

    async def users_me(self, request: Request) -> Response:
        user = self.authenticate(request)
        if user is None:
            raise drf.not_authenticated()
        return _json(
            models.UserDetail(
                username=user.username, name=user.name, admin=user.admin, status=user.status
            )
        )

    # ---------------------------------------------------------------- dandisets

    async def dandiset_list(self, request: Request) -> Response:
        user = self.authenticate(request)
        q = QueryParams(request)
        show_draft = q.boolean("draft", True)
        show_empty = q.boolean("empty", True)
        show_embargoed = q.boolean("embargoed", False)
        starred = q.boolean("starred", False)
        mine = q.choice("user", ["me"])
        search = request.query_params.get("search", "").replace("\x00", "")
        q.raise_errors()
        if show_embargoed and user is None:
            raise APIError(
                401,
                "Authentication credentials must be provided when attempting to access "
                "embargoed dandisets",
            )
        if mine == "me":
            dandisets = self.archive.owned_dandisets(user)
        else:
            dandisets = self.archive.visible_dandisets(user)
        if not show_draft:
            dandisets = [d for d in dandisets if len(d.versions) > 1]
        if not show_empty:
            dandisets = [d for d in dandisets if d.latest_version.assets]
        if not show_embargoed:
            dandisets = [d for d in dandisets if d.embargo_status == "OPEN"]
        if starred:
            if user is None:
                raise APIError(401, "Must be authenticated to filter by starred dandisets.")
            dandisets = []  # nobody has starred anything in the emulated archive
        if search:
            dandisets = search_dandisets(dandisets, search, self.archive)
        dandisets = order_dandisets(dandisets, request.query_params.get("ordering"))
        page, links = self.page(request, dandisets)
        results = []
        for dandiset in page:
            published = dandiset.most_recent_published_version
            draft = dandiset.versions.get("draft")
            results.append(
                models.DandisetListItem(
                    **self.dandiset_base(dandiset, published or draft),
                    most_recent_published_version=(
                        models.DandisetVersionSummary(**self.version_fields(published))
                        if published
                        else None
                    ),
                    draft_version=(
                        models.DandisetVersionSummary(**self.version_fields(draft))
                        if draft
                        else None
                    ),
                )
            )
        return _json(models.Page[models.DandisetListItem](**links, results=results))

    async def dandiset_detail(self, request: Request) -> Response:
        user = self.authenticate(request)
        dandiset = self.get_dandiset(request)
        self.require_dandiset_access(dandiset, user)
        published = dandiset.most_recent_published_version
        draft = dandiset.versions.get("draft")
        return _json(
            models.DandisetDetail(
                **self.dandiset_base(dandiset, dandiset.latest_version),
                most_recent_published_version=self.version_child(published) if published else None,
                draft_version=self.version_child(draft) if draft else None,
            )
        )

    # ---------------------------------------------------------------- versions

    async def version_list(self, request: Request) -> Response:
        user = self.authenticate(request)
        dandiset = self.get_dandiset(request)
        self.require_dandiset_access(dandiset, user)
        q = QueryParams(request)
        order = q.ordering_choice("order", ["created"])
        q.raise_errors()
        versions = sorted(dandiset.versions.values(), key=lambda v: (v.created, v.pk))
        if order and order[0].startswith("-"):
            versions.reverse()
        page, links = self.page(request, versions)
        return _json(
            models.Page[models.VersionItem](
                **links, results=[models.VersionItem(**self.version_item(v)) for v in page]
            )
        )

    async def version_detail(self, request: Request) -> Response:
        user = self.authenticate(request)
        version = self.get_version(request, user)
        return _json(models.DandisetMetadata(**self.version_metadata(request, version)))

    async def version_info(self, request: Request) -> Response:
        user = self.authenticate(request)
        version = self.get_version(request, user)
        return _json(self.version_info_payload(request, version))

    def version_info_payload(self, request: Request, version: Version) -> models.VersionInfo:
        """VersionDetailSerializer: ``/info/`` and the answer of a metadata PUT."""
        errors = [
            models.AssetValidationError(field="", message=m, path=a.path)
            for a in version.assets.values()
            if a.status in ("Pending", "Validating")
            for m in ["asset is currently being validated, please wait."]
        ][:50]
        for asset in version.assets.values():
            if asset.status == "Invalid":
                errors.extend(
                    models.AssetValidationError(
                        field=str(e.get("field", "")),
                        message=str(e.get("message", "")),
                        path=asset.path,
                    )
                    for e in asset.validation_errors
                )
        return models.VersionInfo(
            **self.version_item(version),
            asset_validation_errors=errors,
            version_validation_errors=[
                models.ValidationError(**e) for e in version.validation_errors
            ],
            metadata=models.DandisetMetadata(**self.version_metadata(request, version)),
            contact_person=self.contact_person(version),
        )

    # ---------------------------------------------------------------- assets

    async def asset_list(self, request: Request) -> Response:
        user = self.authenticate(request)
        version = self.get_version(request, user)
        q = QueryParams(request)
        glob = q.char("glob")
        with_metadata = q.boolean("metadata", False)
        zarr_only = q.boolean("zarr", False)
        order = q.ordering_choice("order", ["created", "modified", "path"])
        q.raise_errors()
        assets = list(version.assets.values())
        path = request.query_params.get("path")
        if path:
            exact = [a for a in assets if a.path == path]
            if exact:
                assets = exact
            else:
                prefix = path.upper()
                assets = [a for a in assets if a.path.upper().startswith(prefix)]
        if zarr_only:
            assets = [a for a in assets if a.zarr is not None]
        if glob is not None:
            pattern = re.compile(
                "^" + ".*".join(re.escape(part) for part in glob.split("*")) + "$",
                re.IGNORECASE | re.DOTALL,
            )
            assets = [a for a in assets if pattern.match(a.path)]
        assets = order_assets(assets, order)
        page, links = self.page(request, assets, lazy=True)
        return _json(
            {**links, "results": [self.asset_item(request, a, with_metadata).dump() for a in page]}
        )

    async def asset_paths(self, request: Request) -> Response:
        user = self.authenticate(request)
        q = QueryParams(request)
        prefix = q.char("path_prefix", "")
        q.raise_errors()
        version = self.get_version(request, user)
        index = version.paths
        query = (prefix or "").rstrip("/")
        if not prefix:
            children = index.children.get("", [])
        elif query in index.nodes:
            children = index.children.get(query, [])
        else:
            raise drf.not_found("Specified path not found.")
        page, links = self.page(request, children)
        results = []
        for path in page:
            node = index.nodes[path]
            results.append(
                models.AssetPathItem(
                    path=node.path,
                    version=version.pk,
                    aggregate_files=node.aggregate_files,
                    aggregate_size=node.aggregate_size,
                    asset=models.AssetFile(
                        asset_id=node.asset.asset_id, url=self.s3_url(request, node.asset)
                    )
                    if node.asset is not None
                    else None,
                )
            )
        return _json(models.Page[models.AssetPathItem](**links, results=results))

    async def nested_asset_detail(self, request: Request) -> Response:
        user = self.authenticate(request)
        asset = self.nested_asset(request, user)
        return _json(models.AssetMetadata(**self.full_metadata(request, asset)))

    async def nested_asset_info(self, request: Request) -> Response:
        user = self.authenticate(request)
        asset = self.nested_asset(request, user)
        return _json(self.asset_item(request, asset, metadata=True))

    async def nested_asset_download(self, request: Request) -> Response:
        user = self.authenticate(request)
        return self.download(request, self.nested_asset(request, user))

    async def asset_detail(self, request: Request) -> Response:
        user = self.authenticate(request)
        asset = self.top_level_asset(request, user)
        return _json(models.AssetMetadata(**self.full_metadata(request, asset)))

    async def asset_info(self, request: Request) -> Response:
        user = self.authenticate(request)
        asset = self.top_level_asset(request, user)
        return _json(self.asset_item(request, asset, metadata=True))

    async def asset_download(self, request: Request) -> Response:
        user = self.authenticate(request)
        return self.download(request, self.top_level_asset(request, user))

    def download(self, request: Request, asset: Asset) -> Response:
        if asset.blob is None:
            raise APIError(
                400,
                "Unable to provide download link for zarr assets. Please browse the zarr "
                "files directly to do so.",
            )
        q = QueryParams(request)
        disposition = q.choice("content_disposition", ["attachment", "inline"], "attachment")
        q.raise_errors()
        basename = asset.path.rsplit("/", 1)[-1]
        content_type = str(asset.metadata.get("encodingFormat", "application/octet-stream"))
        params = {"response-content-disposition": f'{disposition}; filename="{basename}"'}
        if disposition == "inline":
            params["response-content-type"] = content_type
        url = self.signer.presign(self.blob_origin(request), asset.blob.s3_key, params)
        if disposition == "inline" and content_type.startswith("video/"):
            return HTMLResponse(
                f'\n<video autoplay muted controls>\n<source src="{url}">\n</video>\n'
            )
        return RedirectResponse(
            url, status_code=302, headers={"Content-Type": "text/html; charset=utf-8"}
        )

    # ---------------------------------------------------------------- writes
    # Check order follows the real views: authentication and DRF's permission classes (an
    # anonymous write is a 401), django-guardian's owner check (dandiset 404, else a bare
    # 403), the version lookup, then the view's own checks, the body, the service's checks.

    def require_owner(self, request: Request, user: User | None) -> Dandiset:
        if user is None:
            raise drf.not_authenticated()
        if not user.admin and user.status != "APPROVED":
            raise drf.permission_denied()  # IsApprovedOrReadOnly
        dandiset = self.get_dandiset(request)
        if not self.archive.is_owner(user, dandiset):
            raise drf.guardian_forbidden()
        return dandiset

    def lookup_version(self, request: Request, dandiset: Dandiset) -> Version:
        version = dandiset.versions.get(request.path_params["version"])
        if version is None:
            raise drf.not_found()
        return version

    @staticmethod
    def require_draft(version: Version) -> None:
        if not version.is_draft:
            # DraftDandisetNotModifiableError, or the version view's own answer: same body.
            raise APIError(405, "Only draft versions can be modified.")

    @staticmethod
    def require_not_unembargoing(dandiset: Dandiset) -> None:
        if dandiset.embargo_status == "UNEMBARGOING":
            raise APIError(400, "Dandiset modification not allowed during unembargo")

    async def version_update(self, request: Request) -> Response:
        """PUT ``versions/draft/``: new name and metadata; Pending until validated."""
        user = self.authenticate(request)
        dandiset = self.require_owner(request, user)
        version = self.get_version(request, user)
        self.require_draft(version)
        self.require_not_unembargoing(dandiset)
        data = await drf.request_data(request)
        if not isinstance(data, dict):
            raise drf.not_a_dict(data)
        errors: dict[str, list[str]] = {}
        metadata, metadata_errors = drf.json_field(data, "metadata", required=False)
        if metadata_errors:
            errors["metadata"] = metadata_errors
        name, name_errors = drf.char_field(data, "name", writes.VERSION_NAME_MAX_LENGTH)
        if name_errors:
            errors["name"] = name_errors
        if errors:
            raise APIError(400, errors)
        if drf.is_missing(metadata) or not isinstance(metadata, dict):
            # The serializer's validate() does data["metadata"].setdefault(...): a KeyError or
            # an AttributeError, so Django's 500 page.
            raise drf.server_error()
        metadata = {**metadata, "schemaVersion": metadata.get("schemaVersion", SCHEMA_VERSION)}
        new = writes.strip_version_metadata(metadata)
        if (name, new) != (version.name, writes.strip_version_metadata(version.metadata)):
            when = writes.now()
            version.name = name
            version.metadata = writes.populate_version_metadata(version, new, when)
            writes.mark_pending(self.archive, version, when, self.validation_delay)
        return _json(self.version_info_payload(request, version))

    async def version_delete(self, request: Request) -> Response:
        """DELETE ``versions/{v}/``: drafts never, published versions by admins only."""
        user = self.authenticate(request)
        if user is None:
            raise drf.not_authenticated()
        if not user.admin and user.status != "APPROVED":
            raise drf.permission_denied()
        version = self.get_version(request, user)
        if version.is_draft:
            raise APIError(403, "Cannot delete draft versions")
        if not user.admin:
            raise APIError(403, "Cannot delete published versions")
        del version.dandiset.versions[version.version]
        return Response(status_code=204)

    async def asset_request(
        self, request: Request
    ) -> tuple[dict[str, Any], str | None, str | None]:
        """AssetRequestSerializer: ``(metadata, blob_id, zarr_id)`` or a 400."""
        data = await drf.request_data(request)
        if not isinstance(data, dict):
            raise drf.not_a_dict(data)
        errors: dict[str, list[str]] = {}
        metadata, field_errors = drf.json_field(data, "metadata")
        if field_errors:
            errors["metadata"] = field_errors
        blob_id, field_errors = drf.uuid_field(data, "blob_id")
        if field_errors:
            errors["blob_id"] = field_errors
        zarr_id, field_errors = drf.uuid_field(data, "zarr_id")
        if field_errors:
            errors["zarr_id"] = field_errors
        if errors:
            raise APIError(400, errors)
        if (blob_id is None) == (zarr_id is None):
            raise drf.field_error("blob_id", "Exactly one of blob_id or zarr_id must be specified.")
        if not isinstance(metadata, dict):
            # validate() tests `"path" not in metadata`, then indexes it: on a list or a
            # string without "path" that is the 400 below, anything else raises (a 500).
            if isinstance(metadata, list | str) and "path" not in metadata:
                raise drf.field_error("metadata", "No path specified in metadata.")
            raise drf.server_error()
        path = metadata.get("path")
        if not path:
            raise drf.field_error("metadata", "No path specified in metadata.")
        if not isinstance(path, str):
            raise drf.server_error()  # validate_asset_path calls path.startswith
        message = writes.asset_path_error(path)
        if message is not None:
            raise APIError(400, {"non_field_errors": [message]})
        metadata = {**metadata, "schemaVersion": metadata.get("schemaVersion", SCHEMA_VERSION)}
        return metadata, blob_id, zarr_id

    def lookup_blob(self, blob_id: str | None) -> Blob | None:
        if blob_id is None:
            return None
        blob = self.archive.blobs.get(blob_id)
        if blob is None:
            raise drf.not_found()
        return blob

    def lookup_zarr(self, zarr_id: str | None) -> Zarr | None:
        if zarr_id is None:
            return None
        zarr = self.archive.zarrs.get(zarr_id)
        if zarr is None:
            raise drf.not_found()
        return zarr

    @staticmethod
    def check_path_length(path: str) -> None:
        # Asset.full_clean() in _create_asset: a Django ValidationError with one message.
        if len(path) > writes.ASSET_PATH_MAX_LENGTH:
            raise APIError(
                400,
                f"Ensure this value has at most {writes.ASSET_PATH_MAX_LENGTH} characters "
                f"(it has {len(path)}).",
            )

    def attach_new_asset(
        self,
        version: Version,
        metadata: dict[str, Any],
        blob: Blob | None,
        zarr: Zarr | None,
    ) -> Asset:
        """``_add_asset_to_version``: a new Pending asset in the draft; the draft goes Pending."""
        when = writes.now()
        if blob is not None and blob.embargoed and version.dandiset.embargo_status == "OPEN":
            blob.embargoed = False  # an open dandiset's asset unembargoes its blob
        asset = self.archive.new_asset(
            asset_id=str(uuid.uuid4()),
            path=metadata["path"],
            blob=blob,
            zarr=zarr,
            metadata=writes.strip_asset_metadata(metadata),
            created=when,
            modified=when,
        )
        writes.mark_asset_pending(self.archive, asset, when, self.validation_delay)
        version.add_asset(asset)
        writes.mark_pending(self.archive, version, when, self.validation_delay)
        return asset

    async def asset_create(self, request: Request) -> Response:
        """POST ``versions/draft/assets/``: a new asset at ``metadata.path``."""
        user = self.authenticate(request)
        dandiset = self.require_owner(request, user)
        version = self.lookup_version(request, dandiset)
        self.require_not_unembargoing(dandiset)
        metadata, blob_id, zarr_id = await self.asset_request(request)
        blob = self.lookup_blob(blob_id)
        zarr = self.lookup_zarr(zarr_id)
        # add_asset_to_version
        self.require_draft(version)
        path: str = metadata["path"]
        if writes.path_taken(version, path):
            raise APIError(409, "An asset with that path already exists")
        conflicts = writes.conflicting_paths(version, path)
        if conflicts:
            raise APIError(
                409, f'Path of new asset "{path}" conflicts with existing assets: {conflicts}'
            )
        if zarr is not None and zarr.dandiset != dandiset.identifier:
            raise APIError(400, "The zarr archive belongs to a different dandiset")
        self.check_path_length(path)
        asset = self.attach_new_asset(version, metadata, blob, zarr)
        return _json(self.asset_item(request, asset, metadata=True))

    async def asset_update(self, request: Request) -> Response:
        """PUT ``versions/draft/assets/{aid}/``: any change makes a new asset (new id)."""
        user = self.authenticate(request)
        dandiset = self.require_owner(request, user)
        version = self.lookup_version(request, dandiset)
        self.require_draft(version)
        self.require_not_unembargoing(dandiset)
        metadata, blob_id, zarr_id = await self.asset_request(request)
        asset = self.nested_asset(request, user)
        blob = self.lookup_blob(blob_id)
        zarr = self.lookup_zarr(zarr_id)
        # change_asset
        path: str = metadata["path"]
        stored = writes.strip_asset_metadata(metadata)
        changed = (
            (blob is not None and asset.blob is not None and blob is not asset.blob)
            or (zarr is not None and asset.zarr is not None and zarr is not asset.zarr)
            or asset.path != path
            or asset.metadata != stored
        )
        if not changed:
            return _json(self.asset_item(request, asset, metadata=True))
        if writes.path_taken(version, path, ignore=asset) or writes.folder_at(
            version, path, ignore=asset
        ):
            # A folder there: the new leaf path breaks a unique constraint, same answer.
            raise APIError(409, "An asset with that path already exists")
        conflicts = writes.conflicting_paths(version, path, ignore=asset)
        if conflicts:
            # The real server skips this check on a change and corrupts its path tree; the
            # emulator refuses like a create does.
            raise APIError(
                409, f'Path of new asset "{path}" conflicts with existing assets: {conflicts}'
            )
        self.check_path_length(path)
        version.remove_asset(asset)
        new_asset = self.attach_new_asset(version, metadata, blob, zarr)
        return _json(self.asset_item(request, new_asset, metadata=True))

    async def asset_delete(self, request: Request) -> Response:
        """DELETE ``versions/draft/assets/{aid}/``: detach it (it stays gettable by id)."""
        user = self.authenticate(request)
        dandiset = self.require_owner(request, user)
        version = self.lookup_version(request, dandiset)
        self.require_not_unembargoing(dandiset)
        asset = self.nested_asset(request, user)
        self.require_draft(version)
        version.remove_asset(asset)
        writes.mark_pending(self.archive, version, writes.now(), self.validation_delay)
        return Response(status_code=204)

    # ---------------------------------------------------------------- zarr

    def visible_zarr(self, request: Request, user: User | None) -> Zarr:
        zarr = self.archive.zarrs.get(request.path_params["zarr_id"])
        if zarr is None:
            raise drf.not_found()
        dandiset = self.archive.dandisets.get(zarr.dandiset)
        if dandiset is None or not (dandiset.is_open or self.archive.is_owner(user, dandiset)):
            raise drf.not_found()
        return zarr

    async def zarr_list(self, request: Request) -> Response:
        user = self.authenticate(request)
        q = QueryParams(request)
        dandiset_id = q.char("dandiset")
        name = q.char("name")
        if dandiset_id is not None and not re.fullmatch(r"\d{6}", dandiset_id):
            q.errors["dandiset"] = ["A valid Dandiset identifier is required."]
        q.raise_errors()
        visible = {d.identifier for d in self.archive.visible_dandisets(user)}
        zarrs = sorted(
            (z for z in self.archive.zarrs.values() if z.dandiset in visible),
            key=lambda z: (z.created, z.zarr_id),
        )
        if dandiset_id is not None:
            zarrs = [z for z in zarrs if z.dandiset == dandiset_id]
        if name is not None:
            zarrs = [z for z in zarrs if z.name == name]
        page, links = self.page(request, zarrs)
        return _json(
            models.Page[models.ZarrArchiveOut](**links, results=[self.zarr_out(z) for z in page])
        )

    async def zarr_detail(self, request: Request) -> Response:
        user = self.authenticate(request)
        return _json(self.zarr_out(self.visible_zarr(request, user)))

    async def zarr_files(self, request: Request) -> Response:
        user = self.authenticate(request)
        # The real view does not check visibility here (S3 does, by bucket policy); the
        # emulator hides embargoed zarrs from non-owners on this route too.
        zarr = self.visible_zarr(request, user)
        q = QueryParams(request)
        after = q.char("after", "") or ""
        prefix = q.char("prefix", "") or ""
        limit = q.integer("limit", 1000, 0, 1000)
        download = q.boolean("download", False)
        if any(seg == ".." for seg in prefix.replace("\\", "/").split("/")):
            q.errors["prefix"] = ['Zarr path cannot contain ".." components.']
        q.raise_errors()
        raw_prefix = prefix.lstrip("/")
        if request.method == "HEAD" or download:
            key = zarr.s3_prefix + raw_prefix
            if request.method == "HEAD":
                key = key.rstrip("/")
            url = self.signer.presign(self.blob_origin(request), key)
            return RedirectResponse(
                url, status_code=302, headers={"Content-Type": "text/html; charset=utf-8"}
            )
        full_prefix = (zarr.s3_prefix + raw_prefix).rstrip("/")
        raw_after = after.lstrip("/")
        start_after = (zarr.s3_prefix + raw_after).rstrip("/") if raw_after else ""
        keys = [
            key
            for key in zarr.files
            if (zarr.s3_prefix + key).startswith(full_prefix)
            and (zarr.s3_prefix + key).encode() > start_after.encode()
        ]
        selected = keys[:limit]
        truncated = len(keys) > limit and limit > 0
        results = [
            models.ZarrFileEntry(
                Key=key,
                LastModified=zarr.files[key].last_modified,
                ETag=zarr.files[key].md5,
                Size=zarr.files[key].size,
            )
            for key in selected
        ]
        next_link = (
            drf.replace_query_param(drf.absolute_uri(request), "after", selected[-1])
            if truncated
            else None
        )
        return _json(models.ZarrFilesPage(next=next_link, results=results))

    # ---------------------------------------------------------------- blobs

    async def blob_digest(self, request: Request) -> Response:
        self.authenticate(request)
        try:
            body = await request.json()
        except ValueError as exc:
            raise APIError(400, {"detail": f"JSON parse error - {exc}"}) from exc
        errors: dict[str, list[str]] = {}
        if not isinstance(body, dict):
            raise APIError(
                400,
                {
                    "non_field_errors": [
                        f"Invalid data. Expected a dictionary, but got {type(body).__name__}."
                    ]
                },
            )
        for key in ("algorithm", "value"):
            value = body.get(key)
            if value is None:
                errors[key] = ["This field is required."]
            elif not isinstance(value, str | int | float) or str(value).strip() == "":
                errors[key] = (
                    ["This field may not be blank."]
                    if isinstance(value, str)
                    else ["Not a valid string."]
                )
        if errors:
            raise APIError(400, errors)
        algorithm, value = str(body["algorithm"]).strip(), str(body["value"]).strip()
        if algorithm not in ("dandi:dandi-etag", "dandi:sha2-256"):
            raise APIError(
                400, "Unsupported Digest Algorithm. Supported: dandi:dandi-etag, dandi:sha2-256"
            )
        blob = self.archive.blob_by_digest(algorithm, value)
        if blob is None:
            raise drf.not_found()
        return _json(
            models.BlobOut(blob_id=blob.blob_id, etag=blob.etag, sha256=blob.sha256, size=blob.size)
        )

    # ---------------------------------------------------------------- object store

    async def object_get(self, request: Request) -> Response:
        head = request.method == "HEAD"
        if request.method not in ("GET", "HEAD"):
            return S3Error(
                405,
                "MethodNotAllowed",
                "The specified method is not allowed against this resource.",
            ).response(head)
        if "authorization" in request.headers:
            # Never echo the header: it may carry a secret.
            presigned = "X-Amz-Signature" in request.query_params
            return S3Error(
                400,
                "InvalidArgument",
                "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, "
                "Signature query string parameter or the Authorization header should be "
                "specified"
                if presigned
                else "Unsupported Authorization Type",
                {"ArgumentName": "Authorization"},
            ).response(head)
        key: str = request.path_params["key"]
        path = f"/{BUCKET}/{key}"
        signed = any(k.startswith("X-Amz-") for k in request.query_params)
        if signed:
            error = self.signer.check(path, request.query_params)
            if error is not None:
                return error.response(head)
        found = self.resolve_object(key)
        if found is None:
            return S3Error(
                404, "NoSuchKey", "The specified key does not exist.", {"Key": key}
            ).response(head)
        source, etag, modified, embargoed = found
        if embargoed and not signed:
            return S3Error(403, "AccessDenied", "Access Denied").response(head)
        return serve_object(request, self.corruption.source(key, source), etag, modified)

    def resolve_object(self, key: str) -> tuple[Any, str, Any, bool] | None:
        if key.startswith("blobs/"):
            blob = self.archive.blob_by_s3_key(key)
            if blob is None:
                return None
            return blob.source, blob.etag, blob.created, blob.embargoed
        if key.startswith("zarr/"):
            zarr_id, _, rel = key[len("zarr/") :].partition("/")
            zarr = self.archive.zarrs.get(zarr_id)
            if zarr is None or rel not in zarr.files:
                return None
            entry = zarr.files[rel]
            return entry.source, entry.md5, entry.last_modified, zarr.embargoed
        return None

    async def bucket_root(self, request: Request) -> Response:
        return S3Error(501, "NotImplemented", "Bucket listing is not emulated.").response(
            request.method == "HEAD"
        )


# ------------------------------------------------------------------ ordering and search


def order_assets(assets: list[Asset], order: list[str] | None) -> list[Asset]:
    result = sorted(assets, key=lambda a: (a.created, a.pk))
    for field in reversed(order or []):
        name = field.lstrip("-")
        key: Callable[[Asset], Any]
        if name == "path":
            key = lambda a: a.path.encode()  # noqa: E731 - C collation: byte order
        elif name == "modified":
            key = lambda a: a.modified  # noqa: E731
        else:
            key = lambda a: a.created  # noqa: E731
        result.sort(key=key, reverse=field.startswith("-"))
    return result


def order_dandisets(dandisets: list[Dandiset], ordering: str | None) -> list[Dandiset]:
    """DRF OrderingFilter + the archive's ``DandisetOrderingFilter`` (first valid field only)."""
    valid = {"id", "name", "modified", "size", "stars"}
    fields = [f.strip() for f in (ordering or "").split(",") if f.strip().lstrip("-") in valid]
    if not fields:
        return dandisets
    field = fields[0]
    name = field.lstrip("-")
    key: Callable[[Dandiset], Any]
    if name == "id":
        key = lambda d: d.identifier  # noqa: E731
    elif name == "name":
        key = lambda d: d.latest_version.name.casefold()  # noqa: E731
    elif name == "modified":
        key = lambda d: d.latest_version.modified  # noqa: E731
    elif name == "size":
        key = lambda d: d.latest_version.size  # noqa: E731
    else:
        key = lambda d: d.star_count  # noqa: E731
    return sorted(dandisets, key=key, reverse=field.startswith("-"))


_TOKEN_RE = re.compile(
    r'(?P<op_key>[a-z_]+):"(?P<op_qval>[^"]*)"|"(?P<free_quoted>[^"]*)"|(?P<bare>\S+)'
)
_BARE_OP_RE = re.compile(r"^([a-z_]+):(.+)$")
SEARCH_OPERATORS = (
    "created_before",
    "created_after",
    "modified_before",
    "modified_after",
    "published_before",
    "published_after",
    "species",
    "approach",
    "technique",
    "file_type",
    "owner",
)


def _search_error(message: str) -> APIError:
    return APIError(400, {"search": [message]})


def search_dandisets(dandisets: list[Dandiset], query: str, archive: Archive) -> list[Dandiset]:
    """The archive's search: free words must all appear in a version's metadata text
    (case-insensitively); ``key:value`` operators filter structured fields."""
    import difflib
    import json
    from datetime import date

    if len(query) > 1024:
        raise APIError(
            400, {"search": [f"Search query is too long ({len(query)} characters; max 1024)."]}
        )
    if query.count('"') % 2:
        raise _search_error(
            "Unbalanced quote in search query. Remove the stray quote, or wrap the "
            "intended phrase in matched quotes."
        )
    words: list[str] = []
    operators: list[tuple[str, str]] = []
    for match in _TOKEN_RE.finditer(query):
        key, value = match.group("op_key"), match.group("op_qval")
        if key is None and match.group("bare") and (bare := _BARE_OP_RE.match(match.group("bare"))):
            key, value = bare.group(1), bare.group(2)
        if key is not None:
            if key not in SEARCH_OPERATORS:
                close = difflib.get_close_matches(key, SEARCH_OPERATORS, n=1, cutoff=0.6)
                hint = f' Did you mean "{close[0]}"?' if close else ""
                raise _search_error(
                    f'Unknown search operator "{key}".{hint} Wrap the term in double '
                    'quotes (e.g. "foo:bar") to search for it as text.'
                )
            operators.append((key, value or ""))
        else:
            words.append(match.group("free_quoted") or match.group("bare") or "")

    def day(value: str) -> date:
        try:
            return date.fromisoformat(value)
        except ValueError as exc:
            raise APIError(
                400, {"search": [f"Invalid date {value!r}; expected YYYY-MM-DD."]}
            ) from exc

    def keep(d: Dandiset) -> bool:
        texts = [json.dumps(v.metadata, ensure_ascii=False).casefold() for v in d.versions.values()]
        if not all(any(w.casefold() in t for t in texts) for w in words):
            return False
        latest = d.latest_version
        summary = latest.metadata.get("assetsSummary", {})
        for key, value in operators:
            v = value.casefold()
            if key.endswith(("_before", "_after")):
                field = key.rsplit("_", 1)[0]
                if field == "published":
                    pub = d.most_recent_published_version
                    when = pub.created.date() if pub else None
                elif field == "created":
                    when = d.created.date()
                else:
                    when = latest.modified.date()
                if when is None:
                    return False
                limit = day(value)
                if (key.endswith("_before") and not when < limit) or (
                    key.endswith("_after") and not when > limit
                ):
                    return False
            elif key in ("species", "approach", "technique"):
                field = {"technique": "measurementTechnique"}.get(key, key)
                names = [str(x.get("name", "")).casefold() for x in summary.get(field, [])]
                if not any(v in n for n in names):
                    return False
            elif key == "file_type":
                prefix = {
                    "nwb": "application/x-nwb",
                    "image": "image/",
                    "text": "text/",
                    "video": "video/",
                }.get(v, v)
                if not any(
                    str(a.metadata.get("encodingFormat", "")).startswith(prefix)
                    for a in latest.assets.values()
                ):
                    return False
            elif key == "owner":
                owners = [archive.users[u] for u in d.owners if u in archive.users]
                if not any(
                    v
                    in (
                        u.username.casefold(),
                        u.email.casefold(),
                        u.first_name.casefold(),
                        u.last_name.casefold(),
                        u.name.casefold(),
                    )
                    for u in owners
                ):
                    return False
        return True

    return [d for d in dandisets if keep(d)]


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
            return _json(exc.body, exc.status, exc.headers)
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

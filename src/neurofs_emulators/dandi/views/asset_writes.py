"""Writing assets of a draft: ``POST`` a new one, ``PUT`` a change (a new asset with a new
id), ``DELETE``; the rules are in :mod:`neurofs_emulators.dandi.writes`."""

from __future__ import annotations

import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from neurofs_emulators.dandi import drf, writes
from neurofs_emulators.dandi.archive import Asset, Blob, Version, Zarr
from neurofs_emulators.dandi.drf import APIError
from neurofs_emulators.dandi.metadata import SCHEMA_VERSION
from neurofs_emulators.dandi.views.base import json_response
from neurofs_emulators.dandi.views.serializers import Serializers


class AssetWriteViews(Serializers):
    """Writing assets of a draft (owner only)."""

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
        return json_response(self.asset_item(request, asset, metadata=True))

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
            return json_response(self.asset_item(request, asset, metadata=True))
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
        return json_response(self.asset_item(request, new_asset, metadata=True))

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

"""``/api/dandisets/{id}/versions/...``: the versions of a dandiset, their metadata and
validation state; the draft's metadata is edited with ``PUT``."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from neurofs_emulators.dandi import drf, models, writes
from neurofs_emulators.dandi.archive import Version
from neurofs_emulators.dandi.drf import APIError, QueryParams
from neurofs_emulators.dandi.metadata import SCHEMA_VERSION
from neurofs_emulators.dandi.views.base import json_response
from neurofs_emulators.dandi.views.serializers import Serializers


class VersionViews(Serializers):
    """A dandiset's versions; the draft's metadata is written here."""

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
        return json_response(
            models.Page[models.VersionItem](
                **links, results=[models.VersionItem(**self.version_item(v)) for v in page]
            )
        )

    async def version_detail(self, request: Request) -> Response:
        user = self.authenticate(request)
        version = self.get_version(request, user)
        return json_response(models.DandisetMetadata(**self.version_metadata(request, version)))

    async def version_info(self, request: Request) -> Response:
        user = self.authenticate(request)
        version = self.get_version(request, user)
        return json_response(self.version_info_payload(request, version))

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
        return json_response(self.version_info_payload(request, version))

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

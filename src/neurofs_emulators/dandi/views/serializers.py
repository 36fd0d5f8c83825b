"""How the DANDI API writes its objects: the serializers of its views."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from starlette.requests import Request

from neurofs_emulators.dandi import drf, models
from neurofs_emulators.dandi.archive import Asset, Dandiset, Version, Zarr
from neurofs_emulators.dandi.blobstore import BUCKET
from neurofs_emulators.dandi.views.base import Views


class Serializers(Views):
    """The payloads of dandisets, versions, assets and zarrs, as the real serializers
    write them (``dandiapi/api/views/serializers.py``), and pagination."""

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

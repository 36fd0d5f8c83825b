"""Pydantic models of every JSON payload the DANDI emulator emits.

Field names and order follow the real server's DRF serializers
(``dandiapi/api/views/serializers.py``, ``dandiapi/zarr/views``, ``views/info.py``);
timestamps are rendered the way DRF renders them (ISO 8601, microseconds, ``Z`` for UTC).
Version and asset *metadata* are JSON-LD documents: they are modelled with their well-known
keys typed and everything else kept as-is (``extra="allow"``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    SerializerFunctionWrapHandler,
    model_serializer,
)


def drf_datetime(value: datetime) -> str:
    """DRF's DateTimeField output: ``2024-01-01T12:00:41.207318Z``."""
    text = value.astimezone(UTC).isoformat()
    return text.removesuffix("+00:00") + "Z"


def s3_datetime(value: datetime) -> str:
    """What the zarr file listing shows: ``str()`` of boto3's datetime (DRF CharField)."""
    return str(value.astimezone(UTC).replace(microsecond=0))


DRFDateTime = Annotated[datetime, PlainSerializer(drf_datetime, return_type=str)]
S3DateTime = Annotated[datetime, PlainSerializer(s3_datetime, return_type=str)]

T = TypeVar("T")


class Payload(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    def dump(self) -> Any:
        return self.model_dump(mode="json", by_alias=True)


class Page(Payload, Generic[T]):
    """DRF page: ``count`` is null after page 1 on the asset list (lazy pagination)."""

    count: int | None
    next: str | None
    previous: str | None
    results: list[T]


# ------------------------------------------------------------------ /info/, users


class ServiceUrl(Payload):
    url: str


class Services(Payload):
    api: ServiceUrl
    webui: ServiceUrl
    jupyterhub: ServiceUrl


class InstanceConfig(Payload):
    instance_name: str
    instance_identifier: str | None
    instance_url: str | None
    doi_prefix: str | None
    licenses: list[str]


class ServerInfo(Payload):
    instance_config: InstanceConfig
    schema_version: str
    schema_url: str
    allowed_schema_versions: list[str]
    version: str
    services: Services
    cli_minimal_version: str = Field(alias="cli-minimal-version")
    cli_requires_python: str = Field(alias="cli-requires-python")
    cli_bad_versions: list[str] = Field(alias="cli-bad-versions")


class UserDetail(Payload):
    username: str
    name: str
    admin: bool
    status: str


# ------------------------------------------------------------------ dandisets and versions

EmbargoStatus = Literal["OPEN", "EMBARGOED", "UNEMBARGOING"]
VersionStatus = Literal["Pending", "Validating", "Valid", "Invalid", "Publishing", "Published"]


class DandisetBase(Payload):
    identifier: str
    created: DRFDateTime
    modified: DRFDateTime
    contact_person: str
    embargo_status: EmbargoStatus
    star_count: int
    is_starred: bool


class DandisetVersionSummary(Payload):
    """The version objects nested in the dandiset *list*."""

    version: str
    name: str
    asset_count: int
    size: int
    status: VersionStatus
    created: DRFDateTime
    modified: DRFDateTime


class VersionChild(Payload):
    """VersionSerializer without ``dandiset`` (nested in the dandiset *detail*)."""

    version: str
    name: str
    asset_count: int
    active_uploads: int
    size: int
    status: VersionStatus
    created: DRFDateTime
    modified: DRFDateTime
    release_notes: str


class DandisetListItem(DandisetBase):
    most_recent_published_version: DandisetVersionSummary | None
    draft_version: DandisetVersionSummary | None


class DandisetDetail(DandisetBase):
    most_recent_published_version: VersionChild | None
    draft_version: VersionChild | None


class VersionItem(Payload):
    """An element of ``versions/``: VersionSerializer with its dandiset."""

    version: str
    name: str
    asset_count: int
    active_uploads: int
    size: int
    status: VersionStatus
    created: DRFDateTime
    modified: DRFDateTime
    dandiset: DandisetBase
    release_notes: str


class ValidationError(Payload):
    field: str
    message: str


class AssetValidationError(ValidationError):
    path: str


class Document(Payload):
    """A JSON-LD document: well-known keys typed, the rest kept as-is.

    Keys a client may edit (through the write routes) can hold any JSON value or be absent,
    as on the real server, which stores what it is given: they are typed ``Any`` and a key
    that was not given is left out of the output (not rendered as null).
    """

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    @model_serializer(mode="wrap")
    def _omit_absent(self, handler: SerializerFunctionWrapHandler) -> Any:
        data = handler(self)
        if isinstance(data, dict):
            for name, info in type(self).model_fields.items():
                if name not in self.model_fields_set:
                    data.pop(info.alias or name, None)
        return data


class DandisetMetadata(Document):
    """A version's JSON-LD metadata document (``versions/{v}/``)."""

    id: str
    url: str
    name: str
    version: str
    context: str = Field(alias="@context")
    schemaKey: Any = None  # "Dandiset" unless a client stored something else
    identifier: str
    schemaVersion: Any
    manifestLocation: list[str]


class VersionInfo(Payload):
    version: str
    name: str
    asset_count: int
    active_uploads: int
    size: int
    status: VersionStatus
    created: DRFDateTime
    modified: DRFDateTime
    dandiset: DandisetBase
    release_notes: str
    asset_validation_errors: list[AssetValidationError]
    version_validation_errors: list[ValidationError]
    metadata: DandisetMetadata
    contact_person: str


# ------------------------------------------------------------------ assets


class AssetMetadata(Document):
    """An asset's JSON-LD metadata document as served (stored keys + computed ones)."""

    id: str
    access: list[dict[str, Any]]
    path: str
    identifier: str
    contentUrl: list[str]
    contentSize: int
    digest: dict[str, str]
    context: str = Field(alias="@context")
    schemaKey: Any = None  # "Asset" unless a client stored something else
    schemaVersion: Any
    encodingFormat: Any = None  # always set for zarr assets


class AssetItem(Payload):
    asset_id: str
    blob: str | None
    zarr: str | None
    path: str
    size: int
    created: DRFDateTime
    modified: DRFDateTime


class AssetWithMetadata(AssetItem):
    metadata: AssetMetadata


class AssetFile(Payload):
    asset_id: str
    url: str


class AssetPathItem(Payload):
    path: str
    version: int  # the version's database primary key, as the real server shows it
    aggregate_files: int
    aggregate_size: int
    asset: AssetFile | None


# ------------------------------------------------------------------ zarr, blobs


ZarrStatus = Literal["Pending", "Uploaded", "Ingesting", "Complete"]


class ZarrArchiveOut(Payload):
    name: str
    dandiset: str
    zarr_id: str
    status: ZarrStatus
    checksum: str | None
    file_count: int
    size: int


class ZarrFileEntry(Payload):
    Key: str
    LastModified: S3DateTime
    ETag: str
    Size: int


class ZarrFilesPage(Payload):
    next: str | None
    results: list[ZarrFileEntry]


class BlobOut(Payload):
    blob_id: str
    etag: str
    sha256: str | None
    size: int


# ------------------------------------------------------------------ errors


class Detail(Payload):
    """DRF's error envelope ``{"detail": "..."}``."""

    detail: str


FieldErrors = dict[str, list[str]]

"""Pydantic models of the DANDI API payloads neurofs reads (dandi/dandi-archive
``dandiapi/api/views/serializers.py``).

Unknown fields are ignored (the server adds fields over time); the ones modelled here are the
ones the tree depends on, validated so that a malformed answer fails loudly at the boundary.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

T = TypeVar("T")


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Page(_Model, Generic[T]):
    count: int | None = None
    next: str | None = None
    previous: str | None = None
    results: list[T]


class VersionSummary(_Model):
    version: str
    name: str = ""
    asset_count: int = 0
    size: int = 0
    status: str = ""
    created: datetime
    modified: datetime


class Dandiset(_Model):
    identifier: str = Field(pattern=r"^\d{6}$")
    created: datetime
    modified: datetime
    contact_person: str = ""
    embargo_status: str = "OPEN"
    draft_version: VersionSummary | None = None
    most_recent_published_version: VersionSummary | None = None

    @property
    def embargoed(self) -> bool:
        return self.embargo_status != "OPEN"


class VersionInfo(VersionSummary):
    """``/versions/{v}/info/``: the version fields plus its metadata document."""

    metadata: dict[str, Any] = Field(default_factory=dict)


class Asset(_Model):
    asset_id: str
    blob: str | None = None
    zarr: str | None = None
    path: str
    size: int = Field(ge=0)
    created: datetime
    modified: datetime


class AssetRow(_Model):
    """An asset of the flat list as a walk needs it: no timestamps to parse."""

    asset_id: str
    blob: str | None = None
    zarr: str | None = None
    path: str
    size: int = Field(ge=0)


class AssetWithMetadata(Asset):
    metadata: dict[str, Any] = Field(default_factory=dict)


class AssetDigests(_Model):
    """The ``digest`` of an asset's metadata (``GET /assets/{id}/``): algorithm → value."""

    digest: dict[str, str] = Field(default_factory=dict)


class PathAsset(_Model):
    asset_id: str
    url: str | None = None


class AssetPath(_Model):
    """One child of ``assets/paths/``: a folder (``asset`` null) or an asset."""

    path: str
    aggregate_files: int = 0
    aggregate_size: int = Field(default=0, ge=0)
    asset: PathAsset | None = None


class ZarrFile(_Model):
    key: str = Field(alias="Key")
    last_modified: datetime = Field(alias="LastModified")
    etag: str = Field(alias="ETag")
    size: int = Field(alias="Size", ge=0)


class ZarrPage(_Model):
    next: str | None = None
    results: list[ZarrFile]


class S3ListPage(_Model):
    """One page of the object store's ``ListObjectsV2`` (``ListBucketResult``), keys decoded;
    ``contents`` carry full object keys (``zarr/<id>/<key>``)."""

    contents: list[ZarrFile] = Field(default_factory=list)
    common_prefixes: list[str] = Field(default_factory=list)
    is_truncated: bool = False
    next_token: str | None = None


class User(_Model):
    """``users/me/``: the account the token belongs to."""

    username: str
    name: str = ""
    admin: bool = False
    # "APPROVED", or "PENDING" / "INCOMPLETE" / "REJECTED" for an account not yet approved.
    status: str = ""

    @property
    def display(self) -> str:
        return f"{self.username} ({self.name})" if self.name else self.username

    @property
    def note(self) -> str | None:
        if self.status and self.status != "APPROVED":
            return f"account {self.status.lower()}"
        return None

"""DANDI sidecars: ``dandiset.yaml`` at each version root.

In the draft it is editable: a save becomes ``PUT /dandisets/{id}/versions/draft/`` with the
server's current metadata plus the fields the user changed, and ``name``. Keys the server
computes are shown but never sent (the server would drop them anyway). Published versions
are immutable, so their ``dandiset.yaml`` is read-only.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from neurofs.errors import InvalidContent
from neurofs.sources.dandi.api import DandiApi
from neurofs.tree.merge import FieldPath
from neurofs.tree.nodes import NodePath
from neurofs.tree.sidecar import (
    Document,
    Sidecar,
    SidecarSpec,
    TextFormat,
    describe_validation,
)

# Keys the archive computes itself (dropped by the server on PUT).
COMPUTED_KEYS = frozenset(
    {
        "id",
        "identifier",
        "url",
        "version",
        "assetsSummary",
        "citation",
        "doi",
        "dateCreated",
        "dateModified",
        "datePublished",
        "publishedBy",
        "manifestLocation",
        "releaseNotes",
    }
)

Text = Annotated[str, Field(strict=True)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]


class DandisetMetadataEdit(BaseModel):
    """The Dandiset metadata fields a user may edit, typed strictly so that mistakes are
    caught before anything is sent. Unknown keys are refused: a misspelt key would be stored
    and silently ignored by every DANDI tool."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, strict=True)

    context: Any = Field(default=None, alias="@context")
    schemaKey: Text | None = None
    schemaVersion: Text | None = None
    name: Name
    description: Text | None = None
    license: list[Text] | None = None
    keywords: list[Text] | None = None
    contributor: list[dict[str, Any]] | None = None
    about: list[dict[str, Any]] | None = None
    access: list[dict[str, Any]] | None = None
    acknowledgement: Text | None = None
    protocol: list[Text] | None = None
    ethicsApproval: list[dict[str, Any]] | None = None
    studyTarget: list[Text] | None = None
    relatedResource: list[dict[str, Any]] | None = None
    wasGeneratedBy: list[dict[str, Any]] | None = None
    repository: Text | None = None
    sameAs: list[Text] | None = None
    # Shown, computed by the server, never sent.
    id: Any = None
    identifier: Any = None
    url: Any = None
    version: Any = None
    assetsSummary: Any = None
    citation: Any = None
    doi: Any = None
    dateCreated: Any = None
    dateModified: Any = None
    datePublished: Any = None
    publishedBy: Any = None
    manifestLocation: Any = None
    releaseNotes: Any = None


# Why a mount without a token cannot change the draft (the archive would answer 401).
NO_TOKEN = "editing the draft needs a DANDI token (token_env or token in the configuration)"


def _denied(api: DandiApi) -> str | None:
    return None if api.authenticated else NO_TOKEN


def validate_dandiset_metadata(doc: Document) -> None:
    try:
        DandisetMetadataEdit.model_validate(doc)
    except ValidationError as exc:
        raise InvalidContent(describe_validation(exc)) from None


def dandiset_yaml(
    api: DandiApi, key: NodePath, identifier: str, version: str, mtime: float
) -> Sidecar:
    async def load(fresh: bool) -> Document:
        info = await api.version_info(identifier, version, fresh=fresh)
        return dict(info.metadata)

    async def send(changes: dict[FieldPath, Any], merged: Document, current: Document) -> None:
        metadata = {k: v for k, v in merged.items() if k not in COMPUTED_KEYS}
        name = str(merged["name"]).strip()
        await api.http.send_json(
            "PUT",
            f"dandisets/{identifier}/versions/draft/",
            {"metadata": {**metadata, "name": name}, "name": name},
        )
        api.forget_version_metadata(identifier, version)

    spec = SidecarSpec(
        load=load,
        validate=validate_dandiset_metadata,
        send=send,
        fmt=TextFormat.YAML,
        computed_keys=COMPUTED_KEYS,
        read_only_reason=None if version == "draft" else "published versions are immutable",
        denied_reason=_denied(api),
    )
    return Sidecar(key, spec, mtime)


# ---------------------------------------------------------------- asset metadata

# Keys the archive derives from the asset's identity, path and content (dropped on PUT). The
# path is changed by moving the asset (mv), not by editing it here.
ASSET_COMPUTED_KEYS = frozenset(
    {"id", "identifier", "path", "access", "contentUrl", "contentSize", "digest"}
)


class AssetMetadataEdit(BaseModel):
    """Typed checks of the asset metadata fields people edit; other schema keys pass through
    (the archive validates the whole document after the PUT)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True, strict=True)

    schemaKey: Text | None = None
    encodingFormat: Text | None = None
    description: Text | None = None
    keywords: list[Text] | None = None
    wasGeneratedBy: list[dict[str, Any]] | None = None
    wasAttributedTo: list[dict[str, Any]] | None = None
    approach: list[dict[str, Any]] | None = None
    measurementTechnique: list[dict[str, Any]] | None = None
    variableMeasured: list[dict[str, Any]] | None = None


def validate_asset_metadata(doc: Document) -> None:
    try:
        AssetMetadataEdit.model_validate(doc)
    except ValidationError as exc:
        raise InvalidContent(describe_validation(exc)) from None
    if doc.get("schemaKey", "Asset") != "Asset":
        raise InvalidContent("'schemaKey' must stay 'Asset'")


def asset_yaml(api: DandiApi, key: NodePath, identifier: str, path: str, mtime: float) -> Sidecar:
    """The metadata of the draft's asset at ``path``. The asset is found by path each time,
    because every metadata change gives it a new id."""

    async def load(fresh: bool) -> Document:
        return await api.draft_asset_metadata(identifier, path, fresh=fresh)

    async def send(changes: dict[FieldPath, Any], merged: Document, current: Document) -> None:
        asset = await api.asset_at(identifier, "draft", path)
        metadata = {k: v for k, v in merged.items() if k not in ASSET_COMPUTED_KEYS}
        metadata["path"] = asset.path
        await api.put_asset(identifier, asset, metadata)
        api.forget_version(identifier, "draft")
        api.forget_asset(identifier, path)

    spec = SidecarSpec(
        load=load,
        validate=validate_asset_metadata,
        send=send,
        fmt=TextFormat.YAML,
        computed_keys=ASSET_COMPUTED_KEYS,
        denied_reason=_denied(api),
        costly=True,  # one request per asset: listing draft.meta/ must not load them all
    )
    return Sidecar(key, spec, mtime)

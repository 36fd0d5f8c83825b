"""The rules of the archive's write routes: what is stored, what is refused, what happens later.

Facts from dandi-archive (2026-08): ``dandiapi/api/models/version.py`` (``strip_metadata``,
``_populate_metadata``, ``citation``), ``models/asset.py`` (``ASSET_COMPUTED_FIELDS``,
``validate_asset_path``, ``is_different_from``), ``asset_paths.py``
(``get_conflicting_paths``), ``services/metadata`` (background validation) and
``tasks/scheduled.py`` (it runs every ``DANDI_VALIDATION_JOB_INTERVAL`` s). The HTTP side (checks
and their order, status codes, bodies) lives in :mod:`.app`; this module holds the data rules.

Background work is emulated with due times: a write marks the draft (and a new asset)
``Pending`` with a due time ``validation_delay`` seconds ahead, and :func:`settle` (called
before every API request) finishes what is due: assets get ``Valid``/``Invalid``, then the
draft's metadata is validated and its ``assetsSummary`` re-aggregated from its valid assets.
"""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from neurofs_emulators.dandi.archive import (
    ASSET_COMPUTED_FIELDS,
    Archive,
    Asset,
    Dandiset,
    Version,
)
from neurofs_emulators.dandi.metadata import (
    ALLOWED_SCHEMA_VERSIONS,
    INSTANCE_NAME,
    WEB_APP_URL,
    assets_summary,
)

DEFAULT_VALIDATION_DELAY = 1.0
VALIDATION_DELAY_ENV = "NEUROFS_EMULATOR_VALIDATION_DELAY"

# Version.strip_metadata: keys the server computes itself, dropped from what a client sends.
VERSION_COMPUTED_FIELDS = (
    "name",
    "identifier",
    "version",
    "id",
    "url",
    "assetsSummary",
    "citation",
    "doi",
    "dateCreated",
    "datePublished",
    "publishedBy",
    "manifestLocation",
    "releaseNotes",
)

VERSION_NAME_MAX_LENGTH = 300  # Version.name = CharField(max_length=300)
ASSET_PATH_MAX_LENGTH = 512  # Asset.path = CharField(max_length=512)

# Asset paths the server accepts (models/asset.py ``ASSET_PATH_REGEX``): characters c of the
# class below (the range A-z takes in [ \ ] ^ _ `), "/" and "."; every "/" followed by c or
# ".c", every "." by c, the last one a c. So no leading or doubled "/", no "." or ".."
# segment, no segment ending in ".", no trailing "/". The server's own pattern, c?/?.?c
# repeated, backtracks exponentially on a long run of c that fails at its end; this one
# (each group ends at its c) accepts the same paths in linear time.
_PATH_CHAR = r"[A-z0-9(),&\s#+~_=-]"
_ASSET_PATH = re.compile(rf"^(?:/?\.?{_PATH_CHAR})+$")

# What the validation of a version can complain about, in the emulator's simplified schema:
# the keys a PublishedDandiset requires that a client controls, and their JSON types.
_VERSION_REQUIRED = ("contributor", "description", "license")
_VERSION_TYPES = {"contributor": "array", "description": "string", "license": "array"}
_ASSET_REQUIRED = ("encodingFormat", "schemaKey")
_JSON_TYPES: dict[str, type | tuple[type, ...]] = {"array": list, "string": str}


def validation_delay_from_env() -> float:
    raw = os.environ.get(VALIDATION_DELAY_ENV)
    if raw is None or raw.strip() == "":
        return DEFAULT_VALIDATION_DELAY
    return max(0.0, float(raw))


def now() -> datetime:
    return datetime.now(UTC)


# ------------------------------------------------------------------ metadata documents


def jsonb_order(value: Any) -> Any:
    """Key order of a document read back from PostgreSQL ``jsonb``: shorter keys first,
    then byte order (nested objects too)."""
    if isinstance(value, dict):
        return {
            k: jsonb_order(value[k])
            for k in sorted(value, key=lambda k: (len(k.encode()), k.encode()))
        }
    if isinstance(value, list):
        return [jsonb_order(v) for v in value]
    return value


def strip_version_metadata(metadata: dict[str, Any]) -> dict[str, Any]:
    """Drop computed keys; ``access[0]`` loses ``schemaKey`` and ``status`` (not editable)."""
    stripped = {k: v for k, v in metadata.items() if k not in VERSION_COMPUTED_FIELDS}
    access = stripped.get("access")
    if isinstance(access, list) and access and isinstance(access[0], dict):
        first = {k: v for k, v in access[0].items() if k not in ("schemaKey", "status")}
        stripped["access"] = [first, *access[1:]]
    return stripped


def _access(dandiset: Dandiset, metadata: dict[str, Any]) -> list[Any]:
    access = metadata.get("access")
    if not isinstance(access, list) or not access:
        access = [{}]
    access = [item for item in access if isinstance(item, dict)] or [{}]
    first = {
        **access[0],
        "schemaKey": "AccessRequirements",
        "status": "dandi:EmbargoedAccess"
        if dandiset.embargo_status == "EMBARGOED"
        else "dandi:OpenAccess",
    }
    if dandiset.embargo_end_date is not None:
        first["embargoedUntil"] = dandiset.embargo_end_date.isoformat()
    return [first, *access[1:]]


def citation(metadata: dict[str, Any], year: int) -> str:
    """``Version.citation``: authors are the contributors flagged ``includeInCitation``."""
    name = str(metadata["name"]).rstrip(".")
    url = f"https://doi.org/{metadata['doi']}" if "doi" in metadata else metadata["url"]
    version = metadata["version"]
    contributors = metadata.get("contributor")
    authors = ""
    if isinstance(contributors, list):
        authors = "; ".join(
            str(c.get("name"))
            for c in contributors
            if isinstance(c, dict) and c.get("includeInCitation")
        )
    if authors:
        return f"{authors} ({year}) {name} (Version {version}) [Data set]. DANDI Archive. {url}"
    return f"{name} ({year}). (Version {version}) [Data set]. DANDI Archive. {url}"


def populate_version_metadata(
    version: Version, stripped: dict[str, Any], when: datetime
) -> dict[str, Any]:
    """``Version._populate_metadata`` on save, minus ``manifestLocation`` (added when served)."""
    dandiset = version.dandiset
    metadata: dict[str, Any] = {
        **stripped,
        "@context": (
            "https://raw.githubusercontent.com/dandi/schema/master/releases/"
            f"{stripped['schemaVersion']}/context.json"
        ),
        "name": version.name,
        "identifier": f"{INSTANCE_NAME}:{dandiset.identifier}",
        "version": version.version,
        "id": f"{INSTANCE_NAME}:{dandiset.identifier}/{version.version}",
        "repository": WEB_APP_URL,
        "url": f"{WEB_APP_URL}/dandiset/{dandiset.identifier}/{version.version}",
        "dateCreated": dandiset.created.isoformat(),
        "access": _access(dandiset, stripped),
    }
    if "assetsSummary" not in metadata:
        metadata["assetsSummary"] = {
            "schemaKey": "AssetsSummary",
            "numberOfBytes": 0,
            "numberOfFiles": 0,
        }
    metadata["citation"] = citation(metadata, when.year)
    return jsonb_order(metadata)


def strip_asset_metadata(metadata: dict[str, Any]) -> dict[str, Any]:
    """``Asset.strip_metadata``: what is stored for a new asset."""
    return jsonb_order({k: v for k, v in metadata.items() if k not in ASSET_COMPUTED_FIELDS})


# ------------------------------------------------------------------ asset paths


def asset_path_error(path: str) -> str | None:
    """``validate_asset_path``: the message of the Django ValidationError, if any."""
    if path.startswith("/"):
        return "Path must not begin with /"
    if not _ASSET_PATH.match(path):
        return "Path improperly formatted"
    return None


def _prefixes(path: str) -> list[str]:
    parts = path.split("/")
    return ["/".join(parts[:i]) for i in range(1, len(parts))]


def conflicting_paths(version: Version, path: str, ignore: Asset | None = None) -> list[str]:
    """``get_conflicting_paths``: a folder at ``path`` (→ every path below it, sorted), or
    files at the folders ``path`` would need."""
    assets = [a for a in version.assets.values() if a is not ignore]
    below = path + "/"
    inside = [a.path for a in assets if a.path.startswith(below)]
    if inside:
        folders = {p for a in inside for p in _prefixes(a) if p.startswith(below)}
        return sorted({*inside, *folders}, key=lambda p: p.encode())
    wanted = set(_prefixes(path))
    return sorted((a.path for a in assets if a.path in wanted), key=lambda p: p.encode())


def path_taken(version: Version, path: str, ignore: Asset | None = None) -> bool:
    return any(a.path == path for a in version.assets.values() if a is not ignore)


def folder_at(version: Version, path: str, ignore: Asset | None = None) -> bool:
    below = path + "/"
    return any(a.path.startswith(below) for a in version.assets.values() if a is not ignore)


# ------------------------------------------------------------------ background validation


def _schema_version_error(metadata: dict[str, Any]) -> list[dict[str, str]] | None:
    schema_version = metadata.get("schemaVersion")
    if schema_version not in ALLOWED_SCHEMA_VERSIONS:
        return [
            {
                "field": "",
                "message": f"Metadata version {schema_version} is not allowed. "
                f"Allowed are: {', '.join(ALLOWED_SCHEMA_VERSIONS)}.",
            }
        ]
    return None


def _schema_errors(
    metadata: dict[str, Any], required: tuple[str, ...], types: dict[str, str]
) -> list[dict[str, str]]:
    """jsonschema-style errors (dandischema sorts them by their text)."""
    errors = [
        {"field": "", "message": f"'{key}' is a required property"}
        for key in required
        if key not in metadata
    ]
    for key, kind in types.items():
        if key in metadata and not isinstance(metadata[key], _JSON_TYPES[kind]):
            errors.append({"field": key, "message": f"{metadata[key]!r} is not of type '{kind}'"})
    return sorted(errors, key=lambda e: e["message"])


def version_validation_errors(metadata: dict[str, Any]) -> list[dict[str, str]]:
    """The errors validating a draft against ``PublishedDandiset`` gives (simplified)."""
    return _schema_version_error(metadata) or _schema_errors(
        metadata, _VERSION_REQUIRED, _VERSION_TYPES
    )


def asset_validation_errors(asset: Asset) -> list[dict[str, str]]:
    """The errors validating an asset against ``PublishedAsset`` gives (simplified)."""
    metadata = dict(asset.metadata)
    if asset.zarr is not None:
        metadata["encodingFormat"] = "application/x-zarr"
    return _schema_version_error(metadata) or _schema_errors(metadata, _ASSET_REQUIRED, {})


def mark_pending(archive: Archive, version: Version, when: datetime, delay: float) -> None:
    """A draft changed: revalidate it later; ``modified`` moves to ``when``."""
    version.status = "Pending"
    version.modified = when
    version.validation_due = when + timedelta(seconds=delay)
    archive.pending_versions[version.pk] = version


def mark_asset_pending(archive: Archive, asset: Asset, when: datetime, delay: float) -> None:
    asset.status = "Pending"
    asset.validation_due = when + timedelta(seconds=delay)
    archive.pending_assets[asset.asset_id] = asset


def settle(archive: Archive, at: datetime | None = None) -> None:
    """Finish the background validation that is due by ``at`` (default: now)."""
    at = at or now()
    for asset_id, asset in list(archive.pending_assets.items()):
        due = asset.validation_due
        if due is None or due > at:
            continue
        del archive.pending_assets[asset_id]
        asset.validation_due = None
        if asset.status != "Pending":
            continue
        errors = asset_validation_errors(asset)
        asset.status = "Invalid" if errors else "Valid"
        asset.validation_errors = errors
        for dandiset in archive.asset_dandisets(asset):
            draft = dandiset.versions.get("draft")
            if draft is not None and asset.pk in draft.assets:
                draft.modified = max(draft.modified, due)
    for pk, version in list(archive.pending_versions.items()):
        due = version.validation_due
        if due is None or due > at:
            continue
        del archive.pending_versions[pk]
        version.validation_due = None
        if version.status != "Pending" or not version.is_draft:
            continue
        errors = version_validation_errors(version.metadata)
        version.status = "Invalid" if errors else "Valid"
        version.validation_errors = errors
        valid = [a for a in version.assets.values() if a.status == "Valid"]
        version.metadata = jsonb_order({**version.metadata, "assetsSummary": assets_summary(valid)})
        version.modified = max(version.modified, due)

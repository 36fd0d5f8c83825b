"""Metadata as the DANDI Archive keeps it, and the instance the emulator poses as.

A version's metadata as the server stores it after ``Version._populate_metadata``, an asset's
as ``dandi upload`` sends it, the assets summary dandischema aggregates, and the vocabulary
terms the sample data uses. Ids derived from fixed strings (:func:`stable_id`) make all of it
the same on every run.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from neurofs_emulators.dandi.archive import Asset, Dandiset

WEB_APP_URL = "https://emulated.dandiarchive.invalid"
JUPYTERHUB_URL = "https://hub.emulated.dandiarchive.invalid"
INSTANCE_NAME = "DANDI"
SERVER_VERSION = "0.12.1"  # the dandi-archive release the emulator follows (2026-08)
# /info/ schema fields: what dandischema 0.14 (the client's pin) declares.
SCHEMA_VERSION = "0.8.0"
ALLOWED_SCHEMA_VERSIONS = [
    "0.4.4",
    "0.5.1",
    "0.5.2",
    "0.6.0",
    "0.6.1",
    "0.6.2",
    "0.6.3",
    "0.6.4",
    "0.6.5",
    "0.6.6",
    "0.6.7",
    "0.6.8",
    "0.6.9",
    "0.6.10",
    "0.7.0",
    "0.8.0",
]

_ID_NAMESPACE = uuid.UUID("0b5f4b8e-0d61-4c38-9f0e-6a4d3c1b2a90")
UTC = UTC
EST = timezone(timedelta(hours=-5))


def stable_id(*parts: str) -> str:
    """A UUID4-shaped id derived from fixed strings.

    uuid5 makes it deterministic; the version nibble is then set to 4 because the real
    server's routes only accept UUID4-shaped asset and zarr ids.
    """
    digest = uuid.uuid5(_ID_NAMESPACE, "/".join(parts))
    return str(uuid.UUID(bytes=digest.bytes, version=4))


# ------------------------------------------------------------------ metadata builders

MOUSE = {
    "schemaKey": "SpeciesType",
    "identifier": "http://purl.obolibrary.org/obo/NCBITaxon_10090",
    "name": "Mus musculus - House mouse",
}
NWB_STANDARD = {
    "schemaKey": "StandardsType",
    "identifier": "RRID:SCR_015242",
    "name": "Neurodata Without Borders (NWB)",
}
ECEPHYS_APPROACH = {"schemaKey": "ApproachType", "name": "electrophysiological approach"}
BEHAVIOR_APPROACH = {"schemaKey": "ApproachType", "name": "behavioral approach"}
MICROSCOPY_APPROACH = {
    "schemaKey": "ApproachType",
    "name": "microscopy approach; cell population imaging",
}
MULTI_ELECTRODE = {
    "schemaKey": "MeasurementTechniqueType",
    "name": "multi electrode extracellular electrophysiology recording technique",
}
SPIKE_SORTING = {"schemaKey": "MeasurementTechniqueType", "name": "spike sorting technique"}
BEHAVIORAL_TECHNIQUE = {"schemaKey": "MeasurementTechniqueType", "name": "behavioral technique"}
CLI_SOFTWARE = {
    "url": "https://github.com/dandi/dandi-cli",
    "name": "DANDI Command Line Interface",
    "version": "0.58.2",
    "schemaKey": "Software",
    "identifier": "RRID:SCR_019009",
}


def person(
    name: str,
    roles: list[str],
    email: str | None = None,
    orcid: str | None = None,
    affiliation: str | None = None,
) -> dict[str, Any]:
    person: dict[str, Any] = {"name": name, "roleName": roles, "schemaKey": "Person"}
    if email:
        person["email"] = email
    if orcid:
        person["identifier"] = orcid
    person["affiliation"] = (
        [{"name": affiliation, "schemaKey": "Affiliation"}] if affiliation else []
    )
    person["includeInCitation"] = "dcite:Author" in roles or "dcite:ContactPerson" in roles
    return person


def publish_activity(dandiset: str, version: str, when: datetime) -> dict[str, Any]:
    return {
        "id": f"urn:uuid:{stable_id('publish', dandiset, version)}",
        "name": "DANDI publish",
        "endDate": when.isoformat(),
        "schemaKey": "PublishActivity",
        "startDate": when.isoformat(),
        "wasAssociatedWith": [
            {
                "id": f"urn:uuid:{stable_id('publish-agent', dandiset, version)}",
                "name": "DANDI API",
                "version": "0.1.0",
                "schemaKey": "Software",
                "identifier": "RRID:SCR_017571",
            }
        ],
    }


def _citation(metadata: dict[str, Any], year: int) -> str:
    name = metadata["name"].rstrip(".")
    authors = "; ".join(
        c["name"] for c in metadata.get("contributor", []) if c.get("includeInCitation")
    )
    url = metadata["url"]
    version = metadata["version"]
    if authors:
        return f"{authors} ({year}) {name} (Version {version}) [Data set]. DANDI Archive. {url}"
    return f"{name} ({year}). (Version {version}) [Data set]. DANDI Archive. {url}"


def assets_summary(assets: list[Asset]) -> dict[str, Any]:
    """The version's ``assetsSummary``, aggregated from its assets like dandischema does."""
    subjects = {a.path.split("/")[0] for a in assets if a.path.startswith("sub-")}
    summary: dict[str, Any] = {
        "schemaKey": "AssetsSummary",
        "numberOfBytes": sum(a.size for a in assets),
        "numberOfFiles": len(assets),
        "numberOfSubjects": len(subjects),
    }
    for key in ("approach", "measurementTechnique", "variableMeasured", "species", "dataStandard"):
        seen: list[Any] = []
        for asset in assets:
            values: list[Any] = []
            if key == "species":
                values = [
                    p["species"]
                    for p in asset.metadata.get("wasAttributedTo", [])
                    if "species" in p
                ]
            elif key == "dataStandard":
                if asset.metadata.get("encodingFormat") == "application/x-nwb":
                    values = [NWB_STANDARD]
            elif key == "variableMeasured":
                values = [v["value"] for v in asset.metadata.get(key, [])]
            else:
                values = asset.metadata.get(key, [])
            for value in values:
                if value not in seen:
                    seen.append(value)
        if seen:
            summary[key] = seen
    return summary


@dataclass
class DandisetText:
    name: str
    description: str
    keywords: list[str]
    contributors: list[dict[str, Any]]
    about: list[dict[str, Any]]
    related: list[dict[str, Any]]


def version_metadata(
    dandiset: Dandiset,
    version: str,
    text: DandisetText,
    schema_version: str,
    summary: dict[str, Any],
    saved: datetime,
    published: datetime | None = None,
) -> dict[str, Any]:
    """A version's metadata as the server stores it after ``Version._populate_metadata``."""
    access: dict[str, Any] = {
        "status": "dandi:EmbargoedAccess"
        if dandiset.embargo_status == "EMBARGOED"
        else "dandi:OpenAccess",
        "schemaKey": "AccessRequirements",
        "contactPoint": {"email": "owner@example.org", "schemaKey": "ContactPoint"},
    }
    if dandiset.embargo_end_date is not None:
        access["embargoedUntil"] = dandiset.embargo_end_date.isoformat()
    metadata: dict[str, Any] = {
        "id": f"{INSTANCE_NAME}:{dandiset.identifier}/{version}",
        "url": f"{WEB_APP_URL}/dandiset/{dandiset.identifier}/{version}",
        "name": text.name,
        "about": text.about,
        "access": [access],
        "license": ["spdx:CC-BY-4.0"],
        "version": version,
        "@context": (
            f"https://raw.githubusercontent.com/dandi/schema/master/releases/{schema_version}"
            "/context.json"
        ),
        "keywords": text.keywords,
        "protocol": [],
        "schemaKey": "Dandiset",
        "identifier": f"{INSTANCE_NAME}:{dandiset.identifier}",
        "repository": WEB_APP_URL,
        "contributor": text.contributors,
        "dateCreated": dandiset.created.isoformat(),
        "description": text.description,
        "studyTarget": [],
        "assetsSummary": summary,
        "schemaVersion": schema_version,
        "ethicsApproval": [],
        "wasGeneratedBy": [],
        "relatedResource": text.related,
    }
    if published is not None:
        metadata["datePublished"] = published.isoformat()
        metadata["publishedBy"] = publish_activity(dandiset.identifier, version, published)
    metadata["citation"] = _citation(metadata, saved.year)
    return metadata


def _participant(subject: str, sex: str, age_days: int) -> dict[str, Any]:
    return {
        "age": {
            "unitText": "ISO-8601 duration",
            "value": f"P{age_days}D",
            "schemaKey": "PropertyValue",
            "valueReference": {
                "schemaKey": "PropertyValue",
                "value": "dandi:BirthReference",
            },
        },
        "sex": {
            "name": "Female" if sex == "F" else "Male",
            "schemaKey": "SexType",
            "identifier": "http://purl.obolibrary.org/obo/PATO_0000383"
            if sex == "F"
            else "http://purl.obolibrary.org/obo/PATO_0000384",
        },
        "species": MOUSE,
        "schemaKey": "Participant",
        "identifier": subject,
    }


def _generation_activity(key: str, when: datetime) -> dict[str, Any]:
    return {
        "id": f"urn:uuid:{stable_id('metadata-generation', key)}",
        "name": "Metadata generation",
        "endDate": (when + timedelta(seconds=2)).isoformat(),
        "schemaKey": "Activity",
        "startDate": when.isoformat(),
        "description": "Metadata generated by DANDI cli",
        "wasAssociatedWith": [CLI_SOFTWARE],
    }


def asset_metadata(
    path: str,
    encoding: str,
    schema_version: str,
    modified: datetime,
    *,
    subject: str | None = None,
    sex: str = "F",
    age_days: int = 90,
    session: str | None = None,
    approach: list[dict[str, Any]] | None = None,
    techniques: list[dict[str, Any]] | None = None,
    variables: list[str] | None = None,
    keywords: list[str] | None = None,
) -> dict[str, Any]:
    """An asset's stored metadata, shaped like what ``dandi upload`` sends."""
    md: dict[str, Any] = {
        "schemaKey": "Asset",
        "schemaVersion": schema_version,
        "encodingFormat": encoding,
        "dateModified": modified.astimezone(EST).isoformat(),
        "blobDateModified": (modified - timedelta(days=3, minutes=17)).astimezone(EST).isoformat(),
    }
    if keywords:
        md["keywords"] = keywords
    generated = []
    if session:
        generated.append(
            {
                "name": "Acquisition session",
                "schemaKey": "Session",
                "identifier": session,
                "startDate": (modified - timedelta(days=6)).isoformat(),
                "description": f"Recording session {session}",
            }
        )
    generated.append(_generation_activity(path, modified))
    md["wasGeneratedBy"] = generated
    if subject:
        md["wasAttributedTo"] = [_participant(subject, sex, age_days)]
    if variables:
        md["variableMeasured"] = [{"value": v, "schemaKey": "PropertyValue"} for v in variables]
    if techniques:
        md["measurementTechnique"] = techniques
    if approach:
        md["approach"] = approach
    return md

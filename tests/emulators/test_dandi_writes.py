"""The DANDI emulator's write routes over real HTTP: draft metadata PUT, asset POST/PUT/DELETE.

Writes mutate the archive, so this module runs its own emulator (not the shared one) and puts
dandiset 000004 back the way the sample has it after each test (asset ids then differ from
the sample's: tests name assets by path). Expected statuses and bodies are the real server's
(dandi-archive ``views/version.py``, ``views/asset.py``, ``services/asset``, ``drf_utils``).
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from neurofs_emulators.dandi.metadata import SCHEMA_VERSION
from neurofs_emulators.dandi.sample import (
    EMBARGOED_DANDISET,
    LARGE_ZARR_PATH,
    NWB_PATH,
    OTHER_TOKEN,
    OWNER_TOKEN,
    RELEASE_VERSION,
    SampleArchive,
)
from neurofs_emulators.launch import RunningEmulator, start_emulator
from neurofs_emulators.network import FAULT_KINDS

OWNER = {"Authorization": f"token {OWNER_TOKEN}"}
OTHER = {"Authorization": f"token {OTHER_TOKEN}"}
DRAFT = "dandisets/000004/versions/draft/"
ASSETS = DRAFT + "assets/"
README = "README.txt"
PROBE = "sub-01/sub-01_probe.json"
VALIDATION_DELAY = 2.0  # long enough to see Pending, short enough to wait for Valid

ANONYMOUS_401 = {"detail": "Authentication credentials were not provided."}
NOT_FOUND = {"detail": "Not found."}
ONLY_DRAFTS = "Only draft versions can be modified."
PATH_EXISTS = "An asset with that path already exists"
# Keys the server computes for an asset (ASSET_COMPUTED_FIELDS) and adds when serving it.
ASSET_COMPUTED = (
    "id",
    "access",
    "path",
    "identifier",
    "contentUrl",
    "contentSize",
    "digest",
    "datePublished",
    "publishedBy",
)


# ---------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def emulator(sample: SampleArchive) -> Iterator[RunningEmulator]:
    """A private emulator: these tests change its state."""
    with start_emulator(
        "dandi", env={"NEUROFS_EMULATOR_VALIDATION_DELAY": str(VALIDATION_DELAY)}
    ) as emu:
        yield emu


@pytest.fixture
def api(emulator: RunningEmulator, sample: SampleArchive) -> Iterator[httpx.Client]:
    """A client on the private emulator; 000004 is restored after the test."""
    emulator.clear_requests()
    with httpx.Client(base_url=emulator.api_url + "/", timeout=60) as client:
        yield client
        emulator.set_knobs()
        restore_000004(client, sample)


def stored_asset_metadata(served: dict[str, Any]) -> dict[str, Any]:
    """What the server stores for an asset given its served metadata (computed keys out)."""
    return {k: v for k, v in served.items() if k not in (*ASSET_COMPUTED, "@context")}


def restore_000004(api: httpx.Client, sample: SampleArchive) -> None:
    truth = sample.dandisets["000004"].draft
    put = api.put(DRAFT, json={"metadata": truth.metadata, "name": truth.name}, headers=OWNER)
    assert put.status_code == 200, put.text
    wanted = {a.path: a for a in truth.assets.values()}
    for asset in api.get(ASSETS, params={"metadata": "true"}).json()["results"]:
        want = wanted.get(asset["path"])
        if (
            want is not None
            and want.blob is not None
            and asset["blob"] == want.blob.blob_id
            and stored_asset_metadata(asset["metadata"]) == want.metadata
        ):
            del wanted[asset["path"]]
            continue
        assert api.delete(f"{ASSETS}{asset['asset_id']}/", headers=OWNER).status_code == 204
    for path, want in wanted.items():
        assert want.blob is not None
        body = {"metadata": {**want.metadata, "path": path}, "blob_id": want.blob.blob_id}
        assert api.post(ASSETS, json=body, headers=OWNER).status_code == 200


def info(api: httpx.Client, dandiset: str = "000004") -> dict[str, Any]:
    response = api.get(f"dandisets/{dandiset}/versions/draft/info/")
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def wait_settled(api: httpx.Client, dandiset: str = "000004") -> dict[str, Any]:
    """Poll the draft's /info/ until neither it nor its assets are Pending."""
    deadline = time.monotonic() + VALIDATION_DELAY + 10
    while True:
        current = info(api, dandiset)
        pending_assets = any(
            "currently being validated" in e["message"] for e in current["asset_validation_errors"]
        )
        if current["status"] not in ("Pending", "Validating") and not pending_assets:
            return current
        assert time.monotonic() < deadline, current["status"]
        time.sleep(0.1)


def assets_by_path(api: httpx.Client, dandiset: str = "000004") -> dict[str, dict[str, Any]]:
    page = api.get(f"dandisets/{dandiset}/versions/draft/assets/", params={"page_size": 1000})
    return {a["path"]: a for a in page.json()["results"]}


def asset_id(api: httpx.Client, path: str) -> str:
    result: str = assets_by_path(api)[path]["asset_id"]
    return result


def paths_level(api: httpx.Client, prefix: str = "") -> dict[str, dict[str, Any]]:
    page = api.get(ASSETS + "paths/", params={"path_prefix": prefix} if prefix else None)
    assert page.status_code == 200, page.text
    return {r["path"]: r for r in page.json()["results"]}


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def readme_body(api: httpx.Client, **changes: Any) -> dict[str, Any]:
    """The body of an asset PUT/POST: README's stored metadata and blob, with changes."""
    readme = api.get(f"{ASSETS}{asset_id(api, README)}/info/").json()
    metadata = {**stored_asset_metadata(readme["metadata"]), "path": README, **changes}
    return {"metadata": metadata, "blob_id": readme["blob"]}


# ---------------------------------------------------------------------------- draft metadata


def test_put_draft_metadata(api: httpx.Client, emulator: RunningEmulator) -> None:
    before = wait_settled(api)
    metadata = api.get(DRAFT).json()
    metadata["description"] = "Edited over the API."
    response = api.put(DRAFT, json={"metadata": metadata, "name": "Renamed"}, headers=OWNER)
    assert response.status_code == 200, response.text
    body = response.json()
    # The answer is the /info/ shape, in the state right after the save.
    assert set(body) == set(before)
    assert body["status"] == "Pending"
    assert body["name"] == "Renamed" and body["metadata"]["name"] == "Renamed"
    assert body["metadata"]["description"] == "Edited over the API."
    assert parse_time(body["modified"]) > parse_time(before["modified"])
    assert body["asset_count"] == before["asset_count"] and body["size"] == before["size"]
    year = datetime.now(UTC).year
    assert body["metadata"]["citation"] == (
        f"Owner, Olive ({year}) Renamed (Version draft) [Data set]. DANDI Archive. "
        f"{metadata['url']}"
    )
    # assetsSummary is computed: dropped, reset, then re-aggregated by the validation.
    assert body["metadata"]["assetsSummary"] == {
        "schemaKey": "AssetsSummary",
        "numberOfBytes": 0,
        "numberOfFiles": 0,
    }
    assert info(api)["status"] == "Pending"
    # Listings follow the new name right away.
    listed = {d["identifier"]: d for d in api.get("dandisets/").json()["results"]}
    assert listed["000004"]["draft_version"]["name"] == "Renamed"
    assert api.get("dandisets/000004/").json()["draft_version"]["name"] == "Renamed"
    assert api.get("dandisets/000004/versions/").json()["results"][0]["name"] == "Renamed"
    assert api.get(DRAFT).json()["description"] == "Edited over the API."
    # Then the background validation: Valid, summary back, modified moves again.
    settled = wait_settled(api)
    assert settled["status"] == "Valid" and settled["version_validation_errors"] == []
    assert settled["metadata"]["assetsSummary"]["numberOfFiles"] == 2
    assert settled["metadata"]["assetsSummary"]["numberOfBytes"] == before["size"]
    assert parse_time(settled["modified"]) > parse_time(body["modified"])
    puts = [r for r in emulator.requests() if r["method"] == "PUT"]
    assert [(r["path"], r["status"]) for r in puts] == [("/api/" + DRAFT, 200)]
    assert puts[0]["body"] == {"metadata": metadata, "name": "Renamed"}


def test_put_draft_drops_computed_keys(api: httpx.Client) -> None:
    original = api.get(DRAFT).json()
    bogus = {
        "name": "Not the name",
        "identifier": "DANDI:999999",
        "version": "0.999999.9999",
        "id": "DANDI:999999/0.999999.9999",
        "url": "https://example.org/x",
        "assetsSummary": {"schemaKey": "AssetsSummary", "numberOfBytes": 7, "numberOfFiles": 7},
        "citation": "made up",
        "doi": "10.0/made.up",
        "dateCreated": "1999-01-01T00:00:00+00:00",
        "datePublished": "1999-01-01T00:00:00+00:00",
        "publishedBy": {"name": "nobody"},
        "manifestLocation": ["https://example.org/m"],
        "releaseNotes": "none",
        "repository": "https://example.org/repo",
        "access": [{"schemaKey": "Nope", "status": "dandi:EmbargoedAccess", "note": "kept"}],
    }
    body = {"metadata": {**original, **bogus}, "name": "The name"}
    saved = api.put(DRAFT, json=body, headers=OWNER).json()["metadata"]
    for key in ("identifier", "version", "id", "url", "dateCreated", "manifestLocation"):
        assert saved[key] == original[key], key
    for key in ("doi", "datePublished", "publishedBy", "releaseNotes"):
        assert key not in saved, key
    assert saved["name"] == "The name"
    assert saved["repository"] == original["repository"]  # re-set by the server too
    assert saved["citation"].endswith(
        f"The name (Version draft) [Data set]. DANDI Archive. {original['url']}"
    )
    assert saved["assetsSummary"]["numberOfFiles"] == 0
    assert saved["access"] == [
        {"note": "kept", "status": "dandi:OpenAccess", "schemaKey": "AccessRequirements"}
    ]
    assert api.get(DRAFT).json() == saved


def test_put_unchanged_metadata_changes_nothing(api: httpx.Client) -> None:
    before = wait_settled(api)
    metadata = api.get(DRAFT).json()
    response = api.put(DRAFT, json={"metadata": metadata, "name": before["name"]}, headers=OWNER)
    assert response.status_code == 200
    assert response.json()["status"] == "Valid"
    assert response.json()["modified"] == before["modified"]
    # schemaVersion defaults to the server's when absent.
    bare = {k: v for k, v in metadata.items() if k != "schemaVersion"}
    changed = api.put(DRAFT, json={"metadata": bare, "name": before["name"]}, headers=OWNER)
    assert changed.json()["status"] == "Pending"
    assert changed.json()["metadata"]["schemaVersion"] == SCHEMA_VERSION
    assert changed.json()["metadata"]["@context"].endswith(f"/{SCHEMA_VERSION}/context.json")


def test_put_invalid_metadata_validates_invalid(api: httpx.Client) -> None:
    metadata = api.get(DRAFT).json()
    for key in ("license", "description"):
        del metadata[key]
    metadata["contributor"] = "not a list"
    response = api.put(DRAFT, json={"metadata": metadata, "name": "Broken"}, headers=OWNER)
    assert response.status_code == 200 and response.json()["status"] == "Pending"
    settled = wait_settled(api)
    assert settled["status"] == "Invalid"
    assert settled["version_validation_errors"] == [
        {"field": "", "message": "'description' is a required property"},
        {"field": "", "message": "'license' is a required property"},
        {"field": "contributor", "message": "'not a list' is not of type 'array'"},
    ]
    metadata["schemaVersion"] = "9.9.9"
    api.put(DRAFT, json={"metadata": metadata, "name": "Broken"}, headers=OWNER)
    errors = wait_settled(api)["version_validation_errors"]
    assert len(errors) == 1 and errors[0]["field"] == ""
    assert errors[0]["message"].startswith("Metadata version 9.9.9 is not allowed. Allowed are: ")


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        ({"metadata": {}}, {"name": ["This field is required."]}),
        ({"metadata": {}, "name": ""}, {"name": ["This field may not be blank."]}),
        ({"metadata": {}, "name": "   "}, {"name": ["This field may not be blank."]}),
        ({"metadata": {}, "name": None}, {"name": ["This field may not be null."]}),
        ({"metadata": {}, "name": ["x"]}, {"name": ["Not a valid string."]}),
        (
            {"metadata": {}, "name": "x" * 301},
            {"name": ["Ensure this field has no more than 300 characters."]},
        ),
        (
            {"metadata": None, "name": "a\x00b"},
            {
                "metadata": ["This field may not be null."],
                "name": ["Null characters are not allowed."],
            },
        ),
        ([], {"non_field_errors": ["Invalid data. Expected a dictionary, but got list."]}),
        (None, {"non_field_errors": ["No data provided"]}),  # a JSON null
    ],
)
def test_put_draft_body_errors(api: httpx.Client, body: Any, errors: dict[str, Any]) -> None:
    before = info(api)
    headers = {**OWNER, "Content-Type": "application/json"}
    response = api.put(DRAFT, content=json.dumps(body).encode(), headers=headers)
    assert response.status_code == 400
    assert response.json() == errors
    after = info(api)
    assert (after["name"], after["modified"]) == (before["name"], before["modified"])


def test_put_draft_malformed_bodies(api: httpx.Client) -> None:
    headers = {**OWNER, "Content-Type": "application/json"}
    broken = api.put(DRAFT, content=b"{nope", headers=headers)
    assert broken.status_code == 400
    assert broken.json()["detail"].startswith("JSON parse error - ")
    text = api.put(DRAFT, content=b"name=x", headers={**OWNER, "Content-Type": "text/plain"})
    assert text.status_code == 415
    assert text.json() == {"detail": 'Unsupported media type "text/plain" in request.'}
    # The serializer lets a missing (or non-object) metadata through, then the view fails.
    for metadata in ({}, {"metadata": [1]}):
        crash = api.put(DRAFT, json={**metadata, "name": "x"}, headers=OWNER)
        assert crash.status_code == 500
        assert "<h1>Server Error (500)</h1>" in crash.text
    # A 300-character name is fine; the name is trimmed.
    long = api.put(
        DRAFT,
        json={"metadata": api.get(DRAFT).json(), "name": " " + "n" * 300 + " "},
        headers=OWNER,
    )
    assert long.status_code == 200 and long.json()["name"] == "n" * 300


def test_put_draft_permissions(api: httpx.Client, emulator: RunningEmulator) -> None:
    before = info(api)
    body = {"metadata": api.get(DRAFT).json(), "name": "Hijacked"}
    anonymous = api.put(DRAFT, json=body)
    assert anonymous.status_code == 401 and anonymous.json() == ANONYMOUS_401
    assert anonymous.headers["www-authenticate"] == 'Bearer realm="api"'
    bad_token = api.put(DRAFT, json=body, headers={"Authorization": "token nope"})
    assert bad_token.status_code == 401 and bad_token.json() == {"detail": "Invalid token."}
    # django-guardian's owner check answers a bare, empty 403.
    other = api.put(DRAFT, json=body, headers=OTHER)
    assert other.status_code == 403 and other.content == b""
    assert other.headers["content-type"].startswith("text/html")
    missing = api.put("dandisets/999999/versions/draft/", json=body, headers=OWNER)
    assert missing.status_code == 404 and missing.json() == NOT_FOUND
    published = f"dandisets/000001/versions/{RELEASE_VERSION}/"
    refused = api.put(published, json=body, headers=OWNER)
    assert refused.status_code == 405 and refused.json() == ONLY_DRAFTS
    assert api.put(published, json=body, headers=OTHER).status_code == 403  # owner check first
    no_version = api.put("dandisets/000004/versions/0.240101.1200/", json=body, headers=OWNER)
    assert no_version.status_code == 404 and no_version.json() == NOT_FOUND
    patch = api.patch(DRAFT, json=body, headers=OWNER)
    assert patch.status_code == 405 and patch.json() == {"detail": 'Method "PATCH" not allowed.'}
    assert api.patch(DRAFT, json=body).status_code == 401  # DRF authenticates first
    after = info(api)
    assert (after["name"], after["modified"]) == (before["name"], before["modified"])
    statuses = [(r["method"], r["status"]) for r in emulator.requests() if r["method"] != "GET"]
    assert statuses == [
        ("PUT", 401),
        ("PUT", 401),
        ("PUT", 403),
        ("PUT", 404),
        ("PUT", 405),
        ("PUT", 403),
        ("PUT", 404),
        ("PATCH", 405),
        ("PATCH", 401),
    ]


def test_version_delete_is_refused(api: httpx.Client) -> None:
    assert api.delete(DRAFT).status_code == 401
    draft = api.delete(DRAFT, headers=OWNER)
    assert draft.status_code == 403 and draft.json() == "Cannot delete draft versions"
    published = api.delete(f"dandisets/000001/versions/{RELEASE_VERSION}/", headers=OWNER)
    assert published.status_code == 403 and published.json() == "Cannot delete published versions"


def test_put_embargoed_draft_keeps_embargoed_access(api: httpx.Client) -> None:
    url = f"dandisets/{EMBARGOED_DANDISET}/versions/draft/"
    original = api.get(url, headers=OWNER).json()
    name = api.get(url + "info/", headers=OWNER).json()["name"]
    try:
        assert (
            api.put(url, json={"metadata": original, "name": "x"}, headers=OTHER).status_code == 403
        )
        saved = api.put(
            url, json={"metadata": {**original, "keywords": ["new"]}, "name": name}, headers=OWNER
        ).json()["metadata"]
        assert saved["keywords"] == ["new"]
        assert saved["access"][0]["status"] == "dandi:EmbargoedAccess"
        assert saved["access"][0]["embargoedUntil"] == original["access"][0]["embargoedUntil"]
    finally:
        api.put(url, json={"metadata": original, "name": name}, headers=OWNER)
    assert api.get(url, headers=OWNER).json()["keywords"] == original["keywords"]


# ---------------------------------------------------------------------------- asset create


def test_create_asset(api: httpx.Client, emulator: RunningEmulator, sample: SampleArchive) -> None:
    before = wait_settled(api)
    readme = sample.asset_by_path("000004", README)
    assert readme.blob is not None
    metadata = {
        "path": "derivatives/notes.txt",
        "encodingFormat": "text/plain",
        "schemaKey": "Asset",
        "keywords": ["notes"],
        "contentSize": 1,  # computed keys are dropped and recomputed
        "digest": {"dandi:dandi-etag": "x"},
        "identifier": "bogus",
    }
    response = api.post(
        ASSETS, json={"metadata": metadata, "blob_id": readme.blob.blob_id}, headers=OWNER
    )
    assert response.status_code == 200, response.text
    asset = response.json()
    assert list(asset) == [
        "asset_id",
        "blob",
        "zarr",
        "path",
        "size",
        "created",
        "modified",
        "metadata",
    ]
    new_id = asset["asset_id"]
    assert asset["blob"] == readme.blob.blob_id and asset["zarr"] is None
    assert asset["path"] == "derivatives/notes.txt" and asset["size"] == readme.size
    served = asset["metadata"]
    assert served["id"] == f"dandiasset:{new_id}" and served["identifier"] == new_id
    assert served["path"] == "derivatives/notes.txt" and served["contentSize"] == readme.size
    assert served["digest"] == {
        "dandi:dandi-etag": readme.blob.etag,
        "dandi:sha2-256": readme.blob.sha256,
    }
    assert served["contentUrl"][0].endswith(f"/api/assets/{new_id}/download/")
    assert served["schemaVersion"] == SCHEMA_VERSION and served["keywords"] == ["notes"]
    assert api.get(f"{ASSETS}{new_id}/").json() == served
    # Pending asset, pending draft; aggregates include it at once.
    now = info(api)
    assert now["status"] == "Pending"
    assert {
        "field": "",
        "message": "asset is currently being validated, please wait.",
        "path": "derivatives/notes.txt",
    } in now["asset_validation_errors"]
    assert now["asset_count"] == before["asset_count"] + 1
    assert now["size"] == before["size"] + readme.size
    root = paths_level(api)
    assert root["derivatives"]["aggregate_files"] == 1 and root["derivatives"]["asset"] is None
    leaf = paths_level(api, "derivatives/")["derivatives/notes.txt"]
    assert leaf["asset"]["asset_id"] == new_id and leaf["aggregate_size"] == readme.size
    assert "derivatives/notes.txt" in assets_by_path(api)
    download = api.get(f"{ASSETS}{new_id}/download/")
    assert download.status_code == 302
    assert httpx.get(download.headers["location"]).content == sample.asset_bytes(readme)
    settled = wait_settled(api)
    assert settled["status"] == "Valid" and settled["asset_validation_errors"] == []
    assert settled["metadata"]["assetsSummary"]["numberOfFiles"] == 3
    post = [r for r in emulator.requests() if r["method"] == "POST"]
    assert post[0]["body"] == {"metadata": metadata, "blob_id": readme.blob.blob_id}


def test_created_asset_without_encoding_format_is_invalid(api: httpx.Client) -> None:
    body = readme_body(api, path="odd.bin")
    del body["metadata"]["encodingFormat"]
    assert api.post(ASSETS, json=body, headers=OWNER).status_code == 200
    settled = wait_settled(api)
    assert settled["asset_validation_errors"] == [
        {"field": "", "message": "'encodingFormat' is a required property", "path": "odd.bin"}
    ]
    # Only valid assets count in the re-aggregated summary.
    assert settled["metadata"]["assetsSummary"]["numberOfFiles"] == 2


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("foo.txt", 200),
        ("/foo", 400),
        ("", 400),
        ("/", 400),
        ("./foo", 400),
        ("../foo", 400),
        ("foo/.", 400),
        ("foo/..", 400),
        ("foo/./bar", 400),
        ("foo/../bar", 400),
        ("foo//bar", 400),
        ("foo\0bar", 400),
        ("foo/", 400),
        ("foo./bar", 400),
        ("foo/.bar", 200),
        ("a b/c(1),d&e#f+g~h_i=j-k.nwb", 200),
        ("sub-01/ünïcode.txt", 400),
        ("a" * 200 + "!", 400),  # the server's own pattern would backtrack for ages here
    ],
)
def test_create_asset_path_validation(api: httpx.Client, path: str, status: int) -> None:
    response = api.post(ASSETS, json=readme_body(api, path=path), headers=OWNER)
    assert response.status_code == status, response.text
    if path == "":
        assert response.json() == {"metadata": ["No path specified in metadata."]}
    elif path.startswith("/"):
        assert response.json() == {"non_field_errors": ["Path must not begin with /"]}
    elif status == 400:
        assert response.json() == {"non_field_errors": ["Path improperly formatted"]}
    else:
        assert response.json()["path"] == path


def test_create_asset_errors(api: httpx.Client, sample: SampleArchive) -> None:
    before = info(api)
    body = readme_body(api, path="new.txt")
    blob_id = body["blob_id"]
    zarr = sample.asset_by_path("000003", LARGE_ZARR_PATH).zarr
    assert zarr is not None

    def post(payload: Any, url: str = ASSETS, headers: dict[str, str] = OWNER) -> httpx.Response:
        return api.post(url, json=payload, headers=headers)

    exactly_one = {"blob_id": ["Exactly one of blob_id or zarr_id must be specified."]}
    assert post({"metadata": body["metadata"]}).json() == exactly_one
    both = post({**body, "zarr_id": zarr.zarr_id})
    assert both.status_code == 400 and both.json() == exactly_one
    assert post({"blob_id": blob_id}).json() == {"metadata": ["This field is required."]}
    assert post({"metadata": None, "blob_id": "x"}).json() == {
        "metadata": ["This field may not be null."],
        "blob_id": ["Must be a valid UUID."],
    }
    no_path = post({"metadata": {"encodingFormat": "text/plain"}, "blob_id": blob_id})
    assert no_path.status_code == 400
    assert no_path.json() == {"metadata": ["No path specified in metadata."]}
    unknown = post({**body, "blob_id": "00000000-0000-4000-8000-000000000000"})
    assert unknown.status_code == 404 and unknown.json() == NOT_FOUND
    # A UUID in another spelling is the same blob (DRF's UUIDField).
    upper = post(
        {
            **body,
            "metadata": {**body["metadata"], "path": "upper.txt"},
            "blob_id": blob_id.upper().replace("-", ""),
        }
    )
    assert upper.status_code == 200 and upper.json()["blob"] == blob_id
    exists = post({**body, "metadata": {**body["metadata"], "path": README}})
    assert exists.status_code == 409 and exists.json() == PATH_EXISTS
    folder = post({**body, "metadata": {**body["metadata"], "path": "sub-01"}})
    assert folder.status_code == 409
    assert (
        folder.json() == f"Path of new asset \"sub-01\" conflicts with existing assets: ['{PROBE}']"
    )
    under_file = post({**body, "metadata": {**body["metadata"], "path": "README.txt/inner"}})
    assert under_file.status_code == 409
    assert under_file.json() == (
        "Path of new asset \"README.txt/inner\" conflicts with existing assets: ['README.txt']"
    )
    other_zarr = post({"metadata": {"path": "x.zarr"}, "zarr_id": zarr.zarr_id})
    assert other_zarr.status_code == 400
    assert other_zarr.json() == "The zarr archive belongs to a different dandiset"
    too_long = post({**body, "metadata": {**body["metadata"], "path": "a" * 513}})
    assert too_long.status_code == 400
    assert too_long.json() == "Ensure this value has at most 512 characters (it has 513)."
    published = f"dandisets/000001/versions/{RELEASE_VERSION}/assets/"
    refused = post({**body}, url=published)
    assert refused.status_code == 405 and refused.json() == ONLY_DRAFTS
    assert post(body, headers={}).json() == ANONYMOUS_401
    forbidden = post(body, headers=OTHER)
    assert forbidden.status_code == 403 and forbidden.content == b""
    assert post(body, url="dandisets/999999/versions/draft/assets/").status_code == 404
    after = info(api)
    assert after["asset_count"] == before["asset_count"] + 1  # only "upper.txt" went in


def test_zarr_asset_in_its_own_dandiset(api: httpx.Client, sample: SampleArchive) -> None:
    zarr = sample.asset_by_path("000003", LARGE_ZARR_PATH).zarr
    assert zarr is not None
    url = "dandisets/000003/versions/draft/assets/"
    before = info(api, "000003")
    created = api.post(
        url, json={"metadata": {"path": "copy/of.ome.zarr"}, "zarr_id": zarr.zarr_id}, headers=OWNER
    )
    assert created.status_code == 200, created.text
    asset = created.json()
    try:
        assert asset["zarr"] == zarr.zarr_id and asset["blob"] is None
        assert asset["metadata"]["encodingFormat"] == "application/x-zarr"
        assert asset["metadata"]["digest"] == {"dandi:dandi-zarr-checksum": zarr.checksum}
        assert asset["size"] == zarr.size
        assert api.get(f"{url}{asset['asset_id']}/download/").status_code == 400
        zarrs = api.get(url, params={"zarr": "true"}).json()["results"]
        assert "copy/of.ome.zarr" in [a["path"] for a in zarrs]
        assert info(api, "000003")["size"] == before["size"] + zarr.size
    finally:
        deleted = api.delete(f"{url}{asset['asset_id']}/", headers=OWNER)
        assert deleted.status_code == 204
    assert info(api, "000003")["asset_count"] == before["asset_count"]


# ---------------------------------------------------------------------------- asset update


def test_update_asset_metadata_makes_a_new_asset(api: httpx.Client, sample: SampleArchive) -> None:
    before = wait_settled(api)
    old_id = asset_id(api, README)
    old = api.get(f"{ASSETS}{old_id}/").json()
    body = readme_body(api, keywords=["edited"])
    response = api.put(f"{ASSETS}{old_id}/", json=body, headers=OWNER)
    assert response.status_code == 200, response.text
    new = response.json()
    assert new["asset_id"] != old_id
    assert new["path"] == README and new["blob"] == body["blob_id"]
    assert new["metadata"]["keywords"] == ["edited"]
    assert new["metadata"]["identifier"] == new["asset_id"]
    # The old asset is detached from the draft, not deleted.
    assert api.get(f"{ASSETS}{old_id}/").status_code == 404
    assert api.get(f"assets/{old_id}/").json() == old
    assert api.get(f"assets/{old_id}/info/").json()["asset_id"] == old_id
    assert api.get(f"assets/{old_id}/download/").status_code == 302
    # The draft sees the new one everywhere.
    assert asset_id(api, README) == new["asset_id"]
    assert paths_level(api)[README]["asset"]["asset_id"] == new["asset_id"]
    now = info(api)
    assert now["status"] == "Pending"
    assert (now["asset_count"], now["size"]) == (before["asset_count"], before["size"])
    assert parse_time(now["modified"]) > parse_time(before["modified"])
    download = api.get(f"assets/{new['asset_id']}/download/")
    readme = sample.asset_by_path("000004", README)
    assert httpx.get(download.headers["location"]).content == sample.asset_bytes(readme)


def test_update_asset_without_change_keeps_the_asset(api: httpx.Client) -> None:
    wait_settled(api)
    old_id = asset_id(api, README)
    before = info(api)
    same = api.put(f"{ASSETS}{old_id}/", json=readme_body(api), headers=OWNER)
    assert same.status_code == 200 and same.json()["asset_id"] == old_id
    assert info(api)["modified"] == before["modified"]
    # "@context" is no computed key: sending the served document back stores it once, which
    # is a change (the real server does the same); a second identical PUT is then a no-op.
    served = api.get(f"{ASSETS}{old_id}/").json()
    first = api.put(
        f"{ASSETS}{old_id}/",
        json={"metadata": served, "blob_id": same.json()["blob"]},
        headers=OWNER,
    )
    assert first.json()["asset_id"] != old_id
    again = api.put(
        f"{ASSETS}{first.json()['asset_id']}/",
        json={"metadata": first.json()["metadata"], "blob_id": same.json()["blob"]},
        headers=OWNER,
    )
    assert again.json()["asset_id"] == first.json()["asset_id"]


def test_rename_asset_by_path(api: httpx.Client) -> None:
    before = info(api)
    old_id = asset_id(api, PROBE)
    probe = api.get(f"{ASSETS}{old_id}/info/").json()
    body = {
        "metadata": {**probe["metadata"], "path": "sub-02/probe.json"},
        "blob_id": probe["blob"],
    }
    renamed = api.put(f"{ASSETS}{old_id}/", json=body, headers=OWNER)
    assert renamed.status_code == 200, renamed.text
    new = renamed.json()
    assert new["asset_id"] != old_id and new["path"] == "sub-02/probe.json"
    assert new["metadata"]["path"] == "sub-02/probe.json"
    assert set(assets_by_path(api)) == {README, "sub-02/probe.json"}
    root = paths_level(api)
    assert set(root) == {README, "sub-02"}  # the emptied folder is gone
    assert root["sub-02"]["aggregate_size"] == probe["size"]
    assert api.get(ASSETS + "paths/", params={"path_prefix": "sub-01"}).json() == {
        "detail": "Specified path not found."
    }
    now = info(api)
    assert (now["asset_count"], now["size"]) == (before["asset_count"], before["size"])
    # Onto an existing asset, or onto a folder: 409.
    clash = api.put(
        f"{ASSETS}{new['asset_id']}/",
        json={**body, "metadata": {**body["metadata"], "path": README}},
        headers=OWNER,
    )
    assert clash.status_code == 409 and clash.json() == PATH_EXISTS
    nested = api.put(
        f"{ASSETS}{new['asset_id']}/",
        json={**body, "metadata": {**body["metadata"], "path": "sub-02"}},
        headers=OWNER,
    )
    assert nested.status_code == 200 and nested.json()["path"] == "sub-02"  # its own folder left
    readme_id = asset_id(api, README)
    onto_file_folder = api.put(
        f"{ASSETS}{readme_id}/",
        json={**readme_body(api), "metadata": {**readme_body(api)["metadata"], "path": "sub-02/x"}},
        headers=OWNER,
    )
    assert onto_file_folder.status_code == 409
    assert asset_id(api, README) == readme_id


def test_update_asset_blob(api: httpx.Client, sample: SampleArchive) -> None:
    before = info(api)
    probe = sample.asset_by_path("000004", PROBE)
    readme = sample.asset_by_path("000004", README)
    assert probe.blob is not None
    body = {**readme_body(api), "blob_id": probe.blob.blob_id}
    changed = api.put(f"{ASSETS}{asset_id(api, README)}/", json=body, headers=OWNER)
    assert changed.status_code == 200
    assert changed.json()["blob"] == probe.blob.blob_id and changed.json()["size"] == probe.size
    assert info(api)["size"] == before["size"] - readme.size + probe.size
    assert paths_level(api)[README]["aggregate_size"] == probe.size


def test_update_asset_errors(api: httpx.Client, sample: SampleArchive) -> None:
    readme_id = asset_id(api, README)
    body = readme_body(api, keywords=["x"])
    url = f"{ASSETS}{readme_id}/"
    assert api.put(url, json=body).json() == ANONYMOUS_401
    other = api.put(url, json=body, headers=OTHER)
    assert other.status_code == 403 and other.content == b""
    published_asset = sample.asset_by_path("000001", NWB_PATH, RELEASE_VERSION)
    published = f"dandisets/000001/versions/{RELEASE_VERSION}/assets/{published_asset.asset_id}/"
    # DraftDandisetNotModifiableError comes before the body is even read.
    refused = api.put(published, json={}, headers=OWNER)
    assert refused.status_code == 405 and refused.json() == ONLY_DRAFTS
    foreign = api.put(f"{ASSETS}{published_asset.asset_id}/", json=body, headers=OWNER)
    assert foreign.status_code == 404 and foreign.json() == NOT_FOUND
    unknown_blob = api.put(
        url, json={**body, "blob_id": "00000000-0000-4000-8000-000000000000"}, headers=OWNER
    )
    assert unknown_blob.status_code == 404
    bad = api.put(url, json={"metadata": body["metadata"]}, headers=OWNER)
    assert bad.json() == {"blob_id": ["Exactly one of blob_id or zarr_id must be specified."]}
    bad_path = api.put(
        url, json={**body, "metadata": {**body["metadata"], "path": "a//b"}}, headers=OWNER
    )
    assert bad_path.json() == {"non_field_errors": ["Path improperly formatted"]}
    assert asset_id(api, README) == readme_id


def test_update_recomputes_computed_keys(api: httpx.Client) -> None:
    body = readme_body(api, keywords=["k"])
    body["metadata"].update(
        {
            "id": "dandiasset:bogus",
            "identifier": "bogus",
            "contentUrl": ["https://example.org/x"],
            "contentSize": 3,
            "digest": {"dandi:sha2-256": "0"},
            "access": [{"status": "dandi:EmbargoedAccess"}],
            "datePublished": "2000-01-01",
            "publishedBy": "me",
        }
    )
    new = api.put(f"{ASSETS}{asset_id(api, README)}/", json=body, headers=OWNER).json()
    served = new["metadata"]
    assert served["identifier"] == new["asset_id"]
    assert served["id"] == f"dandiasset:{new['asset_id']}"
    assert served["contentSize"] == new["size"]
    assert served["access"] == [{"schemaKey": "AccessRequirements", "status": "dandi:OpenAccess"}]
    assert "datePublished" not in served and "publishedBy" not in served
    assert served["contentUrl"][0].endswith(f"/assets/{new['asset_id']}/download/")


# ---------------------------------------------------------------------------- asset delete


def test_delete_asset(api: httpx.Client, emulator: RunningEmulator) -> None:
    before = wait_settled(api)
    probe_id = asset_id(api, PROBE)
    url = f"{ASSETS}{probe_id}/"
    assert api.delete(url).json() == ANONYMOUS_401
    forbidden = api.delete(url, headers=OTHER)
    assert forbidden.status_code == 403 and forbidden.content == b""
    deleted = api.delete(url, headers=OWNER)
    assert deleted.status_code == 204 and deleted.content == b""
    assert set(assets_by_path(api)) == {README}
    assert set(paths_level(api)) == {README}
    now = info(api)
    assert now["status"] == "Pending"
    assert now["asset_count"] == before["asset_count"] - 1
    assert now["size"] == before["size"] - api.get(f"assets/{probe_id}/info/").json()["size"]
    # Detached, still there by id.
    assert api.get(url).status_code == 404
    assert api.get(f"assets/{probe_id}/").status_code == 200
    assert api.delete(url, headers=OWNER).status_code == 404
    settled = wait_settled(api)
    assert settled["metadata"]["assetsSummary"]["numberOfFiles"] == 1
    deletes = [r for r in emulator.requests() if r["method"] == "DELETE"]
    assert [r["status"] for r in deletes] == [401, 403, 204, 404]
    assert all(r["body"] is None for r in deletes)


def test_delete_published_asset_is_refused(api: httpx.Client, sample: SampleArchive) -> None:
    published_asset = sample.asset_by_path("000001", NWB_PATH, RELEASE_VERSION)
    url = f"dandisets/000001/versions/{RELEASE_VERSION}/assets/{published_asset.asset_id}/"
    refused = api.delete(url, headers=OWNER)
    assert refused.status_code == 405 and refused.json() == ONLY_DRAFTS
    assert api.get(url).status_code == 200


# ---------------------------------------------------------------------------- log and faults


def test_request_log_has_write_bodies(api: httpx.Client, emulator: RunningEmulator) -> None:
    api.get(DRAFT)
    api.put(DRAFT, content=b"not json", headers={**OWNER, "Content-Type": "application/json"})
    api.put(DRAFT, json={"name": "x", "metadata": {"a": [1, 2]}}, headers={})
    # A scripted refusal (the shared control route) is logged with its body too.
    refusal = {"method": "PUT", "path_prefix": "/api/" + DRAFT, "status": 409, "body": "no"}
    httpx.post(f"{emulator.origin}/__emulator__/refusals", json=refusal).raise_for_status()
    refused = api.put(DRAFT, json={"name": "y", "metadata": {}}, headers=OWNER)
    assert refused.status_code == 409
    log = emulator.requests()
    assert [r["method"] for r in log] == ["GET", "PUT", "PUT", "PUT"]
    assert "body" not in log[0]
    assert log[1]["body"] is None and log[1]["status"] == 400
    assert log[2]["body"] == {"name": "x", "metadata": {"a": [1, 2]}} and log[2]["status"] == 401
    assert log[3]["body"] == {"name": "y", "metadata": {}} and log[3]["status"] == 409


def test_fault_knob_applies_to_writes(api: httpx.Client, emulator: RunningEmulator) -> None:
    before = info(api)
    # A seed whose first draw (at rate 1) is an error status, not a cut connection.
    seed = next(
        s
        for s in range(1000)
        if (r := random.Random(s), r.random(), r.choice(FAULT_KINDS))[2] not in ("cut", "429")
    )
    body = {"metadata": api.get(DRAFT).json() | {"description": "lost"}, "name": "lost"}
    emulator.set_knobs(fault_rate=1, seed=seed)
    response = api.put(DRAFT, json=body, headers=OWNER)
    emulator.set_knobs()
    assert response.status_code in (500, 502, 503)
    assert "injected" in response.json()["detail"]
    record = emulator.requests()[-1]
    assert record["method"] == "PUT" and record["fault"] == str(response.status_code)
    assert record["body"] == body
    after = info(api)
    assert (after["name"], after["modified"]) == (before["name"], before["modified"])

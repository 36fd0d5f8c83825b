"""The DANDI emulator over real HTTP: routes, pagination, auth, S3 semantics, knobs, log.

Expectations come from the real server's behaviour (dandi/dandi-archive's ``dandiapi``) and from
:class:`SampleArchive`, the ground truth of what the emulator serves.
"""

from __future__ import annotations

import hashlib
import json
import re
import signal
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit, urlunsplit

import httpx
import numpy as np
import pytest

from neurofs.io.digests import dandi_etag
from neurofs_emulators.dandi import generate
from neurofs_emulators.dandi.archive import GENERATED_BLOCK, generated_block
from neurofs_emulators.dandi.sample import (
    BIG_BLOB_KEY,
    BIG_BLOB_PATH,
    BIG_BLOB_SIZE,
    DRAFT_ONLY_PATH,
    EMBARGOED_BLOB_PATH,
    EMBARGOED_ZARR_PATH,
    LARGE_ZARR_PATH,
    NWB_PATH,
    OTHER_TOKEN,
    OWNER_TOKEN,
    RELEASE_VERSION,
    SampleArchive,
)
from neurofs_emulators.launch import EmulatorStartError, RunningEmulator, start_emulator

OWNER = {"Authorization": f"token {OWNER_TOKEN}"}
OTHER = {"Authorization": f"token {OTHER_TOKEN}"}
DRAFT_ASSETS = "dandisets/000001/versions/draft/assets/"
LARGE_ASSETS = "dandisets/000003/versions/draft/assets/"


def port_of(url: str) -> int | None:
    return urlsplit(url).port


def follow(api: httpx.Client, path: str, **kwargs: object) -> httpx.Response:
    """GET an API route that answers 302 and return the redirect target's response."""
    headers = kwargs.pop("headers", None)
    redirect = api.get(path, headers=headers)  # type: ignore[arg-type]
    assert redirect.status_code == 302, redirect.text
    return httpx.get(redirect.headers["location"], timeout=60, **kwargs)  # type: ignore[arg-type]


def download_url(api: httpx.Client, asset_id: str, headers: dict[str, str] | None = None) -> str:
    response = api.get(f"assets/{asset_id}/download/", headers=headers)
    assert response.status_code == 302, response.text
    return response.headers["location"]


# ---------------------------------------------------------------------------- basics


def test_ready_line_gives_api_and_separate_blob_origin(dandi: RunningEmulator) -> None:
    assert dandi.api_url.endswith("/api")
    assert len(dandi.urls) == 2
    api_parts, blob_parts = urlsplit(dandi.urls[0]), urlsplit(dandi.urls[1])
    assert api_parts.hostname == blob_parts.hostname
    assert api_parts.port != blob_parts.port


def test_info(api: httpx.Client, dandi: RunningEmulator) -> None:
    info = api.get("info/").json()
    assert info["services"]["api"]["url"] == dandi.api_url
    assert info["schema_version"] in info["allowed_schema_versions"]
    assert info["instance_config"]["instance_name"] == "DANDI"
    assert "cli-minimal-version" in info and info["cli-bad-versions"] == []


def test_missing_trailing_slash_redirects_permanently(api: httpx.Client) -> None:
    response = api.get("dandisets", params={"page_size": 1})
    assert response.status_code == 301
    assert response.headers["location"] == "/api/dandisets/?page_size=1"
    nested = api.get("dandisets/000001/versions/draft/info")
    assert nested.status_code == 301
    assert nested.headers["location"] == "/api/dandisets/000001/versions/draft/info/"
    assert api.get("dandisets", follow_redirects=True).status_code == 200


def test_unrouted_urls_are_django_404s(api: httpx.Client) -> None:
    for path in ("nothing/", "dandisets/1/", "dandisets/000001/versions/v1/", "assets/not-a-uuid/"):
        response = api.get(path)
        assert response.status_code == 404, path
        assert response.headers["content-type"].startswith("text/html")
    # Well-formed ids that do not exist: DRF's JSON 404.
    missing = api.get("dandisets/999999/")
    assert missing.status_code == 404
    assert missing.json() == {"detail": "Not found."}
    assert api.get("assets/00000000-0000-4000-8000-000000000000/").json() == {
        "detail": "Not found."
    }


def test_object_store_and_api_are_separate_origins(dandi: RunningEmulator) -> None:
    blob_origin = dandi.urls[1]
    assert httpx.get(f"{blob_origin}/api/info/").status_code == 404
    assert httpx.get(f"{dandi.origin}/dandiarchive/blobs/abc").status_code == 404


# ---------------------------------------------------------------------------- dandisets


def test_dandiset_list_hides_embargoed(api: httpx.Client) -> None:
    page = api.get("dandisets/").json()
    assert page["count"] == 3
    assert page["next"] is None and page["previous"] is None
    assert [d["identifier"] for d in page["results"]] == ["000001", "000003", "000004"]
    first = page["results"][0]
    assert set(first) == {
        "identifier",
        "created",
        "modified",
        "contact_person",
        "embargo_status",
        "star_count",
        "is_starred",
        "most_recent_published_version",
        "draft_version",
    }
    assert first["most_recent_published_version"]["version"] == RELEASE_VERSION
    assert set(first["draft_version"]) == {
        "version",
        "name",
        "asset_count",
        "size",
        "status",
        "created",
        "modified",
    }


def test_dandiset_list_embargoed_param(api: httpx.Client) -> None:
    anonymous = api.get("dandisets/", params={"embargoed": "true"})
    assert anonymous.status_code == 401
    assert isinstance(anonymous.json(), str)
    owner = api.get("dandisets/", params={"embargoed": "true"}, headers=OWNER).json()
    assert [d["identifier"] for d in owner["results"]] == ["000001", "000002", "000003", "000004"]
    assert owner["results"][1]["embargo_status"] == "EMBARGOED"
    other = api.get("dandisets/", params={"embargoed": "true"}, headers=OTHER).json()
    assert "000002" not in [d["identifier"] for d in other["results"]]


def test_dandiset_list_filters_and_ordering(api: httpx.Client) -> None:
    def ids(**params: str) -> list[str]:
        response = api.get("dandisets/", params=params, headers=OWNER)
        assert response.status_code == 200, response.text
        return [d["identifier"] for d in response.json()["results"]]

    assert ids(draft="false") == ["000001"]
    assert ids(user="me") == ["000001", "000003", "000004"]
    assert ids(user="me", embargoed="true") == ["000001", "000002", "000003", "000004"]
    assert ids(ordering="-id") == ["000004", "000003", "000001"]
    assert ids(ordering="size") == ["000004", "000003", "000001"]
    assert ids(ordering="bogus") == ["000001", "000003", "000004"]  # ignored, like DRF
    assert ids(search="foraging") == ["000001"]
    assert ids(search="fifty MICE") == ["000003"]
    assert ids(search="approach:behavioral") == ["000001", "000003"]
    assert ids(search='technique:"spike sorting"') == ["000001"]
    bad = api.get("dandisets/", params={"search": "specis:mouse"})
    assert bad.status_code == 400
    assert "Did you mean" in bad.json()["search"][0]
    assert api.get("dandisets/", params={"draft": "maybe"}).json() == {
        "draft": ["Must be a valid boolean."]
    }


def test_dandiset_pagination_links(api: httpx.Client, dandi: RunningEmulator) -> None:
    page1 = api.get("dandisets/", params={"page_size": 2}).json()
    assert page1["count"] == 3
    assert page1["next"] == f"{dandi.api_url}/dandisets/?page=2&page_size=2"
    page2 = httpx.get(page1["next"]).json()
    assert page2["count"] == 3  # DandiPagination counts on every page
    assert page2["previous"] == f"{dandi.api_url}/dandisets/?page_size=2"
    assert [d["identifier"] for d in page2["results"]] == ["000004"]
    assert api.get("dandisets/", params={"page": 3, "page_size": 2}).json() == {
        "detail": "Invalid page."
    }
    assert api.get("dandisets/", params={"page": "last", "page_size": 2}).json()["results"]


def test_dandiset_detail(api: httpx.Client, sample: SampleArchive) -> None:
    body = api.get("dandisets/000001/").json()
    truth = sample.dandisets["000001"]
    assert body["identifier"] == "000001"
    assert body["contact_person"] == "Doe, Jane"
    assert body["draft_version"]["asset_count"] == len(truth.draft.assets)
    assert body["draft_version"]["size"] == sum(a.size for a in truth.draft.assets.values())
    assert body["draft_version"]["active_uploads"] == 0
    assert body["most_recent_published_version"]["version"] == RELEASE_VERSION
    assert body["most_recent_published_version"]["asset_count"] == 2
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", body["created"])
    assert api.get("dandisets/000003/").json()["most_recent_published_version"] is None


# ---------------------------------------------------------------------------- versions


def test_versions(api: httpx.Client, dandi: RunningEmulator) -> None:
    listing = api.get("dandisets/000001/versions/").json()
    assert [v["version"] for v in listing["results"]] == ["draft", RELEASE_VERSION]
    assert listing["results"][0]["dandiset"]["identifier"] == "000001"
    newest_first = api.get("dandisets/000001/versions/", params={"order": "-created"}).json()
    assert [v["version"] for v in newest_first["results"]] == [RELEASE_VERSION, "draft"]
    assert api.get("dandisets/000001/versions/", params={"order": "name"}).status_code == 400

    metadata = api.get(f"dandisets/000001/versions/{RELEASE_VERSION}/").json()
    assert metadata["id"] == f"DANDI:000001/{RELEASE_VERSION}"
    assert metadata["schemaKey"] == "Dandiset"
    assert "datePublished" in metadata and "publishedBy" in metadata
    assert metadata["assetsSummary"]["numberOfFiles"] == 2
    draft_md = api.get("dandisets/000001/versions/draft/").json()
    assert draft_md["manifestLocation"] == [
        f"{dandi.api_url}/dandisets/000001/versions/draft/assets/"
    ]
    assert "datePublished" not in draft_md

    info = api.get("dandisets/000001/versions/draft/info/").json()
    assert info["version"] == "draft" and info["asset_count"] == 3
    assert info["asset_validation_errors"] == [] and info["version_validation_errors"] == []
    assert info["metadata"]["name"] == info["name"]
    assert info["contact_person"] == "Doe, Jane"
    assert api.get("dandisets/000001/versions/0.999999.9999/").json() == {"detail": "Not found."}


# ---------------------------------------------------------------------------- assets


def test_asset_list_default_order_and_fields(api: httpx.Client, sample: SampleArchive) -> None:
    page = api.get(DRAFT_ASSETS).json()
    assert page["count"] == 3
    assert [a["path"] for a in page["results"]] == [NWB_PATH, BIG_BLOB_PATH, DRAFT_ONLY_PATH]
    first = page["results"][0]
    truth = sample.asset_by_path("000001", NWB_PATH)
    assert first == {
        "asset_id": truth.asset_id,
        "blob": truth.blob.blob_id if truth.blob else None,
        "zarr": None,
        "path": NWB_PATH,
        "size": truth.size,
        "created": first["created"],
        "modified": first["modified"],
    }
    by_path = api.get(DRAFT_ASSETS, params={"order": "-path"}).json()["results"]
    assert [a["path"] for a in by_path] == sorted((a["path"] for a in by_path), reverse=True)
    assert api.get(DRAFT_ASSETS, params={"order": "size"}).status_code == 400


def test_published_and_draft_share_unchanged_assets(api: httpx.Client) -> None:
    draft = {a["path"]: a["asset_id"] for a in api.get(DRAFT_ASSETS).json()["results"]}
    release = api.get(f"dandisets/000001/versions/{RELEASE_VERSION}/assets/").json()["results"]
    assert {a["path"]: a["asset_id"] for a in release} == {
        p: i for p, i in draft.items() if p != DRAFT_ONLY_PATH
    }
    only_draft = draft[DRAFT_ONLY_PATH]
    nested = f"dandisets/000001/versions/{RELEASE_VERSION}/assets/{only_draft}/"
    assert api.get(nested).status_code == 404
    assert api.get(f"assets/{only_draft}/").status_code == 200


def test_asset_list_pagination_cap_and_lazy_count(api: httpx.Client, sample: SampleArchive) -> None:
    total = len(sample.asset_list("000003"))
    assert total > 2000
    page1 = api.get(LARGE_ASSETS, params={"page_size": 5000}).json()
    assert page1["count"] == total
    assert len(page1["results"]) == 1000  # page_size silently capped
    assert parse_qs(urlsplit(page1["next"]).query) == {"page": ["2"], "page_size": ["5000"]}
    page2 = httpx.get(page1["next"]).json()
    assert page2["count"] is None  # the asset list counts on page 1 only
    assert len(page2["results"]) == 1000
    page3 = httpx.get(page2["next"]).json()
    assert len(page3["results"]) == total - 2000 and page3["next"] is None
    seen = [a["asset_id"] for p in (page1, page2, page3) for a in p["results"]]
    assert sorted(seen) == sorted(a.asset_id for a in sample.asset_list("000003"))
    beyond = api.get(LARGE_ASSETS, params={"page": 99}).json()
    assert beyond == {"count": None, "next": None, "previous": beyond["previous"], "results": []}
    assert api.get(LARGE_ASSETS, params={"page": 0}).status_code == 404
    default = api.get(LARGE_ASSETS, params={"page_size": "junk"}).json()
    assert len(default["results"]) == 100


def test_asset_path_filter(api: httpx.Client, sample: SampleArchive) -> None:
    def paths(**params: str) -> list[str]:
        response = api.get(LARGE_ASSETS, params={"page_size": 1000, **params})
        assert response.status_code == 200, response.text
        return [a["path"] for a in response.json()["results"]]

    prefix = "sub-007/ses-02/"
    expected = [a.path for a in sample.asset_list("000003") if a.path.startswith(prefix)]
    assert paths(path=prefix) == expected and len(expected) == 10
    assert paths(path=prefix.upper()) == expected  # case-insensitive prefix
    assert paths(path="README") == ["README"]  # an exact match wins over the prefix
    assert paths(path="readme") == ["README", "README.txt"]  # not exact: prefix match
    assert paths(path="nothing-here") == []


def test_asset_glob_and_zarr_filters(api: httpx.Client, sample: SampleArchive) -> None:
    def paths(**params: str) -> list[str]:
        return [
            a["path"]
            for a in api.get(LARGE_ASSETS, params={"page_size": 1000, **params}).json()["results"]
        ]

    assert paths(glob="*.zarr") == [LARGE_ZARR_PATH]
    assert paths(zarr="true") == [LARGE_ZARR_PATH]
    across = paths(glob="sub-00*run-3*JSON")  # `*` matches across "/", case-insensitively
    expected = [
        a.path for a in sample.asset_list("000003") if re.fullmatch(r"sub-00.*run-3.*json", a.path)
    ]
    assert across == expected and len(across) == 9 * 4 * 2
    assert paths(glob="") == paths()  # empty: as if absent (DRF's reading of query values)
    assert api.get(LARGE_ASSETS, params={"glob": "  "}).json() == {
        "glob": ["This field may not be blank."]
    }


def test_asset_list_metadata(
    api: httpx.Client, sample: SampleArchive, dandi: RunningEmulator
) -> None:
    results = api.get(DRAFT_ASSETS, params={"metadata": "true"}).json()["results"]
    by_path = {a["path"]: a for a in results}
    nwb = by_path[NWB_PATH]["metadata"]
    truth = sample.asset_by_path("000001", NWB_PATH)
    assert truth.blob is not None
    assert nwb["identifier"] == truth.asset_id
    assert nwb["id"] == f"dandiasset:{truth.asset_id}"
    assert nwb["contentSize"] == truth.size
    assert nwb["digest"] == {
        "dandi:dandi-etag": truth.blob.etag,
        "dandi:sha2-256": truth.blob.sha256,
    }
    assert nwb["contentUrl"][0] == f"{dandi.api_url}/assets/{truth.asset_id}/download/"
    assert nwb["contentUrl"][1] == f"{dandi.urls[1]}/dandiarchive/{truth.blob.s3_key}"
    assert nwb["encodingFormat"] == "application/x-nwb"
    assert nwb["access"] == [{"schemaKey": "AccessRequirements", "status": "dandi:OpenAccess"}]
    assert "metadata" not in api.get(DRAFT_ASSETS).json()["results"][0]


def test_asset_detail_and_info(api: httpx.Client, sample: SampleArchive) -> None:
    truth = sample.asset_by_path("000001", NWB_PATH)
    nested = api.get(f"{DRAFT_ASSETS}{truth.asset_id}/").json()
    top = api.get(f"assets/{truth.asset_id}/").json()
    assert nested == top
    assert nested["path"] == NWB_PATH and nested["schemaKey"] == "Asset"
    info = api.get(f"assets/{truth.asset_id}/info/").json()
    assert info["asset_id"] == truth.asset_id and info["metadata"] == top
    nested_info = api.get(f"{DRAFT_ASSETS}{truth.asset_id}/info/").json()
    assert nested_info == info
    zarr_md = api.get(f"assets/{sample.asset_by_path('000003', LARGE_ZARR_PATH).asset_id}/").json()
    assert zarr_md["encodingFormat"] == "application/x-zarr"
    assert set(zarr_md["digest"]) == {"dandi:dandi-zarr-checksum"}


def test_asset_paths(api: httpx.Client, sample: SampleArchive) -> None:
    paths_url = LARGE_ASSETS + "paths/"
    root = api.get(paths_url).json()
    names = [r["path"] for r in root["results"]]
    assert names[:4] == ["README", "README.txt", "dataset_description.json", "participants.tsv"]
    assert names[4:] == [f"sub-{i:03d}" for i in range(1, 51)]
    assert root["count"] == 54
    large = sample.dandisets["000003"].draft
    sub7 = next(r for r in root["results"] if r["path"] == "sub-007")
    in_sub7 = [a for a in large.assets.values() if a.path.startswith("sub-007/")]
    assert sub7["aggregate_files"] == len(in_sub7)
    assert sub7["aggregate_size"] == sum(a.size for a in in_sub7)
    assert sub7["asset"] is None and sub7["version"] == large.pk
    readme = root["results"][0]
    assert readme["asset"]["asset_id"] == sample.asset_by_path("000003", "README").asset_id
    assert readme["aggregate_files"] == 1

    level = api.get(paths_url, params={"path_prefix": "sub-001/ses-01/"}).json()
    assert [r["path"] for r in level["results"]] == [
        "sub-001/ses-01/behavior",
        "sub-001/ses-01/ecephys",
        "sub-001/ses-01/micr",
    ]
    same = api.get(paths_url, params={"path_prefix": "sub-001/ses-01"}).json()
    assert same == level
    micr = api.get(paths_url, params={"path_prefix": "sub-001/ses-01/micr"}).json()["results"]
    zarr = sample.asset_by_path("000003", LARGE_ZARR_PATH)
    assert micr[0]["asset"]["url"].endswith(f"/dandiarchive/zarr/{zarr.zarr.zarr_id}/")
    assert micr[0]["aggregate_size"] == zarr.size

    leaf = api.get(paths_url, params={"path_prefix": "README"}).json()
    assert leaf["results"] == [] and leaf["count"] == 0
    missing = api.get(paths_url, params={"path_prefix": "sub-999"})
    assert missing.status_code == 404
    assert missing.json() == {"detail": "Specified path not found."}
    # DRF reads an empty query value of an optional field as absent: the root, as the real
    # server answers; a value of only spaces is "blank".
    assert api.get(paths_url, params={"path_prefix": ""}).json() == root
    assert api.get(paths_url, params={"path_prefix": " "}).json() == {
        "path_prefix": ["This field may not be blank."]
    }
    paged = api.get(paths_url, params={"page_size": 10, "page": 2}).json()
    assert paged["count"] == 54 and len(paged["results"]) == 10


# ---------------------------------------------------------------------------- downloads


def test_download_redirects_to_presigned_blob(
    api: httpx.Client, dandi: RunningEmulator, sample: SampleArchive
) -> None:
    truth = sample.asset_by_path("000001", DRAFT_ONLY_PATH)
    assert truth.blob is not None
    url = download_url(api, truth.asset_id)
    parts = urlsplit(url)
    assert port_of(url) == port_of(dandi.urls[1])
    assert parts.path == f"/dandiarchive/{truth.blob.s3_key}"
    query = parse_qs(parts.query)
    assert query["X-Amz-Expires"] == ["21600"]
    assert {"X-Amz-Signature", "X-Amz-Date", "X-Amz-Credential"} <= set(query)
    response = httpx.get(url)
    assert response.status_code == 200
    assert response.content == sample.asset_bytes(truth)
    assert response.headers["content-length"] == str(truth.size)
    assert response.headers["etag"] == f'"{truth.blob.etag}"'
    assert response.headers["content-disposition"] == (
        f'attachment; filename="{DRAFT_ONLY_PATH.rsplit("/", 1)[1]}"'
    )
    nested = api.get(f"{DRAFT_ASSETS}{truth.asset_id}/download/")
    assert nested.status_code == 302
    assert urlsplit(nested.headers["location"]).path == parts.path
    zarr = sample.asset_by_path("000003", LARGE_ZARR_PATH)
    bad = api.get(f"assets/{zarr.asset_id}/download/")
    assert bad.status_code == 400 and isinstance(bad.json(), str)


def test_blob_ranges(api: httpx.Client, sample: SampleArchive) -> None:
    truth = sample.asset_by_path("000001", NWB_PATH)
    assert truth.blob is not None
    size = truth.size
    url = download_url(api, truth.asset_id)

    def get(range_header: str | None) -> httpx.Response:
        return httpx.get(url, headers={"Range": range_header} if range_header else {})

    first = get("bytes=0-9")
    assert first.status_code == 206
    assert first.headers["content-range"] == f"bytes 0-9/{size}"
    assert first.headers["content-length"] == "10"
    assert first.content == sample.blob_read(truth.blob.blob_id, 0, 10)
    assert first.content[:8] == b"\x89HDF\r\n\x1a\n"

    tail = get("bytes=-100")
    assert tail.status_code == 206
    assert tail.headers["content-range"] == f"bytes {size - 100}-{size - 1}/{size}"
    assert tail.content == sample.blob_read(truth.blob.blob_id, size - 100, size)

    open_end = get(f"bytes={size - 5}-")
    assert open_end.content == sample.blob_read(truth.blob.blob_id, size - 5, size)
    clamped = get(f"bytes={size - 5}-{size + 1000}")
    assert clamped.status_code == 206 and len(clamped.content) == 5

    unsatisfiable = get(f"bytes={size}-")
    assert unsatisfiable.status_code == 416
    assert unsatisfiable.headers["content-range"] == f"bytes */{size}"
    assert b"<Code>InvalidRange</Code>" in unsatisfiable.content

    multi = get("bytes=0-1,5-6")
    assert multi.status_code == 200 and len(multi.content) == size
    garbage = get("bytes=x-y")
    assert garbage.status_code == 200

    head = httpx.head(url)
    assert head.status_code == 200
    assert head.headers["content-length"] == str(size) and head.content == b""


def test_generated_gibibyte_blob(api: httpx.Client, sample: SampleArchive) -> None:
    truth = sample.asset_by_path("000001", BIG_BLOB_PATH)
    assert truth.blob is not None and truth.size == BIG_BLOB_SIZE
    assert truth.blob.etag.endswith("-16")  # 64 MiB parts
    url = download_url(api, truth.asset_id)
    start = 700 * GENERATED_BLOCK - 50  # spans two generated blocks
    response = httpx.get(url, headers={"Range": f"bytes={start}-{start + 99}"})
    assert response.status_code == 206
    expected = (
        generated_block(BIG_BLOB_KEY, 699, BIG_BLOB_SIZE)[-50:]
        + generated_block(BIG_BLOB_KEY, 700, BIG_BLOB_SIZE)[:50]
    )
    assert response.content == expected == sample.blob_read(truth.blob.blob_id, start, start + 100)
    last = httpx.get(url, headers={"Range": "bytes=-3"})
    assert (
        last.headers["content-range"]
        == f"bytes {BIG_BLOB_SIZE - 3}-{BIG_BLOB_SIZE - 1}/{BIG_BLOB_SIZE}"
    )


def test_signature_checks(api: httpx.Client, dandi: RunningEmulator, sample: SampleArchive) -> None:
    truth = sample.asset_by_path("000001", DRAFT_ONLY_PATH)
    assert truth.blob is not None
    url = download_url(api, truth.asset_id)
    parts = urlsplit(url)
    tampered = url.replace("X-Amz-Expires=21600", "X-Amz-Expires=99999")
    forbidden = httpx.get(tampered)
    assert forbidden.status_code == 403
    assert b"<Code>SignatureDoesNotMatch</Code>" in forbidden.content
    other_key = urlunsplit(parts._replace(path=parts.path[:-1] + "0"))
    assert httpx.get(other_key).status_code == 403
    # The bucket is public-read: the unsigned S3 URL of an open blob works.
    public = httpx.get(f"{dandi.urls[1]}/dandiarchive/{truth.blob.s3_key}")
    assert public.status_code == 200 and public.content == sample.asset_bytes(truth)
    missing = httpx.get(f"{dandi.urls[1]}/dandiarchive/blobs/000/000/nothing")
    assert missing.status_code == 404 and b"<Code>NoSuchKey</Code>" in missing.content


def test_object_store_rejects_authorization_header(
    api: httpx.Client, sample: SampleArchive
) -> None:
    truth = sample.asset_by_path("000001", DRAFT_ONLY_PATH)
    url = download_url(api, truth.asset_id)
    response = httpx.get(url, headers=OWNER)
    assert response.status_code == 400
    assert b"<Code>InvalidArgument</Code>" in response.content
    assert OWNER_TOKEN.encode() not in response.content


def test_presigned_urls_expire(sample: SampleArchive) -> None:
    truth = sample.asset_by_path("000001", DRAFT_ONLY_PATH)
    with start_emulator("dandi", env={"NEUROFS_EMULATOR_PRESIGN_TTL": "0"}) as short:
        redirect = httpx.get(f"{short.api_url}/assets/{truth.asset_id}/download/")
        assert parse_qs(urlsplit(redirect.headers["location"]).query)["X-Amz-Expires"] == ["0"]
        expired = httpx.get(redirect.headers["location"])
        assert expired.status_code == 403
        assert b"<Message>Request has expired</Message>" in expired.content
        # Ids are the same in every emulator process.
        again = httpx.get(f"{short.api_url}/dandisets/000001/versions/draft/assets/").json()
        assert truth.asset_id in [a["asset_id"] for a in again["results"]]


# ---------------------------------------------------------------------------- auth


def test_tokens(api: httpx.Client) -> None:
    assert api.get("auth/token/").status_code == 401
    assert api.get("auth/token/", headers=OWNER).json() == OWNER_TOKEN
    lower = api.get("auth/token/", headers={"Authorization": f"TOKEN {OTHER_TOKEN}"})
    assert lower.json() == OTHER_TOKEN  # the scheme is case-insensitive
    me = api.get("users/me/", headers=OWNER).json()
    assert me == {
        "username": "neurofs-owner",
        "name": "Olive Owner",
        "admin": False,
        "status": "APPROVED",
    }
    assert api.get("users/me/").status_code == 401
    for path in ("info/", "dandisets/", "dandisets/000001/"):
        bad = api.get(path, headers={"Authorization": "token nope"})
        assert bad.status_code == 401, path
        assert bad.json() == {"detail": "Invalid token."}
    # Other schemes are not token authentication: anonymous.
    assert api.get("dandisets/", headers={"Authorization": "Bearer nope"}).status_code == 200


def test_embargoed_dandiset_access(api: httpx.Client, sample: SampleArchive) -> None:
    notes = sample.asset_by_path("000002", EMBARGOED_BLOB_PATH)
    routes = [
        "dandisets/000002/",
        "dandisets/000002/versions/",
        "dandisets/000002/versions/draft/",
        "dandisets/000002/versions/draft/info/",
        "dandisets/000002/versions/draft/assets/",
        "dandisets/000002/versions/draft/assets/paths/",
        f"dandisets/000002/versions/draft/assets/{notes.asset_id}/",
        f"dandisets/000002/versions/draft/assets/{notes.asset_id}/download/",
        f"assets/{notes.asset_id}/",
        f"assets/{notes.asset_id}/info/",
        f"assets/{notes.asset_id}/download/",
    ]
    for route in routes:
        anonymous = api.get(route)
        assert anonymous.status_code == 401, route
        assert anonymous.json() == {"detail": "Authentication credentials were not provided."}
        other = api.get(route, headers=OTHER)
        assert other.status_code == 403, route
        assert other.json() == {"detail": "You do not have permission to perform this action."}
        assert api.get(route, headers=OWNER).status_code in (200, 302), route
    metadata = api.get(f"assets/{notes.asset_id}/", headers=OWNER).json()
    assert metadata["access"][0]["status"] == "dandi:EmbargoedAccess"
    assert metadata["access"][0]["embargoedUntil"] == "2029-02-05"


def test_embargoed_bytes(api: httpx.Client, dandi: RunningEmulator, sample: SampleArchive) -> None:
    notes = sample.asset_by_path("000002", EMBARGOED_BLOB_PATH)
    assert notes.blob is not None
    url = download_url(api, notes.asset_id, headers=OWNER)
    assert httpx.get(url).content == sample.asset_bytes(notes)
    # Unsigned access to an embargoed object is refused by the bucket policy.
    unsigned = httpx.get(f"{dandi.urls[1]}/dandiarchive/{notes.blob.s3_key}")
    assert unsigned.status_code == 403


def test_embargoed_zarr_is_hidden(api: httpx.Client, sample: SampleArchive) -> None:
    zarr = sample.asset_by_path("000002", EMBARGOED_ZARR_PATH).zarr
    assert zarr is not None
    for route in (f"zarr/{zarr.zarr_id}/", f"zarr/{zarr.zarr_id}/files/"):
        assert api.get(route).status_code == 404, route
        assert api.get(route, headers=OTHER).status_code == 404, route
        assert api.get(route, headers=OWNER).status_code == 200, route
    listed = api.get("zarr/").json()["results"]
    assert zarr.zarr_id not in [z["zarr_id"] for z in listed]
    key = "0/.zarray"
    redirect = api.get(
        f"zarr/{zarr.zarr_id}/files/", params={"prefix": key, "download": "true"}, headers=OWNER
    )
    assert httpx.get(redirect.headers["location"]).content == sample.zarr_read(zarr.zarr_id, key)


# ---------------------------------------------------------------------------- zarr


def test_zarr_detail(api: httpx.Client, sample: SampleArchive) -> None:
    zarr = sample.asset_by_path("000003", LARGE_ZARR_PATH).zarr
    assert zarr is not None
    body = api.get(f"zarr/{zarr.zarr_id}/").json()
    assert body == {
        "name": LARGE_ZARR_PATH,
        "dandiset": "000003",
        "zarr_id": zarr.zarr_id,
        "status": "Complete",
        "checksum": zarr.checksum,
        "file_count": len(sample.zarr_keys(zarr.zarr_id)),
        "size": zarr.size,
    }
    assert re.fullmatch(r"[0-9a-f]{32}-\d+--\d+", body["checksum"])
    filtered = api.get("zarr/", params={"dandiset": "000003"}).json()
    assert [z["zarr_id"] for z in filtered["results"]] == [zarr.zarr_id]
    assert api.get("zarr/", params={"dandiset": "3"}).json() == {
        "dandiset": ["A valid Dandiset identifier is required."]
    }


def test_zarr_file_listing_cursor(api: httpx.Client, sample: SampleArchive) -> None:
    zarr = sample.asset_by_path("000003", LARGE_ZARR_PATH).zarr
    assert zarr is not None
    keys: list[str] = []
    url: str | None = f"zarr/{zarr.zarr_id}/files/?limit=10"
    pages = 0
    while url:
        body = api.get(url).json()
        keys += [entry["Key"] for entry in body["results"]]
        if body["next"]:
            assert parse_qs(urlsplit(body["next"]).query)["after"] == [keys[-1]]
        url = body["next"]
        pages += 1
    assert keys == sample.zarr_keys(zarr.zarr_id)
    assert pages == -(-len(keys) // 10)
    assert keys[:3] == [".zattrs", ".zgroup", "0/.zarray"]

    entry = api.get(f"zarr/{zarr.zarr_id}/files/", params={"prefix": "0/.zarray"}).json()
    assert entry["next"] is None
    [item] = entry["results"]
    data = sample.zarr_read(zarr.zarr_id, "0/.zarray")
    assert item["ETag"] == hashlib.md5(data).hexdigest() and item["Size"] == len(data)
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\+00:00", item["LastModified"])

    level1 = api.get(f"zarr/{zarr.zarr_id}/files/", params={"prefix": "1/"}).json()["results"]
    assert level1 and all(e["Key"].startswith("1/") for e in level1)
    after = api.get(f"zarr/{zarr.zarr_id}/files/", params={"after": "1/.zattrs"}).json()
    assert after["results"][0]["Key"] == "1/0.0.0"
    too_many = api.get(f"zarr/{zarr.zarr_id}/files/", params={"limit": 1001})
    assert too_many.status_code == 400
    escape = api.get(f"zarr/{zarr.zarr_id}/files/", params={"prefix": "../x"})
    assert escape.status_code == 400


def test_zarr_file_download(
    api: httpx.Client, sample: SampleArchive, dandi: RunningEmulator
) -> None:
    zarr = sample.asset_by_path("000003", LARGE_ZARR_PATH).zarr
    assert zarr is not None
    key = "0/1.2.3"
    redirect = api.get(f"zarr/{zarr.zarr_id}/files/", params={"prefix": key, "download": "true"})
    assert redirect.status_code == 302
    location = redirect.headers["location"]
    assert port_of(location) == port_of(dandi.urls[1])
    assert urlsplit(location).path == f"/dandiarchive/zarr/{zarr.zarr_id}/{key}"
    data = sample.zarr_read(zarr.zarr_id, key)
    whole = httpx.get(location)
    assert whole.content == data
    assert whole.headers["etag"] == f'"{hashlib.md5(data).hexdigest()}"'
    part = httpx.get(location, headers={"Range": "bytes=4-11"})
    assert part.status_code == 206 and part.content == data[4:12]
    missing = api.get(f"zarr/{zarr.zarr_id}/files/", params={"prefix": "9/9", "download": "1"})
    assert missing.status_code == 302  # the API does not check; S3 answers 404
    assert httpx.get(missing.headers["location"]).status_code == 404


def test_open_zarr_keys_are_public_objects_under_the_content_url(
    api: httpx.Client, sample: SampleArchive, dandi: RunningEmulator
) -> None:
    """The S3 entry of a zarr asset's ``contentUrl`` is its key prefix in the bucket, ending in
    '/' (dandi/dandi-archive, dandiapi/zarr/models.py ``s3_url``); the public bucket serves an
    open zarr's keys there to plain GETs, as the presigned redirect does."""
    asset = sample.asset_by_path("000003", LARGE_ZARR_PATH)
    assert asset.zarr is not None
    metadata = api.get(f"assets/{asset.asset_id}/").json()
    prefix = f"{dandi.urls[1]}/dandiarchive/zarr/{asset.zarr.zarr_id}/"
    assert metadata["contentUrl"] == [f"{dandi.api_url}/assets/{asset.asset_id}/download/", prefix]
    data = sample.zarr_read(asset.zarr.zarr_id, "0/1.2.3")
    part = httpx.get(f"{prefix}0/1.2.3", headers={"Range": "bytes=4-11"})
    assert part.status_code == 206 and part.content == data[4:12]
    assert part.headers["etag"] == f'"{hashlib.md5(data).hexdigest()}"'
    head = httpx.head(f"{prefix}0/1.2.3")
    assert head.status_code == 200 and int(head.headers["content-length"]) == len(data)
    missing = httpx.get(f"{prefix}9/9")
    assert missing.status_code == 404 and "<Code>NoSuchKey</Code>" in missing.text
    dandi.set_knobs(throttle_rate=1)  # the object store's knobs apply to zarr keys too
    assert httpx.get(f"{prefix}0/1.2.3").status_code == 429


def test_embargoed_zarr_keys_need_a_presigned_url(
    api: httpx.Client, sample: SampleArchive, dandi: RunningEmulator
) -> None:
    asset = sample.asset_by_path("000002", EMBARGOED_ZARR_PATH)
    assert asset.zarr is not None
    metadata = api.get(f"assets/{asset.asset_id}/", headers=OWNER).json()
    prefix = metadata["contentUrl"][1]
    assert prefix == f"{dandi.urls[1]}/dandiarchive/zarr/{asset.zarr.zarr_id}/"
    refused = httpx.get(f"{prefix}0/.zarray")
    assert refused.status_code == 403 and "<Code>AccessDenied</Code>" in refused.text
    redirect = api.get(
        f"zarr/{asset.zarr.zarr_id}/files/",
        params={"prefix": "0/.zarray", "download": "true"},
        headers=OWNER,
    )
    signed = httpx.get(redirect.headers["location"])
    assert signed.content == sample.zarr_read(asset.zarr.zarr_id, "0/.zarray")


# ---------------------------------------------------------------------------- blobs


def test_blob_digest_lookup(api: httpx.Client, sample: SampleArchive) -> None:
    blob = sample.asset_by_path("000001", NWB_PATH).blob
    assert blob is not None
    expected = {
        "blob_id": blob.blob_id,
        "etag": blob.etag,
        "sha256": blob.sha256,
        "size": blob.size,
    }
    by_sha = api.post("blobs/digest/", json={"algorithm": "dandi:sha2-256", "value": blob.sha256})
    assert by_sha.json() == expected
    by_etag = api.post("blobs/digest/", json={"algorithm": "dandi:dandi-etag", "value": blob.etag})
    assert by_etag.json() == expected
    unknown = api.post("blobs/digest/", json={"algorithm": "dandi:sha2-256", "value": "0" * 64})
    assert unknown.status_code == 404
    bad = api.post("blobs/digest/", json={"algorithm": "md5", "value": "x"})
    assert bad.status_code == 400 and isinstance(bad.json(), str)
    assert api.post("blobs/digest/", json={}).json() == {
        "algorithm": ["This field is required."],
        "value": ["This field is required."],
    }
    assert api.get("blobs/digest/").status_code == 405


# ---------------------------------------------------------------------------- knobs and log


def test_request_log(dandi: RunningEmulator, api: httpx.Client, sample: SampleArchive) -> None:
    truth = sample.asset_by_path("000001", DRAFT_ONLY_PATH)
    api.get("dandisets/", params={"page_size": 1})
    url = download_url(api, truth.asset_id)
    httpx.get(url, headers={"Range": "bytes=0-3"})
    log = dandi.requests()
    assert [(r["method"], r["path"], r["status"]) for r in log] == [
        ("GET", "/api/dandisets/", 200),
        ("GET", f"/api/assets/{truth.asset_id}/download/", 302),
        ("GET", urlsplit(url).path, 206),
    ]
    assert log[0]["query"] == "page_size=1" and log[0]["range"] is None
    assert log[2]["range"] == "bytes=0-3"
    assert log[0]["host"] == urlsplit(dandi.api_url).netloc
    assert log[2]["host"] == urlsplit(dandi.urls[1]).netloc
    dandi.clear_requests()
    assert dandi.requests() == []  # control routes are never logged


def test_latency_knob(dandi: RunningEmulator, api: httpx.Client) -> None:
    dandi.set_knobs(latency_ms=300)
    started = time.monotonic()
    assert api.get("info/").status_code == 200
    assert time.monotonic() - started >= 0.3  # the delay is a sleep: a lower bound only
    assert [r["path"] for r in dandi.requests()] == ["/api/info/"]
    assert dandi.set_knobs()["latency_ms"] == 0


def test_bandwidth_knob_paces_bodies(
    dandi: RunningEmulator, api: httpx.Client, sample: SampleArchive
) -> None:
    truth = sample.asset_by_path("000001", NWB_PATH)
    assert truth.blob is not None
    url = download_url(api, truth.asset_id)
    dandi.set_knobs(bandwidth_mbps=8)  # 1 MB/s
    started = time.monotonic()
    response = httpx.get(url, headers={"Range": "bytes=0-524287"})
    elapsed = time.monotonic() - started
    assert response.content == sample.blob_read(truth.blob.blob_id, 0, 524288)
    # Pacing sleeps until each chunk is due, so 512 KiB at 1 MB/s takes at least ~0.45 s.
    assert elapsed >= 0.45


def _kinds(log: list[dict[str, object]]) -> list[object]:
    return [r["fault"] for r in log]


def test_fault_injection_every_request(sample: SampleArchive) -> None:
    truth = sample.asset_by_path("000001", NWB_PATH)
    args = ["--fault-rate", "1", "--seed", "7"]
    outcomes: list[list[object]] = []
    for _ in range(2):  # two processes, same seed: the same sequence of faults
        with start_emulator("dandi", args) as emu:
            seen: list[object] = []
            for _ in range(25):
                try:
                    response = httpx.get(f"{emu.api_url}/assets/{truth.asset_id}/", timeout=10)
                except httpx.TransportError:
                    seen.append("cut")
                    continue
                seen.append(str(response.status_code))
                assert response.status_code in (429, 500, 502, 503)
                assert "injected" in response.json()["detail"]
                if response.status_code == 429:
                    assert response.headers["retry-after"] == "1"
            log = emu.requests()
            assert len(log) == 25 and all(r["fault"] is not None for r in log)
            assert _kinds(log) == seen
            outcomes.append(seen)
    assert outcomes[0] == outcomes[1]
    assert {"cut", "429"} <= set(outcomes[0])


def test_connection_cut_mid_body(
    dandi: RunningEmulator, api: httpx.Client, sample: SampleArchive
) -> None:
    truth = sample.asset_by_path("000001", NWB_PATH)
    url = download_url(api, truth.asset_id)
    # Find a seed whose first draw is a cut at rate 1 (the draw order is fixed per seed).
    import random

    from neurofs_emulators.network import FAULT_KINDS

    seed = next(
        s
        for s in range(1000)
        if (r := random.Random(s), r.random(), r.choice(FAULT_KINDS))[2] == "cut"
    )
    dandi.set_knobs(fault_rate=1, seed=seed)
    with httpx.stream("GET", url, headers={"Range": "bytes=0-1048575"}) as response:
        assert response.status_code == 206
        assert response.headers["content-length"] == "1048576"
        received = bytearray()
        with pytest.raises(httpx.RemoteProtocolError):
            for chunk in response.iter_bytes():
                received += chunk
    assert 0 < len(received) < 1048576
    assert bytes(received) == sample.blob_read(truth.blob.blob_id, 0, len(received))
    dandi.set_knobs()
    assert dandi.requests()[-1]["fault"] == "cut"


# ---------------------------------------------------------------------------- determinism


def test_sample_archive_is_deterministic(tmp_path: Path, sample: SampleArchive) -> None:
    fresh = SampleArchive(tmp_path)  # regenerates every file and digest from scratch
    assert [d.identifier for d in fresh.dandiset_list()] == ["000001", "000002", "000003", "000004"]
    for dandiset in sample.dandiset_list():
        for version in sample.version_list(dandiset.identifier):
            mine = [(a.asset_id, a.path, a.size, a.created) for a in version.assets.values()]
            theirs = [
                (a.asset_id, a.path, a.size, a.created)
                for a in fresh.asset_list(dandiset.identifier, version.version)
            ]
            assert mine == theirs
    assert {b: x.sha256 for b, x in sample.blobs.items()} == {
        b: x.sha256 for b, x in fresh.blobs.items()
    }
    assert {b: x.etag for b, x in sample.blobs.items()} == {
        b: x.etag for b, x in fresh.blobs.items()
    }
    assert {z: x.checksum for z, x in sample.zarrs.items()} == {
        z: x.checksum for z, x in fresh.zarrs.items()
    }


def test_sample_contents_match_their_formulas(sample: SampleArchive) -> None:
    import h5py
    import zarr

    nwb = sample.asset_by_path("000001", NWB_PATH)
    assert nwb.blob is not None
    path = nwb.blob.source.path
    with h5py.File(path, "r") as f:
        data = f["/acquisition/ElectricalSeries/data"]
        assert data.shape == (300_000, 64) and data.dtype == np.int16
        assert data.chunks == (8192, 64) and data.compression is None
        assert data.nbytes >= 32 << 20
        np.testing.assert_array_equal(
            data[123_000:140_000], sample.nwb_ecephys_expected(123_000, 140_000)
        )
        # NWB 2.7 as pynwb writes it (pynwb itself reads it in the conformance tests)
        assert f.attrs["nwb_version"] == "2.7.0" and f.attrs["neurodata_type"] == "NWBFile"
        assert f[f.attrs[".specloc"]].name == "/specifications"
        assert sorted(f["/specifications"]) == ["core", "hdmf-common", "hdmf-experimental"]
        core = json.loads(f["/specifications/core/2.7.0/namespace"][()])
        assert core["namespaces"][0]["name"] == "core"
        assert f["identifier"][()].decode() == generate.NWB_IDENTIFIER
        assert f["session_start_time"][()].decode() == generate.NWB_SESSION_START
        series = f["/acquisition/ElectricalSeries"]
        assert series.attrs["neurodata_type"] == "ElectricalSeries"
        table = f[series["electrodes"].attrs["table"]]
        assert table.name == "/general/extracellular_ephys/electrodes"
        assert [f[ref].name for ref in table["group"][:9:8]] == [
            "/general/extracellular_ephys/shank0",
            "/general/extracellular_ephys/shank1",
        ]
        device = f["/general/extracellular_ephys/shank0"].get("device", getlink=True)
        assert device.path == "/general/devices/Probe"
        ids = {f[n].attrs["object_id"] for n in ("/", "/acquisition/ElectricalSeries", "/units")}
        assert len(ids) == 3
        units = f["/units"]
        ends = units["spike_times_index"][:]
        assert len(ends) == generate.UNIT_COUNT
        np.testing.assert_array_equal(
            units["spike_times"][ends[6] : ends[7]], generate.unit_spike_times(7)
        )
        np.testing.assert_array_equal(
            f["/processing/ecephys/LFP/ElectricalSeriesLFP/data"][100:105],
            sample.nwb_ecephys_expected(2400, 2520)[::24],
        )
        assert "timestamps" in f["/acquisition/Position_x"]
    small = sample.asset_by_path("000001", DRAFT_ONLY_PATH)
    assert small.blob is not None and small.blob.etag == dandi_etag(sample.asset_bytes(small))

    large = sample.asset_by_path("000003", LARGE_ZARR_PATH).zarr
    assert large is not None
    root = sample.data_dir / "zarr" / f"000003-{LARGE_ZARR_PATH.replace('/', '_')}"
    level0 = zarr.open_array(str(root / "0"), mode="r")
    level1 = zarr.open_array(str(root / "1"), mode="r")
    np.testing.assert_array_equal(level0[:], sample.large_zarr_expected(0))
    np.testing.assert_array_equal(level1[:], sample.large_zarr_expected(1))
    assert level0.shape == (64, 256, 256) and level0.chunks == (16, 64, 64)
    attrs = json.loads((root / ".zattrs").read_text())
    assert attrs["multiscales"][0]["version"] == "0.4"
    assert zarr.open_group(str(root), mode="r").metadata.zarr_format == 2


# ---------------------------------------------------------------------------- process


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_stops_cleanly_on_signals(sig: signal.Signals) -> None:
    emu = start_emulator("dandi")
    try:
        assert httpx.get(f"{emu.api_url}/info/").status_code == 200
        emu.process.send_signal(sig)
        assert emu.process.wait(15) == 0
    finally:
        emu.stop()


def test_start_failure_is_reported() -> None:
    with pytest.raises(EmulatorStartError, match="exited with status 2"):
        start_emulator("dandi", ["--port", "not-a-number"])


def test_corruption_knob_flips_the_middle_byte_of_named_objects(
    api: httpx.Client, dandi: RunningEmulator, sample: SampleArchive
) -> None:
    """``PUT /__emulator__/corrupt`` damages a blob and a zarr key wherever the object store
    serves them (presigned or plain URL, whole or ranged); an empty list heals them."""
    blob_asset = sample.asset_by_path("000001", DRAFT_ONLY_PATH)
    assert blob_asset.blob is not None
    zarr = sample.asset_by_path("000003", LARGE_ZARR_PATH).zarr
    assert zarr is not None
    entry = next(f for f in zarr.files.values() if f.size > 2)
    store = f"{dandi.urls[1]}/dandiarchive"
    objects = {
        blob_asset.blob.s3_key: sample.asset_bytes(blob_asset),
        f"zarr/{zarr.zarr_id}/{entry.key}": entry.source.read(0, entry.size),
    }
    control = f"{dandi.origin}/__emulator__/corrupt"
    try:
        answer = httpx.put(control, json={"objects": list(objects)})
        assert answer.json() == {"objects": sorted(objects)}
        for key, truth in objects.items():
            served = httpx.get(f"{store}/{key}").content
            middle = len(truth) // 2
            assert len(served) == len(truth) and served != truth
            assert served[middle] == truth[middle] ^ 0xFF
            assert served[:middle] + served[middle + 1 :] == truth[:middle] + truth[middle + 1 :]
            ranged = httpx.get(f"{store}/{key}", headers={"Range": f"bytes={middle}-{middle}"})
            assert ranged.content == bytes([truth[middle] ^ 0xFF])
        presigned = httpx.get(download_url(api, blob_asset.asset_id)).content
        assert presigned != objects[blob_asset.blob.s3_key]
        assert httpx.put(control, json={"objects": "nope"}).status_code == 400
    finally:
        httpx.put(control, json={"objects": []}).raise_for_status()
    assert httpx.get(control).json() == {"objects": []}
    for key, truth in objects.items():
        assert httpx.get(f"{store}/{key}").content == truth

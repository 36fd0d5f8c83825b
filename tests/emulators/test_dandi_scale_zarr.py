"""The scale sample's zarr (``--sample large``: 1,000,003 computed keys) and the object
store's ``ListObjectsV2``, against real S3 semantics (pages, delimiter, continuation, caps).

Everything here is checked through HTTP on a running emulator; the ground truth of the
computed zarr is :mod:`neurofs_emulators.dandi.large_zarr` (its voxel formula) and, on a
small grid, the checksum of every key."""

from __future__ import annotations

import hashlib
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from neurofs.io.digests import ZarrEntryDigest, zarr_checksum
from neurofs_emulators.dandi import large_zarr
from neurofs_emulators.dandi.large_zarr import GridZarrFiles
from neurofs_emulators.dandi.sample import SCALE_ZARR_DANDISET, SCALE_ZARR_PATH
from tests.support.emulators import Emulator, started_dandi_emulator

NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"


@pytest.fixture(scope="module")
def big() -> Iterator[Emulator]:
    with started_dandi_emulator(["--sample", "large"]) as emulator:
        yield emulator


@pytest.fixture(scope="module")
def zarr_id(big: Emulator) -> str:
    with big.api() as c:
        found = c.get("zarr/", params={"dandiset": SCALE_ZARR_DANDISET}).json()["results"]
    assert [z["name"] for z in found] == [SCALE_ZARR_PATH]
    return str(found[0]["zarr_id"])


def list_v2(big: Emulator, **params: Any) -> ET.Element:
    query = {"list-type": "2", **{k.replace("_", "-"): v for k, v in params.items()}}
    r = httpx.get(f"{big.urls[1]}/dandiarchive", params=query)
    assert r.status_code == 200, r.text
    return ET.fromstring(r.text)


def keys_of(page: ET.Element) -> list[str]:
    return [c.findtext(f"{NS}Key") or "" for c in page.iter(f"{NS}Contents")]


def prefixes_of(page: ET.Element) -> list[str]:
    return [c.findtext(f"{NS}Prefix") or "" for c in page.iter(f"{NS}CommonPrefixes")]


def test_the_computed_zarr_is_described_by_the_api(big: Emulator, zarr_id: str) -> None:
    with big.api() as c:
        detail = c.get(f"zarr/{zarr_id}/").json()
        metadata = c.get(f"zarr/{zarr_id}/files/", params={"limit": 3}).json()["results"]
    assert detail["file_count"] == 1_000_003
    assert detail["size"] == 100**3 * 512 + sum(f["Size"] for f in metadata)
    assert detail["checksum"].endswith(f"-1000003--{detail['size']}")


def test_the_checksum_is_that_of_every_key_on_a_small_grid() -> None:
    files = GridZarrFiles("small.ome.zarr", datetime(2024, 1, 1, tzinfo=UTC), grid=7)
    every = [ZarrEntryDigest(k, files[k].md5, files[k].size) for k in files]
    assert len(every) == 7**3 + 3
    assert files.checksum == zarr_checksum(every)
    # The listing order is S3's (byte order), whatever the start.
    keys = list(files)
    assert keys == sorted(keys)
    assert list(files.keys_from("0/3/")) == [k for k in keys if k >= "0/3/"]


def test_files_pages_by_prefix_and_after_at_any_depth(big: Emulator, zarr_id: str) -> None:
    with big.api() as c:
        page = c.get(f"zarr/{zarr_id}/files/", params={"limit": 5}).json()
        assert [f["Key"] for f in page["results"]] == [
            ".zattrs",
            ".zgroup",
            "0/.zarray",
            "0/0/0/0",
            "0/0/0/1",
        ]
        assert "after=0%2F0%2F0%2F1" in page["next"]
        deep = c.get(
            f"zarr/{zarr_id}/files/", params={"prefix": "0/99/98/", "after": "0/99/98/97"}
        ).json()
        # The server drops the prefix's '/': `0/99/98` also matches nothing else here.
        assert [f["Key"] for f in deep["results"]] == ["0/99/98/98", "0/99/98/99"]
        assert deep["next"] is None
        one = c.get(f"zarr/{zarr_id}/files/", params={"prefix": "0/42/7/13"}).json()
        (entry,) = one["results"]
        data = large_zarr.expected(slice(336, 344), slice(56, 64), slice(104, 112)).tobytes()
        assert entry["Size"] == 512 and entry["ETag"] == hashlib.md5(data).hexdigest()
        capped = c.get(f"zarr/{zarr_id}/files/", params={"prefix": "0/", "limit": 1001})
        assert capped.status_code == 400


def test_a_chunk_is_an_object_with_computed_bytes(big: Emulator, zarr_id: str) -> None:
    url = f"{big.urls[1]}/dandiarchive/zarr/{zarr_id}/0/99/0/57"
    expected = large_zarr.expected(slice(792, 800), slice(0, 8), slice(456, 464))
    head = httpx.head(url)
    assert head.status_code == 200 and head.headers["content-length"] == "512"
    assert head.headers["etag"] == f'"{hashlib.md5(expected.tobytes()).hexdigest()}"'
    got = httpx.get(url, headers={"Range": "bytes=64-127"})
    assert got.status_code == 206 and got.content == expected.tobytes()[64:128]
    for missing in ("0/100/0/0", "0/007/0/0", "0/1/2", "1/0/0/0"):
        assert httpx.head(f"{big.urls[1]}/dandiarchive/zarr/{zarr_id}/{missing}").status_code == 404


def test_list_objects_v2_with_a_delimiter_lists_one_level(big: Emulator, zarr_id: str) -> None:
    root = f"zarr/{zarr_id}/"
    page = list_v2(big, prefix=root, delimiter="/")
    assert keys_of(page) == [root + ".zattrs", root + ".zgroup"]
    assert prefixes_of(page) == [root + "0/"]
    assert page.findtext(f"{NS}KeyCount") == "3"
    assert page.findtext(f"{NS}IsTruncated") == "false"
    contents = page.find(f"{NS}Contents")
    assert contents is not None
    assert contents.findtext(f"{NS}ETag", "").startswith('"')
    assert contents.findtext(f"{NS}LastModified", "").endswith("Z")
    # One level of 100 directories and a file: one page, the deeper million keys skipped.
    level = list_v2(big, prefix=root + "0/", delimiter="/")
    assert keys_of(level) == [root + "0/.zarray"]
    assert prefixes_of(level) == [root + f"0/{n}/" for n in sorted(str(i) for i in range(100))]


def test_list_objects_v2_pages_with_continuation_tokens(big: Emulator, zarr_id: str) -> None:
    leaf = f"zarr/{zarr_id}/0/5/6/"
    seen: list[str] = []
    token = None
    pages = 0
    while True:
        params: dict[str, Any] = {"prefix": leaf, "max_keys": 30}
        if token:
            params["continuation_token"] = token
        page = list_v2(big, **params)
        pages += 1
        assert page.findtext(f"{NS}MaxKeys") == "30"
        seen += keys_of(page)
        if page.findtext(f"{NS}IsTruncated") == "false":
            assert page.find(f"{NS}NextContinuationToken") is None
            break
        token = page.findtext(f"{NS}NextContinuationToken")
        assert token
    assert pages == 4
    assert seen == [leaf + n for n in sorted(str(i) for i in range(100))]
    # start-after, and a page that ends on a common prefix resumes past it.
    after = list_v2(big, prefix=f"zarr/{zarr_id}/0/", start_after=f"zarr/{zarr_id}/0/98/5/5")
    assert keys_of(after)[:2] == [f"zarr/{zarr_id}/0/98/5/50", f"zarr/{zarr_id}/0/98/5/51"]
    first = list_v2(big, prefix=f"zarr/{zarr_id}/0/", delimiter="/", max_keys=2)
    assert keys_of(first) == [f"zarr/{zarr_id}/0/.zarray"]
    assert prefixes_of(first) == [f"zarr/{zarr_id}/0/0/"]
    rest = list_v2(
        big,
        prefix=f"zarr/{zarr_id}/0/",
        delimiter="/",
        max_keys=1,
        continuation_token=first.findtext(f"{NS}NextContinuationToken"),
    )
    assert prefixes_of(rest) == [f"zarr/{zarr_id}/0/1/"]


def test_list_objects_v2_caps_pages_and_spans_the_whole_bucket(big: Emulator) -> None:
    capped = list_v2(big, max_keys=5000)
    assert capped.findtext(f"{NS}MaxKeys") == "1000"
    assert len(keys_of(capped)) == 1000 and capped.findtext(f"{NS}IsTruncated") == "true"
    top = list_v2(big, delimiter="/")
    assert prefixes_of(top) == ["blobs/", "zarr/"]
    assert keys_of(top) == []
    # The demo zarrs list too, with the ETags and sizes the API gives.
    zarrs = prefixes_of(list_v2(big, prefix="zarr/", delimiter="/"))
    assert len(zarrs) == 3
    with big.api() as c:
        for prefix in zarrs:
            zid = prefix.split("/")[1]
            files = c.get(f"zarr/{zid}/files/").json()["results"]
            if not files:  # embargoed: hidden from the anonymous API, listed by the bucket
                continue
            listed = list_v2(big, prefix=prefix, max_keys=len(files))
            sizes = [int(c.findtext(f"{NS}Size") or -1) for c in listed.iter(f"{NS}Contents")]
            assert keys_of(listed) == [prefix + f["Key"] for f in files[: len(sizes)]]
            assert sizes == [f["Size"] for f in files[: len(sizes)]]


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"max-keys": "lots"}, "InvalidArgument"),
        ({"max-keys": "-1"}, "InvalidArgument"),
        ({"continuation-token": "!!!"}, "InvalidArgument"),
        ({"encoding-type": "base64"}, "InvalidArgument"),
    ],
)
def test_list_objects_v2_refuses_bad_parameters(
    big: Emulator, params: dict[str, str], code: str
) -> None:
    r = httpx.get(f"{big.urls[1]}/dandiarchive", params={"list-type": "2", **params})
    assert r.status_code == 400
    assert ET.fromstring(r.text).findtext("Code") == code


def test_url_encoded_listing_decodes_to_the_keys(big: Emulator, zarr_id: str) -> None:
    page = list_v2(big, prefix=f"zarr/{zarr_id}/", delimiter="/", encoding_type="url")
    assert page.findtext(f"{NS}EncodingType") == "url"
    assert keys_of(page)[0] == f"zarr/{zarr_id}/.zattrs"


def test_the_emulator_starts_small(big: Emulator) -> None:
    """Computed, never stored: the scale sample adds little to the emulator's memory."""
    status = Path(f"/proc/{big.running.process.pid}/status").read_text()
    rss_kb = int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM")))
    assert rss_kb < 250_000, rss_kb

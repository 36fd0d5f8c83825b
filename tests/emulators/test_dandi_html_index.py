"""The object store's HTML directory index (what rclone's http backend and httpdirfs mount).

The index lists a blob under its key's last part with its size; following a link with a
Range header gives the blob's bytes; the directory URL without its slash redirects, as nginx
does; embargoed objects are not listed; the network knobs apply to the index as to objects.
"""

from __future__ import annotations

import re
from urllib.parse import urljoin

import httpx

from neurofs_emulators.dandi.sample import (
    BIG_BLOB_PATH,
    BIG_BLOB_SIZE,
    EMBARGOED_BLOB_PATH,
    NWB_PATH,
    SampleArchive,
)
from tests.support.emulators import Emulator

LINK = re.compile(r'<a href="([^"]+)">[^<]*</a> +[^ ]+ [^ ]+ +([^ \r\n]+)')


def _links(page: str) -> dict[str, str]:
    """href → the size column (``-`` for directories), as a link-scraping client reads them."""
    return dict(LINK.findall(page))


def test_index_lists_the_blob_and_its_links_serve_ranges(
    dandi: Emulator, sample: SampleArchive
) -> None:
    truth = sample.asset_by_path("000001", BIG_BLOB_PATH)
    assert truth.blob is not None
    directory, _, name = truth.blob.s3_key.rpartition("/")
    index_url = f"{dandi.urls[1]}/dandiarchive/{directory}/"
    page = httpx.get(index_url)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    links = _links(page.text)
    assert links[name] == str(BIG_BLOB_SIZE)
    assert all(size != "-" for size in links.values())  # blobs/<3>/<3>/ holds only objects

    blob_url = urljoin(index_url, name)
    head = httpx.head(blob_url)
    assert head.status_code == 200 and int(head.headers["content-length"]) == BIG_BLOB_SIZE
    for start, length in ((0, 4096), (BIG_BLOB_SIZE // 2 - 10, 20), (BIG_BLOB_SIZE - 5, 5)):
        part = httpx.get(blob_url, headers={"Range": f"bytes={start}-{start + length - 1}"})
        assert part.status_code == 206
        assert part.content == sample.blob_read(truth.blob.blob_id, start, start + length)

    # Parent pages list the blob's directory with a trailing slash and no size.
    parent = _links(httpx.get(f"{dandi.urls[1]}/dandiarchive/blobs/").text)
    assert parent[directory.split("/")[1] + "/"] == "-"
    # httpdirfs strips the slash of the URL it is given: nginx answers 301 to the slashed URL.
    bare = httpx.get(index_url.rstrip("/"))
    assert bare.status_code == 301 and bare.headers["location"] == f"/dandiarchive/{directory}/"
    # Logged like any other request of the object store.
    paths = [r["path"] for r in dandi.requests()]
    assert paths.count(f"/dandiarchive/{directory}/") == 1


def test_index_leaves_out_embargoed_objects_and_empty_prefixes(
    dandi: Emulator, sample: SampleArchive
) -> None:
    hidden = sample.asset_by_path("000002", EMBARGOED_BLOB_PATH)
    assert hidden.blob is not None
    directory, _, name = hidden.blob.s3_key.rpartition("/")
    page = httpx.get(f"{dandi.urls[1]}/dandiarchive/{directory}/")
    # Its directory holds only the embargoed blob (or other blobs, never this one).
    assert page.status_code == 404 or name not in _links(page.text)
    missing = httpx.get(f"{dandi.urls[1]}/dandiarchive/blobs/zzz/")
    assert missing.status_code == 404 and "<Code>NoSuchKey</Code>" in missing.text


def test_only_blobs_are_indexed_and_probes_keep_s3_answers(
    dandi: Emulator, sample: SampleArchive
) -> None:
    truth = sample.asset_by_path("000001", BIG_BLOB_PATH)
    assert truth.blob is not None
    directory = truth.blob.s3_key.rpartition("/")[0]
    # A HEAD of the directory's URL (an existence probe) is S3's 404, not nginx's 301.
    assert httpx.head(f"{dandi.urls[1]}/dandiarchive/{directory}").status_code == 404
    # Zarr prefixes are never pages: S3's NoSuchKey, with or without the slash.
    zarr_id = next(iter(sample.zarrs))
    for suffix in ("/", ""):
        answer = httpx.get(f"{dandi.urls[1]}/dandiarchive/zarr/{zarr_id}{suffix}")
        assert answer.status_code == 404 and "<Code>NoSuchKey</Code>" in answer.text


def test_network_knobs_apply_to_the_index(dandi: Emulator, sample: SampleArchive) -> None:
    truth = sample.asset_by_path("000001", NWB_PATH)
    assert truth.blob is not None
    directory = truth.blob.s3_key.rpartition("/")[0]
    dandi.set_knobs(throttle_rate=1)
    assert httpx.get(f"{dandi.urls[1]}/dandiarchive/{directory}/").status_code == 429

"""Reading the object store's ``ListObjectsV2`` answers, and where a zarr's bucket is."""

from __future__ import annotations

import pytest

from neurofs.errors import RemoteError
from neurofs.sources.dandi import s3
from neurofs.sources.dandi.zarr_listing import bucket_of

PAGE = """<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>dandiarchive</Name>
<Prefix>zarr/z/</Prefix><KeyCount>3</KeyCount><MaxKeys>2</MaxKeys><Delimiter>/</Delimiter>
<IsTruncated>true</IsTruncated><NextContinuationToken>abc</NextContinuationToken>
<Contents><Key>zarr/z/.zattrs</Key><LastModified>2024-07-01T09:05:00.000Z</LastModified>
<ETag>&quot;0123&quot;</ETag><Size>734</Size><StorageClass>STANDARD</StorageClass></Contents>
<CommonPrefixes><Prefix>zarr/z/0/</Prefix></CommonPrefixes>
</ListBucketResult>"""


def test_a_page_gives_keys_prefixes_and_the_token() -> None:
    page = s3.parse(PAGE, "test")
    assert [f.key for f in page.contents] == ["zarr/z/.zattrs"]
    assert page.contents[0].size == 734 and page.contents[0].etag == '"0123"'
    assert page.common_prefixes == ["zarr/z/0/"]
    assert page.is_truncated and page.next_token == "abc"


def test_url_encoded_keys_are_decoded() -> None:
    text = PAGE.replace("<Name>", "<EncodingType>url</EncodingType><Name>").replace(
        "zarr/z/.zattrs", "zarr/z/a%20b+c"
    )
    assert [f.key for f in s3.parse(text, "test").contents] == ["zarr/z/a b c"]


@pytest.mark.parametrize(
    "text",
    [
        "not xml",
        "<Error><Code>AccessDenied</Code></Error>",
        PAGE.replace("<Size>734</Size>", "<Size>-1</Size>"),
        PAGE.replace("<Key>zarr/z/.zattrs</Key>", ""),
    ],
)
def test_anything_else_is_a_remote_error(text: str) -> None:
    with pytest.raises(RemoteError):
        s3.parse(text, "test")


def test_the_bucket_of_a_public_prefix() -> None:
    assert bucket_of("https://dandiarchive.s3.amazonaws.com/zarr/z1/") == (
        "https://dandiarchive.s3.amazonaws.com/",
        "zarr/z1/",
    )
    assert bucket_of("http://127.0.0.1:9/dandiarchive/zarr/z1/") == (
        "http://127.0.0.1:9/dandiarchive/",
        "zarr/z1/",
    )
    assert bucket_of("http://127.0.0.1:9/z1") is None

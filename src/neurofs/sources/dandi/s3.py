"""The object store's ``ListObjectsV2`` as neurofs reads it: the request of one page and the
XML answer turned into :class:`~neurofs.sources.dandi.models.S3ListPage`.

DANDI's public bucket lets anyone list it (``GET /?list-type=2&prefix=&delimiter=/``), which
is how one level of a zarr is listed in a request per 1000 entries (see ``zarr_listing``).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any
from urllib.parse import unquote_plus

from neurofs.errors import RemoteError
from neurofs.io.http import HttpClient
from neurofs.sources.dandi.models import S3ListPage
from neurofs.sources.payloads import validated

MAX_KEYS = 1000  # what S3 answers at most per page


async def list_page(
    http: HttpClient,
    bucket_url: str,
    prefix: str,
    *,
    delimiter: str = "",
    start_after: str = "",
    token: str | None = None,
    max_keys: int = MAX_KEYS,
) -> S3ListPage:
    """One page of the keys under ``prefix`` (full bucket keys), from ``start_after`` or the
    continuation ``token``."""
    params: dict[str, Any] = {"list-type": "2", "prefix": prefix, "max-keys": str(max_keys)}
    if delimiter:
        params["delimiter"] = delimiter
    if start_after:
        params["start-after"] = start_after
    if token is not None:
        params["continuation-token"] = token
    text = await http.get_text(bucket_url, params)
    return parse(text, f"listing of {bucket_url} under {prefix}")


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def parse(text: str, what: str) -> S3ListPage:
    """A ``ListBucketResult`` document (namespace or not; ``EncodingType=url`` decoded)."""
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise RemoteError(f"{what}: not an S3 listing ({exc})") from None
    if _local(root.tag) != "ListBucketResult":
        raise RemoteError(f"{what}: not an S3 listing (<{_local(root.tag)}>)")
    fields = {_local(child.tag): child for child in root}
    encoded = (fields["EncodingType"].text or "") == "url" if "EncodingType" in fields else False

    def decoded(value: str | None) -> str:
        return unquote_plus(value or "") if encoded else (value or "")

    contents: list[dict[str, Any]] = []
    prefixes: list[str] = []
    for child in root:
        tag = _local(child.tag)
        if tag == "Contents":
            item = {_local(c.tag): c.text for c in child}
            if item.get("Key") is not None:  # missing: the model refuses the entry
                item["Key"] = decoded(item["Key"])
            contents.append(item)
        elif tag == "CommonPrefixes":
            prefixes.extend(decoded(c.text) for c in child if _local(c.tag) == "Prefix")
    truncated = fields["IsTruncated"].text if "IsTruncated" in fields else "false"
    token = fields["NextContinuationToken"].text if "NextContinuationToken" in fields else None
    return validated(
        S3ListPage,
        {
            "contents": contents,
            "common_prefixes": prefixes,
            "is_truncated": (truncated or "").strip().lower() == "true",
            "next_token": token,
        },
        what,
    )

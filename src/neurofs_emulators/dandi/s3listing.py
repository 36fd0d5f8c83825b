"""S3 ``ListObjectsV2`` on the emulated bucket, as the public DANDI bucket answers it.

``GET /dandiarchive?list-type=2&prefix=&delimiter=&max-keys=&continuation-token=&start-after=
&encoding-type=url&fetch-owner=``: keys in byte order under ``prefix``, at most ``max-keys``
(capped at 1000, as S3 does) entries per page counting both ``Contents`` and
``CommonPrefixes``; with a ``delimiter``, keys sharing the part up to the next delimiter are
rolled into one common prefix. ``IsTruncated`` + an opaque ``NextContinuationToken`` page on.

The bucket's keys are never collected: blobs come from the archive's blob table, zarr keys from
each zarr's lazy :meth:`~neurofs_emulators.dandi.archive.ZarrFiles.keys_from`, and a common
prefix is skipped over in one seek, so a page costs what it returns even for the computed zarr
of a million keys.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote
from xml.sax.saxutils import escape

from starlette.datastructures import QueryParams

from neurofs_emulators.dandi.archive import Archive
from neurofs_emulators.dandi.blobstore import BUCKET, S3Error

MAX_KEYS = 1000  # S3 answers at most this many entries per page
_NS = "http://s3.amazonaws.com/doc/2006-03-01/"

# Keys >= a bound, in order, lazily.
KeysFrom = Callable[[str], Iterator[str]]
# A key's (ETag, size, last modified), or None when it vanished.
Describe = Callable[[str], tuple[str, int, datetime] | None]


def after(key: str) -> str:
    """The least string greater than ``key``."""
    return key + "\0"


def past(prefix: str) -> str:
    """The least string greater than every string starting with ``prefix`` (non-empty)."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


def bucket_keys(archive: Archive) -> KeysFrom:
    """Every key of the bucket from a bound: ``blobs/…`` then ``zarr/<id>/…`` per zarr."""

    def keys_from(lowest: str) -> Iterator[str]:
        if lowest < past("blobs/"):
            blob_keys = sorted(b.s3_key for b in archive.blobs.values())
            yield from (k for k in blob_keys if k >= lowest)
        for zarr_id in sorted(archive.zarrs):
            zarr = archive.zarrs[zarr_id]
            prefix = zarr.s3_prefix
            if past(prefix) <= lowest:
                continue  # all of this zarr sorts before the bound
            rest = lowest[len(prefix) :] if lowest.startswith(prefix) else ""
            yield from (prefix + key for key in zarr.files.keys_from(rest))

    return keys_from


@dataclass
class ListRequest:
    prefix: str
    delimiter: str
    max_keys: int
    lowest: str  # where the page starts (from start-after or the continuation token)
    continuation: str | None
    start_after: str
    url_encoded: bool


def parse(params: QueryParams) -> ListRequest | S3Error:
    raw_max = params.get("max-keys", str(MAX_KEYS))
    try:
        max_keys = int(raw_max)
        if max_keys < 0:
            raise ValueError
    except ValueError:
        return S3Error(
            400,
            "InvalidArgument",
            "Provided max-keys not an integer or within integer range",
            {"ArgumentName": "max-keys", "ArgumentValue": raw_max},
        )
    encoding = params.get("encoding-type")
    if encoding not in (None, "url"):
        return S3Error(
            400,
            "InvalidArgument",
            "Invalid Encoding Method specified in Request",
            {"ArgumentName": "encoding-type", "ArgumentValue": encoding},
        )
    prefix = params.get("prefix", "")
    start_after = params.get("start-after", "")
    lowest = max(prefix, after(start_after) if start_after else "")
    continuation = params.get("continuation-token")
    if continuation is not None:
        resume = _decode_token(continuation)
        if resume is None:
            return S3Error(
                400,
                "InvalidArgument",
                "The continuation token provided is incorrect",
                {"ArgumentName": "continuation-token"},
            )
        lowest = max(lowest, resume)  # the token wins over start-after
    return ListRequest(
        prefix=prefix,
        delimiter=params.get("delimiter", ""),
        max_keys=min(max_keys, MAX_KEYS),
        lowest=lowest,
        continuation=continuation,
        start_after=start_after,
        url_encoded=encoding == "url",
    )


@dataclass
class ListPage:
    contents: list[str]
    common_prefixes: list[str]
    resume: str | None  # where the next page starts, when truncated


def list_page(keys_from: KeysFrom, req: ListRequest) -> ListPage:
    """One page: walk the keys from the bound, folding a common prefix into one entry and
    seeking past it, until ``max_keys`` entries; then look one entry ahead for truncation."""
    contents: list[str] = []
    prefixes: list[str] = []
    bound = req.lowest
    keys = keys_from(bound)
    while True:
        key = next(keys, None)
        if key is None or not key.startswith(req.prefix):
            return ListPage(contents, prefixes, None)
        if len(contents) + len(prefixes) == req.max_keys:
            truncated = req.max_keys > 0
            return ListPage(contents, prefixes, bound if truncated else None)
        cut = key.find(req.delimiter, len(req.prefix)) if req.delimiter else -1
        if cut < 0:
            contents.append(key)
            bound = after(key)
            continue
        common = key[: cut + len(req.delimiter)]
        prefixes.append(common)
        bound = past(common)
        keys = keys_from(bound)


_TOKEN_MARK = b"neurofs-emulator-v1\0"


def _encode_token(resume: str) -> str:
    return base64.urlsafe_b64encode(_TOKEN_MARK + resume.encode()).decode()


def _decode_token(token: str) -> str | None:
    """The bound a token resumes from; None for a token this store did not make."""
    try:
        raw = base64.b64decode(token.encode(), altchars=b"-_", validate=True)
        if not raw.startswith(_TOKEN_MARK):
            return None
        return raw[len(_TOKEN_MARK) :].decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None


def render(req: ListRequest, page: ListPage, describe: Describe) -> bytes:
    """The ``ListBucketResult`` XML of a page."""

    def text(value: str) -> str:
        return escape(quote(value, safe="/") if req.url_encoded else value)

    parts = [
        f"<Name>{BUCKET}</Name>",
        f"<Prefix>{text(req.prefix)}</Prefix>",
    ]
    if req.delimiter:
        parts.append(f"<Delimiter>{text(req.delimiter)}</Delimiter>")
    parts.append(f"<MaxKeys>{req.max_keys}</MaxKeys>")
    if req.url_encoded:
        parts.append("<EncodingType>url</EncodingType>")
    parts.append(f"<KeyCount>{len(page.contents) + len(page.common_prefixes)}</KeyCount>")
    if req.continuation is not None:
        parts.append(f"<ContinuationToken>{escape(req.continuation)}</ContinuationToken>")
    if req.start_after:
        parts.append(f"<StartAfter>{text(req.start_after)}</StartAfter>")
    parts.append(f"<IsTruncated>{'true' if page.resume is not None else 'false'}</IsTruncated>")
    if page.resume is not None:
        token = _encode_token(page.resume)
        parts.append(f"<NextContinuationToken>{token}</NextContinuationToken>")
    for key in page.contents:
        described = describe(key)
        if described is None:
            continue
        etag, size, modified = described
        stamp = modified.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + (
            f"{modified.microsecond // 1000:03d}Z"
        )
        parts.append(
            f"<Contents><Key>{text(key)}</Key><LastModified>{stamp}</LastModified>"
            f"<ETag>&quot;{escape(etag)}&quot;</ETag><Size>{size}</Size>"
            "<StorageClass>STANDARD</StorageClass></Contents>"
        )
    parts.extend(
        f"<CommonPrefixes><Prefix>{text(p)}</Prefix></CommonPrefixes>" for p in page.common_prefixes
    )
    body = f'<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult xmlns="{_NS}">'
    return (body + "".join(parts) + "</ListBucketResult>").encode()

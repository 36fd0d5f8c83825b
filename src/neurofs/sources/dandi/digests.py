"""The archive's digests of what the mount shows, as the extended attribute
``user.dandi.digest``: a JSON object of algorithm → value, as the archive names them.

- a blob asset: its metadata's ``digest`` (``dandi:dandi-etag``, often ``dandi:sha2-256``);
- a zarr asset's directory: ``dandi:dandi-zarr-checksum``;
- a file of a zarr: ``dandi:md5``, the S3 ETag of the key in the zarr's listing.

``neurofs verify`` compares them with the digests of the bytes it reads through the mount.
Reading the attribute of an asset costs one request (then remembered); a zarr key's costs
none; listing the names costs nothing.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterator, Mapping

from neurofs.io.digests import MD5
from neurofs.sources.dandi.api import DandiApi
from neurofs.sources.dandi.models import ZarrFile

DIGEST_XATTR = "user.dandi.digest"

Xattrs = Mapping[str, Callable[[], Awaitable[bytes]]]


def _encode(digest: Mapping[str, str]) -> bytes:
    return json.dumps(dict(digest), sort_keys=True).encode()


def asset_digest(api: DandiApi, asset_id: str, *, immutable: bool) -> Xattrs:
    """An asset's digests from its metadata. ``immutable`` for blobs: an asset id never
    changes its blob, whereas a zarr's checksum follows its keys."""
    return _AssetDigest(api, asset_id, immutable)


class _AssetDigest(Mapping[str, Callable[[], Awaitable[bytes]]]):
    """The one attribute of an asset, in a few slots: a walk of a huge dandiset keeps one
    per file the kernel knows, so no dict and closure each."""

    __slots__ = ("_api", "_asset_id", "_immutable")

    def __init__(self, api: DandiApi, asset_id: str, immutable: bool) -> None:
        self._api = api
        self._asset_id = asset_id
        self._immutable = immutable

    async def _value(self) -> bytes:
        return _encode(await self._api.asset_digest(self._asset_id, immutable=self._immutable))

    def __getitem__(self, name: str) -> Callable[[], Awaitable[bytes]]:
        if name != DIGEST_XATTR:
            raise KeyError(name)
        return self._value

    def __iter__(self) -> Iterator[str]:
        return iter((DIGEST_XATTR,))

    def __len__(self) -> int:
        return 1


def key_digest(file: ZarrFile) -> Xattrs:
    """A zarr key's md5, from the listing the key came from (a single-part ETag)."""

    async def value() -> bytes:
        return _encode({MD5: file.etag.strip('"')})

    return {DIGEST_XATTR: value}

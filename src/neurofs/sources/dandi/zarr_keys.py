"""Where the bytes of a zarr's keys are read from.

A zarr's keys are objects under one prefix of the archive's bucket, ``zarr/<zarr id>/<key>``
(dandi/dandi-archive, dandiapi/zarr/models.py ``zarr_s3_path``). The API route
``zarr/<id>/files/?prefix=<key>&download=true`` answers with a redirect to a presigned URL of
that object: a round trip to the API for every key. The public bucket serves the objects of
open zarrs to plain unsigned GETs with Range (dandi/dandidav reads zarrs that way, from the
asset's ``contentUrl``), so the prefix is learned once per zarr, from the first redirect, and
every key is then read straight from the object store. The same prefix tells where the zarr's
keys can be listed (``zarr_listing``).

Embargoed zarrs are private: each key goes through its presigned redirect (remembered until
shortly before it expires). A zarr whose plain GET is refused (403) while the presigned one
succeeds is read through the API from then on.
"""

from __future__ import annotations

from urllib.parse import quote, unquote, urlsplit, urlunsplit

import trio

from neurofs.io.http import LinkExpired
from neurofs.sources.dandi.api import DandiApi, read_linked, zarr_key_link


def public_prefix(url: str, zarr_id: str, key: str) -> str | None:
    """The URL of a zarr's key prefix (ending in '/'), from a presigned URL of its ``key``:
    that URL without its query and without the key. None when the URL does not end in
    ``<zarr id>/<key>`` (a bucket layout neurofs does not know)."""
    parts = urlsplit(url)
    path = unquote(parts.path)
    if not path.endswith(f"/{zarr_id}/{key}"):
        return None
    return urlunsplit((parts.scheme, parts.netloc, quote(path[: len(path) - len(key)]), "", ""))


class ZarrKeys:
    """Reads zarr keys; keeps, for the mount's lifetime, how each zarr is read."""

    def __init__(self, api: DandiApi) -> None:
        self._api = api
        # zarr id → the prefix URL of its public objects, or None: through the API.
        self._prefixes: dict[str, str | None] = {}
        # Parallel first reads of one zarr would each resolve a redirect: one does.
        self._locks: dict[str, trio.Lock] = {}

    async def fetch(
        self,
        zarr_id: str,
        key: str,
        size: int,
        start: int,
        end: int,
        *,
        embargoed: bool,
        content_id: str,
    ) -> bytes:
        """Bytes [start, end) of ``key`` of the zarr (``size`` bytes long), whose bytes are
        named ``content_id`` (zarr id, key and ETag) in the shared tier."""
        shared = self._api.http.shareable(content_id, private=embargoed)
        prefix = None if embargoed else await self.prefix_url(zarr_id)
        if prefix is None:
            return await self._through_api(zarr_id, key, size, start, end, shared)
        try:
            url = prefix + quote(key)
            return await self._api.http.get_range(url, start, end, size, shared=shared)
        except LinkExpired:
            # Not public (any more), or served elsewhere. A key missing from a bucket without
            # list permission also answers 403: then the API route fails too, and the zarr
            # keeps its direct route.
            data = await self._through_api(zarr_id, key, size, start, end, shared)
            self._prefixes[zarr_id] = None
            return data

    async def prefix_url(self, zarr_id: str) -> str | None:
        """The URL under which the zarr's keys are public objects (ending in '/'), learned
        from the presigned redirect of the zarr's root; None when they go through the API."""
        if zarr_id in self._prefixes:
            return self._prefixes[zarr_id]
        async with self._locks.setdefault(zarr_id, trio.Lock()):
            if zarr_id not in self._prefixes:
                url = await self._api.zarr_file_url(zarr_id, "")
                self._prefixes[zarr_id] = public_prefix(url, zarr_id, "")
            return self._prefixes[zarr_id]

    async def _through_api(
        self, zarr_id: str, key: str, size: int, start: int, end: int, shared: str | None
    ) -> bytes:
        """Through the key's presigned redirect, resolved again once when it has expired."""
        link, resolve = zarr_key_link(zarr_id, key), lambda: self._api.zarr_file_url(zarr_id, key)
        return await read_linked(self._api, link, resolve, start, end, size, shared=shared)

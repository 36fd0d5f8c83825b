"""The DANDI REST API as neurofs uses it: typed, cached, paginated.

Every answer is validated into the models of ``models.py``. Listings of published versions
are cached forever (they cannot change); drafts with a TTL. Presigned download URLs are
remembered until shortly before they expire.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

import trio
from pydantic import BaseModel

from neurofs.config import SourceConfig
from neurofs.errors import NotFound, RemoteError
from neurofs.io.http import HttpClient, LinkExpired, same_origin
from neurofs.io.memo import as_fetched
from neurofs.io.parallel import tasks_of_one_request
from neurofs.io.responses import ResponseStore
from neurofs.io.stats import Stats
from neurofs.io.tier import Tier
from neurofs.sources.clients import ApiClient, ClientMaker
from neurofs.sources.dandi.folders import FolderIndex, FolderRows
from neurofs.sources.dandi.models import (
    Asset,
    AssetDigests,
    AssetPath,
    AssetRow,
    AssetWithMetadata,
    Dandiset,
    Page,
    User,
    VersionInfo,
    VersionSummary,
    ZarrPage,
)
from neurofs.sources.payloads import validated

M = TypeVar("M", bound=BaseModel)
# What a listing's ``index`` function makes of it (see ``Memo.view``).
D = TypeVar("D")

# A cheap route that answers when the server is up.
PROBE_PATH = "info/"

PAGE_SIZE = 1000  # the server's cap
# Parallel page requests when a listing spans many pages.
PAGE_WORKERS = 4
# The most entries one listing may have (a zarr of this many files is beyond what a directory
# listing can serve); a server claiming more, or paging on beyond it, gets EIO.
MAX_LISTING_ITEMS = 1_000_000
# Presigned URLs are reused until this many seconds before they expire.
_EXPIRY_MARGIN = 300.0
_DEFAULT_LINK_LIFETIME = 3600.0


def link_expiry(url: str, now: float) -> float:
    """When a presigned URL stops working (X-Amz-Date + X-Amz-Expires), or a default."""
    query = parse_qs(urlsplit(url).query)
    lifetime = _DEFAULT_LINK_LIFETIME
    start = now
    if "X-Amz-Expires" in query:
        with contextlib.suppress(ValueError):
            lifetime = float(query["X-Amz-Expires"][0])
    if "X-Amz-Date" in query:
        with contextlib.suppress(ValueError):
            start = datetime.strptime(query["X-Amz-Date"][0], "%Y%m%dT%H%M%S%z").timestamp()
    return start + lifetime


def _info_key(identifier: str, version: str) -> tuple[str, ...]:
    return ("info", identifier, version)


def _folders_key(identifier: str, version: str, under: str) -> tuple[str, ...]:
    return ("folders", identifier, version, under)


def _asset_key(identifier: str, path: str) -> tuple[str, ...]:
    return ("asset-at", identifier, path)


def _check_listing_size(n: int, what: str) -> None:
    if n > MAX_LISTING_ITEMS:
        raise RemoteError(f"{what}: more than {MAX_LISTING_ITEMS} entries, more than neurofs lists")


class _Pager:
    """Checks each ``next`` link of a listing followed link by link."""

    def __init__(self, http: HttpClient, what: str) -> None:
        self._http = http
        self._what = what
        self._seen: set[str] = set()

    def next_url(self, link: str | None, results: Sequence[object]) -> str | None:
        if link is None:
            return None
        url = self._http.url(link)
        if not same_origin(url, self._http.base_url):
            raise RemoteError(f"{self._what}: the next page is on another host")
        if url in self._seen:
            raise RemoteError(f"{self._what}: the pages loop (a next link repeats)")
        if not results:
            raise RemoteError(f"{self._what}: an empty page that is not the last")
        self._seen.add(url)
        return url


def connect(
    config: SourceConfig,
    stats: Stats,
    responses: ResponseStore | None,
    *,
    tier: Tier | None = None,
) -> DandiApi:
    """The API of a configured DANDI source; its token goes in ``Authorization: token …``."""
    token = config.resolved_token()
    make = ClientMaker(config, stats, responses, "Authorization", "token", tier=tier)
    return DandiApi(make(config.url, token), authenticated=token is not None)


class DandiApi(ApiClient):
    def __init__(self, http: HttpClient, *, authenticated: bool, ttl: float = 30.0) -> None:
        super().__init__(http, ttl=ttl)
        self.authenticated = authenticated
        self._links: dict[tuple[str, ...], tuple[str, float]] = {}
        self._link_locks: dict[tuple[str, ...], trio.Lock] = {}

    async def me(self) -> User:
        """``users/me/``: who the token belongs to (AccessDenied when it is refused). Always
        asked of the server, never answered from the answers kept on disk."""
        data = await self.http.get_json("users/me/", keep=False, offline=False)
        return validated(User, data, "users/me")

    # ------------------------------------------------------------------ pagination

    async def _pages(self, path: str, params: dict[str, Any], item: type[M], what: str) -> list[M]:
        """Every result of a paginated route, in the server's order (see ``_each_page``)."""
        pages: dict[int, list[M]] = {}

        def keep(number: int, results: list[M]) -> None:
            pages[number] = results

        await self._each_page(path, params, item, what, keep)
        return [r for n in sorted(pages) for r in pages[n]]

    async def _each_page(
        self,
        path: str,
        params: dict[str, Any],
        item: type[M],
        what: str,
        consume: Callable[[int, list[M]], None],
    ) -> None:
        """Hand every page of a paginated route to ``consume(page number, results)`` as it
        arrives; pages after the first are fetched in parallel when the first page tells how
        many there are, so they may come in any order.

        A listing is bounded: more than MAX_LISTING_ITEMS results, a ``next`` link seen
        before, an empty page that is not the last, or a ``next`` link to another host is a
        RemoteError (a broken or hostile server cannot keep a reader paging forever)."""
        params = {**params, "page_size": PAGE_SIZE}
        first = await self.http.get_json(path, {**params, "page": 1})
        page = validated(Page[item], first, what)  # type: ignore[valid-type]
        seen = len(page.results)
        consume(1, list(page.results))
        if page.next is None:
            return
        if page.count is not None:
            if page.count > MAX_LISTING_ITEMS:
                raise RemoteError(f"{what}: {page.count} entries, more than neurofs lists")
            npages = -(-page.count // PAGE_SIZE)
            limiter = trio.Semaphore(PAGE_WORKERS)

            async def one(n: int) -> None:
                nonlocal seen
                async with limiter:
                    data = await self.http.get_json(path, {**params, "page": n})
                results = list(validated(Page[item], data, what).results)  # type: ignore[valid-type]
                seen += len(results)
                _check_listing_size(seen, what)
                consume(n, results)

            async with tasks_of_one_request() as nursery:
                for n in range(2, npages + 1):
                    nursery.start_soon(one, n)
            return
        pager = _Pager(self.http, what)
        url: str | None = pager.next_url(page.next, page.results)
        number = 1
        while url:  # no count: follow next links one by one
            data = await self.http.get_json(url)
            page = validated(Page[item], data, what)  # type: ignore[valid-type]
            number += 1
            seen += len(page.results)
            _check_listing_size(seen, what)
            consume(number, list(page.results))
            url = pager.next_url(page.next, page.results)

    def _cached(
        self,
        key: tuple[Any, ...],
        fetch: Callable[[], Awaitable[M]],
        immutable: bool = False,
        fresh: bool = False,
    ) -> Awaitable[M]:
        return self.memo.get(key, fetch, immutable=immutable, fresh=fresh)

    # ------------------------------------------------------------------ dandisets, versions

    async def dandisets(self) -> list[Dandiset]:
        # The server answers 401 to an anonymous embargoed=true; signed in, it adds the
        # embargoed dandisets the user may see.
        params = {"ordering": "id", **({"embargoed": "true"} if self.authenticated else {})}

        async def fetch() -> list[Dandiset]:
            return await self._pages("dandisets/", params, Dandiset, "dandisets")

        return await self.memo.get(("dandisets",), fetch)

    async def dandiset(self, identifier: str) -> Dandiset:
        async def fetch() -> Dandiset:
            data = await self.http.get_json(f"dandisets/{identifier}/")
            return validated(Dandiset, data, f"dandiset {identifier}")

        return await self._cached(("dandiset", identifier), fetch)

    async def releases(self, identifier: str) -> list[VersionSummary]:
        """The published versions of a dandiset."""
        return await self.releases_indexed(identifier, as_fetched)

    async def releases_indexed(
        self, identifier: str, index: Callable[[list[VersionSummary]], D]
    ) -> D:
        """The published versions, as ``index`` arranges them (once per fetch)."""

        async def fetch() -> list[VersionSummary]:
            versions = await self._pages(
                f"dandisets/{identifier}/versions/", {}, VersionSummary, "versions"
            )
            return [v for v in versions if v.version != "draft"]

        return await self.memo.view(("releases", identifier), fetch, index)

    async def version_info(
        self, identifier: str, version: str, *, fresh: bool = False
    ) -> VersionInfo:
        async def fetch() -> VersionInfo:
            data = await self.http.get_json(f"dandisets/{identifier}/versions/{version}/info/")
            return validated(VersionInfo, data, f"version {identifier}/{version}")

        key = _info_key(identifier, version)
        return await self._cached(key, fetch, immutable=version != "draft", fresh=fresh)

    # ------------------------------------------------------------------ assets

    async def assets(self, identifier: str, version: str) -> list[Asset]:
        """The flat asset list of a version (all pages)."""
        return await self.assets_indexed(identifier, version, as_fetched)

    async def assets_indexed(
        self, identifier: str, version: str, index: Callable[[list[Asset]], D]
    ) -> D:
        """The flat asset list of a version (all pages), as ``index`` arranges it (once per
        fetch)."""

        async def fetch() -> list[Asset]:
            return await self._pages(
                f"dandisets/{identifier}/versions/{version}/assets/",
                {"order": "path"},
                Asset,
                f"assets of {identifier}/{version}",
            )

        return await self.memo.view(
            ("assets", identifier, version), fetch, index, immutable=version != "draft"
        )

    async def folder_index(self, identifier: str, version: str, under: str = "") -> FolderIndex:
        """Every folder of a version under the folder ``under`` ('' = all of it) from the flat
        asset list (all pages, in parallel), arranged compactly page by page as it arrives
        (see ``folders.py``)."""
        prefix = f"{under}/" if under else ""
        params = {"order": "path", **({"path": prefix} if prefix else {})}

        def add(assets: list[AssetRow]) -> None:
            # The server matches ``path`` case-insensitively: keep the exact folder's assets.
            rows.add(a for a in assets if a.path.startswith(prefix))

        async def fetch() -> FolderIndex:
            await self._each_page(
                f"dandisets/{identifier}/versions/{version}/assets/",
                params,
                AssetRow,
                f"assets of {identifier}/{version}/{under}",
                lambda _n, assets: add(assets),
            )
            return rows.index()

        rows = FolderRows()
        key = _folders_key(identifier, version, under)
        return await self.memo.get(key, fetch, immutable=version != "draft")

    def folder_index_held(self, identifier: str, version: str, folder: str) -> str | None:
        """The folder whose index (``folder_index``) is in memory and covers ``folder``: it
        or one of its ancestors; None if none is (no request either way)."""
        parts = folder.split("/") if folder else []
        for depth in range(len(parts) + 1):
            under = "/".join(parts[:depth])
            if self.memo.held(_folders_key(identifier, version, under)) is not None:
                return under
        return None

    async def paths(self, identifier: str, version: str, prefix: str) -> list[AssetPath]:
        """One directory level (``prefix`` is '' or ends with '/')."""
        return await self.paths_indexed(identifier, version, prefix, as_fetched)

    async def paths_indexed(
        self, identifier: str, version: str, prefix: str, index: Callable[[list[AssetPath]], D]
    ) -> D:
        """One directory level (``prefix`` is '' or ends with '/'), as ``index`` arranges it
        (once per fetch)."""

        async def fetch() -> list[AssetPath]:
            return await self._pages(
                f"dandisets/{identifier}/versions/{version}/assets/paths/",
                # The root is asked for by leaving path_prefix out. An empty path_prefix= means
                # the root too (DRF reads an empty query value of an optional field as absent;
                # dandi/dandi-archive, dandiapi/api/views/serializers.py), but spaces are a 400.
                {"path_prefix": prefix} if prefix else {},
                AssetPath,
                f"paths of {identifier}/{version}/{prefix}",
            )

        return await self.memo.view(
            ("paths", identifier, version, prefix), fetch, index, immutable=version != "draft"
        )

    async def asset_info(self, asset_id: str) -> Asset:
        async def fetch() -> Asset:
            data = await self.http.get_json(f"assets/{asset_id}/info/")
            return validated(Asset, data, f"asset {asset_id}")

        # An asset id never changes meaning: a metadata edit makes a new id.
        return await self._cached(("asset", asset_id), fetch, immutable=True)

    async def asset_digest(self, asset_id: str, *, immutable: bool) -> dict[str, str]:
        """The digests of an asset's metadata (``digest``: algorithm → value)."""

        async def fetch() -> AssetDigests:
            data = await self.http.get_json(f"assets/{asset_id}/")
            return validated(AssetDigests, data, f"metadata of asset {asset_id}")

        return dict((await self._cached(("digest", asset_id), fetch, immutable)).digest)

    async def zarr_files_page(
        self, zarr_id: str, prefix: str, after: str = "", limit: int = PAGE_SIZE
    ) -> ZarrPage:
        """One page of a zarr's keys starting with ``prefix`` (the server also matches the
        prefix with its trailing '/' stripped), after the key ``after``: one request."""
        params: dict[str, Any] = {"prefix": prefix, "limit": limit}
        if after:
            params["after"] = after
        data = await self.http.get_json(f"zarr/{zarr_id}/files/", params)
        return validated(ZarrPage, data, f"zarr {zarr_id} files under {prefix!r}")

    async def assets_with_metadata(
        self, identifier: str, version: str, path: str
    ) -> list[AssetWithMetadata]:
        """Assets whose path starts with ``path`` (exact case), with their metadata. An exact
        path gives just that asset: the server matches prefixes case-insensitively."""
        found = await self._pages(
            f"dandisets/{identifier}/versions/{version}/assets/",
            {"path": path, "metadata": "true"},
            AssetWithMetadata,
            f"assets of {identifier}/{version} at {path}",
        )
        return [a for a in found if a.path.startswith(path)]

    async def asset_at(self, identifier: str, version: str, path: str) -> AssetWithMetadata:
        for asset in await self.assets_with_metadata(identifier, version, path):
            if asset.path == path:
                return asset
        raise NotFound(f"{identifier}/{version}/{path}")

    async def draft_asset_metadata(
        self, identifier: str, path: str, *, fresh: bool = False
    ) -> dict[str, Any]:
        """The metadata of the draft's asset at ``path``, found by path: every metadata change
        gives the asset a new id."""

        async def fetch() -> dict[str, Any]:
            return dict((await self.asset_at(identifier, "draft", path)).metadata)

        return await self.memo.get(_asset_key(identifier, path), fetch, fresh=fresh)

    async def put_asset(
        self, identifier: str, asset: AssetWithMetadata, metadata: dict[str, Any]
    ) -> AssetWithMetadata:
        """PUT an asset of the draft; the answer is the asset under its new id."""
        body: dict[str, Any] = {"metadata": metadata}
        if asset.zarr is not None:
            body["zarr_id"] = asset.zarr
        else:
            body["blob_id"] = asset.blob
        data = await self.http.send_json(
            "PUT", f"dandisets/{identifier}/versions/draft/assets/{asset.asset_id}/", body
        )
        return validated(AssetWithMetadata, data, f"asset {asset.asset_id}")

    async def delete_asset(self, identifier: str, asset_id: str) -> None:
        await self.http.send_json(
            "DELETE", f"dandisets/{identifier}/versions/draft/assets/{asset_id}/"
        )

    def forget_version(self, identifier: str, version: str) -> None:
        """Drop every cached answer about a version after it changed."""

        def stale(key: object) -> bool:
            if not isinstance(key, tuple) or not key:
                return False
            if key[0] in ("dandisets",) or key == ("dandiset", identifier):
                return True
            return len(key) >= 3 and key[1] == identifier and key[2] == version

        self.memo.invalidate(stale)

    def forget_version_metadata(self, identifier: str, version: str) -> None:
        """Drop what shows a version's metadata, name and modified time (its assets stay)."""
        self.memo.forget(_info_key(identifier, version), ("dandiset", identifier), ("dandisets",))

    def forget_asset(self, identifier: str, path: str) -> None:
        """Drop the metadata of the draft's asset at ``path`` (``draft_asset_metadata``)."""
        self.memo.forget(_asset_key(identifier, path))

    # ------------------------------------------------------------------ download links

    async def _link(self, key: tuple[str, ...], resolve: Callable[[], Awaitable[str]]) -> str:
        # Parallel range requests of one file would each resolve the redirect: one does.
        lock = self._link_locks.setdefault(key, trio.Lock())
        async with lock:
            now = time.time()
            cached = self._links.get(key)
            if cached and cached[1] - _EXPIRY_MARGIN > now:
                return cached[0]
            url = await resolve()
            self._links[key] = (url, link_expiry(url, now))
            return url

    def forget_link(self, key: tuple[str, ...]) -> None:
        self._links.pop(key, None)

    async def blob_url(self, asset_id: str) -> str:
        return await self._link(
            blob_link(asset_id),
            lambda: self.http.resolve_redirect(f"assets/{asset_id}/download/"),
        )

    async def zarr_file_url(self, zarr_id: str, key: str) -> str:
        return await self._link(
            zarr_key_link(zarr_id, key),
            lambda: self.http.resolve_redirect(
                f"zarr/{zarr_id}/files/", {"prefix": key, "download": "true"}
            ),
        )


def blob_link(asset_id: str) -> tuple[str, ...]:
    """Where the download link of a blob asset is remembered (``blob_url``)."""
    return ("asset", asset_id)


def zarr_key_link(zarr_id: str, key: str) -> tuple[str, ...]:
    """Where the download link of a zarr's key is remembered (``zarr_file_url``)."""
    return ("zarr", zarr_id, key)


async def read_linked(
    api: DandiApi,
    link: tuple[str, ...],
    resolve: Callable[[], Awaitable[str]],
    start: int,
    end: int,
    size: int,
    *,
    shared: str | None = None,
) -> bytes:
    """Bytes [start, end) of an object ``size`` bytes long behind a presigned download link
    (``resolve``, remembered at ``link``): resolved again once when it has expired (the
    object store answers 403). ``shared``: as for ``HttpClient.get_range``."""
    for attempt in range(2):
        url = await resolve()
        try:
            return await api.http.get_range(url, start, end, size, shared=shared)
        except LinkExpired:
            api.forget_link(link)
            if attempt:
                raise
    raise AssertionError("unreachable")

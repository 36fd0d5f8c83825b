"""A zarr's keys, one level at a time, and one key by path: never the whole key list.

A zarr of a million keys cannot be listed whole for every lookup, so:

- **a level** (one directory of the zarr) is listed on its own. For an open zarr whose keys
  are public objects (``ZarrKeys.prefix_url``), through the object store's ``ListObjectsV2``
  with ``delimiter=/``: the level's files and sub-directories, 1000 per request, whatever lies
  deeper. Otherwise (an embargoed zarr, or a store that refuses to list) through the API's
  ``files/?prefix=&after=``, which has no delimiter: its pages are read in key order and each
  sub-directory met is skipped with ``after``, so a level costs one request per
  sub-directory plus one per 1000 files, still nothing for what lies deeper.
- **a lookup by path** (``stat``, ``open``) asks for the first keys starting with the path,
  through either route: one request says whether it is a key (with its size and ETag), a
  directory, or nothing (two when another key continues the name with a character that sorts
  before '/'). A level already held answers without a request.

Answers are kept in the API client's memo like every draft answer (30 s), per level and per
key: nothing holds more than one level's listing.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from neurofs.errors import AccessDenied, NotFound, RemoteError
from neurofs.io.http import Unreachable
from neurofs.sources.dandi import s3
from neurofs.sources.dandi.api import MAX_LISTING_ITEMS, PAGE_SIZE, DandiApi
from neurofs.sources.dandi.models import ZarrFile
from neurofs.sources.dandi.zarr_index import ZarrEntry, ZarrLevel, arrange_level
from neurofs.sources.dandi.zarr_keys import ZarrKeys
from neurofs.tree.names import may_be_changed

# Sorts after any character a key may continue a name with: skips a sub-directory's keys.
_PAST = "\U0010ffff"
# The API page asked for right after skipping a sub-directory.
_AFTER_DIRECTORY = 16


class _Refused(Exception):
    """The object store will not list this zarr (it answered, but not with a listing)."""


def bucket_of(prefix_url: str) -> tuple[str, str] | None:
    """(bucket URL, key prefix) of a zarr's public prefix URL ``…/zarr/<id>/``: the bucket
    is listed at the URL without the last two segments, under the prefix they make."""
    parts = urlsplit(prefix_url)
    segments = parts.path.split("/")
    if len(segments) < 4 or segments[-1] != "":
        return None
    bucket_path = "/".join(segments[:-3]) + "/"
    return (
        urlunsplit((parts.scheme, parts.netloc, bucket_path, "", "")),
        "/".join(segments[-3:]),
    )


class ZarrListing:
    """Levels and lookups of zarrs, by the route each zarr allows (learned once per zarr)."""

    def __init__(self, api: DandiApi, keys: ZarrKeys) -> None:
        self._api = api
        self._keys = keys
        # zarr id → (bucket URL, key prefix) to list in the store; None: through the API.
        self._buckets: dict[str, tuple[str, str] | None] = {}

    async def _bucket(self, zarr_id: str, embargoed: bool) -> tuple[str, str] | None:
        if embargoed:
            return None  # private objects: the API's listing only
        if zarr_id not in self._buckets:
            url = await self._keys.prefix_url(zarr_id)
            self._buckets[zarr_id] = bucket_of(url) if url is not None else None
        return self._buckets[zarr_id]

    def _refused(self, zarr_id: str) -> None:
        # The store would not list (403, 404, an answer that is not an S3 listing): this zarr
        # lists through the API from now on.
        self._buckets[zarr_id] = None

    # ------------------------------------------------------------------ levels

    async def level(self, zarr_id: str, prefix: str, embargoed: bool) -> ZarrLevel:
        """The entries of the directory ``prefix`` ('' or 'a/b/') by file name."""

        async def fetch() -> ZarrLevel:
            bucket = await self._bucket(zarr_id, embargoed)
            if bucket is not None:
                try:
                    return await self._level_from_store(bucket, prefix)
                except _Refused:
                    self._refused(zarr_id)
            return await self._level_from_api(zarr_id, prefix)

        return await self._api.memo.get(("zarr-level", zarr_id, prefix), fetch)

    async def _level_from_store(self, bucket: tuple[str, str], prefix: str) -> ZarrLevel:
        url, root = bucket
        what = f"zarr level {root}{prefix}"
        files: list[ZarrFile] = []
        dirs: list[str] = []
        token: str | None = None
        tokens: set[str] = set()
        while True:
            try:
                page = await s3.list_page(
                    self._api.http, url, root + prefix, delimiter="/", token=token
                )
            except Unreachable:
                raise  # down, not refusing: the next try may list it there
            except (AccessDenied, NotFound, RemoteError) as exc:
                if token is None:  # the store does not list: not a failure of this level
                    raise _Refused from exc
                raise
            files.extend(_relative(f, root) for f in page.contents if f.key.startswith(root))
            dirs.extend(p[len(root + prefix) :].rstrip("/") for p in page.common_prefixes)
            _check_size(len(files) + len(dirs), what)
            if not page.is_truncated:
                return arrange_level(prefix, files, dirs)
            if page.next_token is None or page.next_token in tokens:
                raise RemoteError(f"{what}: a truncated page without a new continuation token")
            token = page.next_token
            tokens.add(token)

    async def _level_from_api(self, zarr_id: str, prefix: str) -> ZarrLevel:
        what = f"zarr {zarr_id} level {prefix!r}"
        files: list[ZarrFile] = []
        dirs: list[str] = []
        after = _skip_siblings(prefix)
        limit = PAGE_SIZE
        while True:
            page = await self._api.zarr_files_page(zarr_id, prefix, after, limit)
            restart = ""
            for f in page.results:
                if not f.key.startswith(prefix):
                    return arrange_level(prefix, files, dirs)  # past the level (`0/5` → `0/50`)
                if f.key <= after:
                    raise RemoteError(f"{what}: the keys go backwards")
                name, slash, _ = f.key[len(prefix) :].partition("/")
                if slash:
                    dirs.append(name)
                    restart = f"{prefix}{name}/{_PAST}"  # skip the sub-directory's keys
                    break
                files.append(f)
                after = f.key
            _check_size(len(files) + len(dirs), what)
            # After a sub-directory, the next entry is most often another one: a short page
            # (its first key is all that is used); a page of files only goes back to full.
            limit = _AFTER_DIRECTORY if restart else PAGE_SIZE
            if restart:
                after = restart
            elif page.next is None or not page.results:
                return arrange_level(prefix, files, dirs)

    # ------------------------------------------------------------------ lookups

    async def entry(self, zarr_id: str, prefix: str, name: str, embargoed: bool) -> ZarrEntry:
        """The entry ``name`` of the directory ``prefix``, without listing the directory
        (unless it is held, or the name may be one neurofs made up for an unsafe key)."""
        held = self._api.memo.held(("zarr-level", zarr_id, prefix))
        if held is not None:
            found = held.get(name)
            if found is None:
                raise NotFound(f"{prefix}{name}")
            return found
        try:
            return await self._api.memo.get(
                ("zarr-key", zarr_id, prefix + name),
                lambda: self._lookup(zarr_id, prefix + name, embargoed),
            )
        except NotFound:
            if not may_be_changed(name):
                raise
        found = (await self.level(zarr_id, prefix, embargoed)).get(name)
        if found is None:
            raise NotFound(f"{prefix}{name}")
        return found

    async def _lookup(self, zarr_id: str, key: str, embargoed: bool) -> ZarrEntry:
        first = await self._first(zarr_id, key, embargoed)
        if first is not None and first.key == key:
            return first
        if first is not None and first.key.startswith(key + "/"):
            return key + "/"
        if first is not None and first.key.startswith(key):
            # e.g. `a.b` sorts between the key `a` and the directory `a/`: ask for `a/`.
            deeper = await self._first(zarr_id, key + "/", embargoed)
            if deeper is not None and deeper.key.startswith(key + "/"):
                return key + "/"
        raise NotFound(key)

    async def _first(self, zarr_id: str, key: str, embargoed: bool) -> ZarrFile | None:
        """The first key that starts with ``key`` (or None): one request."""
        bucket = await self._bucket(zarr_id, embargoed)
        if bucket is not None:
            url, root = bucket
            try:
                page = await s3.list_page(self._api.http, url, root + key, max_keys=1)
            except Unreachable:
                raise
            except (AccessDenied, NotFound, RemoteError):
                self._refused(zarr_id)
            else:
                found = [_relative(f, root) for f in page.contents if f.key.startswith(root)]
                return found[0] if found else None
        after = _skip_siblings(key)
        results = (await self._api.zarr_files_page(zarr_id, key, after, limit=1)).results
        return results[0] if results and results[0].key.startswith(key) else None


def _skip_siblings(prefix: str) -> str:
    """The ``after`` that starts the API's listing of a directory ``a/`` at its keys: the
    server matches the prefix without its '/' (and joins ``after`` as a path, dropping a
    trailing '/'), so keys like ``a.b`` or ``a-b``, which sort before ``a/``, are skipped by
    starting after ``a.`` + the last character."""
    return prefix[:-1] + "." + _PAST if prefix.endswith("/") else ""


def _relative(f: ZarrFile, root: str) -> ZarrFile:
    return f.model_copy(update={"key": f.key[len(root) :]})


def _check_size(n: int, what: str) -> None:
    if n > MAX_LISTING_ITEMS:
        raise RemoteError(f"{what}: more than {MAX_LISTING_ITEMS} entries, more than neurofs lists")

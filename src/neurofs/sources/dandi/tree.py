"""The DANDI part of the mount.

```
<source>/
  000123/
    draft/                     the draft version (dandiset.yaml + assets as files and folders)
    releases/0.240101.1200/    each published version, immutable
    latest -> releases/...     only when published
```
A version's folders come from one of two views (see ``VersionView``): the flat asset list
(one request per 1000 assets, with sizes and mtimes of every asset: best for walks and for
most dandisets) or ``assets/paths/`` (one request per folder: best for a single folder of a
huge dandiset; a walk of one switches it to the flat list, see ``PathsView``). Which one is
chosen by the version's asset count.
"""

from __future__ import annotations

import contextlib
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass

from neurofs.errors import IsADirectory, NeurofsError, NotEmpty, NotFound, ReadOnly, RemoteError
from neurofs.io.fetcher import Fetcher, RemoteObject
from neurofs.io.parallel import tasks_of_one_request
from neurofs.sources.dandi import edits
from neurofs.sources.dandi.api import DandiApi, blob_link, read_linked
from neurofs.sources.dandi.digests import asset_digest, key_digest
from neurofs.sources.dandi.folders import Row, WalkDetector
from neurofs.sources.dandi.models import AssetPath, Dandiset, VersionSummary, ZarrFile
from neurofs.sources.dandi.sidecars import asset_yaml, dandiset_yaml
from neurofs.sources.dandi.zarr_index import ZarrEntry
from neurofs.sources.dandi.zarr_keys import ZarrKeys
from neurofs.sources.dandi.zarr_listing import ZarrListing
from neurofs.tree.names import safe_name, unique_names
from neurofs.tree.nodes import (
    Attrs,
    Directory,
    File,
    FileHandle,
    Kind,
    Node,
    NodePath,
    Symlink,
)
from neurofs.tree.remote import RemoteFile, RemoteHandle
from neurofs.tree.sidecar import Sidecar

_DANDISET_ID = re.compile(r"^\d{6}$")
# Next to draft/: the metadata of each draft asset, at the same relative path as the asset.
ASSET_METADATA_DIR = "draft.meta"
_ZARR_SUFFIXES = (".zarr", ".ngff")
METADATA_FILE = "dandiset.yaml"


@dataclass(frozen=True)
class DandiOptions:
    # Versions with at most this many assets are listed with the flat asset list.
    flat_listing_max_assets: int = 20_000


class DandiContext:
    """What every DANDI node needs: the API, the fetcher, the options, and how each zarr's
    keys are listed and read (learned once per mount)."""

    def __init__(self, api: DandiApi, fetcher: Fetcher, options: DandiOptions) -> None:
        self.api = api
        self.fetcher = fetcher
        self.options = options
        self.zarr_keys = ZarrKeys(api)
        # Which huge versions are being walked (their folders then come from the flat list).
        self.walks = WalkDetector()
        self.zarr_listing = ZarrListing(api, self.zarr_keys)


# ---------------------------------------------------------------- remote objects


class DandiBlob:
    """A blob asset's bytes, via the download redirect (re-resolved when S3 says 403)."""

    def __init__(
        self, api: DandiApi, asset_id: str, blob_id: str, size: int, *, embargoed: bool
    ) -> None:
        self._api = api
        self._asset_id = asset_id
        self.content_id = f"dandi-blob:{blob_id}"
        self.size = size
        self._shared = api.http.shareable(self.content_id, private=embargoed)

    async def fetch(self, start: int, end: int) -> bytes:
        asset_id = self._asset_id
        link, resolve = blob_link(asset_id), lambda: self._api.blob_url(asset_id)
        return await read_linked(
            self._api, link, resolve, start, end, self.size, shared=self._shared
        )


class DandiZarrFile:
    """One file of a zarr asset, keyed by zarr id, key and ETag (whichever route reads it)."""

    def __init__(self, keys: ZarrKeys, zarr_id: str, file: ZarrFile, embargoed: bool) -> None:
        self._keys = keys
        self._zarr_id = zarr_id
        self._key = file.key
        self._embargoed = embargoed
        self.content_id = f"dandi-zarr:{zarr_id}/{file.key}@{file.etag.strip(chr(34))}"
        self.size = file.size

    async def fetch(self, start: int, end: int) -> bytes:
        return await self._keys.fetch(
            self._zarr_id,
            self._key,
            self.size,
            start,
            end,
            embargoed=self._embargoed,
            content_id=self.content_id,
        )


# ---------------------------------------------------------------- version views


@dataclass(frozen=True, slots=True)
class Entry:
    """One child of a folder inside a version, as either view sees it."""

    name: str  # safe file name
    server_path: str  # the asset path (or folder path) on the server
    is_folder: bool
    size: int
    mtime: float
    asset_id: str | None = None
    blob_id: str | None = None
    zarr_id: str | None = None
    # In the paths view the asset kind is unknown until asked; decided by suffix for listing.
    looks_like_zarr: bool = False


class VersionView(ABC):
    identifier: str
    version: str
    # The dandiset is embargoed: its zarrs are private objects.
    embargoed: bool

    @abstractmethod
    async def entries(self, folder: str) -> Collection[Entry]:
        """Children of ``folder`` ('' = version root, else 'a/b'). NotFound if absent."""

    @abstractmethod
    async def entry(self, folder: str, name: str) -> Entry:
        """The child of ``folder`` called ``name`` (a dictionary look-up). NotFound if absent."""


class FlatView(VersionView):
    """Folders derived from the full flat asset list."""

    def __init__(self, ctx: DandiContext, identifier: str, version: str, embargoed: bool) -> None:
        self._ctx = ctx
        self.identifier = self._id = identifier
        self.version = self._version = version
        self.embargoed = embargoed

    async def _folder(self, folder: str) -> dict[str, Entry]:
        index = await self._ctx.api.assets_indexed(self._id, self._version, build_index)
        if folder not in index:
            raise NotFound(f"{self._id}/{self._version}/{folder}")
        return index[folder]

    async def entries(self, folder: str) -> Collection[Entry]:
        return (await self._folder(folder)).values()

    async def entry(self, folder: str, name: str) -> Entry:
        try:
            return (await self._folder(folder))[name]
        except KeyError:
            raise NotFound(f"{self._id}/{self._version}/{folder}/{name}") from None


def build_index(assets: Sequence[object]) -> dict[str, dict[str, Entry]]:
    """folder path → {safe name → entry}, folders' mtimes = newest asset below them.

    Names are made safe per folder with ``unique_names``, so that distinct server names
    never share a file name. When a path is both an asset and a folder (or appears twice),
    the first in the listing wins."""
    from neurofs.sources.dandi.models import Asset

    # folder → {server component → (is_folder, asset or None)}; first occurrence wins.
    raw: dict[str, dict[str, Asset | None]] = {"": {}}
    folder_mtime: dict[str, float] = {}
    for asset in assets:
        assert isinstance(asset, Asset)
        parts = [p for p in asset.path.split("/") if p]
        if not parts:
            continue
        mtime = asset.modified.timestamp()
        folder = ""
        for i, part in enumerate(parts[:-1]):
            child = "/".join(parts[: i + 1])
            raw.setdefault(folder, {}).setdefault(part, None)
            folder_mtime[child] = max(folder_mtime.get(child, 0.0), mtime)
            raw.setdefault(child, {})
            folder = child
        raw.setdefault(folder, {}).setdefault(parts[-1], asset)
    index: dict[str, dict[str, Entry]] = {}
    for folder, children in raw.items():
        names = unique_names(children)
        entries: dict[str, Entry] = {}
        for part, asset in children.items():
            name = names[part]
            if asset is None:
                path = f"{folder}/{part}" if folder else part
                entries[name] = Entry(name, path, True, 0, folder_mtime.get(path, 0.0))
            else:
                entries[name] = Entry(
                    name,
                    asset.path,
                    False,
                    asset.size,
                    asset.modified.timestamp(),
                    asset_id=asset.asset_id,
                    blob_id=asset.blob,
                    zarr_id=asset.zarr,
                )
        index[folder] = entries
    return index


class PathsView(VersionView):
    """Folders of a huge version: each from ``assets/paths/`` (one request per folder), until
    a walk is detected (``folders.WalkDetector``); then every folder under the walked one from
    the flat asset list, fetched once in parallel pages (``DandiApi.folder_index``), so a
    ``find`` costs about the flat list's pages of what it walks, not one request per folder.

    ``assets/paths/`` gives no timestamps: files and folders carry the version's modified time,
    whichever route answered, so a file's attributes never change with the route.
    """

    def __init__(
        self, ctx: DandiContext, identifier: str, version: str, mtime: float, embargoed: bool
    ) -> None:
        self._ctx = ctx
        self.identifier = self._id = identifier
        self.version = self._version = version
        self._mtime = mtime
        self.embargoed = embargoed

    async def _folder(self, folder: str, listing: bool) -> Mapping[str, Entry]:
        """``listing``: a readdir (a walk is readdirs; a lookup on the way to a path is not)."""
        api = self._ctx.api
        walked = api.folder_index_held(self._id, self._version, folder)
        if walked is None and listing:
            walked = self._ctx.walks.listed(self._id, self._version, folder)
        if walked is not None:
            rows = (await api.folder_index(self._id, self._version, walked)).get(folder)
            if rows is None:
                raise NotFound(f"{self._id}/{self._version}/{folder}")
            return _RowEntries(rows, self._mtime)
        prefix = f"{folder}/" if folder else ""
        items = await api.paths_indexed(self._id, self._version, prefix, _paths_by_name)
        return _PathEntries(items, self._mtime)

    async def entries(self, folder: str) -> Collection[Entry]:
        return (await self._folder(folder, listing=True)).values()

    async def entry(self, folder: str, name: str) -> Entry:
        entry = (await self._folder(folder, listing=False)).get(name)
        if entry is None:
            raise NotFound(f"{self._id}/{self._version}/{folder}/{name}")
        return entry


class _PathEntries(Mapping[str, Entry]):
    """One ``assets/paths/`` level as entries, each built when asked for."""

    def __init__(self, items: Mapping[str, AssetPath], mtime: float) -> None:
        self._items = items
        self._mtime = mtime

    def __getitem__(self, name: str) -> Entry:
        item = self._items[name]
        if item.asset is None:
            return Entry(name, item.path.rstrip("/"), True, 0, self._mtime)
        return Entry(
            name,
            item.path,
            False,
            item.aggregate_size,
            self._mtime,
            asset_id=item.asset.asset_id,
            looks_like_zarr=_base(item).endswith(_ZARR_SUFFIXES),
        )

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)


class _RowEntries(Mapping[str, Entry]):
    """One folder of the flat list's index as entries, each built when asked for."""

    def __init__(self, rows: Mapping[str, Row], mtime: float) -> None:
        self._rows = rows
        self._mtime = mtime

    def __getitem__(self, name: str) -> Entry:
        row = self._rows[name]
        if row.is_folder:
            return Entry(name, row.server_path, True, 0, self._mtime)
        return Entry(
            name,
            row.server_path,
            False,
            row.size,
            self._mtime,
            asset_id=row.asset_id,
            blob_id=row.blob_id,
            zarr_id=row.zarr_id,
        )

    def __iter__(self) -> Iterator[str]:
        return iter(self._rows)

    def __len__(self) -> int:
        return len(self._rows)


def _base(item: AssetPath) -> str:
    return item.path.rstrip("/").rsplit("/", 1)[-1]


def _paths_by_name(items: list[AssetPath]) -> dict[str, AssetPath]:
    """One ``assets/paths/`` level by safe file name; of two items with one name, the first."""
    names = unique_names(_base(item) for item in items)
    by_name: dict[str, AssetPath] = {}
    for item in items:
        by_name.setdefault(names[_base(item)], item)
    return by_name


# ---------------------------------------------------------------- nodes


def _ts(value: object) -> float:
    from datetime import datetime

    return value.timestamp() if isinstance(value, datetime) else 0.0


class SourceRoot(Directory):
    """``<source>/``: one directory per dandiset."""

    def __init__(self, key: NodePath, ctx: DandiContext) -> None:
        super().__init__(key)
        self._ctx = ctx
        self._mtime = time.time()

    async def stat(self) -> Attrs:
        return Attrs(Kind.DIRECTORY, 0, self._mtime)

    async def children(self) -> Sequence[Node]:
        return [
            DandisetDir((*self.key, d.identifier), self._ctx, d)
            for d in await self._ctx.api.dandisets()
        ]

    async def child(self, name: str) -> Node:
        # A direct lookup is one small request, cheaper than the whole listing.
        if not _DANDISET_ID.match(name):
            raise NotFound(name)
        return DandisetDir((*self.key, name), self._ctx, await self._ctx.api.dandiset(name))


class DandisetDir(Directory):
    def __init__(self, key: NodePath, ctx: DandiContext, dandiset: Dandiset) -> None:
        super().__init__(key)
        self._ctx = ctx
        self._d = dandiset

    async def stat(self) -> Attrs:
        return Attrs(Kind.DIRECTORY, 0, _ts(self._d.modified))

    async def children(self) -> Sequence[Node]:
        d = self._d
        nodes: list[Node] = []
        if d.draft_version is not None:
            draft = VersionDir((*self.key, "draft"), self._ctx, d, d.draft_version)
            nodes.append(draft)
            nodes.append(
                AssetMetadataDir(
                    (*self.key, ASSET_METADATA_DIR), self._ctx, draft.view, "", draft.mtime
                )
            )
        nodes.append(ReleasesDir((*self.key, "releases"), self._ctx, d))
        latest = d.most_recent_published_version
        if latest is not None:
            nodes.append(
                Symlink(
                    (*self.key, "latest"),
                    f"releases/{safe_name(latest.version)}",
                    _ts(latest.modified),
                )
            )
        return nodes


class ReleasesDir(Directory):
    def __init__(self, key: NodePath, ctx: DandiContext, dandiset: Dandiset) -> None:
        super().__init__(key)
        self._ctx = ctx
        self._d = dandiset

    async def stat(self) -> Attrs:
        return Attrs(Kind.DIRECTORY, 0, _ts(self._d.modified))

    async def _releases(self) -> Mapping[str, VersionSummary]:
        if self._d.most_recent_published_version is None:
            return {}
        return await self._ctx.api.releases_indexed(self._d.identifier, _releases_by_name)

    def _node(self, name: str, version: VersionSummary) -> Node:
        return VersionDir((*self.key, name), self._ctx, self._d, version)

    async def children(self) -> Sequence[Node]:
        return [self._node(name, v) for name, v in (await self._releases()).items()]

    async def child(self, name: str) -> Node:
        version = (await self._releases()).get(name)
        if version is None:
            raise NotFound("/".join((*self.key, name)))
        return self._node(name, version)


def _releases_by_name(releases: list[VersionSummary]) -> dict[str, VersionSummary]:
    """Published versions by safe directory name; a repeated version: the first."""
    names = unique_names(v.version for v in releases)
    by_name: dict[str, VersionSummary] = {}
    for v in releases:
        by_name.setdefault(names[v.version], v)
    return by_name


class FolderDir(Directory):
    """A folder inside a version (the version root is a FolderDir too)."""

    def __init__(
        self,
        key: NodePath,
        ctx: DandiContext,
        view: VersionView,
        folder: str,
        mtime: float,
        immutable: bool,
    ) -> None:
        super().__init__(key)
        self._ctx = ctx
        self._view = view
        self._folder = folder
        # Draft folders take editors' scratch files (and, with them, edits of sidecars).
        self.accepts_scratch = not immutable
        self._attrs = Attrs(Kind.DIRECTORY, 0, mtime, writable=not immutable, immutable=immutable)

    async def stat(self) -> Attrs:
        return self._attrs

    async def children(self) -> Sequence[Node]:
        return [self._node(e) for e in await self._view.entries(self._folder)]

    async def child(self, name: str) -> Node:
        return self._node(await self._entry(name))

    async def _entry(self, name: str) -> Entry:
        try:
            return await self._view.entry(self._folder, name)
        except NotFound:
            raise NotFound("/".join((*self.key, name))) from None

    def _draft_only(self, name: str) -> None:
        if self._attrs.immutable:
            raise ReadOnly(f"{'/'.join((*self.key, name))}: published versions are immutable")

    async def rename_child(self, name: str, new_parent: Directory, new_name: str) -> None:
        self._draft_only(name)
        if not (
            isinstance(new_parent, FolderDir)
            and new_parent._view.identifier == self._view.identifier
            and not new_parent._attrs.immutable
        ):
            raise ReadOnly("assets can only be moved within their own draft")
        entry = await self._entry(name)
        target = f"{new_parent._folder}/{new_name}" if new_parent._folder else new_name
        await edits.move(
            self._ctx.api, self._view.identifier, entry.server_path, target, entry.is_folder
        )

    async def remove_child(self, name: str) -> None:
        self._draft_only(name)
        entry = await self._entry(name)
        if entry.is_folder:
            raise IsADirectory("/".join((*self.key, name)))
        await edits.delete(self._ctx.api, self._view.identifier, entry.server_path)

    async def remove_directory(self, name: str) -> None:
        self._draft_only(name)
        try:
            entry = await self._entry(name)
        except NotFound:
            return  # folders exist only through their assets: an emptied one is already gone
        if not entry.is_folder:
            raise ReadOnly(f"{'/'.join((*self.key, name))}: zarr assets cannot be removed here")
        if await self._view.entries(entry.server_path):
            raise NotEmpty("/".join((*self.key, name)))

    def _node(self, e: Entry) -> Node:
        ctx, key, immutable = self._ctx, (*self.key, e.name), self._attrs.immutable
        if e.is_folder:
            return FolderDir(key, ctx, self._view, e.server_path, e.mtime, immutable)
        if e.zarr_id is not None or (e.blob_id is None and e.looks_like_zarr):
            return ZarrDir(key, ctx, e, self._view.embargoed)
        return _blob_file(key, ctx, e, immutable, self._view.embargoed)


def _blob_file(
    key: NodePath, ctx: DandiContext, e: Entry, immutable: bool, embargoed: bool
) -> BlobFile:
    return BlobFile(key, ctx, e, immutable, embargoed)


class BlobFile(RemoteFile):
    """A blob asset as a file. Its attributes and object are made from its entry when
    asked for, not held: a walk of a huge dandiset keeps one node per file the kernel knows,
    so a node holds only its entry (no closures, no attributes object)."""

    keep_cache = True  # an asset's blob never changes

    def __init__(
        self, key: NodePath, ctx: DandiContext, entry: Entry, immutable: bool, embargoed: bool
    ) -> None:
        File.__init__(self, key)  # not RemoteFile's: nothing it holds is needed here
        self._ctx = ctx
        self._entry = entry
        self._embargoed = embargoed
        self._immutable = immutable
        assert entry.asset_id is not None
        self.xattrs = asset_digest(ctx.api, entry.asset_id, immutable=True)

    async def stat(self) -> Attrs:
        e = self._entry
        return Attrs(Kind.FILE, e.size, e.mtime, immutable=self._immutable)

    async def _object(self) -> RemoteObject:
        e, api = self._entry, self._ctx.api
        asset_id = e.asset_id
        assert asset_id is not None
        blob_id = e.blob_id
        if blob_id is None:  # the paths view does not name the blob
            info = await api.asset_info(asset_id)
            if info.blob is None:
                raise RemoteError(f"asset {asset_id} has no blob")
            blob_id = info.blob
        return DandiBlob(api, asset_id, blob_id, e.size, embargoed=self._embargoed)

    async def open(self) -> FileHandle:
        return RemoteHandle(self._ctx.fetcher, await self._object(), None)

    async def drop_cached(self) -> int:
        return await self._ctx.fetcher.drop(await self._object())


class VersionDir(FolderDir):
    """A version root: ``dandiset.yaml`` plus the top-level assets and folders."""

    def __init__(
        self, key: NodePath, ctx: DandiContext, dandiset: Dandiset, version: VersionSummary
    ) -> None:
        identifier, v = dandiset.identifier, version.version
        mtime = _ts(version.modified)
        view: VersionView
        if version.asset_count <= ctx.options.flat_listing_max_assets:
            view = FlatView(ctx, identifier, v, dandiset.embargoed)
        else:
            view = PathsView(ctx, identifier, v, mtime, dandiset.embargoed)
        super().__init__(key, ctx, view, "", mtime, immutable=v != "draft")
        self._identifier = identifier
        self._version = v
        self.view = view
        self.mtime = mtime

    async def children(self) -> Sequence[Node]:
        # The listing shows dandiset.yaml's exact size, which takes the version's metadata:
        # asked for beside the assets, not after them (one round trip less for `ls`, `find`).
        async with tasks_of_one_request() as nursery:
            nursery.start_soon(self._metadata_ahead)
            assets = await super().children()
        return [self._metadata_file(), *(n for n in assets if n.name != METADATA_FILE)]

    async def _metadata_ahead(self) -> None:
        """The version's metadata, remembered for dandiset.yaml; a failure is the file's to
        report when it is listed or opened, not the folder's."""
        with contextlib.suppress(NeurofsError):
            await self._ctx.api.version_info(self._identifier, self._version)

    async def child(self, name: str) -> Node:
        if name == METADATA_FILE:
            return self._metadata_file()
        return await super().child(name)

    def _metadata_file(self) -> Sidecar:
        return dandiset_yaml(
            self._ctx.api,
            (*self.key, METADATA_FILE),
            self._identifier,
            self._version,
            self._attrs.mtime,
        )


class AssetMetadataDir(Directory):
    """``draft.meta/``: mirrors the draft's folders; each asset (blob or zarr) is a YAML
    sidecar of its metadata at the same relative path, so no name can collide with an
    asset's. Editing one PUTs the asset (which gives it a new id)."""

    accepts_scratch = True

    def __init__(
        self, key: NodePath, ctx: DandiContext, view: VersionView, folder: str, mtime: float
    ) -> None:
        super().__init__(key)
        self._ctx = ctx
        self._view = view
        self._folder = folder
        self._attrs = Attrs(Kind.DIRECTORY, 0, mtime, writable=True)

    async def stat(self) -> Attrs:
        return self._attrs

    def _node(self, e: Entry) -> Node:
        key = (*self.key, e.name)
        if e.is_folder:
            return AssetMetadataDir(key, self._ctx, self._view, e.server_path, e.mtime)
        return asset_yaml(self._ctx.api, key, self._view.identifier, e.server_path, e.mtime)

    async def children(self) -> Sequence[Node]:
        return [self._node(e) for e in await self._view.entries(self._folder)]

    async def child(self, name: str) -> Node:
        try:
            return self._node(await self._view.entry(self._folder, name))
        except NotFound:
            raise NotFound("/".join((*self.key, name))) from None


class ZarrDir(Directory):
    """A zarr asset: its keys as a directory tree, one level per directory (listed and
    looked up through ``zarr_listing``, never as a whole)."""

    def __init__(
        self, key: NodePath, ctx: DandiContext, entry: Entry, embargoed: bool, prefix: str = ""
    ) -> None:
        super().__init__(key)
        self._ctx = ctx
        self._entry = entry
        self._embargoed = embargoed
        self._prefix = prefix  # '' for the zarr root, else 'a/b/'
        if not prefix and entry.asset_id is not None:  # the zarr's checksum, on its root
            self.xattrs = asset_digest(ctx.api, entry.asset_id, immutable=False)

    async def stat(self) -> Attrs:
        return Attrs(Kind.DIRECTORY, 0, self._entry.mtime)

    async def _zarr_id(self) -> str:
        if self._entry.zarr_id is not None:
            return self._entry.zarr_id
        assert self._entry.asset_id is not None
        info = await self._ctx.api.asset_info(self._entry.asset_id)
        if info.zarr is None:
            raise RemoteError(f"asset {self._entry.asset_id} is not a zarr")
        return info.zarr

    async def children(self) -> Sequence[Node]:
        zarr_id = await self._zarr_id()
        level = await self._ctx.zarr_listing.level(zarr_id, self._prefix, self._embargoed)
        return [self._node(zarr_id, name, e) for name, e in level.items()]

    async def child(self, name: str) -> Node:
        zarr_id = await self._zarr_id()
        listing = self._ctx.zarr_listing
        try:
            entry = await listing.entry(zarr_id, self._prefix, name, self._embargoed)
        except NotFound:
            raise NotFound("/".join((*self.key, name))) from None
        return self._node(zarr_id, name, entry)

    def _node(self, zarr_id: str, name: str, e: ZarrEntry) -> Node:
        key = (*self.key, name)
        if isinstance(e, str):  # a sub-directory's prefix
            return ZarrDir(key, self._ctx, self._entry, self._embargoed, e)
        return self._file(key, zarr_id, e)

    def _file(self, key: NodePath, zarr_id: str, f: ZarrFile) -> RemoteFile:
        obj = DandiZarrFile(self._ctx.zarr_keys, zarr_id, f, self._embargoed)

        async def resolve() -> RemoteObject:
            return obj

        return RemoteFile(
            key,
            size=f.size,
            mtime=f.last_modified.timestamp(),
            fetcher=self._ctx.fetcher,
            resolve=resolve,
            immutable=False,
            xattrs=key_digest(f),
        )

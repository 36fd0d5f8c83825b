"""The emulator's in-memory DANDI Archive: users, dandisets, versions, assets, blobs, zarrs.

This mirrors the real server's data model (dandi-archive ``dandiapi/api/models``) closely
enough that its read semantics can be reproduced and that the write routes (PUT draft
metadata, asset POST/PUT/DELETE; rules in :mod:`.writes`) are plain mutations:

- an :class:`Asset` is immutable content + metadata with its own ``asset_id``; versions hold
  *references* to assets, so a published version and the draft share unchanged assets, and a
  metadata edit creates a new asset (new id) that replaces the old one in the draft only;
- blobs and zarrs are shared, content-addressed objects (a blob id never changes);
- every mutation of a version's asset set must call :meth:`Version.touch` so the cached path
  index (``assets/paths/``) is rebuilt.

Byte sources are abstract (:class:`ByteSource`) so blobs can live in memory, in a file, or be
generated on the fly (the 1 GiB sample blob is never stored).
"""

from __future__ import annotations

import os
import threading
from abc import abstractmethod
from bisect import bisect_left
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np

if TYPE_CHECKING:
    from neurofs_emulators.dandi.large_dandiset import ComputedAssets

EmbargoStatus = Literal["OPEN", "EMBARGOED", "UNEMBARGOING"]
VersionStatus = Literal["Pending", "Validating", "Valid", "Invalid", "Publishing", "Published"]
AssetStatus = Literal["Pending", "Validating", "Valid", "Invalid"]
ZarrStatus = Literal["Pending", "Uploaded", "Ingesting", "Complete"]

# Computed keys the server adds to an asset's stored metadata when serving it
# (dandiapi.api.models.asset.ASSET_COMPUTED_FIELDS).
ASSET_COMPUTED_FIELDS = (
    "id",
    "access",
    "path",
    "identifier",
    "contentUrl",
    "contentSize",
    "digest",
    "datePublished",
    "publishedBy",
)


# --------------------------------------------------------------------------- byte sources


class ByteSource(Protocol):
    """Where a blob's or zarr file's bytes come from."""

    @property
    def size(self) -> int: ...

    def read(self, start: int, end: int) -> bytes:
        """Bytes ``[start, end)``; callers clamp to ``0 <= start <= end <= size``."""
        ...


@dataclass(frozen=True)
class BytesSource:
    """Bytes held in memory (small blobs and zarr chunks)."""

    data: bytes

    @property
    def size(self) -> int:
        return len(self.data)

    def read(self, start: int, end: int) -> bytes:
        return self.data[start:end]


@dataclass(frozen=True)
class FileSource:
    """Bytes of a file on disk, read with ``pread`` (safe from several threads)."""

    path: Path
    length: int

    @property
    def size(self) -> int:
        return self.length

    def read(self, start: int, end: int) -> bytes:
        fd = os.open(self.path, os.O_RDONLY)
        try:
            out = bytearray()
            while start + len(out) < end:
                chunk = os.pread(fd, end - start - len(out), start + len(out))
                if not chunk:
                    raise OSError(f"{self.path} is shorter than expected")
                out += chunk
            return bytes(out)
        finally:
            os.close(fd)


GENERATED_BLOCK = 1 << 20


class GeneratedSource:
    """Pseudo-random bytes computed on demand, never stored.

    Block ``k`` (1 MiB) is the raw output of numpy's PCG64 bit generator seeded with
    ``(key, k)``. The raw bit stream of a BitGenerator is stable across numpy versions, so any
    byte range is reproducible anywhere (tests recompute it with :func:`generated_block`).
    """

    def __init__(self, key: int, size: int) -> None:
        self.key = key
        self._size = size
        self._lock = threading.Lock()
        # A few recent blocks: sequential small reads must not regenerate a block each time.
        self._cache: OrderedDict[int, bytes] = OrderedDict()

    @property
    def size(self) -> int:
        return self._size

    def block(self, index: int) -> bytes:
        with self._lock:
            hit = self._cache.get(index)
            if hit is not None:
                self._cache.move_to_end(index)
                return hit
        data = generated_block(self.key, index, self._size)
        with self._lock:
            self._cache[index] = data
            while len(self._cache) > 8:
                self._cache.popitem(last=False)
        return data

    def read(self, start: int, end: int) -> bytes:
        out = bytearray()
        pos = start
        while pos < end:
            index, offset = divmod(pos, GENERATED_BLOCK)
            block = self.block(index)
            take = min(end - pos, len(block) - offset)
            out += block[offset : offset + take]
            pos += take
        return bytes(out)


def generated_block(key: int, index: int, total_size: int) -> bytes:
    """Block ``index`` of the generated byte stream ``key`` (truncated at ``total_size``)."""
    start = index * GENERATED_BLOCK
    length = max(0, min(GENERATED_BLOCK, total_size - start))
    words = np.random.PCG64([key, index]).random_raw((GENERATED_BLOCK + 7) // 8)
    return np.asarray(words, dtype="<u8").tobytes()[:length]


# --------------------------------------------------------------------------- model objects


@dataclass
class User:
    username: str
    first_name: str
    last_name: str
    email: str
    token: str
    admin: bool = False
    status: str = "APPROVED"

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()


@dataclass
class Blob:
    blob_id: str
    size: int
    etag: str
    sha256: str
    source: ByteSource
    created: datetime
    embargoed: bool = False

    @property
    def s3_key(self) -> str:
        # The archive stores blobs under blobs/<first 3>/<next 3>/<blob id>.
        return f"blobs/{self.blob_id[:3]}/{self.blob_id[3:6]}/{self.blob_id}"


@dataclass
class ZarrFile:
    key: str  # relative to the zarr root
    size: int
    md5: str  # the S3 ETag of a single-part upload
    last_modified: datetime
    source: ByteSource


class ZarrFiles(Mapping[str, ZarrFile]):
    """A zarr's files by key, iterated in S3 listing order (bytes of the UTF-8 key, which is
    the order of Python's ``str`` comparison). Listings start anywhere with :meth:`keys_from`,
    so a zarr whose keys are computed (:mod:`.large_zarr`) never needs its whole key list."""

    @abstractmethod
    def keys_from(self, lowest: str) -> Iterator[str]:
        """Keys ``>= lowest``, in order, lazily."""

    @property
    @abstractmethod
    def total_size(self) -> int: ...

    def __iter__(self) -> Iterator[str]:
        return self.keys_from("")


class StoredZarrFiles(ZarrFiles):
    """Files held in a dict (the demo zarrs: a few hundred keys)."""

    def __init__(self, files: Mapping[str, ZarrFile]) -> None:
        self._files = dict(files)
        self._keys = sorted(self._files)

    def __getitem__(self, key: str) -> ZarrFile:
        return self._files[key]

    def __len__(self) -> int:
        return len(self._keys)

    def keys_from(self, lowest: str) -> Iterator[str]:
        return iter(self._keys[bisect_left(self._keys, lowest) :])

    @property
    def total_size(self) -> int:
        return sum(f.size for f in self._files.values())


@dataclass
class Zarr:
    zarr_id: str
    name: str
    dandiset: str  # identifier of the one dandiset a zarr belongs to
    files: ZarrFiles
    checksum: str | None
    created: datetime
    modified: datetime
    status: ZarrStatus = "Complete"
    embargoed: bool = False

    @property
    def size(self) -> int:
        return self.files.total_size

    @property
    def file_count(self) -> int:
        return len(self.files)

    @property
    def s3_prefix(self) -> str:
        return f"zarr/{self.zarr_id}/"

    def sorted_keys(self) -> list[str]:
        return list(self.files)


@dataclass
class Asset:
    pk: int  # creation order; tie-breaker for ordering like the database's id
    asset_id: str
    path: str
    blob: Blob | None
    zarr: Zarr | None
    metadata: dict[str, Any]  # as stored (computed keys only for published assets)
    created: datetime
    modified: datetime
    published: bool = False
    status: AssetStatus = "Valid"
    validation_errors: list[dict[str, Any]] = field(default_factory=list)
    # When the emulated background validation of a Pending asset is due (see writes.settle).
    validation_due: datetime | None = None

    @property
    def size(self) -> int:
        if self.blob is not None:
            return self.blob.size
        assert self.zarr is not None
        return self.zarr.size

    @property
    def is_embargoed(self) -> bool:
        if self.blob is not None:
            return self.blob.embargoed
        assert self.zarr is not None
        return self.zarr.embargoed


@dataclass
class PathNode:
    """One row of the real server's AssetPath table: a folder or an asset's leaf path."""

    path: str
    aggregate_files: int = 0
    aggregate_size: int = 0
    asset: Asset | None = None


@dataclass
class PathIndex:
    nodes: dict[str, PathNode]
    children: dict[str, list[str]]  # "" is the root; child paths sorted (C collation)


@dataclass
class Version:
    pk: int
    dandiset: Dandiset
    version: str  # "draft" or "0.YYMMDD.HHMM"
    name: str
    metadata: dict[str, Any]  # as stored; manifestLocation is added when served
    status: VersionStatus
    created: datetime
    modified: datetime
    release_notes: str = ""
    validation_errors: list[dict[str, Any]] = field(default_factory=list)
    # When the emulated background validation of a Pending draft is due (see writes.settle).
    validation_due: datetime | None = None
    # Ordered by asset pk (the order assets were added).
    assets: dict[int, Asset] = field(default_factory=dict)
    _paths: PathIndex | None = field(default=None, repr=False)
    # A version of the scale sample: its assets are computed on demand (``assets`` stays
    # empty and the asset views ask this instead).
    computed: ComputedAssets | None = field(default=None, repr=False)

    @property
    def is_draft(self) -> bool:
        return self.version == "draft"

    def touch(self) -> None:
        """Invalidate caches derived from the asset set (call after every change)."""
        self._paths = None

    def add_asset(self, asset: Asset) -> None:
        self.assets[asset.pk] = asset
        self.touch()

    def remove_asset(self, asset: Asset) -> None:
        self.assets.pop(asset.pk, None)
        self.touch()

    def asset_by_id(self, asset_id: str) -> Asset | None:
        if self.computed is not None:
            return self.computed.by_asset_id(asset_id)
        for asset in self.assets.values():
            if asset.asset_id == asset_id:
                return asset
        return None

    @property
    def paths(self) -> PathIndex:
        if self._paths is None:
            self._paths = build_path_index(self.assets.values())
        return self._paths

    @property
    def asset_count(self) -> int:
        if self.computed is not None:
            return self.computed.count
        return sum(self.paths.nodes[p].aggregate_files for p in self.paths.children.get("", []))

    @property
    def size(self) -> int:
        if self.computed is not None:
            return self.computed.total_size
        return sum(self.paths.nodes[p].aggregate_size for p in self.paths.children.get("", []))


@dataclass
class Dandiset:
    identifier: str  # six digits
    created: datetime
    modified: datetime
    owners: list[str]  # usernames
    embargo_status: EmbargoStatus = "OPEN"
    embargo_end_date: date | None = None
    versions: dict[str, Version] = field(default_factory=dict)
    star_count: int = 0

    @property
    def draft(self) -> Version:
        return self.versions["draft"]

    @property
    def published_versions(self) -> list[Version]:
        return [v for v in self.versions.values() if not v.is_draft]

    @property
    def most_recent_published_version(self) -> Version | None:
        published = sorted(self.published_versions, key=lambda v: (v.modified, v.pk))
        return published[-1] if published else None

    @property
    def latest_version(self) -> Version:
        """The most recently created version (what ordering and contact_person look at)."""
        return max(self.versions.values(), key=lambda v: (v.created, v.pk))

    @property
    def is_open(self) -> bool:
        return self.embargo_status == "OPEN"


def build_path_index(assets: Iterable[Asset]) -> PathIndex:
    nodes: dict[str, PathNode] = {}
    children: dict[str, set[str]] = {}
    for asset in assets:
        parts = asset.path.split("/")
        parent = ""
        for depth in range(1, len(parts) + 1):
            path = "/".join(parts[:depth])
            node = nodes.get(path)
            if node is None:
                node = nodes[path] = PathNode(path)
                children.setdefault(parent, set()).add(path)
            node.aggregate_files += 1
            node.aggregate_size += asset.size
            parent = path
        nodes[asset.path].asset = asset
    # The server's AssetPath.path uses the C collation: plain byte order.
    return PathIndex(
        nodes=nodes,
        children={k: sorted(v, key=lambda s: s.encode()) for k, v in children.items()},
    )


# --------------------------------------------------------------------------- the archive


class Archive:
    """All state of one emulated DANDI instance, plus the lookups the API views need."""

    def __init__(self) -> None:
        self.users: dict[str, User] = {}
        self.dandisets: dict[str, Dandiset] = {}
        self.assets: dict[str, Asset] = {}  # every asset ever created, attached or not
        self.blobs: dict[str, Blob] = {}
        self.zarrs: dict[str, Zarr] = {}
        # The scale sample's asset sets, computed on demand (never in ``assets``/``blobs``).
        self.computed_assets: list[ComputedAssets] = []
        self._next_asset_pk = 1
        self._next_version_pk = 1
        # Background validation waiting to happen (writes.settle finishes it when due).
        self.pending_assets: dict[str, Asset] = {}
        self.pending_versions: dict[int, Version] = {}

    # ---- construction helpers (used by the sample builder and by the write routes)

    def add_user(self, user: User) -> User:
        self.users[user.username] = user
        return user

    def add_blob(self, blob: Blob) -> Blob:
        self.blobs[blob.blob_id] = blob
        return blob

    def add_zarr(self, zarr: Zarr) -> Zarr:
        self.zarrs[zarr.zarr_id] = zarr
        return zarr

    def add_dandiset(self, dandiset: Dandiset) -> Dandiset:
        self.dandisets[dandiset.identifier] = dandiset
        return dandiset

    def new_version(self, dandiset: Dandiset, **fields: Any) -> Version:
        version = Version(pk=self._next_version_pk, dandiset=dandiset, **fields)
        self._next_version_pk += 1
        dandiset.versions[version.version] = version
        return version

    def new_asset(self, **fields: Any) -> Asset:
        asset = Asset(pk=self._next_asset_pk, **fields)
        self._next_asset_pk += 1
        self.assets[asset.asset_id] = asset
        return asset

    # ---- lookups

    def user_for_token(self, token: str) -> User | None:
        for user in self.users.values():
            if user.token == token:
                return user
        return None

    def is_owner(self, user: User | None, dandiset: Dandiset) -> bool:
        return user is not None and (user.admin or user.username in dandiset.owners)

    def visible_dandisets(self, user: User | None) -> list[Dandiset]:
        """Open dandisets plus the embargoed ones the user owns, in creation order."""
        out = [d for d in self.dandisets.values() if d.is_open or self.is_owner(user, d)]
        return sorted(out, key=lambda d: (d.created, d.identifier))

    def owned_dandisets(self, user: User | None) -> list[Dandiset]:
        if user is None:
            return []
        out = [d for d in self.dandisets.values() if user.username in d.owners]
        return sorted(out, key=lambda d: (d.created, d.identifier))

    def asset_dandisets(self, asset: Asset) -> list[Dandiset]:
        return [
            d
            for d in self.dandisets.values()
            if any(asset.pk in v.assets for v in d.versions.values())
        ]

    def blob_by_digest(self, algorithm: str, value: str) -> Blob | None:
        for blob in self.blobs.values():
            if (algorithm == "dandi:dandi-etag" and blob.etag == value) or (
                algorithm == "dandi:sha2-256" and blob.sha256 == value
            ):
                return blob
        return None

    def blob_by_s3_key(self, key: str) -> Blob | None:
        blob = self.blobs.get(key.rpartition("/")[2])
        if blob is None or blob.s3_key != key:
            return next(
                (b for c in self.computed_assets if (b := c.blob_by_s3_key(key)) is not None),
                None,
            )
        return blob

    def asset(self, asset_id: str) -> Asset | None:
        """Any asset by id, stored or computed."""
        asset = self.assets.get(asset_id)
        if asset is None:
            asset = next(
                (a for c in self.computed_assets if (a := c.by_asset_id(asset_id)) is not None),
                None,
            )
        return asset

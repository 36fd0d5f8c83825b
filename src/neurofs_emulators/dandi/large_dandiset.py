"""The scale sample's dandiset ``000100``: 100,000 assets computed on demand.

``neurofs emulate dandi --sample large`` adds it beside the demo dandisets. Nothing about its
assets is stored: asset ``i`` (0 ≤ i < 100,000) is a pure function of the seed and ``i`` —
its path, ids, size, times, metadata and bytes — so the emulator starts at once and its
memory does not grow with the dandiset. Only two arrays are kept: the sizes (drawn once from
the seed) and their running sum, which gives any folder's ``aggregate_size`` in O(1).

Layout: ``sub-SSSS/ses-TT/sub-SSSS_ses-TT_run-RRR.bin``, 100 subjects × 10 sessions × 100
runs, so 1,100 folders three levels deep and 100 files per session folder. Asset ``i`` has
subject ``i // 1000``, session ``i // 100 % 10`` and run ``i % 100``: index order is the
path order (C collation), the creation order and the modification order, so the asset list
can be paged, filtered and ordered by computing index ranges, never by sorting 100,000 rows.

The published version ``0.240601.1200`` and the draft hold the same (published) assets, as
the real archive's versions share unchanged assets. The dandiset has no owner: nobody can
write to it, so the computed asset set never changes.
"""

from __future__ import annotations

import hashlib
import re
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, overload

import numpy as np

from neurofs.io.digests import DandiEtagHasher
from neurofs_emulators.dandi.archive import Archive, Asset, Blob, Dandiset, PathNode, Version
from neurofs_emulators.dandi.metadata import (
    ECEPHYS_APPROACH,
    MULTI_ELECTRODE,
    DandisetText,
    asset_metadata,
    person,
    publish_activity,
    version_metadata,
)
from neurofs_emulators.dandi.models import drf_datetime

LARGE_DANDISET = "000100"
LARGE_RELEASE = "0.240601.1200"
SUBJECTS = 100
SESSIONS = 10  # per subject
RUNS = 100  # files per session
ASSET_COUNT = SUBJECTS * SESSIONS * RUNS
MIN_SIZE, MAX_SIZE = 1024, 16384  # bytes per blob, drawn uniformly from the seed
# Asset pks far above the archive's own counter, so orderings by pk never mix them up.
PK_BASE = 1_000_000_000

_CREATED = datetime(2024, 5, 2, 8, 0, tzinfo=UTC)
_PUBLISHED = datetime(2024, 6, 1, 12, 0, 3, tzinfo=UTC)
_DRAFT_MODIFIED = datetime(2024, 6, 1, 12, 5, tzinfo=UTC)
_SCHEMA = "0.6.7"
_PATH = re.compile(r"^sub-(\d{4})/ses-(\d{2})/sub-(\d{4})_ses-(\d{2})_run-(\d{3})\.bin$")
_TEXT = DandisetText(
    name="Large-scale survey of cortical recordings (computed sample)",
    description=(
        "The neurofs emulator's scale sample: 100,000 small recordings of 100 subjects in "
        "10 sessions each, computed on demand from the emulator's seed."
    ),
    keywords=["scale", "ecephys"],
    contributors=[person("Doe, Jane", ["dcite:Author", "dcite:ContactPerson"])],
    about=[],
    related=[],
)


def subject_name(s: int) -> str:
    return f"sub-{s:04d}"


def session_path(s: int, t: int) -> str:
    return f"sub-{s:04d}/ses-{t:02d}"


def asset_path(i: int) -> str:
    s, t, r = i // (SESSIONS * RUNS), i // RUNS % SESSIONS, i % RUNS
    return f"sub-{s:04d}/ses-{t:02d}/sub-{s:04d}_ses-{t:02d}_run-{r:03d}.bin"


def path_index(path: str) -> int | None:
    """The asset index of an exact path, or None."""
    m = _PATH.match(path)
    if m is None or m[1] != m[3] or m[2] != m[4]:
        return None
    s, t, r = int(m[1]), int(m[2]), int(m[5])
    if s >= SUBJECTS or t >= SESSIONS:
        return None
    return (s * SESSIONS + t) * RUNS + r


class SeededBytes:
    """A blob's bytes: the raw PCG64 stream seeded with (key, index), cut at ``size``."""

    def __init__(self, key: int, index: int, size: int) -> None:
        self._key, self._index, self._size = key, index, size

    @property
    def size(self) -> int:
        return self._size

    def all(self) -> bytes:
        words = np.random.PCG64([self._key, self._index]).random_raw((self._size + 7) // 8)
        return np.asarray(words, dtype="<u8").tobytes()[: self._size]

    def read(self, start: int, end: int) -> bytes:
        return self.all()[start:end]


class ComputedBlob(Blob):
    """A blob whose digests are computed from its bytes only when a payload shows them
    (an asset list page without metadata needs none)."""

    def __init__(self, blob_id: str, source: SeededBytes, created: datetime) -> None:
        self.blob_id = blob_id
        self.size = source.size
        self.source = self._bytes = source
        self.created = created
        self.embargoed = False
        self._digests: tuple[str, str] | None = None

    def _digest(self) -> tuple[str, str]:
        if self._digests is None:
            data = self._bytes.all()
            etag = DandiEtagHasher(len(data))
            etag.update(data)
            self._digests = (etag.hexdigest(), hashlib.sha256(data).hexdigest())
        return self._digests

    @property
    def etag(self) -> str:
        return self._digest()[0]

    @etag.setter
    def etag(self, value: str) -> None:
        raise AttributeError("a computed blob's digests follow from its bytes")

    @property
    def sha256(self) -> str:
        return self._digest()[1]

    @sha256.setter
    def sha256(self, value: str) -> None:
        raise AttributeError("a computed blob's digests follow from its bytes")


class ComputedAsset(Asset):
    """An asset whose metadata is built only when a payload shows it (an asset list page
    without ``metadata=true`` needs none)."""

    def __init__(
        self, pk: int, asset_id: str, path: str, blob: Blob, created: datetime, modified: datetime
    ) -> None:
        self.pk, self.asset_id, self.path = pk, asset_id, path
        self.blob, self.zarr = blob, None
        self.created, self.modified = created, modified
        self.published = True
        self.status = "Valid"
        self.validation_errors = []
        self.validation_due = None

    @property
    def metadata(self) -> dict[str, Any]:
        i = self.pk - PK_BASE
        s, t = i // (SESSIONS * RUNS), i // RUNS % SESSIONS
        metadata = asset_metadata(
            self.path,
            "application/octet-stream",
            _SCHEMA,
            self.created,
            subject=f"{s:04d}",
            session=f"ses-{t:02d}",
            approach=[ECEPHYS_APPROACH],
            techniques=[MULTI_ELECTRODE],
        )
        # Published with the release: stamped as the server's publish task stamps them.
        metadata["datePublished"] = self.modified.isoformat()
        metadata["publishedBy"] = publish_activity(
            LARGE_DANDISET, f"{LARGE_RELEASE}/{self.path}", self.modified
        )
        return metadata

    @metadata.setter
    def metadata(self, value: dict[str, Any]) -> None:
        raise AttributeError("a computed asset's metadata follows from its index")


@dataclass(frozen=True)
class _Node:
    """A folder of the layout: its path and the index range of the assets below it."""

    path: str
    start: int
    stop: int


class ComputedAssets:
    """The 100,000 assets of :data:`LARGE_DANDISET`, computed from the seed on demand."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        # A per-seed tag in every id: two seeds never share an asset or blob id.
        self._tag = zlib.crc32(f"neurofs-large-dandiset-{seed}".encode())
        rng = np.random.Generator(np.random.PCG64([seed, 100]))
        self._sizes = rng.integers(MIN_SIZE, MAX_SIZE + 1, ASSET_COUNT, dtype=np.int64)
        self._cumsum = np.concatenate([[0], np.cumsum(self._sizes)])
        self._asset_id = re.compile(rf"^{self._tag:08x}-0100-4a55-8e7a-([0-9a-f]{{12}})$")
        self._blob_id = re.compile(rf"^{self._tag:08x}-0100-4b10-8b10-([0-9a-f]{{12}})$")

    # ---- ids and sizes

    @property
    def count(self) -> int:
        return ASSET_COUNT

    @property
    def total_size(self) -> int:
        return int(self._cumsum[-1])

    def size(self, i: int) -> int:
        return int(self._sizes[i])

    def range_size(self, start: int, stop: int) -> int:
        return int(self._cumsum[stop] - self._cumsum[start])

    def asset_id(self, i: int) -> str:
        return f"{self._tag:08x}-0100-4a55-8e7a-{i:012x}"

    def blob_id(self, i: int) -> str:
        return f"{self._tag:08x}-0100-4b10-8b10-{i:012x}"

    def _index_of(self, pattern: re.Pattern[str], text: str) -> int | None:
        m = pattern.match(text)
        if m is None:
            return None
        i = int(m[1], 16)
        return i if i < ASSET_COUNT else None

    def by_asset_id(self, asset_id: str) -> Asset | None:
        i = self._index_of(self._asset_id, asset_id)
        return None if i is None else self.asset(i)

    def by_path(self, path: str) -> Asset | None:
        i = path_index(path)
        return None if i is None else self.asset(i)

    def blob_by_s3_key(self, key: str) -> Blob | None:
        i = self._index_of(self._blob_id, key.rpartition("/")[2])
        if i is None:
            return None
        blob = self.blob(i)
        return blob if blob.s3_key == key else None

    # ---- the objects, built when asked for

    def blob(self, i: int) -> Blob:
        return ComputedBlob(
            self.blob_id(i),
            SeededBytes(self._tag, i, self.size(i)),
            _CREATED + timedelta(seconds=i),
        )

    def asset(self, i: int) -> Asset:
        return ComputedAsset(
            PK_BASE + i,
            self.asset_id(i),
            asset_path(i),
            self.blob(i),
            _CREATED + timedelta(seconds=i),
            _PUBLISHED + timedelta(microseconds=i),
        )

    def item(self, i: int) -> dict[str, Any]:
        """Asset ``i`` as an asset list shows it without metadata (``AssetSerializer``),
        written straight as JSON values: a page of 1,000 costs no model objects."""
        return {
            "asset_id": self.asset_id(i),
            "blob": self.blob_id(i),
            "zarr": None,
            "path": asset_path(i),
            "size": self.size(i),
            "created": drf_datetime(_CREATED + timedelta(seconds=i)),
            "modified": drf_datetime(_PUBLISHED + timedelta(microseconds=i)),
        }

    # ---- listings

    def matching(self, path: str | None, glob: str | None, descending: bool) -> AssetRows:
        """The assets of ``assets/?path=&glob=`` in path (= index) order, or reversed.

        ``path``: the exact asset if there is one, else every asset whose path starts with
        it, case-insensitively (as the real filter, ``path__istartswith``)."""
        indices: np.ndarray[Any, np.dtype[np.int64]]
        if not path:
            indices = np.arange(ASSET_COUNT, dtype=np.int64)
        elif (exact := path_index(path)) is not None:
            indices = np.array([exact], dtype=np.int64)
        else:
            ranges = list(self._prefix_ranges(path.upper()))
            indices = (
                np.concatenate([np.arange(a, b, dtype=np.int64) for a, b in ranges])
                if ranges
                else np.zeros(0, dtype=np.int64)
            )
        if glob is not None:
            pattern = re.compile(
                "^" + ".*".join(re.escape(part) for part in glob.split("*")) + "$",
                re.IGNORECASE | re.DOTALL,
            )
            indices = np.array(
                [i for i in indices.tolist() if pattern.match(asset_path(i))], dtype=np.int64
            )
        return AssetRows(indices[::-1] if descending else indices)

    def _prefix_ranges(self, upper: str) -> Iterator[tuple[int, int]]:
        """Index ranges of the assets whose upper-cased path starts with ``upper``: whole
        folders that match are one range; only folders on the prefix's way are opened."""
        for node in self._nodes(""):
            yield from self._ranges_below(node, upper)

    def _ranges_below(self, node: _Node, upper: str) -> Iterator[tuple[int, int]]:
        name = node.path.upper()
        if name.startswith(upper):
            yield node.start, node.stop
        elif upper.startswith(name + "/") and path_index(node.path) is None:
            for child in self._nodes(node.path):
                yield from self._ranges_below(child, upper)

    def _nodes(self, folder: str) -> list[_Node]:
        """The children of a folder ('' is the root) as index ranges (a file: one index)."""
        parts = folder.split("/") if folder else []
        if not parts:
            per = SESSIONS * RUNS
            return [_Node(subject_name(s), s * per, (s + 1) * per) for s in range(SUBJECTS)]
        s = int(parts[0][4:])
        if len(parts) == 1:
            base = s * SESSIONS * RUNS
            return [
                _Node(session_path(s, t), base + t * RUNS, base + (t + 1) * RUNS)
                for t in range(SESSIONS)
            ]
        t = int(parts[1][4:])
        base = (s * SESSIONS + t) * RUNS
        return [_Node(asset_path(base + r), base + r, base + r + 1) for r in range(RUNS)]

    def _folder_exists(self, folder: str) -> bool:
        parts = folder.split("/")
        if not (1 <= len(parts) <= 2):
            return False
        m = re.fullmatch(r"sub-(\d{4})", parts[0])
        if m is None or int(m[1]) >= SUBJECTS:
            return False
        if len(parts) == 2:
            m = re.fullmatch(r"ses-(\d{2})", parts[1])
            return m is not None and int(m[1]) < SESSIONS
        return True

    def path_children(self, query: str) -> list[PathNode] | None:
        """``assets/paths/?path_prefix=``: the children of a folder with their aggregates
        ('' is the root), [] for an asset's own path, None when nothing is there."""
        if query and path_index(query) is not None:
            return []
        if query and not self._folder_exists(query):
            return None
        out = []
        for node in self._nodes(query):
            leaf = node.stop - node.start == 1 and path_index(node.path) is not None
            out.append(
                PathNode(
                    node.path,
                    aggregate_files=node.stop - node.start,
                    aggregate_size=self.range_size(node.start, node.stop),
                    asset=self.asset(node.start) if leaf else None,
                )
            )
        return out

    def summary(self) -> dict[str, Any]:
        """The versions' ``assetsSummary`` (what dandischema aggregates from the assets)."""
        return {
            "schemaKey": "AssetsSummary",
            "numberOfBytes": self.total_size,
            "numberOfFiles": ASSET_COUNT,
            "numberOfSubjects": SUBJECTS,
            "approach": [ECEPHYS_APPROACH],
            "measurementTechnique": [MULTI_ELECTRODE],
            "species": [],
        }


class AssetRows(Sequence[int]):
    """A filtered, ordered asset list as asset indices: a page takes a slice of them and
    builds only its own assets (or their list items, :meth:`ComputedAssets.item`)."""

    def __init__(self, indices: np.ndarray[Any, np.dtype[np.int64]]):
        self._indices = indices

    def __len__(self) -> int:
        return len(self._indices)

    @overload
    def __getitem__(self, i: int) -> int: ...
    @overload
    def __getitem__(self, i: slice) -> list[int]: ...
    def __getitem__(self, i: int | slice) -> int | list[int]:
        if isinstance(i, slice):
            return [int(k) for k in self._indices[i]]
        return int(self._indices[i])


def add_large_dandiset(archive: Archive, seed: int) -> Dandiset:
    """Add :data:`LARGE_DANDISET` (a published version and the draft) to ``archive``."""
    computed = ComputedAssets(seed)
    dandiset = archive.add_dandiset(
        Dandiset(LARGE_DANDISET, created=_CREATED, modified=_DRAFT_MODIFIED, owners=[])
    )
    archive.computed_assets.append(computed)
    for name, created, modified in (
        (LARGE_RELEASE, _PUBLISHED, _PUBLISHED + timedelta(seconds=2)),
        ("draft", _CREATED, _DRAFT_MODIFIED),
    ):
        version: Version = archive.new_version(
            dandiset,
            version=name,
            name=_TEXT.name,
            metadata={},
            status="Valid",
            created=created,
            modified=modified,
        )
        version.computed = computed
        version.metadata = version_metadata(
            dandiset,
            name,
            _TEXT,
            _SCHEMA,
            computed.summary(),
            modified,
            published=_PUBLISHED if name != "draft" else None,
        )
    return dandiset

"""A version's folders built from its flat asset list, kept compact.

A walk of a huge version (``find``, ``du``, ``rsync``) would otherwise cost one
``assets/paths/`` request per folder. The flat asset list gives every folder of the version in
one request per 1,000 assets, fetched in parallel pages; :class:`FolderRows` arranges it page
by page as it arrives, keeping one small row per asset (:class:`Row`, slotted, its strings
shared with nothing else) and dropping the pages' pydantic models at once, so a version of
100,000 assets costs a few tens of MB, not the listing's full models.

:class:`WalkDetector` decides when a version is being walked: several distinct folders of it
listed within a few seconds. Until then each folder costs its own ``paths/`` request, so
``ls`` of one folder never costs the version's size. A walk covers the folders' common
ancestor only (``find draft/sub-0042`` fetches the assets under ``sub-0042/``, not the
version's), so what a walk costs follows the subtree walked.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from neurofs.sources.dandi.models import AssetRow
from neurofs.tree.names import unique_names

# A walk: this many distinct folders of one version listed ...
WALK_FOLDERS = 8
# ... within this many seconds.
WALK_WINDOW_S = 10.0


@dataclass(frozen=True, slots=True)
class Row:
    """One child of a folder: an asset, or a folder (``asset_id`` None)."""

    server_path: str
    size: int = 0
    asset_id: str | None = None
    blob_id: str | None = None
    zarr_id: str | None = None

    @property
    def is_folder(self) -> bool:
        return self.asset_id is None


# folder path ('' = the version root) → {safe file name → row}
FolderIndex = Mapping[str, Mapping[str, Row]]


class FolderRows:
    """Collects the flat list's pages (in any order) into a :data:`FolderIndex`."""

    def __init__(self) -> None:
        # folder → {server component → row}; the first occurrence of a component wins.
        self._raw: dict[str, dict[str, Row]] = {"": {}}

    def add(self, assets: Iterable[AssetRow]) -> None:
        raw = self._raw
        for asset in assets:
            parts = [p for p in asset.path.split("/") if p]
            if not parts:
                continue
            folder = ""
            for part in parts[:-1]:
                child = f"{folder}/{part}" if folder else part
                children = raw[folder]
                if part not in children:
                    children[part] = Row(child)
                    raw.setdefault(child, {})
                folder = child
            children = raw[folder]
            if parts[-1] not in children:
                children[parts[-1]] = Row(
                    asset.path, asset.size, asset.asset_id, asset.blob, asset.zarr
                )

    def index(self) -> FolderIndex:
        """Every folder's children by safe file name (names made unique per folder)."""
        out: dict[str, dict[str, Row]] = {}
        for folder, children in self._raw.items():
            names = unique_names(children)
            out[folder] = {names[part]: row for part, row in children.items()}
        self._raw = {"": {}}
        return out


@dataclass
class _Recent:
    folders: dict[str, float] = field(default_factory=dict)  # folder → when listed


class WalkDetector:
    """Which versions are being walked: :data:`WALK_FOLDERS` distinct folders listed within
    :data:`WALK_WINDOW_S` seconds. Kept for the mount (nodes are rebuilt freely)."""

    def __init__(self) -> None:
        self._recent: dict[tuple[str, str], _Recent] = {}

    def listed(self, identifier: str, version: str, folder: str) -> str | None:
        """Note that ``folder`` is listed. When that makes a walk, the folder walked: the
        common ancestor of the recent folders ('' for the version's root); else None."""
        now = time.monotonic()
        recent = self._recent.setdefault((identifier, version), _Recent())
        recent.folders = {f: t for f, t in recent.folders.items() if now - t < WALK_WINDOW_S}
        recent.folders[folder] = now
        if len(recent.folders) >= WALK_FOLDERS:
            walked = common_folder(recent.folders)
            recent.folders.clear()
            return walked
        return None


def common_folder(folders: Iterable[str]) -> str:
    """The deepest folder that holds (or is) each of ``folders`` ('' = the version's root)."""
    common: list[str] | None = None
    for folder in folders:
        parts = folder.split("/") if folder else []
        if common is None:
            common = parts
            continue
        n = 0
        while n < min(len(common), len(parts)) and common[n] == parts[n]:
            n += 1
        del common[n:]
    return "/".join(common or [])

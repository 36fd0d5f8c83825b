"""One level of a zarr: a directory prefix's entries by file name.

A zarr asset is shown as a directory tree whose directories are the '/'-separated prefixes of
its keys. Each directory is one level, listed on its own (``zarr_listing``): its files (keys
with no further '/') and its sub-directories. Names are made safe per level with
``unique_names``; when a name is both a key and a prefix of other keys, the key wins (it
sorts first in the store's listing).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from neurofs.sources.dandi.models import ZarrFile
from neurofs.tree.names import unique_names

# One entry of a level: the file of a key, or the prefix of a sub-directory ('a/b/').
ZarrEntry = ZarrFile | str
ZarrLevel = Mapping[str, ZarrEntry]


def arrange_level(prefix: str, files: Iterable[ZarrFile], dirs: Iterable[str]) -> ZarrLevel:
    """The level ``prefix`` ('' or 'a/b/') from its files (keys relative to the zarr root)
    and its sub-directories' names, by file name, in key order."""
    raw: dict[str, ZarrFile | None] = {}
    for f in files:
        raw.setdefault(f.key[len(prefix) :], f)
    for name in dirs:
        raw.setdefault(name, None)
    names = unique_names(raw)
    level: dict[str, ZarrEntry] = {}
    # A directory's keys all start with `name/`: that is where it sorts among the files.
    for name in sorted(raw, key=lambda n: n if raw[n] is not None else n + "/"):
        file = raw[name]
        level[names[name]] = f"{prefix}{name}/" if file is None else file
    return level

"""A zarr's keys as a tree: directory prefix → its entries by file name.

A zarr asset is shown as a directory tree whose directories are the '/'-separated prefixes of
its keys. The index maps each prefix ('' for the zarr's root, else 'a/b/') to that level's
entries, so that listing a directory or looking a name up is a dictionary look-up, whatever
the size of the zarr. Keys are grouped by prefix in one pass over the key list, once per fetch
of that list; a level's file names are made the first time it is visited.

Each level is self-contained: a level answered on its own (one listing per prefix) would
slot into the same shape.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from neurofs.sources.dandi.models import ZarrFile
from neurofs.tree.names import unique_names

# One entry of a level: the file of a key, or the prefix of a sub-directory ('a/b/').
ZarrEntry = ZarrFile | str
ZarrLevel = Mapping[str, ZarrEntry]


class ZarrTree:
    """Every level of a zarr, by prefix, in listing order.

    Names are made safe per level with ``unique_names``; when a name is both a key and a
    prefix of other keys (or appears twice), the first in the listing wins."""

    def __init__(self, files: Sequence[ZarrFile]) -> None:
        # prefix → server name → the key's file, or None for a sub-directory; first one wins.
        self._raw: dict[str, dict[str, ZarrFile | None]] = {}
        self._named: dict[str, ZarrLevel] = {}
        for f in files:
            key, start = f.key, 0
            while True:
                end = key.find("/", start)
                level = self._raw.setdefault(key[:start], {})
                if end < 0:
                    level.setdefault(key[start:], f)
                    break
                level.setdefault(key[start:end], None)
                start = end + 1

    def level(self, prefix: str) -> ZarrLevel:
        """The entries of the directory ``prefix`` by file name (empty when there is none)."""
        named = self._named.get(prefix)
        if named is None:
            raw = self._raw.get(prefix, {})
            names = unique_names(raw)
            named = self._named[prefix] = {
                names[head]: f"{prefix}{head}/" if f is None else f for head, f in raw.items()
            }
        return named

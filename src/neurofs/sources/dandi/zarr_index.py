"""A zarr's keys as a tree: directory prefix → its entries by file name.

A zarr asset is shown as a directory tree whose directories are the '/'-separated prefixes of
its keys. The index maps each prefix ('' for the zarr's root, else 'a/b/') to that level's
entries, so that listing a directory or looking a name up is a dictionary look-up, whatever
the size of the zarr. It is built in one pass over the key list, once per fetch of that list.

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
ZarrTree = Mapping[str, ZarrLevel]


def zarr_tree(files: Sequence[ZarrFile]) -> ZarrTree:
    """Every level of the zarr whose keys are ``files``, in listing order.

    Names are made safe per level with ``unique_names``; when a name is both a key and a
    prefix of other keys (or appears twice), the first in the listing wins."""
    # prefix → server name → the key's file, or None for a sub-directory; first one wins.
    raw: dict[str, dict[str, ZarrFile | None]] = {}
    for f in files:
        key, start = f.key, 0
        while True:
            end = key.find("/", start)
            level = raw.setdefault(key[:start], {})
            if end < 0:
                level.setdefault(key[start:], f)
                break
            level.setdefault(key[start:end], None)
            start = end + 1
    tree: dict[str, ZarrLevel] = {}
    for prefix, level in raw.items():
        names = unique_names(level)
        tree[prefix] = {
            names[head]: f"{prefix}{head}/" if f is None else f for head, f in level.items()
        }
    return tree

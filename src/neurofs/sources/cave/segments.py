"""A datastack's ChunkedGraph in the mount: segments by root id, supervoxels by id.

```
<datastack>/segments/<root id>/
    leaves          the root's supervoxel ids, one per line
    latest          the current roots it became, one per line (itself when current)
    lineage.json    its lineage graph, as caveclient's get_lineage_graph gets it
<datastack>/supervoxels/<supervoxel id>    its current root id, one line
```

The graph cannot be listed: both directories show nothing and cost nothing to list, and a
name is looked up on demand (ENOENT for an id the graph does not have).
"""

from __future__ import annotations

from collections.abc import Sequence

from neurofs.errors import NotFound
from neurofs.sources.cave.api import CaveApi
from neurofs.tree.names import id_of_name
from neurofs.tree.nodes import (
    Attrs,
    Directory,
    GeneratedFile,
    Kind,
    Node,
    NodePath,
    StaticDirectory,
)
from neurofs.tree.render import json_text


def id_lines(ids: Sequence[int]) -> bytes:
    """Ids one per line."""
    return "".join(f"{i}\n" for i in ids).encode()


class _LookupOnly(Directory):
    """A directory of ids named, never listed."""

    def __init__(self, key: NodePath, api: CaveApi, datastack: str) -> None:
        super().__init__(key)
        self._api, self._ds = api, datastack

    async def stat(self) -> Attrs:
        return Attrs(Kind.DIRECTORY, 0, 0.0)

    async def children(self) -> Sequence[Node]:
        return []

    def _missing(self, name: str) -> NotFound:
        return NotFound("/".join((*self.key, name)))


class SegmentsDir(_LookupOnly):
    """``segments/<root id>/``: a root, current or outdated."""

    async def child(self, name: str) -> Node:
        root = id_of_name(name)
        if root is None or not await self._api.is_root(self._ds, root):
            raise self._missing(name)
        return segment_dir((*self.key, name), self._api, self._ds, root)


def segment_dir(key: NodePath, api: CaveApi, datastack: str, root: int) -> StaticDirectory:
    async def leaves() -> bytes:
        async def render() -> bytes:
            return id_lines(await api.leaves(datastack, root))

        return await api.segment_text(datastack, root, "leaves", render)

    async def latest() -> bytes:
        return id_lines((await api.lineage(datastack, root)).model.latest(root))

    async def lineage() -> bytes:
        return json_text((await api.lineage(datastack, root)).document)

    return StaticDirectory(
        key,
        [
            # A root's supervoxels never change, and may be 10⁵ or more: read only when the
            # file itself is asked for, never for a listing.
            GeneratedFile((*key, "leaves"), leaves, immutable=True, costly=True),
            GeneratedFile((*key, "latest"), latest),
            GeneratedFile((*key, "lineage.json"), lineage),
        ],
    )


class SupervoxelsDir(_LookupOnly):
    """``supervoxels/<supervoxel id>``: a file of its current root."""

    async def child(self, name: str) -> Node:
        supervoxel = id_of_name(name)
        if supervoxel is None or await self._api.root_of(self._ds, supervoxel) is None:
            raise self._missing(name)
        api, ds = self._api, self._ds

        async def render() -> bytes:
            root = await api.root_of(ds, supervoxel)
            if root is None:  # gone since the lookup
                raise self._missing(name)
            return id_lines([root])

        return GeneratedFile((*self.key, name), render)

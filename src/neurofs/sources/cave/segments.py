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

A root's supervoxels never change and may be millions: ``leaves`` is the graph's answer
streamed into a rendered file in the cache directory (``io/cache/rendered.py``) as it arrives,
one id per line, so memory holds one piece of it whatever its length, the file's size is exact
at its first lookup, and reading it again (in this mount or a later one) asks nothing. Such
files are kept within ``LEAVES_KEPT`` (files, bytes), the oldest rendered dropped first.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

from neurofs.errors import NotFound, RemoteError
from neurofs.io.cache.rendered import RenderedFiles
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
from neurofs.tree.rendered_file import RenderedFileNode

# Rendered ``leaves`` files kept in the cache directory: at most this many, and bytes (also
# the longest one file may be: about 14 million ids of 18-19 digits).
LEAVES_KEPT = (1_000, 256 * 1024 * 1024)
LEAVES_SUFFIX = ".leaves"


def id_lines(ids: Sequence[int]) -> bytes:
    """Ids one per line."""
    return "".join(f"{i}\n" for i in ids).encode()


class LeafIdLines:
    """The graph's ``{"leaf_ids": [...]}``, read as it arrives and written to ``out`` one id
    per line (a ``BodySink``).

    Parsed piece by piece rather than as a pydantic model of the whole answer: a root may
    have millions of supervoxels, and the model would hold the text and the list at once. It
    is as strict: the one key, then ids (numbers, or strings of digits as with the route's
    ``int64_as_str``), and nothing after the list; anything else refuses the answer."""

    _HEAD = re.compile(rb'\s*\{\s*"leaf_ids"\s*:\s*\[')
    _TAIL = re.compile(rb"\s*\]\s*\}\s*")
    # Ids as flask writes them (compact): the bytes only need their commas made newlines.
    _COMPACT = re.compile(rb"(?:0|[1-9][0-9]{0,19})(?:,(?:0|[1-9][0-9]{0,19}))*")
    _ID = re.compile(rb'\s*(?:(0|[1-9][0-9]{0,19})|"(0|[1-9][0-9]{0,19})")\s*')
    # An id's text is at most 22 bytes (quotes and spaces aside): more without a comma is no id.
    _MOST_PENDING = 4096

    def __init__(self, out: BinaryIO, what: str, most_bytes: int) -> None:
        """``most_bytes``: the longest file written; an answer that would make it longer is
        refused (a graph that never ends its list cannot fill the disk)."""
        self._out, self._what, self._most = out, what, most_bytes
        self.begin()

    def begin(self) -> None:
        self._out.seek(0)
        self._out.truncate()
        self._pending = b""
        self._state = "head"  # then "ids", then "tail"
        self._ids = self._written = 0
        self._comma = False  # the pending text follows a comma: an id must come

    def feed(self, chunk: bytes) -> None:
        data = self._pending + chunk
        if self._state == "head":
            if b"[" not in data:
                self._pending = self._bounded(data)
                return
            head = self._HEAD.match(data)
            if head is None:
                raise self._refused("it is not a list of leaf_ids")
            data, self._state = data[head.end() :], "ids"
        if self._state == "ids":
            end = data.find(b"]")
            if end < 0:
                cut = data.rfind(b",")
                if cut < 0:
                    self._pending = self._bounded(data)
                    return
                self._write(data[:cut])
                self._pending, self._comma = data[cut + 1 :], True
                self._bounded(self._pending)
                return
            last = data[:end]
            if last.strip() or self._comma:
                self._write(last)
            data, self._state = data[end:], "tail"
        self._pending = self._bounded(data)

    def finish(self) -> int:
        """Check that the answer ended where it should; how many ids it held."""
        if self._state != "tail" or self._TAIL.fullmatch(self._pending) is None:
            raise self._refused("it ended before its list did, or went on after it")
        self._out.flush()
        return self._ids

    def _write(self, text: bytes) -> None:
        """Ids separated by commas (one at least)."""
        if self._COMPACT.fullmatch(text):
            lines = text.replace(b",", b"\n") + b"\n"
            count = text.count(b",") + 1
        else:
            ids = []
            for token in text.split(b","):
                found = self._ID.fullmatch(token)
                if found is None:
                    raise self._refused(f"{token[:40]!r} is not a supervoxel id")
                ids.append(found.group(1) or found.group(2))
            lines, count = b"\n".join(ids) + b"\n", len(ids)
        self._written += len(lines)
        if self._written > self._most:
            raise self._refused(f"more than {self._most} bytes of ids (after {self._ids})")
        self._out.write(lines)
        self._ids += count

    def _bounded(self, pending: bytes) -> bytes:
        if len(pending) > self._MOST_PENDING:
            raise self._refused("it is not a list of leaf_ids")
        return pending

    def _refused(self, why: str) -> RemoteError:
        return RemoteError(f"{self._what}: the graph's answer is refused: {why}")


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
    """``segments/<root id>/``: a root, current or outdated. ``rendered``: where ``leaves``
    files are written (None: no cache directory, no ``leaves`` file)."""

    def __init__(
        self, key: NodePath, api: CaveApi, datastack: str, rendered: RenderedFiles | None
    ) -> None:
        super().__init__(key, api, datastack)
        self._rendered = rendered

    async def child(self, name: str) -> Node:
        root = id_of_name(name)
        if root is None or not await self._api.is_root(self._ds, root):
            raise self._missing(name)
        graph = await self._api.graph_identity(self._ds)
        return segment_dir((*self.key, name), self._api, self._ds, root, self._rendered, graph)


def segment_dir(
    key: NodePath,
    api: CaveApi,
    datastack: str,
    root: int,
    rendered: RenderedFiles | None,
    graph: str,
) -> StaticDirectory:
    """``graph``: the graph's identity (``CaveApi.graph_identity``)."""

    async def latest() -> bytes:
        return id_lines((await api.lineage(datastack, root)).model.latest(root))

    async def lineage() -> bytes:
        return json_text((await api.lineage(datastack, root)).document)

    files: list[Node] = [
        GeneratedFile((*key, "latest"), latest),
        GeneratedFile((*key, "lineage.json"), lineage),
    ]
    if rendered is not None:
        files.insert(0, leaves_file((*key, "leaves"), api, rendered, datastack, root, graph))
    return StaticDirectory(key, files)


def leaves_file(
    key: NodePath, api: CaveApi, rendered: RenderedFiles, datastack: str, root: int, graph: str
) -> RenderedFileNode:
    """A root's supervoxel ids, one per line: rendered from the graph's streamed answer at the
    file's first lookup (never for a listing of the root)."""
    what = f"leaves of {root}"

    async def render(path: Path) -> None:
        with path.open("wb") as out:
            lines = LeafIdLines(out, what, most_bytes=LEAVES_KEPT[1])
            await api.stream_leaves(datastack, root, lines)
            lines.finish()

    # A root id never names other supervoxels of its graph: the graph and root name the bytes.
    identity = f"cave-leaves:{graph}|{root}"
    return RenderedFileNode(key, rendered, identity, LEAVES_SUFFIX, render, budget=LEAVES_KEPT)


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

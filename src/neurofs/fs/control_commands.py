"""Running the commands written to ``.neurofs/control`` (parsed in ``tree.control``).

- ``refresh PATH``: the source that PATH is in (every source, for the mount root) drops
  every changeable API answer it holds in memory (they are fetched again on next use), the
  inodes at and below PATH are looked up again by path, and the
  kernel forgets their attributes, pages and directory entries. Content-addressed bytes in
  the block cache stay: they cannot change under the same key.
- ``reload-datastore PATH``: the directory at PATH (a WEBKNOSSOS dataset) has its server
  read it again from storage, then PATH is refreshed as above. A path that is not such a
  directory answers EINVAL with nothing sent; the server's refusal EACCES, a server that
  failed or cannot be reached EIO.
- ``cache prune …`` / ``cache clear``: done on the mount's own block cache, so that the
  ``neurofs cache`` command never touches the files of a cache a live mount holds.
- ``cache drop PATH``: the bytes of the file at PATH, or of every file below it, are
  forgotten (memory and disk) and the kernel drops its pages of them, so the next read
  fetches them again (``neurofs verify`` after a digest mismatch).

A refused command answers the write with EINVAL and leaves a line in errors.log; a refresh
of a path that does not exist answers ENOENT.
"""

from __future__ import annotations

import errno
import logging
import os
from collections.abc import Awaitable, Callable, Sequence

import pyfuse3
import trio

from neurofs.errors import InvalidContent, NeurofsError, NotFound
from neurofs.fs.errno_map import errno_for
from neurofs.fs.inodes import InodeTable
from neurofs.io.cache import BlockCache
from neurofs.sources import Source
from neurofs.tree.control import (
    CONTROL_DIR,
    CONTROL_FILE,
    ClearCache,
    Command,
    DropCached,
    ErrorLog,
    PruneOlderThan,
    PruneTo,
    Refresh,
    ReloadDatastore,
    parse_command,
)
from neurofs.tree.nodes import Directory, Node, NodePath
from neurofs.tree.remote import RemoteFile

log = logging.getLogger(__name__)

CONTROL_PATH = f"{CONTROL_DIR}/{CONTROL_FILE}"
# The kernel answers invalidations at once unless it is busy with the same inodes; the write
# does not wait longer than this for it.
KERNEL_INVALIDATION_SECONDS = 10.0


class ControlRunner:
    def __init__(
        self,
        inodes: InodeTable,
        node_at: Callable[[NodePath], Awaitable[Node]],
        errors: ErrorLog,
        cache: BlockCache,
        sources: Sequence[Source] = (),
    ) -> None:
        self._inodes = inodes
        self._node_at = node_at
        self._errors = errors
        self._cache = cache
        self._sources = sources

    async def run(self, data: bytes) -> None:
        """Parse and run one command; errors are logged and raised for the write to answer."""
        try:
            command = parse_command(data)
            log.info("control: %s", command)
            await self._run(command)
        except NeurofsError as exc:
            code = errno_for(exc)
            self._errors.add(CONTROL_PATH, _errno_name(code), f"control: {exc}")
            raise

    async def _run(self, command: Command) -> None:
        if isinstance(command, Refresh):
            await self._refresh(command.key)
            return
        if isinstance(command, ReloadDatastore):
            await self._reload_datastore(command.key)
            return
        if isinstance(command, DropCached):
            await self._drop(command.key)
            return
        cache = self._cache
        if isinstance(command, PruneOlderThan):
            n = await trio.to_thread.run_sync(cache.prune, command.seconds)
        elif isinstance(command, PruneTo):
            n = await trio.to_thread.run_sync(cache.shrink_to, command.size)
        elif isinstance(command, ClearCache):
            await trio.to_thread.run_sync(cache.clear)
            n = -1
        else:  # pragma: no cover - parse_command makes only the kinds above
            raise InvalidContent(f"unknown command {command!r}")
        log.info("control: %s done (%s blocks dropped)", command, "all" if n < 0 else n)

    async def _drop(self, key: NodePath) -> None:
        try:
            node = await self._node_at(key)
        except NotFound:
            raise NotFound(f"cache drop: no such path {'/'.join(key)}") from None
        dropped = await _drop_below(node)
        notices: list[tuple[int, int | None, bytes]] = [
            (inode, None, b"") for inode, _ in self._inodes.at_or_below(key)
        ]
        with trio.move_on_after(KERNEL_INVALIDATION_SECONDS):
            await trio.to_thread.run_sync(_invalidate, notices, abandon_on_cancel=True)
        log.info("cache drop %s: %d blocks dropped", "/".join(key), dropped)

    async def _reload_datastore(self, key: NodePath) -> None:
        try:
            node = await self._node_at(key)
        except NotFound:
            raise NotFound(f"reload-datastore: no such path {'/'.join(key)}") from None
        if not isinstance(node, Directory):
            raise InvalidContent(f"{'/'.join(key)} is not a WEBKNOSSOS dataset directory")
        await node.reload_on_server()
        log.info("reload-datastore %s: reloaded", "/".join(key))
        await self._refresh(key)

    async def _refresh(self, key: NodePath) -> None:
        for source in self._sources:
            if key[:1] in ((), (source.name,)):
                source.refresh(key[1:])
        try:
            await self._node_at(key)
        except NotFound:
            raise NotFound(f"refresh: no such path {'/'.join(key) or '.'}") from None
        targets = [
            (inode, path)
            for inode, path in self._inodes.at_or_below(key)
            if path[:1] != (CONTROL_DIR,)  # local files: nothing to refresh, and busy now
        ]
        notices: list[tuple[int, int | None, bytes]] = []
        for inode, path in targets:
            self._inodes.look_up_again(inode)
            parent = self._inodes.inode_of(path[:-1]) if path else None
            notices.append((inode, parent, os.fsencode(path[-1]) if path else b""))
        # In a thread: an invalidation waits for the kernel, which may first need this
        # daemon to answer other requests on the same inodes.
        with trio.move_on_after(KERNEL_INVALIDATION_SECONDS):
            await trio.to_thread.run_sync(_invalidate, notices, abandon_on_cancel=True)
        log.info("refresh %s: %d inodes invalidated", "/".join(key) or ".", len(notices))


async def _drop_below(node: Node) -> int:
    """Drop the cached bytes of ``node`` and of every file below it; how many blocks."""
    if isinstance(node, RemoteFile):
        return await node.drop_cached()
    if not isinstance(node, Directory):
        return 0
    return sum([await _drop_below(child) for child in await node.children()])


def _invalidate(notices: list[tuple[int, int | None, bytes]]) -> None:
    for inode, parent, name in notices:
        try:
            pyfuse3.invalidate_inode(inode)
        except OSError as exc:  # ENOENT: the kernel already forgot it
            log.debug("invalidate inode %d: %s", inode, exc)
        if parent is not None:
            try:
                pyfuse3.invalidate_entry(parent, name)
            except OSError as exc:
                log.debug("invalidate entry %r in %d: %s", name, parent, exc)


def _errno_name(code: int) -> str:
    return errno.errorcode.get(code, str(code))

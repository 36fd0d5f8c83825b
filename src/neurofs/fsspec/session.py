"""The sources of one configuration, served without FUSE: what a mount's daemon builds (the
sources' trees over their API clients, the fetcher with its block cache, read-ahead and
shared tier), running on a trio loop in a thread of its own, for callers in other threads.

A path is resolved from the root one name at a time through each directory's ``child``, as
the kernel's lookups do on a mount, following the tree's symlinks (``latest``); a file is
read through the handle its node opens, as a mount's reads are: there is one read path.
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import logging
import os
import posixpath
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import ClassVar, TypeVar

import trio

from neurofs.config import Config
from neurofs.errors import NeurofsError
from neurofs.fs.errno_map import errno_for
from neurofs.io.cache import BlockCache
from neurofs.io.fetcher import Fetcher
from neurofs.io.responses import ResponseStore
from neurofs.io.stats import Stats
from neurofs.io.tier import Tier
from neurofs.sources import Source, build_source
from neurofs.tree.nodes import (
    Attrs,
    Directory,
    File,
    FileHandle,
    Node,
    StaticDirectory,
    Symlink,
)

log = logging.getLogger(__name__)

T = TypeVar("T")
# Symlinks followed in one path, at most (as the kernel's ELOOP bound, smaller).
MAX_LINKS = 8


def os_error(exc: NeurofsError, path: str) -> OSError:
    """The OSError a mount's reader would get for ``exc`` (same errno)."""
    code = errno_for(exc)
    if code == errno.ENOENT:
        return FileNotFoundError(code, os.strerror(code), path)
    return OSError(code, f"{os.strerror(code)}: {exc}", path)


class Session:
    """Started by its constructor; ``close`` (or the process's exit) stops it. ``of`` gives
    the one session of a configuration in this process."""

    # fsspec makes a filesystem instance per thread (zarr's loop has its own): the instances
    # of one configuration in one process share its session, its loop and its open cache.
    _open: ClassVar[dict[str, Session]] = {}
    _open_lock: ClassVar[threading.Lock] = threading.Lock()

    @classmethod
    def of(cls, config: Config) -> Session:
        key = config.model_dump_json()
        with cls._open_lock:
            session = cls._open.get(key)
            if session is None or not session.alive:
                session = cls._open[key] = cls(config)
                atexit.register(session.close)  # the cache's last recency batch is written
            return session

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def __init__(self, config: Config) -> None:
        self.config = config
        self._ready = threading.Event()
        self._failure: BaseException | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self._stop: trio.Event | None = None
        self._root: StaticDirectory | None = None
        self.stats = Stats()
        self.cache_dir: Path = config.cache.dir
        self._thread = threading.Thread(target=self._run, name="neurofs-fsspec", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._failure is not None:
            raise self._failure

    # ------------------------------------------------------------------ the loop

    def _run(self) -> None:
        try:
            # Shared with a mount or other workers of this machine using the same directory
            # (io/cache/directory.py): a block one of them fetched is read from disk here.
            cache = BlockCache(self.cache_dir, self.config.cache.size)
        except BaseException as exc:
            self._failure = exc
            self._ready.set()
            return
        responses = ResponseStore(self.cache_dir / "responses.sqlite")
        try:
            trio.run(self._serve, cache, responses)
        except BaseException as exc:  # reported to the constructor if it is still waiting
            if not self._ready.is_set():
                self._failure = exc
            else:
                log.exception("neurofs fsspec session stopped")
        finally:
            responses.close()
            cache.close()
            self._ready.set()

    async def _serve(self, cache: BlockCache, responses: ResponseStore) -> None:
        config = self.config
        tier = None
        if config.cache.tier is not None:
            tier = Tier(config.cache.tier, self.stats, trusted=config.cache.tier_trusted)
        fetcher = Fetcher(cache, self.stats, tier=tier)
        sources: list[Source] = []
        try:
            async with trio.open_nursery() as nursery:
                fetcher.start_background(nursery)
                sources = [build_source(s, self.stats, fetcher, responses) for s in config.source]
                self._root = StaticDirectory((), [s.root for s in sources], mtime=time.time())
                self._token = trio.lowlevel.current_trio_token()
                self._stop = trio.Event()
                self._ready.set()
                await self._stop.wait()
                nursery.cancel_scope.cancel()
        finally:
            with trio.CancelScope(shield=True):
                for source in sources:
                    await source.aclose()
                if tier is not None:
                    await tier.aclose()

    def run(self, afn: Callable[..., Awaitable[T]], *args: object) -> T:
        """``await afn(*args)`` on the session's loop, from any other thread."""
        if self._token is None or not self._thread.is_alive():
            raise RuntimeError("this neurofs session is closed")
        return trio.from_thread.run(afn, *args, trio_token=self._token)

    def close(self) -> None:
        if self._stop is not None and self._thread.is_alive() and self._token is not None:
            with contextlib.suppress(trio.RunFinishedError):
                trio.from_thread.run_sync(self._stop.set, trio_token=self._token)
            self._thread.join(timeout=30)

    # ------------------------------------------------------------------ the tree

    async def node(self, path: str) -> Node:
        """The node at ``path`` (names separated by '/', from the root), symlinks followed."""
        assert self._root is not None
        parts = _names(path)
        node: Node = self._root
        done: list[str] = []
        links = 0
        while parts:
            name = parts.pop(0)
            if not isinstance(node, Directory):
                raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), path)
            try:
                child = await node.child(name)
            except NeurofsError as exc:
                raise os_error(exc, path) from None
            if isinstance(child, Symlink):
                links += 1
                if links > MAX_LINKS:
                    raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), path)
                parts = _names(posixpath.join("/".join(done), child.target)) + parts
                done, node = [], self._root
                continue
            done.append(name)
            node = child
        return node

    async def stat(self, path: str) -> tuple[Node, Attrs]:
        node = await self.node(path)
        try:
            return node, await node.stat()
        except NeurofsError as exc:
            raise os_error(exc, path) from None

    async def entries(self, path: str) -> list[tuple[Node, Attrs]]:
        """Each entry of the directory at ``path`` with its attributes (as ``ls -l``)."""
        node = await self.node(path)
        if not isinstance(node, Directory):
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), path)
        try:
            children = await node.children()
            return [(child, await child.listed()) for child in children]
        except NeurofsError as exc:
            raise os_error(exc, path) from None

    async def open(self, path: str) -> tuple[FileHandle, int]:
        """A read handle of the file at ``path`` and its size."""
        node, attrs = await self.stat(path)
        if isinstance(node, Directory):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), path)
        if not isinstance(node, File):
            raise OSError(errno.EINVAL, os.strerror(errno.EINVAL), path)
        try:
            return await node.open(), attrs.size
        except NeurofsError as exc:
            raise os_error(exc, path) from None

    @staticmethod
    async def read(handle: FileHandle, path: str, start: int, end: int) -> bytes:
        try:
            return await handle.read(start, end - start) if end > start else b""
        except NeurofsError as exc:
            raise os_error(exc, path) from None

    async def cat(self, path: str, start: int | None, end: int | None) -> bytes:
        """Bytes [start, end) of the file (None: its start, its end; negative: from its end)."""
        handle, size = await self.open(path)
        try:
            first, last = _bounds(start, end, size)
            return await self.read(handle, path, first, last)
        finally:
            await handle.release()

    async def cat_ranges(
        self, ranges: Sequence[tuple[str, int | None, int | None]], concurrency: int
    ) -> list[bytes | BaseException]:
        """``cat`` of each (path, start, end), ``concurrency`` at once; a failure is returned
        in its place. Each file is looked up and opened once for all its ranges: one read
        pattern sees them all (the fetcher's random-read rules), as one open file would."""
        out: list[bytes | BaseException] = [b""] * len(ranges)
        by_path: dict[str, list[int]] = {}
        for i, (path, _start, _end) in enumerate(ranges):
            by_path.setdefault(path, []).append(i)
        limit = trio.CapacityLimiter(concurrency)

        async def one(handle: FileHandle, size: int, i: int) -> None:
            path, start, end = ranges[i]
            async with limit:
                try:
                    out[i] = await self.read(handle, path, *_bounds(start, end, size))
                except (OSError, NeurofsError) as exc:
                    out[i] = exc

        async def file(path: str, indexes: list[int]) -> None:
            try:
                async with limit:
                    handle, size = await self.open(path)
            except (OSError, NeurofsError) as exc:
                for i in indexes:
                    out[i] = exc
                return
            try:
                async with trio.open_nursery() as nursery:
                    for i in indexes:
                        nursery.start_soon(one, handle, size, i)
            finally:
                await handle.release()

        async with trio.open_nursery() as nursery:
            for path, indexes in by_path.items():
                nursery.start_soon(file, path, indexes)
        return out


def _names(path: str) -> list[str]:
    """The names of a path from the root, '.' and '..' resolved (never above the root)."""
    normal = posixpath.normpath("/" + path)
    return [name for name in normal.split("/") if name]


def _bounds(start: int | None, end: int | None, size: int) -> tuple[int, int]:
    first = 0 if start is None else (size + start if start < 0 else start)
    last = size if end is None else (size + end if end < 0 else end)
    first, last = max(0, min(first, size)), max(0, min(last, size))
    return first, max(first, last)

"""Reading remote objects through the block cache.

A read is cut into fixed-size blocks. Each block comes from the in-memory hot set, then the
on-disk cache, then the network; missing neighbours are fetched as one range request per
contiguous run, runs in parallel. Concurrent misses of the same block share one request.
Sequential readers get a read-ahead window that doubles with each sequential read (up to a
cap) and is fetched in the background; a random read resets it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

import cachetools
import trio

from neurofs.errors import NeurofsError, RemoteError
from neurofs.io.block_cache import BLOCK_SIZE, BlockCache
from neurofs.io.stats import Stats

log = logging.getLogger(__name__)

# One range request covers at most this many blocks: big enough to amortise latency,
# small enough that a failure retries little and several requests run in parallel.
MAX_RUN_BLOCKS = 4
# Read-ahead window cap for sequential readers, in blocks.
MAX_READAHEAD_BLOCKS = 64
# Decoded blocks kept in memory: the kernel reads 128 KiB at a time, so each 1 MiB block is
# asked for several times in a row; this avoids a disk read and a checksum for each.
HOT_BYTES = 64 * 1024 * 1024


class RemoteObject(Protocol):
    """Bytes that live on a server: a DANDI blob, a zarr file, a volume chunk."""

    @property
    def content_id(self) -> str:
        """Cache identity: equal ids mean equal bytes (blob id, key + ETag, ...)."""
        ...

    @property
    def size(self) -> int: ...

    async def fetch(self, start: int, end: int) -> bytes:
        """Exactly the bytes [start, end), verified, or raise a NeurofsError."""
        ...


@dataclass
class ReadPattern:
    """Per-open-file access history used to size read-ahead."""

    next_offset: int = -1
    window: int = 0  # blocks of read-ahead
    prefetched_to: int = 0  # first block index not yet asked for by read-ahead

    def observe(self, offset: int, end: int) -> None:
        if offset == self.next_offset:
            self.window = min(max(self.window * 2, 2), MAX_READAHEAD_BLOCKS)
        elif abs(offset - self.next_offset) > BLOCK_SIZE:
            self.window = 0
            self.prefetched_to = 0
        self.next_offset = end


@dataclass
class _Inflight:
    done: trio.Event = field(default_factory=trio.Event)
    data: bytes | None = None
    error: BaseException | None = None


def _waiter_error(error: BaseException | None) -> NeurofsError:
    """A fresh error of the same kind for each reader that shared a failed fetch."""
    if isinstance(error, NeurofsError):
        return type(error)(str(error))
    return RemoteError(f"fetch failed: {error!r}")


def _runs(indexes: Iterable[int], max_len: int) -> list[tuple[int, int]]:
    """Contiguous runs [first, last] of sorted block indexes, each at most max_len long."""
    runs: list[tuple[int, int]] = []
    for i in sorted(indexes):
        if runs and runs[-1][1] == i - 1 and i - runs[-1][0] < max_len:
            runs[-1] = (runs[-1][0], i)
        else:
            runs.append((i, i))
    return runs


class Fetcher:
    def __init__(self, cache: BlockCache, stats: Stats, block_size: int = BLOCK_SIZE) -> None:
        self.cache = cache
        self.stats = stats
        self.block_size = block_size
        self._hot: cachetools.LRUCache[tuple[str, int], bytes] = cachetools.LRUCache(
            maxsize=HOT_BYTES, getsizeof=len
        )
        self._inflight: dict[tuple[str, int], _Inflight] = {}
        self._background: trio.Nursery | None = None

    def start_background(self, nursery: trio.Nursery) -> None:
        """Read-ahead runs in this nursery (the daemon's); without one it is skipped."""
        self._background = nursery

    # ------------------------------------------------------------------ reading

    async def read(
        self, obj: RemoteObject, offset: int, size: int, pattern: ReadPattern | None = None
    ) -> bytes:
        end = min(offset + size, obj.size)
        if offset >= end:
            return b""
        bs = self.block_size
        first, last = offset // bs, (end - 1) // bs
        blocks = await self._blocks(obj, range(first, last + 1))
        data = b"".join(blocks[i] for i in range(first, last + 1))
        start = offset - first * bs
        self.stats.add("bytes_served", end - offset)
        if pattern is not None:
            pattern.observe(offset, end)
            self._maybe_read_ahead(obj, pattern, last + 1)
        return data[start : start + (end - offset)]

    async def _blocks(self, obj: RemoteObject, indexes: Iterable[int]) -> dict[int, bytes]:
        found: dict[int, bytes] = {}
        missing: list[int] = []
        for i in indexes:
            hot = self._hot.get((obj.content_id, i))
            if hot is not None:
                found[i] = hot
                self.stats.add("cache_hits_memory")
            else:
                missing.append(i)
        if missing:
            found.update(await self._from_disk_or_network(obj, missing))
        return found

    async def _from_disk_or_network(
        self, obj: RemoteObject, indexes: list[int]
    ) -> dict[int, bytes]:
        cid = obj.content_id
        found: dict[int, bytes] = {}
        waits: dict[int, _Inflight] = {}
        to_fetch: list[int] = []
        for i in indexes:
            if (cid, i) in self._inflight:
                waits[i] = self._inflight[(cid, i)]
                continue
            data = await trio.to_thread.run_sync(self.cache.get, cid, i)
            if data is not None and len(data) == self._block_len(obj, i):
                self.stats.add("cache_hits")
                self._hot[(cid, i)] = data
                found[i] = data
            elif (cid, i) in self._inflight:  # another task started it while we looked
                waits[i] = self._inflight[(cid, i)]
            else:
                self.stats.add("cache_misses")
                self._inflight[(cid, i)] = _Inflight()
                to_fetch.append(i)
        if to_fetch:
            try:
                await self._fetch_runs(obj, to_fetch)
            finally:
                # Always release in-flight entries, even when cancelled, or waiters would hang.
                for i in to_fetch:
                    waits[i] = self._finished(cid, i)
        for i, entry in waits.items():
            await entry.done.wait()
            if entry.data is None:
                raise _waiter_error(entry.error)
            found[i] = entry.data
        return found

    def _finished(self, cid: str, i: int) -> _Inflight:
        entry = self._inflight.pop((cid, i))
        if entry.data is None and entry.error is None:
            entry.error = RemoteError("fetch interrupted")
        entry.done.set()
        return entry

    def _block_len(self, obj: RemoteObject, i: int) -> int:
        return min(self.block_size, obj.size - i * self.block_size)

    async def _fetch_runs(self, obj: RemoteObject, indexes: list[int]) -> None:
        """Fetch the given (already registered in-flight) blocks; record results or errors."""
        async with trio.open_nursery() as nursery:
            for first, last in _runs(indexes, MAX_RUN_BLOCKS):
                nursery.start_soon(self._fetch_run, obj, first, last)

    async def _fetch_run(self, obj: RemoteObject, first: int, last: int) -> None:
        cid, bs = obj.content_id, self.block_size
        start, end = first * bs, min((last + 1) * bs, obj.size)
        try:
            data = await obj.fetch(start, end)
            if len(data) != end - start:
                raise RemoteError(f"{cid}: got {len(data)} bytes for {end - start}")
        except BaseException as exc:  # recorded for waiters, then re-raised for our caller
            for i in range(first, last + 1):
                self._inflight[(cid, i)].error = exc
            if isinstance(exc, Exception):
                return
            raise
        for i in range(first, last + 1):
            block = data[(i - first) * bs : (i - first + 1) * bs]
            self._inflight[(cid, i)].data = block
            self._hot[(cid, i)] = block
        await trio.to_thread.run_sync(self._store, cid, first, data)

    def _store(self, cid: str, first: int, data: bytes) -> None:
        # A refused put (disk trouble, or no room beside pinned blocks) is counted by the
        # cache itself; the bytes are served from memory all the same.
        bs = self.block_size
        for n in range(0, len(data), bs):
            self.cache.put(cid, first + n // bs, data[n : n + bs])

    # ------------------------------------------------------------------ read-ahead

    def prefetch(self, objects: Iterable[RemoteObject]) -> None:
        """Fetch whole objects into the cache in the background (e.g. the next chunks along
        a reader's direction); objects already hot or in flight are skipped."""
        if self._background is None:
            return
        for obj in objects:
            nblocks = (obj.size + self.block_size - 1) // self.block_size
            wanted = [
                i
                for i in range(nblocks)
                if (obj.content_id, i) not in self._hot
                and (obj.content_id, i) not in self._inflight
            ]
            if wanted:
                self._background.start_soon(self._read_ahead, obj, wanted)

    def _maybe_read_ahead(self, obj: RemoteObject, pattern: ReadPattern, next_block: int) -> None:
        if self._background is None or pattern.window == 0:
            return
        nblocks = (obj.size + self.block_size - 1) // self.block_size
        # Top up only once half the window is consumed, so that read-ahead goes out in large
        # runs rather than one block at a time.
        if pattern.prefetched_to - next_block > pattern.window // 2:
            return
        start = max(next_block, pattern.prefetched_to)
        stop = min(next_block + pattern.window, nblocks)
        if start >= stop:
            return
        pattern.prefetched_to = stop
        wanted = [
            i
            for i in range(start, stop)
            if (obj.content_id, i) not in self._hot and (obj.content_id, i) not in self._inflight
        ]
        if wanted:
            self._background.start_soon(self._read_ahead, obj, wanted)

    async def _read_ahead(self, obj: RemoteObject, indexes: list[int]) -> None:
        try:
            await self._blocks(obj, indexes)
            self.stats.add("readahead_blocks", len(indexes))
        except Exception as exc:  # a reader that needs these blocks will see the error itself
            log.debug("read-ahead of %s failed: %s", obj.content_id, exc)

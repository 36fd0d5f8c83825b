"""Reading remote objects through the block cache.

A read is cut into fixed-size blocks. Each block comes from the in-memory hot set, then the
on-disk cache, then the network; missing neighbours are fetched as one range request per
contiguous run, runs in parallel. Concurrent misses of the same block share one request.

Access patterns decide the request sizes:

- What to fetch ahead of a reader is decided by the read-ahead policy (``io/readahead.py``)
  from the reader's pattern within the file and from its source's hints; the fetcher fetches
  it in the background, at most ``READAHEAD_RUNS`` requests at once.
- A small read at a random place in a large object (HDF5 metadata, a zarr shard index) needs
  a few KiB, not a whole block: it is served from *fragments*, 1/16 of a block each, cached
  under their own keys. A whole block that is already held is used instead, and a block
  that keeps being hit at random is fetched whole.

Two kinds of objects are read differently:

- An object its server sends only whole (``ServedWhole``: a WEBKNOSSOS chunk) is asked for
  all of it in one request whatever part is missing, and the answer is cut into blocks here.
- A file assembled from other objects (``Assembled``: a WEBKNOSSOS plain volume) has no
  blocks of its own: its bytes are read through its parts' blocks, so each byte is fetched
  and cached once, under the identity of the object that holds it.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import cachetools
import trio

from neurofs.errors import NeurofsError, RemoteError
from neurofs.io.cache import BLOCK_SIZE, BlockCache
from neurofs.io.parallel import tasks_of_one_request
from neurofs.io.readahead import STREAM_MIN_BLOCKS, Line, LineFetch, ReadAhead, ReadPattern
from neurofs.io.stats import Stats
from neurofs.io.tier import Tier

log = logging.getLogger(__name__)

# One range request covers at most this many blocks: big enough to amortise latency,
# small enough that a failure retries little and several requests run in parallel.
MAX_RUN_BLOCKS = 4
# Objects of a grid's line fetched ahead in one request at most (16 chunks of 32³ uint8 are
# 512 KiB): a walk's span may be long, a request should not be.
MAX_LINE_OBJECTS = 16
# Units just fetched (and whole units read from disk), kept in memory: readers get fetched
# bytes before the disk write lands, and a stream read ahead finds its blocks here. Blocks on
# disk are not read ahead into it (see ``_not_held``).
HOT_BYTES = 16 * 1024 * 1024
# A disk hit of up to this many bytes is read on the event loop: one pread of a few checksum
# units costs less than handing it to a worker thread and back. Larger ones go to a thread.
INLINE_READ = 64 * 1024
# Every this many hits read on the event loop, a worker thread writes the cache's recency
# batch if one is due (a hit on the loop never waits for the index).
RECENCY_CHECK_HITS = 256
# Fragments are this fraction of a block (64 KiB of 1 MiB blocks).
FRAGMENTS_PER_BLOCK = 16
# Random reads up to this many fragments are served from fragments.
MAX_FRAGMENT_READ = 4
# A random read in a block of which this many fragments were fetched before takes the block.
FRAGMENTS_TO_BLOCK = 2
# An HDF5 file (its first bytes are the superblock's signature) is opened by walking its
# metadata with small reads, one round trip each, and h5py's files keep it packed in a few
# places (the sample NWB file: 9 serial reads within 30-36 MiB of 42). There each small
# random read takes its whole block at once, up to this many blocks per open file; then
# reads go back to fragments (a reader of scattered dataset chunks gets what it asks).
# The sample NWB file's open: 12 requests and 359 ms instead of 16 and 427 ms (bench 4). The
# blocks near each such block come beside it (``ReadAhead.around_metadata``).
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
HDF5_METADATA_BLOCKS = 16


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


class ServedWhole:
    """Base of remote objects whose server answers only with the whole object (it ignores
    byte ranges). Their ``fetch(start, end)`` still returns exactly [start, end), but any
    range costs a whole download; so the fetcher asks for [0, size) in one request and cuts
    the blocks out itself, and uses no fragments for them."""


class BlocksOnly:
    """Base of remote objects whose reads are served in whole blocks, never in fragments:
    files that tools stream from the start (a WEBKNOSSOS plain volume), where a first small
    read would otherwise cost a request of its own before the block that follows it."""


class Assembled(ABC):
    """A file whose bytes are computed from remote objects (a plain volume from its chunks).

    It is never cached under its own identity: ``fetch`` reads its parts through the
    fetcher, whose blocks are then the only copy of these bytes. ``content_id`` names it in
    logs only."""

    content_id: str
    size: int

    @abstractmethod
    async def fetch(self, start: int, end: int) -> bytes:
        """Exactly the bytes [start, end), read from its parts through the fetcher."""

    @abstractmethod
    def parts(self, start: int, end: int) -> list[RemoteObject]:
        """The objects that hold the bytes [start, end) (fetched whole when read ahead)."""


# A cached unit (block or fragment): (content id, with the grain's suffix; index).
BlockKey = tuple[str, int]


@dataclass(frozen=True)
class _Grain:
    """A unit of caching: whole blocks, or fragments of blocks under their own keys."""

    size: int
    suffix: str  # appended to the content id, so blocks and fragments never share a key
    max_run: int  # units per range request

    def key(self, obj: RemoteObject, i: int) -> BlockKey:
        return (obj.content_id + self.suffix, i)

    def length(self, obj: RemoteObject, i: int) -> int:
        return min(self.size, obj.size - i * self.size)

    def count(self, obj: RemoteObject) -> int:
        return (obj.size + self.size - 1) // self.size

    def indexes(self, start: int, end: int) -> range:
        """The units holding the bytes [start, end) (end > start)."""
        return range(start // self.size, (end - 1) // self.size + 1)


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
    def __init__(
        self,
        cache: BlockCache,
        stats: Stats,
        block_size: int = BLOCK_SIZE,
        *,
        tier: Tier | None = None,
    ) -> None:
        self.cache = cache
        self.stats = stats
        # The lab's shared cache tier, between this cache and the origins: the sources hand it
        # to their HTTP clients (``io/tier.py``).
        self.tier = tier
        self.block_size = block_size
        self._block = _Grain(block_size, "", MAX_RUN_BLOCKS)
        self._fragment = _Grain(
            # A random read of up to MAX_RUN_BLOCKS blocks is one request, as large as asked.
            max(1, block_size // FRAGMENTS_PER_BLOCK),
            "#fragment",
            MAX_RUN_BLOCKS * FRAGMENTS_PER_BLOCK,
        )
        # Reads up to this size are small: served from fragments when they jump.
        self._small_read = MAX_FRAGMENT_READ * self._fragment.size
        self.read_ahead = ReadAhead(block_size, large_read=self._small_read)
        self._hot: cachetools.LRUCache[BlockKey, bytes] = cachetools.LRUCache(
            maxsize=HOT_BYTES, getsizeof=len
        )
        self._inflight: dict[BlockKey, _Inflight] = {}
        # Units fetched whose disk write is decided but not yet recorded (a run's blocks are
        # recorded together, after all their files): served from here meanwhile, so that one
        # pushed out of ``_hot`` is never fetched again. They are in memory anyway, held by
        # the write.
        self._unstored: dict[BlockKey, bytes] = {}
        self._background: trio.Nursery | None = None
        # Disk writes under way, by content id; ``_stored`` is set (and replaced) after each.
        self._storing: dict[str, int] = {}
        self._stored = trio.Event()
        self._inline_hits = 0

    def start_background(self, nursery: trio.Nursery) -> None:
        """Read-ahead runs in this nursery (the daemon's); without one it is skipped."""
        self._background = nursery

    # ------------------------------------------------------------------ reading

    async def read(
        self,
        obj: RemoteObject | Assembled,
        offset: int,
        size: int,
        pattern: ReadPattern | None = None,
    ) -> bytes:
        """Bytes [offset, offset + size) of ``obj``, clipped to its size. ``pattern`` is the
        open file's, for read-ahead; reads without one (an assembled file reading its parts)
        fetch nothing ahead."""
        if isinstance(obj, Assembled):
            return await self._read_assembled(obj, offset, size, pattern)
        end = min(offset + size, obj.size)
        if offset >= end:
            return b""
        jump = pattern is not None and pattern.is_random(offset)  # before the read is noted
        small = end - offset <= self._small_read
        if self.cache.shared:
            await self._adopt(obj, offset, end)
        plan = self._plan(obj, offset, end, pattern)
        # The read is noted as soon as it is planned, not once its bytes arrive: the kernel
        # sends the pieces of one large read together, and the next piece must be planned
        # knowing the one before it (a 1 MiB read and its last page, planned as a small
        # random read beside the fragments of the first, took that block whole).
        ahead = (
            self.read_ahead.blocks_after(pattern, offset, end, self._block.count(obj))
            if pattern is not None
            else range(0)
        )
        walking = pattern is not None and pattern.grid is not None and not pattern.grid_seen
        # Only a read that waits for the network is evidence a reader is bound by round trips
        # (a walk's step, a scattered read): re-reading held bytes starts no fetch.
        was_held = (walking or (jump and small)) and all(
            self._cached(grain.key(obj, i)) for grain, s, e in plan for i in grain.indexes(s, e)
        )
        if walking:
            assert pattern is not None and pattern.grid is not None
            # Before this read waits: the reader's next objects go out beside it, ahead of
            # the reads it is about to send for them.
            lines = self.read_ahead.neighbours(pattern, obj, was_held)
            self._prefetch_lines(lines, pattern.grid.fetch_line)
        pieces = [await self._bytes(obj, grain, s, e) for grain, s, e in plan]
        data = pieces[0] if len(pieces) == 1 else b"".join(pieces)
        if offset == 0 and pattern is not None and data.startswith(HDF5_SIGNATURE):
            pattern.hdf5 = True
            self._guess(obj, self.read_ahead.first_metadata(pattern))
        self.stats.add("bytes_served", end - offset)
        if pattern is not None:
            blocks = self._block.count(obj)
            rest = self.read_ahead.rest_of_file(
                pattern, offset, end, blocks, jump and not was_held, small
            )
            self._fetch_ahead(obj, ahead)
            self._fetch_rest(obj, rest)
        return data

    async def _read_assembled(
        self, view: Assembled, offset: int, size: int, pattern: ReadPattern | None
    ) -> bytes:
        """Served bytes are counted by the reads of the parts."""
        end = min(offset + size, view.size)
        if offset >= end:
            return b""
        # Noted before its bytes arrive, as in ``read``.
        ahead = (
            self.read_ahead.blocks_after(pattern, offset, end, self._block.count(view))
            if pattern is not None
            else range(0)
        )
        data = await view.fetch(offset, end)
        if ahead and self._background is not None:
            bs = self.block_size
            self._prefetch(view.parts(ahead.start * bs, min(ahead.stop * bs, view.size)))
        return data

    def _plan(
        self, obj: RemoteObject, offset: int, end: int, pattern: ReadPattern | None
    ) -> list[tuple[_Grain, int, int]]:
        """The grain each part of the read [offset, end) is served in, as (grain, start, end)
        parts in order. In each block the read touches: whatever of it is held (the block, or
        the fragments holding the part), so that bytes read before are never fetched again;
        else whole blocks for a stream, and fragments for a random read and the pieces the
        kernel cuts a large one into (about the bytes asked, in one request), or the block
        once ``FRAGMENTS_TO_BLOCK`` fragments of it were fetched for small random reads (HDF5
        metadata packed together; the blocks around such a block are fetched beside it).
        Objects of one block are read whole anyway
        (zarr chunks, small files), and so are objects served only whole or in blocks only,
        and reads without a pattern (the parts of an assembled file)."""
        block = self._block
        if (
            pattern is None
            or obj.size <= self.block_size
            or isinstance(obj, (ServedWhole, BlocksOnly))
        ):
            return [(block, offset, end)]
        small = end - offset <= self._small_read
        # A jump: a read that continues nothing. A large first read at the start of a file
        # begins a stream, as the kernel assumes too.
        jump = pattern.is_random(offset) and (small or offset > 0)
        # The pieces of one large random read go as it does: about the bytes asked.
        piece = not jump and pattern.continues_large_jump(
            offset, self._small_read, STREAM_MIN_BLOCKS * block.size
        )
        plan: list[tuple[_Grain, int, int]] = []
        for b in block.indexes(offset, end):
            start, stop = max(offset, b * block.size), min(end, (b + 1) * block.size)
            grain = self._grain_in_block(
                obj, b, start, stop, jump or piece, jump and small, pattern
            )
            if plan and plan[-1][0] is grain:
                plan[-1] = (grain, plan[-1][1], stop)
            else:
                plan.append((grain, start, stop))
        return plan

    def _grain_in_block(
        self,
        obj: RemoteObject,
        b: int,
        start: int,
        end: int,
        random: bool,
        small_jump: bool,
        pattern: ReadPattern,
    ) -> _Grain:
        if self._holds_block(obj, b):
            return self._block
        fragment = self._fragment
        if all(self._holds(fragment.key(obj, i)) for i in fragment.indexes(start, end)):
            return fragment
        if small_jump and pattern.hdf5 and pattern.metadata_blocks < HDF5_METADATA_BLOCKS:
            pattern.metadata_blocks += 1
            # The next metadata reads are near: those blocks go out beside this one.
            self._guess(obj, self.read_ahead.around_metadata(pattern, b, self._block.count(obj)))
            return self._block
        if not random or (small_jump and self._fragments_held(obj, b) >= FRAGMENTS_TO_BLOCK):
            return self._block
        return fragment

    def _in_memory(self, key: BlockKey) -> bytes | None:
        hot = self._hot.get(key)
        return self._unstored.get(key) if hot is None else hot

    def _cached(self, key: BlockKey) -> bool:
        """In memory or on disk now (not merely on its way)."""
        return self._in_memory(key) is not None or self.cache.contains(*key)

    def _holds(self, key: BlockKey) -> bool:
        """In memory, on disk, or on its way."""
        return self._cached(key) or key in self._inflight

    def _holds_block(self, obj: RemoteObject, b: int) -> bool:
        return self._holds(self._block.key(obj, b))

    def _fragments_cover(self, obj: RemoteObject, b: int) -> bool:
        """All of block ``b``'s bytes are held as fragments (random reads covered it):
        read-ahead leaves the block alone, so its bytes are never fetched again."""
        fragment, start = self._fragment, b * self.block_size
        end = min(start + self.block_size, obj.size)
        return all(self._holds(fragment.key(obj, i)) for i in fragment.indexes(start, end))

    def _fragments_held(self, obj: RemoteObject, b: int) -> int:
        """Fragments of block ``b`` fetched before: random reads that keep landing in one
        block (HDF5 metadata packed together) are served faster by the whole block."""
        per_block = self.block_size // self._fragment.size
        keys = (self._fragment.key(obj, i) for i in range(b * per_block, (b + 1) * per_block))
        return sum(self._holds(key) for key in keys)

    async def _bytes(self, obj: RemoteObject, grain: _Grain, start: int, end: int) -> bytes:
        """Bytes [start, end) of ``obj`` in units of ``grain``: from memory, else only the
        part wanted from disk, else fetched (whole units)."""
        pieces: dict[int, bytes] = {}
        missing: list[int] = []
        for i in grain.indexes(start, end):
            lo, hi = max(start - i * grain.size, 0), min(end - i * grain.size, grain.size)
            key = grain.key(obj, i)
            hot = self._in_memory(key)
            if hot is not None:
                self.stats.add("cache_hits_memory")
                pieces[i] = hot[lo:hi]
            elif (data := await self._from_disk(obj, grain, i, lo, hi)) is not None:
                self.stats.add("cache_hits")
                pieces[i] = data
            else:
                missing.append(i)
        if missing:
            units = await self._from_network(obj, missing, grain, background=False)
            for i in missing:
                pieces[i] = units[i][max(start - i * grain.size, 0) : end - i * grain.size]
        return b"".join(pieces[i] for i in sorted(pieces))

    async def _from_disk(
        self, obj: RemoteObject, grain: _Grain, i: int, lo: int, hi: int
    ) -> bytes | None:
        """Bytes [lo, hi) of unit ``i`` from the disk cache, or None. Small reads are read
        here on the event loop (see ``INLINE_READ``), larger ones in a worker thread."""
        key = grain.key(obj, i)
        if key in self._inflight:
            return None
        # A miss costs a look-up in memory only (the cache counts it): no thread for it.
        if hi - lo <= INLINE_READ or not self.cache.contains(*key):
            data = self.cache.read(*key, lo, hi, write_recency=False)
            self._recency_due()
        else:
            data = await trio.to_thread.run_sync(self.cache.read, *key, lo, hi)
        return data if data is not None and len(data) == hi - lo else None

    def _recency_due(self) -> None:
        """Hits read on the event loop leave the index's recency batch to a worker thread."""
        self._inline_hits += 1
        if self._inline_hits % RECENCY_CHECK_HITS == 0 and self._background is not None:
            self._background.start_soon(trio.to_thread.run_sync, self.cache.flush_recency_if_due)

    async def _units(
        self, obj: RemoteObject, indexes: Iterable[int], grain: _Grain, background: bool
    ) -> dict[int, bytes]:
        """Whole units (read-ahead): from memory, from disk, else fetched."""
        found: dict[int, bytes] = {}
        missing: list[int] = []
        for i in indexes:
            key = grain.key(obj, i)
            hot = self._in_memory(key)
            if hot is not None:
                found[i] = hot
                self.stats.add("cache_hits_memory")
                continue
            if key not in self._inflight and self.cache.contains(*key):
                data = await trio.to_thread.run_sync(self.cache.get, *key)
                if data is not None and len(data) == grain.length(obj, i):
                    self.stats.add("cache_hits")
                    self._hot[key] = data
                    found[i] = data
                    continue
            missing.append(i)
        if missing:
            found.update(await self._from_network(obj, missing, grain, background))
        return found

    async def _from_network(
        self, obj: RemoteObject, indexes: list[int], grain: _Grain, background: bool
    ) -> dict[int, bytes]:
        """Whole units not found in memory nor on disk: shared with a fetch under way, or
        fetched. An object served whole brings all its units not held in memory."""
        if isinstance(obj, ServedWhole):
            # The request brings all of it: take every block not held, not only those asked.
            indexes = [
                i for i in range(grain.count(obj)) if self._in_memory(grain.key(obj, i)) is None
            ]
        found: dict[int, bytes] = {}
        waits: dict[int, _Inflight] = {}
        to_fetch: list[int] = []
        for i in indexes:
            key = grain.key(obj, i)
            if key in self._inflight:
                waits[i] = self._inflight[key]
            elif (hot := self._in_memory(key)) is not None:
                # Another task fetched it meanwhile, and its disk write may not have landed.
                self.stats.add("cache_hits_memory")
                found[i] = hot
            else:
                self.stats.add("cache_misses")
                self._inflight[key] = _Inflight()
                to_fetch.append(i)
        if to_fetch:
            mine = {i: self._inflight[grain.key(obj, i)] for i in to_fetch}
            try:
                if self.cache.shared:
                    to_fetch = await self._stored_elsewhere(obj, to_fetch, grain)
                if to_fetch:
                    await self._fetch_runs(obj, to_fetch, grain, background)
            finally:
                # Always release in-flight entries, even when cancelled, or waiters would hang.
                # A fetched run released its own entries before writing them to disk.
                for i, entry in mine.items():
                    if self._inflight.get(grain.key(obj, i)) is entry:
                        self._finished(grain.key(obj, i))
                    waits[i] = entry
        for i, entry in waits.items():
            await entry.done.wait()
            if entry.data is None:
                raise _waiter_error(entry.error)
            found[i] = entry.data
        return found

    async def _adopt(self, obj: RemoteObject, offset: int, end: int) -> None:
        """Before a read is planned: the blocks and fragments that could serve it which
        another process sharing the cache directory stored, taken in (so the plan reads
        them from disk, whatever grain they were stored in)."""
        keys = [
            key
            for grain in (self._block, self._fragment)
            for i in grain.indexes(offset, end)
            if not self._holds(key := grain.key(obj, i))
        ]
        if keys:
            await trio.to_thread.run_sync(self.cache.adopt, keys)

    async def _stored_elsewhere(
        self, obj: RemoteObject, indexes: list[int], grain: _Grain
    ) -> list[int]:
        """Of units about to be fetched (registered in flight), those that another process
        sharing the cache directory stored are read from disk instead; the rest are
        returned, to be fetched."""
        keys = [grain.key(obj, i) for i in indexes]
        if not await trio.to_thread.run_sync(self.cache.adopt, keys):
            return indexes
        rest: list[int] = []
        for i, key in zip(indexes, keys, strict=True):
            data = None
            if self.cache.contains(*key):
                data = await trio.to_thread.run_sync(self.cache.get, *key)
            if data is None or len(data) != grain.length(obj, i):
                rest.append(i)
                continue
            self.stats.add("cache_hits")
            self._hot[key] = data
            self._inflight[key].data = data
            self._finished(key)
        return rest

    def _finished(self, key: BlockKey) -> _Inflight:
        """Release a unit's waiters (once; later calls return the same entry)."""
        entry = self._inflight[key]
        if not entry.done.is_set():
            if entry.data is None and entry.error is None:
                entry.error = RemoteError("fetch interrupted")
            entry.done.set()
        del self._inflight[key]
        return entry

    async def _fetch_runs(
        self, obj: RemoteObject, indexes: list[int], grain: _Grain, background: bool
    ) -> None:
        """Fetch the given (already registered in-flight) units; record results or errors.
        An object served whole is one request, however its missing units lie."""
        if isinstance(obj, ServedWhole):
            batches = [sorted(indexes)]
        else:
            batches = [list(range(a, b + 1)) for a, b in _runs(indexes, grain.max_run)]
        async with tasks_of_one_request() as nursery:
            for batch in batches:
                if background:
                    nursery.start_soon(self._fetch_run_in_slot, obj, batch, grain)
                else:
                    nursery.start_soon(self._fetch_run, obj, batch, grain)

    async def _fetch_run_in_slot(
        self, obj: RemoteObject, indexes: list[int], grain: _Grain
    ) -> None:
        async with self.read_ahead.slots:
            await self._fetch_run(obj, indexes, grain, in_slot=True)

    async def _fetch_run(
        self, obj: RemoteObject, indexes: list[int], grain: _Grain, in_slot: bool = False
    ) -> None:
        """One request for the units ``indexes`` (sorted; contiguous unless the object is
        served whole, which is asked for all of it)."""
        size = grain.size
        if isinstance(obj, ServedWhole):
            start, end = 0, obj.size
        else:
            start, end = indexes[0] * size, min((indexes[-1] + 1) * size, obj.size)
        try:
            data = await obj.fetch(start, end)
            if len(data) != end - start:
                raise RemoteError(f"{obj.content_id}: got {len(data)} bytes for {end - start}")
        except BaseException as exc:  # recorded for waiters, then re-raised for our caller
            for i in indexes:
                self._inflight[grain.key(obj, i)].error = exc
            if isinstance(exc, Exception):
                return
            raise
        units = {
            grain.key(obj, i): data[i * size - start : (i + 1) * size - start] for i in indexes
        }
        del data  # the copies above are what stays; free the response now
        await self._arrived(units, in_slot)

    async def _arrived(self, units: dict[BlockKey, bytes], in_slot: bool) -> None:
        """Fetched units (each registered in flight): readers go on with them now, from
        memory; their disk write (which fsyncs) follows, in the background. Read-ahead, in
        its slot, first waits for room among the writes behind (``ReadAhead.store_behind``):
        that bounds its memory however slow the disk."""
        for key, unit in units.items():
            self._inflight[key].data = unit
            self._hot[key] = unit
            self._unstored[key] = unit
            self._finished(key)
        for content, _index in units:
            self._storing[content] = self._storing.get(content, 0) + 1
        if self._background is None:
            await self._store_counted(units, None)
            return
        borrower = None
        if in_slot:
            borrower = object()
            # Shielded like the write itself: once decided, it happens (see _store_counted).
            with trio.CancelScope(shield=True):
                await self.read_ahead.store_behind.acquire_on_behalf_of(borrower)
        self._background.start_soon(self._store_counted, units, borrower)

    async def _store_counted(self, units: dict[BlockKey, bytes], borrower: object | None) -> None:
        """Write to disk. Counted per content from the moment it is decided, so that ``drop``
        waits for the writes of bytes it must forget (else they would land on disk after)."""
        try:
            # Shielded: bytes fetched before an unmount are on disk after it (the unmount
            # cancels the background nursery; a write already decided still lands).
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(self._store, units)
        finally:
            if borrower is not None:
                self.read_ahead.store_behind.release_on_behalf_of(borrower)
            for key, unit in units.items():
                if self._unstored.get(key) is unit:  # not replaced by a later fetch
                    del self._unstored[key]
            for content, _index in units:
                self._storing[content] -= 1
                if not self._storing[content]:
                    del self._storing[content]
            self._stored.set()
            self._stored = trio.Event()

    def _store(self, units: dict[BlockKey, bytes]) -> None:
        # A refused put (disk trouble, or a block larger than the cache) is counted by the
        # cache itself; the bytes are served from memory all the same.
        self.cache.put_blocks(units)

    # ------------------------------------------------------------------ dropping

    async def drop(self, obj: RemoteObject | Assembled) -> int:
        """Forget every block and fragment of ``obj`` (of an assembled file: of its parts),
        in memory and on disk, so that the next read fetches it again; return how many were
        on disk. Work follows the object's size, never the cache's."""
        objects: list[RemoteObject] = [obj]
        if isinstance(obj, Assembled):
            objects = obj.parts(0, obj.size) if obj.size else []
        grains = (self._block, self._fragment)
        contents = {g.key(o, 0)[0] for o in objects for g in grains}
        while contents & self._storing.keys():
            await self._stored.wait()
        keys = [g.key(o, i) for o in objects for g in grains for i in range(g.count(o))]
        for key in keys:
            self._hot.pop(key, None)
        return await trio.to_thread.run_sync(self.cache.drop, keys)

    # ------------------------------------------------------------------ read-ahead

    def _fetch_ahead(self, obj: RemoteObject, blocks: range) -> None:
        """Fetch these blocks of ``obj`` in the background (those not hot or in flight)."""
        if self._background is None or not blocks:
            return
        wanted = self._not_held(obj, blocks)
        if wanted:
            self._background.start_soon(self._read_ahead, obj, wanted)
        on_disk = [k for i in blocks if self.cache.contains(*(k := self._block.key(obj, i)))]
        if on_disk:
            self._background.start_soon(trio.to_thread.run_sync, self.cache.will_need, on_disk)

    def _guess(self, obj: RemoteObject, blocks: list[int]) -> None:
        """Fetch these blocks in the background, each its own request, so that they arrive
        together, one round trip from now (read-ahead's runs would be one long request)."""
        if self._background is None:
            return
        for b in blocks:
            self._background.start_soon(self._fetch_when_free, obj, range(b, b + 1))

    def _prefetch(self, objects: Iterable[RemoteObject]) -> None:
        """Fetch whole objects in the background (the next chunks along a reader's
        direction, the parts of an assembled file ahead of its reader)."""
        for obj in objects:
            self._fetch_ahead(obj, range(self._block.count(obj)))

    def _prefetch_lines(self, lines: list[Line], fetch_line: LineFetch | None) -> None:
        """Fetch lines of a grid's objects in the background: each run of a line's objects
        not held (whole objects of one block) is one request when the source can fetch lines,
        else each object is fetched on its own. Objects held or on their way are skipped."""
        if self._background is None:
            return
        for line in lines:
            run: list[RemoteObject] = []
            for obj in line:
                if self._line_member(obj):
                    run.append(obj)
                    if len(run) == MAX_LINE_OBJECTS:
                        self._fetch_line_ahead(run, fetch_line)
                        run = []
                    continue
                self._fetch_line_ahead(run, fetch_line)
                run = []
                if obj.size > self.block_size:  # never part of a line: fetched on its own
                    self._prefetch([obj])
            self._fetch_line_ahead(run, fetch_line)

    def _fetch_line_ahead(self, run: list[RemoteObject], fetch_line: LineFetch | None) -> None:
        if len(run) > 1 and fetch_line is not None:
            for obj in run:
                self._inflight[self._block.key(obj, 0)] = _Inflight()
            assert self._background is not None
            self._background.start_soon(self._read_line_ahead, run, fetch_line)
        else:
            self._prefetch(run)

    def _line_member(self, obj: RemoteObject) -> bool:
        """An object a line request may bring: one block, not held, not on its way."""
        key = self._block.key(obj, 0)
        return (
            obj.size <= self.block_size
            and self._in_memory(key) is None
            and key not in self._inflight
            and not self.cache.contains(*key)
        )

    async def _read_line_ahead(self, objects: list[RemoteObject], fetch_line: LineFetch) -> None:
        """One request for a line of objects (registered in flight by the caller), each
        cached as its own block, as if fetched alone."""
        try:
            async with self.read_ahead.slots:
                await self._fetch_together(objects, fetch_line, in_slot=True)
            self.stats.add("readahead_blocks", len(objects))
        except Exception as exc:  # a reader that needs these objects will see the error itself
            log.debug("read-ahead of a line of %d objects failed: %s", len(objects), exc)

    async def read_together(self, objects: Sequence[RemoteObject], fetch: LineFetch) -> list[bytes]:
        """The whole bytes of each of ``objects`` (each of one block: a volume's neighbouring
        chunks), those held nowhere fetched by one call of ``fetch`` (one request, where the
        source can), each cached as its own block as if fetched alone."""
        missing = [obj for obj in objects if self._line_member(obj)]
        if len(missing) > 1:
            for obj in missing:
                self._inflight[self._block.key(obj, 0)] = _Inflight()
            await self._fetch_together(missing, fetch, in_slot=False)
        found = await self._held_together(objects)
        return [
            data if data is not None else await self.read(obj, 0, obj.size)
            for obj, data in zip(objects, found, strict=True)
        ]

    async def _held_together(self, objects: Sequence[RemoteObject]) -> list[bytes | None]:
        """Each object's bytes from memory, or from disk where more than one is only there:
        those read together in one worker thread, so that a disk with a cold page cache
        waits beside the event loop, not on it (the reader's other reads go on). None for
        the rest."""
        keys = [self._block.key(obj, 0) for obj in objects]
        found: list[bytes | None] = [self._in_memory(key) for key in keys]
        if in_memory := sum(data is not None for data in found):
            self.stats.add("cache_hits_memory", in_memory)
        on_disk = [
            k
            for k, (obj, key) in enumerate(zip(objects, keys, strict=True))
            if found[k] is None
            and obj.size <= self.block_size
            and key not in self._inflight
            and self.cache.contains(*key)
        ]
        if len(on_disk) < 2:
            return found

        def read_all() -> list[bytes | None]:
            return [
                self.cache.read(*keys[k], 0, objects[k].size, write_recency=False) for k in on_disk
            ]

        for k, data in zip(on_disk, await trio.to_thread.run_sync(read_all), strict=True):
            if data is not None and len(data) == objects[k].size:
                self.stats.add("cache_hits")
                found[k] = data
        self._recency_due()
        return found

    async def _fetch_together(
        self, objects: Sequence[RemoteObject], fetch: LineFetch, in_slot: bool
    ) -> None:
        """One call of ``fetch`` for objects of one block each, registered in flight by the
        caller: each stored as its own block, or each waiter given the error."""
        keys = [self._block.key(obj, 0) for obj in objects]
        try:
            datas = await fetch(objects)
            units: dict[BlockKey, bytes] = {}
            for obj, key, data in zip(objects, keys, datas, strict=True):
                if len(data) != obj.size:
                    raise RemoteError(f"{obj.content_id}: got {len(data)} bytes")
                units[key] = data
            await self._arrived(units, in_slot=in_slot)
        except Exception as exc:  # each waiter gets it (an interruption: "fetch interrupted")
            for key in keys:
                if key in self._inflight:
                    self._inflight[key].error = exc
            raise
        finally:
            for key in keys:
                if key in self._inflight:
                    self._finished(key)

    def _fetch_rest(self, obj: RemoteObject, blocks: range) -> None:
        """Fetch the blocks of ``obj`` held nowhere, in the background, for a reader that
        reads all over it; not for a file larger than half the cache, nor one served whole or
        in blocks only (a plain volume's blocks are boxes the datastore computes)."""
        if (
            self._background is None
            or not blocks
            or isinstance(obj, (ServedWhole, BlocksOnly))
            or 2 * obj.size > self.cache.stats().capacity_bytes
        ):
            return
        log.debug("%s is read all over: fetching the rest of it", obj.content_id)
        for first in range(blocks.start, blocks.stop, MAX_RUN_BLOCKS):
            run = range(first, min(first + MAX_RUN_BLOCKS, blocks.stop))
            self._background.start_soon(self._fetch_when_free, obj, run)

    async def _fetch_when_free(self, obj: RemoteObject, run: range) -> None:
        """The blocks of ``run`` held nowhere, fetched in a read-ahead slot (the rest of a
        file, guesses). It waits for the slot before it marks its blocks in flight: a
        reader never waits behind the queue for a block it could fetch itself, and the slot
        is held until the blocks are on disk (bounded memory)."""
        async with self.read_ahead.slots:
            wanted = [
                i
                for i in run
                if not self._holds_block(obj, i) and not self._fragments_cover(obj, i)
            ]
            if not wanted:
                return
            mine = {i: _Inflight() for i in wanted}
            for i, entry in mine.items():
                self._inflight[self._block.key(obj, i)] = entry
            self.stats.add("readahead_blocks", len(wanted))
            try:
                for a, b in _runs(wanted, MAX_RUN_BLOCKS):
                    await self._fetch_run(obj, list(range(a, b + 1)), self._block, in_slot=True)
            finally:
                for i, entry in mine.items():
                    if self._inflight.get(self._block.key(obj, i)) is entry:
                        self._finished(self._block.key(obj, i))

    def _not_held(self, obj: RemoteObject, indexes: Iterable[int]) -> list[int]:
        """Blocks to fetch ahead: neither in memory, on disk nor on their way, nor covered by
        fragments. Blocks on disk are left for the reader to read and check when it gets
        there (``_fetch_ahead`` has the kernel read their files ahead): read ahead into
        memory, a window wider than the hot set pushed them out before the reader came, so a
        warm stream read and checked each block twice."""
        wanted = []
        for i in indexes:
            key = self._block.key(obj, i)
            if (
                self._in_memory(key) is None
                and key not in self._inflight
                and not self.cache.contains(*key)
                and not self._fragments_cover(obj, i)
            ):
                wanted.append(i)
        return wanted

    async def _read_ahead(self, obj: RemoteObject, indexes: list[int]) -> None:
        try:
            await self._units(obj, indexes, self._block, background=True)
            self.stats.add("readahead_blocks", len(indexes))
        except Exception as exc:  # a reader that needs these blocks will see the error itself
            log.debug("read-ahead of %s failed: %s", obj.content_id, exc)

"""What to fetch before a reader asks for it: one policy for every source.

The policy decides from two kinds of evidence, and the fetcher (``io/fetcher.py``) fetches
what it decides, in the background:

- **Sequential reads within one open file** (``ReadPattern``): a window of twice the length
  of the sequential run (up to ``MAX_READAHEAD_BLOCKS``), once the run is
  ``STREAM_MIN_BLOCKS`` long (before, the kernel's own read-ahead is ahead of the reader); a
  jump starts over, and random reads get nothing. For a file assembled from other objects
  (a WEBKNOSSOS plain volume from its chunks) the window is a byte range of that file,
  fetched as the objects that hold it.
- **Hints from sources** (``GridHint``): an object that is one cell of a grid (a volume's
  chunks) says which grid, where in it, how far the grid extends and how to make the object
  at another index. A reader whose first read of an object comes one step along one axis
  from the previous object read in that grid gets the next ``GRID_READ_AHEAD`` objects in
  that direction, never past the grid's extent, and only within what the reader has shown
  it walks: the span of the objects it has read in that grid (``Walk``). Only two steps in
  a row that each widen that span in the same direction (a reader growing its region, or
  walking one line) earn objects beyond it. So a region read row by row gets its rows'
  objects ahead from the second row on, and nothing past the region but the first row's
  end. Inside the span, a step also fetches ahead in the order the reader walks (the step's
  axis fastest, then the nearest other axis, as zarr readers go through a region in C
  order): the rest of the step's line and up to ``GRID_LINES_AHEAD`` lines after it, never
  past the span. Each line is one request when its source can fetch a line of objects
  together (``GridHint.fetch_line``: the WEBKNOSSOS datastore's box route); that keeps a
  wide region's reads ahead of a reader with few in flight of its own (zarr-python reads
  six chunks at a time on two cores). Only a read that had to wait for the network, or that
  found an object read ahead for it, continues a walk, as the kernel's read-ahead marker
  does: re-reading objects held from before fetches nothing more, so what a warm reader
  costs does not depend on the order its concurrent reads arrive in.

- **Small random reads all over a file** (``rest_of_file``): a reader whose small reads
  jump around has its round trips to pay, one per read; once they have touched much of a
  file (``SCATTER_MIN_BLOCKS`` blocks and one in ``SCATTER_SHARE``), the rest of the file is
  fetched in the background. Large random reads get exactly what they ask.
- **HDF5 metadata** (``around_metadata``, ``first_metadata``): the library walks a file's
  metadata one object after another, each a small read and a round trip; h5py writes the
  metadata of objects created together side by side. A block an HDF5 file's small read took
  whole as metadata brings the blocks near it, each its own request beside the reader's
  (and the signature brings the first block), a bounded number per open file.

A reader that opened its file with O_DIRECT manages its own I/O (``neurofs prefetch
--bbox`` names every chunk it wants): nothing is read ahead for it, as the kernel reads
nothing ahead for it either, and its reads are no evidence of a walk.

Read-ahead holds at most ``READAHEAD_RUNS`` requests out at once and ``STORE_BEHIND`` more
whose bytes wait for the disk, which bounds the daemon's memory however fast the network or
slow the disk.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import cachetools
import trio

if TYPE_CHECKING:
    from neurofs.io.fetcher import RemoteObject

# Read-ahead window cap for sequential readers, in blocks.
MAX_READAHEAD_BLOCKS = 64
# A sequential run gets read-ahead of its own once it is this long: below, the kernel's
# read-ahead of the mount (1 MiB, ``fs/kernel_readahead.py``) keeps ahead of the reader.
STREAM_MIN_BLOCKS = 4
# Read-ahead requests in flight at once (each at most a few blocks), across all files.
# 8 × 4 MiB keeps a 50 MB/s-per-connection link with 20 ms latency busy several times over
# while capping what read-ahead holds in memory at 32 MiB.
READAHEAD_RUNS = 8
# Read-ahead requests whose bytes have arrived and wait for the disk. A request's slot is free
# for the next request once its bytes are in memory (readers are served from there), not
# once they are on disk: the disk's fsyncs no longer pace the network. Back-pressure stays: a
# request whose bytes find this many ahead of them keeps its slot until one lands, so
# read-ahead holds at most (READAHEAD_RUNS + STORE_BEHIND) requests' bytes.
STORE_BEHIND = 8
# Objects fetched ahead once a reader moves object by object along one axis of a grid.
GRID_READ_AHEAD = 2
# Whole lines fetched ahead of a reader inside its walk's span, after the rest of its own.
# A line's box arrives whole before any of its chunks is served: at 50 MB/s per connection
# 8 chunks take 5 ms more than one, which four lines ahead hide (two did not: 2.3 s for a
# 256³ region against 1.9 s; eight lines, 2.1 s).
GRID_LINES_AHEAD = 4
# Lines a walk fetches ahead past its span, along the axis its reader sweeps (the next rows
# of a region's first plane, then the first rows of its next plane): without them every
# plane began with a wait for its first lines (256³ region: 1.35 s; with them, 1.1 s).
SWEEP_AHEAD = 2
# Lines fetched ahead that a walk remembers (a bound on its memory; 8 bytes of index each).
MAX_LINES_NOTED = 4096
# How far from the span of a walk (in objects, on each axis) a read still goes on with it.
WALK_GAP = 8
# Grids whose last read object is remembered (one entry per array being walked).
REMEMBERED_GRIDS = 4096
# A reader that has read small pieces at random in at least SCATTER_MIN_BLOCKS distinct
# blocks of a file, and in at least one in SCATTER_SHARE of its blocks, touches much of it and
# is bound by round trips: the rest of the file is fetched in the background, in runs through
# the read-ahead slots (as rclone's large chunks would, but only once a reader has shown it
# goes all over the file). Files of up to SCATTER_MAX_BLOCKS blocks.
SCATTER_MIN_BLOCKS = 64
SCATTER_SHARE = 8
SCATTER_MAX_BLOCKS = 4096
# HDF5 metadata: a block an HDF5 file's small random read took whole as metadata brings the
# blocks within METADATA_REACH of it too, each its own request beside the reader's, up to
# METADATA_GUESSES blocks per open file (and, once the file shows its signature, its first
# block, where the root group's B-tree and heap follow the superblock). h5py writes the
# metadata of objects created together next to each other, and the library reads it one
# object after another, each read a round trip: the sample NWB file's open reads blocks 33,
# 31, 29, 0 and 34 one after another.
METADATA_REACH = 4
METADATA_GUESSES = 24

Index = tuple[int, ...]
# Objects of a grid next to each other along one axis, fetched ahead together.
Line = list["RemoteObject"]
# Fetches a line of objects of one grid (in one request where it can): each object's whole
# bytes, in order.
LineFetch = Callable[[Sequence["RemoteObject"]], Awaitable[list[bytes]]]


@dataclass(frozen=True, eq=False)
class GridHint:
    """Where a remote object sits among its neighbours, as its source knows it."""

    grid: Hashable  # equal for the objects of one grid (one array, as one view shows it)
    index: Index
    extent: Index  # objects per axis: the grid holds every index with 0 <= i < extent
    at: Callable[[Index], RemoteObject]  # the object at another index of the grid
    fetch_line: LineFetch | None = None  # how to fetch several at once, if the source can

    def along(self, step: Index, count: int) -> Line:
        """The next ``count`` objects from here in direction ``step``, up to the grid's
        edge."""
        ahead: Line = []
        for n in range(1, count + 1):
            index = tuple(i + n * s for i, s in zip(self.index, step, strict=True))
            if not all(0 <= i < e for i, e in zip(index, self.extent, strict=True)):
                break
            ahead.append(self.at(index))
        return ahead

    def lines_after(
        self, step: Index, within: tuple[Index, Index], lines: int
    ) -> list[tuple[Index, range]]:
        """The objects after this one in the order of a reader walking ``within`` (a box of
        indices, inclusive) line by line along ``step``'s axis, in its direction: the rest of
        this line, then up to ``lines`` whole lines after it (the next along the slower axis
        nearest the step's, carrying over to the next one out), never outside ``within``.
        Each line is an index on it and its positions along the axis, in walk order (the
        indices themselves are made only for the lines fetched)."""
        axis = next(k for k, s in enumerate(step) if s)
        sign = step[axis]
        first, last = within
        # x fastest gives lines along y, then z; z fastest (the native view), y, then x.
        slower = sorted((k for k in range(len(step)) if k != axis), key=lambda k: abs(k - axis))
        whole = range(first[axis], last[axis] + 1)[::sign]
        index = list(self.index)
        rest = range(index[axis] + sign, whole.stop, sign)
        out = [(self.index, rest)] if rest else []
        for _ in range(lines):
            for k in slower:
                if index[k] < last[k]:
                    index[k] += 1
                    break
                index[k] = first[k]
            else:
                break
            out.append((tuple(index), whole))
        return out

    @staticmethod
    def on_line(index: Index, axis: int, position: int) -> Index:
        """The index at ``position`` along ``axis`` on the line through ``index``."""
        return (*index[:axis], position, *index[axis + 1 :])


@dataclass
class Walk:
    """A reader's walk through one grid: the last object read, the span (first, last index
    per axis) of the objects read, and the direction of the last step if it widened that
    span (axis, sign)."""

    last: Index
    first: Index
    end: Index  # last index read on each axis (inclusive)
    widening: tuple[int, int] | None = None
    # Lines of the span fetched ahead already (their first index and direction), so that
    # each read asks only for lines not asked for before.
    lines_ahead: set[tuple[Index, Index]] = field(default_factory=set)
    # The axis the reader sweeps, and the last index of each line fetched ahead past the
    # span along it and not inside the span yet.
    swept: int | None = None
    past: set[Index] = field(default_factory=set)

    def note_line_ahead(self, line: tuple[Index, Index]) -> None:
        if len(self.lines_ahead) >= MAX_LINES_NOTED:  # a long walk: forget, at worst re-ask
            self.lines_ahead.clear()
        self.lines_ahead.add(line)

    @classmethod
    def starting_at(cls, index: Index) -> Walk:
        return cls(index, index, index)

    def reaches(self, index: Index) -> bool:
        """Whether a read at ``index`` goes on with this walk: inside its span or within
        ``WALK_GAP`` of it (a reader's concurrent reads finish in any order, a row or so
        apart). A read anywhere else starts a walk of its own, so objects read long ago in
        the same grid do not stretch the span read-ahead stays within."""
        return len(index) == len(self.last) and all(
            lo - WALK_GAP <= i <= hi + WALK_GAP
            for i, lo, hi in zip(index, self.first, self.end, strict=True)
        )

    def spans(self, index: Index) -> bool:
        return all(lo <= i <= hi for i, lo, hi in zip(index, self.first, self.end, strict=True))

    def lines(self, axis: int) -> int:
        """How many lines along ``axis`` the span holds."""
        sides = (e - f + 1 for f, e in zip(self.first, self.end, strict=True))
        return math.prod(side for k, side in enumerate(sides) if k != axis)

    def sweep_ahead(self, axis: int, extent: Index) -> tuple[Index, Index]:
        """The span, grown along the axis the reader sweeps: the slowest axis (other than
        ``axis``, the one it steps along) on which the span is more than one object long.
        A reader of a region goes on row by row, then plane by plane, so its next lines lie
        past the span on that axis (the next rows of its first plane, then the next plane).
        Grown by up to ``SWEEP_AHEAD`` objects, on the side the reader is at; the caller
        bounds the lines it takes from there (``past``, forgotten when the reader sweeps
        another axis: its guesses along the last one are behind it)."""
        first, end = list(self.first), list(self.end)
        slower = sorted((k for k in range(len(first)) if k != axis), key=lambda k: abs(k - axis))
        swept = [k for k in slower if end[k] > first[k]]
        if not swept:
            return self.first, self.end
        k = swept[-1]
        if k != self.swept:
            self.swept, self.past = k, set()
        grow = SWEEP_AHEAD
        if self.last[k] == end[k]:
            end[k] = min(extent[k] - 1, end[k] + grow)
        elif self.last[k] == first[k]:
            first[k] = max(0, first[k] - grow)
        return tuple(first), tuple(end)

    def step_to(self, index: Index) -> tuple[Index | None, bool]:
        """Move to ``index``; the unit step taken (None for any other move), and whether it
        is the second step in a row to widen the span in that direction."""
        step = tuple(a - b for a, b in zip(index, self.last, strict=True))
        unit = sorted(abs(s) for s in step) == [0] * (len(step) - 1) + [1]
        widening: tuple[int, int] | None = None
        if unit:
            axis = next(k for k, s in enumerate(step) if s)
            sign = step[axis]
            if (sign > 0 and index[axis] > self.end[axis]) or (
                sign < 0 and index[axis] < self.first[axis]
            ):
                widening = (axis, sign)
        again = widening is not None and widening == self.widening
        self.last = index
        self.first = tuple(min(a, b) for a, b in zip(self.first, index, strict=True))
        self.end = tuple(max(a, b) for a, b in zip(self.end, index, strict=True))
        self.widening = widening
        return (step if unit else None), again


@dataclass
class ReadPattern:
    """One open file's reads so far, and what its source and its reader said about it."""

    grid: GridHint | None = None
    # False when the reader opened with O_DIRECT: it gets exactly what it reads.
    speculative: bool = True
    next_offset: int = -1
    run_start: int = 0  # where the current sequential run began
    run_first: int = 0  # the length of the read that began it
    window: int = 0  # blocks of read-ahead (those ``ahead_bytes`` reach into)
    ahead_bytes: int = 0  # bytes of read-ahead past the last read: twice the run
    prefetched_to: int = 0  # first block index not yet asked for by read-ahead
    grid_seen: bool = False  # this file's place in its grid was taken into account
    # Blocks that random reads touched, until the rest of the file is asked for (``whole``).
    scattered: set[int] = field(default_factory=set)
    large_jumps: int = 0  # large reads that continued no run
    whole: bool = False
    hdf5: bool = False  # its first bytes are an HDF5 superblock's signature
    metadata_blocks: int = 0  # blocks its small random reads took whole as HDF5 metadata
    metadata_guesses: int = 0  # blocks fetched beside them (``ReadAhead.around_metadata``)

    def is_random(self, offset: int) -> bool:
        """Whether a read at ``offset`` continues no sequential stream."""
        return self.window == 0 and offset != self.next_offset

    def continues_large_jump(self, offset: int, large: int, within: int) -> bool:
        """Whether a read at ``offset`` continues a run that a read of at least ``large``
        bytes began away from the start of the file, and lies ``within`` bytes of where it
        began: the rest of one large random read, which the kernel sends in pieces of at most
        its request size (1 MiB), or its next one."""
        return (
            self.window == 0
            and offset == self.next_offset
            and self.run_start > 0
            and self.run_first >= large
            and offset - self.run_start < within
        )

    def observe(self, offset: int, end: int, block_size: int, large: int) -> None:
        """Grow the window with the length of the sequential run (twice what was read in a
        row, as the kernel's read-ahead does), so a reader that takes 1 MiB in a few reads
        is not answered with 64 MiB. The kernel sends a stream's reads concurrently, so they
        may arrive out of order: a read inside the stream's span (or just past its end)
        keeps the stream; only a jump of more than a block away from it starts over.
        A run that a read of at least ``large`` bytes began away from the file's start is
        the pieces of one large random read (or the reader's next one) and no stream until
        it is as long as one: it keeps no window, so its pieces go as asked
        (``continues_large_jump``) and a jump after it is a random read."""
        if self.next_offset >= 0 and offset == self.next_offset:
            # A stream: read-ahead of twice the run, in bytes, once the run is longer than
            # what the kernel's own read-ahead covers: a peek at a file's first MiB
            # (``head -c 1M``) then costs the blocks the kernel asks for, not a window more.
            run = end - self.run_start
            streaming = run >= STREAM_MIN_BLOCKS * block_size
            self.ahead_bytes = min(2 * run, MAX_READAHEAD_BLOCKS * block_size) if streaming else 0
            one_large_read = not streaming and self.run_start > 0 and self.run_first >= large
            self.window = 0 if one_large_read else max(1, -(-self.ahead_bytes // block_size))
        elif not (
            self.next_offset >= 0
            and self.run_start - block_size <= offset <= self.next_offset + block_size
        ):
            self.window = 0
            self.ahead_bytes = 0
            self.prefetched_to = 0
            self.run_start = offset
            self.run_first = end - offset
            self.next_offset = end
            return
        self.next_offset = max(self.next_offset, end)


class ReadAhead:
    """The mount's read-ahead policy: told of each read, it answers what to fetch ahead.
    It does no I/O; ``slots`` bounds the requests the fetcher has in flight for it, and
    ``store_behind`` those whose bytes wait for the disk."""

    def __init__(self, block_size: int, large_read: int, grid_ahead: int = GRID_READ_AHEAD) -> None:
        self.block_size = block_size
        # A read of at least this many bytes is large: it is worth its own round trip.
        self.large_read = large_read
        self.grid_ahead = grid_ahead
        self.slots = trio.CapacityLimiter(READAHEAD_RUNS)
        self.store_behind = trio.CapacityLimiter(STORE_BEHIND)
        # Grid → the walk through it: the step to the next read gives the direction of the
        # walk, its span how far read-ahead may go.
        self._walks: cachetools.LRUCache[Hashable, Walk] = cachetools.LRUCache(
            maxsize=REMEMBERED_GRIDS
        )
        # Content ids of objects fetched ahead and not read since: a reader reaching one is
        # on the walk that fetched it (the read-ahead marker).
        self._ahead: cachetools.LRUCache[str, bool] = cachetools.LRUCache(maxsize=REMEMBERED_GRIDS)

    def fetched_ahead(self, lines: list[Line]) -> list[Line]:
        """Note objects about to be fetched ahead of a grid walk; returns them."""
        for line in lines:
            for obj in line:
                self._ahead[obj.content_id] = True
        return lines

    def blocks_after(self, pattern: ReadPattern, offset: int, end: int, blocks: int) -> range:
        """Note a read of [offset, end) in a file of ``blocks`` blocks; the blocks of that
        file to fetch ahead (empty for none)."""
        pattern.observe(offset, end, self.block_size, self.large_read)
        if not pattern.speculative or pattern.window == 0:
            return range(0)
        next_block = (end - 1) // self.block_size + 1
        # Top up only once half the window is consumed, so that read-ahead goes out in large
        # runs rather than one block at a time.
        if pattern.prefetched_to - next_block > pattern.window // 2:
            return range(0)
        start = max(next_block, pattern.prefetched_to)
        stop = min(-(-(end + pattern.ahead_bytes) // self.block_size), blocks)
        if start >= stop:
            return range(0)
        pattern.prefetched_to = stop
        return range(start, stop)

    def around_metadata(self, pattern: ReadPattern, block: int, blocks: int) -> list[int]:
        """Blocks of an HDF5 file (of ``blocks`` blocks) to fetch beside ``block``, which a
        small read took whole as metadata: those within ``METADATA_REACH`` of it, nearest
        first, while the open file has guesses left."""
        near = [
            b
            for d in range(1, METADATA_REACH + 1)
            for b in (block + d, block - d)
            if 0 <= b < blocks
        ]
        return self._guesses(pattern, near)

    def first_metadata(self, pattern: ReadPattern) -> list[int]:
        """The first block of a file that has just shown the HDF5 signature (the root
        group's B-tree and heap follow the superblock), while it has guesses left."""
        return self._guesses(pattern, [0])

    def _guesses(self, pattern: ReadPattern, wanted: list[int]) -> list[int]:
        """``wanted`` cut to the open file's ``METADATA_GUESSES``; none for O_DIRECT."""
        if not pattern.speculative:
            return []
        chosen = wanted[: max(0, METADATA_GUESSES - pattern.metadata_guesses)]
        pattern.metadata_guesses += len(chosen)
        return chosen

    def rest_of_file(
        self, pattern: ReadPattern, offset: int, end: int, blocks: int, jump: bool, small: bool
    ) -> range:
        """Note a read of [offset, end) in a file of ``blocks`` blocks (``jump``: it continued
        no run and waited for the network; ``small``: a few KiB); all the file's blocks once
        small random reads that missed have touched much of it (see ``SCATTER_MIN_BLOCKS``),
        once per open file; else nothing.
        A reader of large random reads gets what it asks: each is worth its round trip (the
        kernel's pieces of them, which may arrive first and look small, count for nothing
        while large reads are more than a quarter of the blocks small ones touched)."""
        if not (jump and pattern.speculative) or pattern.whole or blocks > SCATTER_MAX_BLOCKS:
            return range(0)
        if not small:
            pattern.large_jumps += 1
            return range(0)
        pattern.scattered.update(range(offset // self.block_size, (end - 1) // self.block_size + 1))
        touched = len(pattern.scattered)
        if touched < max(SCATTER_MIN_BLOCKS, -(-blocks // SCATTER_SHARE)):
            return range(0)
        if 4 * pattern.large_jumps > touched:
            return range(0)
        pattern.whole, pattern.scattered = True, set()
        return range(blocks)

    def neighbours(self, pattern: ReadPattern, obj: RemoteObject, was_held: bool) -> list[Line]:
        """At a file's first read: the objects to fetch ahead along the axis its reader
        walks, if the previous object read in the same grid is its neighbour on one axis, as
        lines of neighbours along that axis (each line one request where the grid's source
        can fetch lines).
        ``was_held``: ``obj`` was cached before this read asked for it; then only an object
        fetched ahead for a walk continues that walk."""
        hint = pattern.grid
        if hint is None or pattern.grid_seen or not pattern.speculative:
            return []
        pattern.grid_seen = True
        walk = self._walks.get(hint.grid)
        marker = self._ahead.pop(obj.content_id, False)
        if walk is None or not walk.reaches(hint.index):
            self._walks[hint.grid] = Walk.starting_at(hint.index)
            return []
        step, widening_again = walk.step_to(hint.index)
        if step is None or (was_held and not marker):
            return []
        # Beyond the span read so far only for a reader that keeps widening it this way.
        if widening_again:
            # Each on its own: a guess past the span stays the size of one object.
            return self.fetched_ahead([[obj] for obj in hint.along(step, self.grid_ahead)])
        new: list[Line] = []
        axis = next(k for k, s in enumerate(step) if s)
        within = walk.sweep_ahead(axis, hint.extent)
        # Past the span: at most SWEEP_AHEAD lines out there at once along the axis swept
        # (whichever way the reader's concurrent reads made them run), and half the lines
        # read so far, so a guess past the end of a small region costs at most half of what
        # it read.
        walk.past = {end for end in walk.past if not walk.spans(end)}
        room = min(SWEEP_AHEAD, walk.lines(axis) // 2) - len(walk.past)
        for on, positions in hint.lines_after(step, within, GRID_LINES_AHEAD):
            # Noted by its end and direction: asked for once per walk, whichever read asks.
            end = (hint.on_line(on, axis, positions[-1]), step)
            if end in walk.lines_ahead:
                continue
            if not walk.spans(on):
                if room <= 0:
                    break
                room -= 1
                walk.past.add(end[0])
            walk.note_line_ahead(end)
            new.append([hint.at(hint.on_line(on, axis, i)) for i in positions])
        return self.fetched_ahead(new)

"""The read-ahead policy alone (what it decides), then with the fetcher (what is fetched)."""

from __future__ import annotations

import random

import pytest
import trio

from neurofs.io.cache import BlockCache
from neurofs.io.fetcher import Assembled, Fetcher, RemoteObject
from neurofs.io.readahead import (
    GRID_READ_AHEAD,
    MAX_READAHEAD_BLOCKS,
    METADATA_GUESSES,
    METADATA_REACH,
    READAHEAD_RUNS,
    SCATTER_MAX_BLOCKS,
    SCATTER_MIN_BLOCKS,
    SCATTER_SHARE,
    STORE_BEHIND,
    STREAM_MIN_BLOCKS,
    SWEEP_AHEAD,
    GridHint,
    Index,
    ReadAhead,
    ReadPattern,
)
from neurofs.io.stats import Stats

BS = 4096


class Cell:
    """A remote object of a grid, counting the requests for it in ``log``."""

    def __init__(self, index: Index, log: list[tuple[Index, int, int]], size: int = BS) -> None:
        self.index = index
        self.content_id = f"cell:{index}"
        self.size = size
        self.data = random.Random(str(index)).randbytes(size)
        self._log = log

    async def fetch(self, start: int, end: int) -> bytes:
        self._log.append((self.index, start, end))
        await trio.sleep(0.01)
        return self.data[start:end]


def hint(index: Index, extent: Index, log: list[tuple[Index, int, int]] | None = None) -> GridHint:
    requests = log if log is not None else []
    return GridHint("grid", index, extent, lambda i: Cell(i, requests))


def seen(policy: ReadAhead, pattern: ReadPattern, was_held: bool = False) -> list[RemoteObject]:
    """Tell the policy of a first read of the object ``pattern`` is open on."""
    assert pattern.grid is not None
    lines = policy.neighbours(pattern, pattern.grid.at(pattern.grid.index), was_held)
    return [obj for line in lines for obj in line]


def indexes(objects: list[RemoteObject]) -> list[Index]:
    return [obj.index for obj in objects]  # type: ignore[attr-defined]


# ---------------------------------------------------------------- the policy's decisions


def test_sequential_reads_get_a_window_that_grows_with_the_run() -> None:
    policy = ReadAhead(BS, BS // 4)
    pattern = ReadPattern()
    assert policy.blocks_after(pattern, 0, BS, 1000) == range(0)  # one read is no stream
    # A short run is left to the kernel's read-ahead; from STREAM_MIN_BLOCKS on, twice the run.
    for b in range(1, STREAM_MIN_BLOCKS - 1):
        assert policy.blocks_after(pattern, b * BS, (b + 1) * BS, 1000) == range(0)
    run = STREAM_MIN_BLOCKS
    assert policy.blocks_after(pattern, (run - 1) * BS, run * BS, 1000) == range(run, 3 * run)
    windows = []
    for b in range(run, 200):
        policy.blocks_after(pattern, b * BS, (b + 1) * BS, 1000)
        windows.append(pattern.window)
    assert windows == sorted(windows) and windows[-1] == MAX_READAHEAD_BLOCKS
    # Never past the end of the file.
    short = ReadPattern()
    for b in range(STREAM_MIN_BLOCKS - 1):
        policy.blocks_after(short, b * BS, (b + 1) * BS, 6)
    end = STREAM_MIN_BLOCKS * BS
    assert policy.blocks_after(short, end - BS, end, 6) == range(STREAM_MIN_BLOCKS, 6)


def test_random_reads_get_no_read_ahead() -> None:
    policy = ReadAhead(BS, BS // 4)
    pattern = ReadPattern()
    rng = random.Random(5)
    for _ in range(50):
        block = rng.randrange(0, 10_000) * 3  # never one block after the previous read
        assert policy.blocks_after(pattern, block * BS, (block + 1) * BS, 40_000) == range(0)


def test_the_pieces_of_a_large_jump_continue_it_until_the_run_is_a_stream() -> None:
    """The kernel sends a large read in pieces of at most 1 MiB: the pieces after the first
    of a read that jumped are recognised as its rest, until the run is as long as a stream."""
    policy = ReadAhead(BS, BS // 4)
    pattern = ReadPattern()
    policy.blocks_after(pattern, 10 * BS + 7, 11 * BS + 7, 1000)  # a large jump
    assert pattern.continues_large_jump(11 * BS + 7, BS // 4, STREAM_MIN_BLOCKS * BS)
    assert not pattern.continues_large_jump(11 * BS + 8, BS // 4, STREAM_MIN_BLOCKS * BS)
    assert not pattern.continues_large_jump(11 * BS + 7, 2 * BS, STREAM_MIN_BLOCKS * BS)
    for k in range(11, 10 + STREAM_MIN_BLOCKS - 1):
        # Every piece short of a stream's length goes on with it, and leaves no window: a
        # read elsewhere after it is random.
        assert pattern.continues_large_jump(k * BS + 7, BS // 4, STREAM_MIN_BLOCKS * BS)
        assert policy.blocks_after(pattern, k * BS + 7, (k + 1) * BS + 7, 1000) == range(0)
        assert pattern.window == 0 and pattern.is_random(500 * BS)
    k = 10 + STREAM_MIN_BLOCKS - 1  # the piece that makes the run as long as a stream
    assert policy.blocks_after(pattern, k * BS + 7, (k + 1) * BS + 7, 1000)
    assert not pattern.continues_large_jump(
        (10 + STREAM_MIN_BLOCKS) * BS + 7, BS // 4, STREAM_MIN_BLOCKS * BS
    )
    start = ReadPattern()  # a read at the start of the file begins a stream, not a jump
    policy.blocks_after(start, 0, BS, 1000)
    assert not start.continues_large_jump(BS, BS // 4, STREAM_MIN_BLOCKS * BS)


def test_a_reader_all_over_a_file_gets_the_rest_of_it_once() -> None:
    policy = ReadAhead(BS, BS // 4)
    blocks = 8 * SCATTER_MIN_BLOCKS * 2  # one in eight is twice the minimum
    pattern = ReadPattern()
    touched = random.Random(8).sample(range(blocks), blocks // SCATTER_SHARE)
    decided = [
        policy.rest_of_file(pattern, b * BS + 5, b * BS + 9, blocks, True, True) for b in touched
    ]
    assert decided[:-1] == [range(0)] * (len(touched) - 1)
    assert decided[-1] == range(blocks)
    assert policy.rest_of_file(pattern, 5, 9, blocks, True, True) == range(0)  # once
    # Many reads in few blocks (HDF5 metadata), a direct reader, a huge file: nothing.
    few = ReadPattern()
    assert all(
        policy.rest_of_file(few, (k % 10) * BS + k, (k % 10) * BS + k + 4, blocks, True, True)
        == range(0)
        for k in range(1000)
    )
    # A reader of large random reads, whose pieces may look like small jumps: nothing.
    large = ReadPattern()
    for b in range(blocks // 2):
        policy.rest_of_file(large, b * 2 * BS + 7, b * 2 * BS + 7 + BS, blocks, True, False)
        assert policy.rest_of_file(
            large, b * 2 * BS + 7 + BS, b * 2 * BS + 7 + BS + 9, blocks, True, True
        ) == range(0)
    direct = ReadPattern(speculative=False)
    huge = ReadPattern()
    for b in range(SCATTER_MAX_BLOCKS):
        assert policy.rest_of_file(direct, b * BS, b * BS + 1, blocks, True, True) == range(0)
        assert policy.rest_of_file(
            huge, b * BS, b * BS + 1, SCATTER_MAX_BLOCKS + 1, True, True
        ) == range(0)


def test_hdf5_metadata_brings_the_blocks_near_it_until_the_guesses_run_out() -> None:
    """Beside a metadata block: the blocks within METADATA_REACH, nearest first, never past
    the file's ends; the first block when the signature is seen; at most METADATA_GUESSES blocks per
    open file; none for a reader that opened with O_DIRECT."""
    ra = ReadAhead(BS, BS // 4)
    pattern = ReadPattern()
    assert ra.first_metadata(pattern) == [0]
    assert ra.around_metadata(pattern, 50, 100) == [
        50 + d for r in range(1, METADATA_REACH + 1) for d in (r, -r)
    ]
    assert ra.around_metadata(pattern, 1, 100) == [2, 0, *range(3, 2 + METADATA_REACH)]
    assert ra.around_metadata(pattern, 99, 100) == list(range(98, 98 - METADATA_REACH, -1))
    left = METADATA_GUESSES - pattern.metadata_guesses
    guessed = [ra.around_metadata(pattern, b, 10_000) for b in range(1000, 10_000, 1000)]
    assert sum(len(g) for g in guessed) == left
    assert ra.around_metadata(pattern, 5000, 10_000) == []
    assert pattern.metadata_guesses == METADATA_GUESSES
    assert ra.around_metadata(ReadPattern(speculative=False), 50, 100) == []


def test_two_steps_widening_the_walk_fetch_the_next_objects_along_that_axis() -> None:
    policy = ReadAhead(BS, BS // 4)
    assert seen(policy, ReadPattern(grid=hint((2, 6, 1), (10, 10, 10)))) == []
    # One step is no walk yet: nothing beyond what was read.
    assert seen(policy, ReadPattern(grid=hint((2, 5, 1), (10, 10, 10)))) == []
    ahead = seen(policy, ReadPattern(grid=hint((2, 4, 1), (10, 10, 10))))
    assert indexes(ahead) == [(2, 3, 1), (2, 2, 1)][:GRID_READ_AHEAD]


def test_a_region_read_row_by_row_gets_little_past_it() -> None:
    """A reader of a 4×3 region of a wider grid, row after row (x fastest): its second and
    third rows get read-ahead within the region; past the region, the first row's two
    objects (when the reader's extent was not known yet) and one row after its last (the
    rows it sweeps: at most half of those it read)."""
    policy = ReadAhead(BS, BS // 4)
    extent = (20, 20, 1)
    region = {(x, y, 0) for y in range(5, 8) for x in range(3, 7)}
    fetched: set[Index] = set()
    for y in range(5, 8):
        for x in range(3, 7):
            ahead = seen(policy, ReadPattern(grid=hint((x, y, 0), extent)))
            fetched.update(indexes(ahead))
    assert fetched - region == {(7, 5, 0), (8, 5, 0)} | {(x, 8, 0) for x in range(3, 7)}
    assert {(5, 6, 0), (6, 6, 0), (5, 7, 0), (6, 7, 0)} <= fetched


def test_inside_its_span_a_walk_gets_the_lines_it_reads_next() -> None:
    """A reader of a 4×3×2 region in C order (x fastest, then y, then z): once its span holds
    the next lines (the second plane), a step fetches the rest of its line and the lines
    after it, each line once, with at most SWEEP_AHEAD lines past the region where the
    reader sweeps it (its next rows, then its next plane)."""
    policy = ReadAhead(BS, BS // 4)
    extent = (20, 20, 20)
    region = {(x, y, z) for z in (4, 5) for y in (1, 2, 3) for x in (2, 3, 4, 5)}
    asked: dict[Index, list[list[Index]]] = {}
    for z in (4, 5):
        for y in (1, 2, 3):
            for x in (2, 3, 4, 5):
                pattern = ReadPattern(grid=hint((x, y, z), extent))
                assert pattern.grid is not None
                lines = policy.neighbours(pattern, pattern.grid.at((x, y, z)), False)
                asked[(x, y, z)] = [indexes(line) for line in lines]
    fetched = {i for lines in asked.values() for line in lines for i in line}
    row = range(2, 6)
    assert fetched - region == (
        {(6, 1, 4), (7, 1, 4)}  # the first row's end, before its extent was known
        | {(x, 4, 4) for x in row}  # one row past the first plane (half the 3 rows read)
        | {(x, y, 6) for x in row for y in (1, 2)}  # SWEEP_AHEAD rows of the next plane
    )
    assert SWEEP_AHEAD == 2
    assert asked[(3, 1, 5)] == [
        [(4, 1, 5), (5, 1, 5)],
        [(2, 2, 5), (3, 2, 5), (4, 2, 5), (5, 2, 5)],
        [(2, 3, 5), (3, 3, 5), (4, 3, 5), (5, 3, 5)],
        [(2, 1, 6), (3, 1, 6), (4, 1, 6), (5, 1, 6)],
        [(2, 2, 6), (3, 2, 6), (4, 2, 6), (5, 2, 6)],
    ]
    assert asked[(4, 1, 5)] == []  # those lines were asked for already
    assert asked[(3, 2, 5)] == []  # its line and the next were asked for already


def test_past_a_big_region_a_sweep_costs_a_few_lines_whatever_its_size() -> None:
    """An 8×8×8 region in C order: each plane's first lines come ahead of the reader, and
    past the region it costs the first row's end and SWEEP_AHEAD lines along each axis swept
    (y in the first plane, z after), never more."""
    policy = ReadAhead(BS, BS // 4)
    extent = (100, 100, 100)
    side = range(10, 18)
    region = {(x, y, z) for z in side for y in side for x in side}
    fetched: set[Index] = set()
    ahead_of_plane: dict[int, bool] = {}
    for z in side:
        ahead_of_plane[z] = (10, 10, z) in fetched or (11, 10, z) in fetched
        for y in side:
            for x in side:
                fetched.update(indexes(seen(policy, ReadPattern(grid=hint((x, y, z), extent)))))
    past = fetched - region
    assert past == (
        {(18, 10, 10), (19, 10, 10)}
        | {(x, y, 10) for x in side for y in (18, 19)}
        | {(x, y, 18) for x in side for y in (10, 11)}
    )
    assert all(ahead_of_plane[z] for z in side[2:])  # planes begin with lines already asked


def test_a_read_far_from_the_walk_starts_a_new_one() -> None:
    """Objects read long ago elsewhere in the grid do not widen the span of a new walk."""
    policy = ReadAhead(BS, BS // 4)
    seen(policy, ReadPattern(grid=hint((90, 90, 0), (100, 100, 1))))
    fetched: set[Index] = set()
    for y in range(0, 3):
        for x in range(0, 4):
            fetched.update(indexes(seen(policy, ReadPattern(grid=hint((x, y, 0), (100, 100, 1))))))
    # The first row's end, and one row past the last (the sweep after three rows).
    past = {(4, 0, 0), (5, 0, 0)} | {(x, 3, 0) for x in range(4)}
    assert fetched - {(x, y, 0) for x in range(4) for y in range(3)} == past


def test_grid_read_ahead_stops_at_the_extent() -> None:
    policy = ReadAhead(BS, BS // 4)
    seen(policy, ReadPattern(grid=hint((0, 0, 6), (1, 1, 8))))
    assert indexes(seen(policy, ReadPattern(grid=hint((0, 0, 7), (1, 1, 8))))) == []
    seen(policy, ReadPattern(grid=hint((0, 0, 5), (1, 1, 8))))
    assert indexes(seen(policy, ReadPattern(grid=hint((0, 0, 6), (1, 1, 8))))) == [(0, 0, 7)]


@pytest.mark.parametrize(
    "second", [(4, 4, 4), (2, 2, 2), (3, 3, 2), (0, 0, 0)], ids=["jump", "same", "diagonal", "far"]
)
def test_no_grid_read_ahead_without_a_one_step_move(second: Index) -> None:
    policy = ReadAhead(BS, BS // 4)
    seen(policy, ReadPattern(grid=hint((2, 2, 2), (10, 10, 10))))
    assert seen(policy, ReadPattern(grid=hint(second, (10, 10, 10)))) == []


def test_each_open_file_counts_once_and_grids_are_apart() -> None:
    policy = ReadAhead(BS, BS // 4)
    seen(policy, ReadPattern(grid=hint((0, 1, 1), (10, 10, 10))))
    seen(policy, ReadPattern(grid=hint((1, 1, 1), (10, 10, 10))))
    second = ReadPattern(grid=hint((2, 1, 1), (10, 10, 10)))
    assert indexes(seen(policy, second)) == [(3, 1, 1), (4, 1, 1)]
    assert seen(policy, second) == []  # its next reads are not new steps
    other = GridHint("other grid", (3, 1, 1), (10, 10, 10), lambda i: Cell(i, []))
    assert seen(policy, ReadPattern(grid=other)) == []  # first read in that grid


def test_a_direct_reader_gets_nothing_and_is_no_evidence() -> None:
    policy = ReadAhead(BS, BS // 4)
    exact = [ReadPattern(grid=hint((x, 0, 0), (10, 1, 1)), speculative=False) for x in range(4)]
    for pattern in exact:
        assert seen(policy, pattern) == []
    sequential = ReadPattern(speculative=False)
    for b in range(10):
        assert policy.blocks_after(sequential, b * BS, (b + 1) * BS, 100) == range(0)
    # The direct reader's chunks 0..3 left no trace: a reader at 5 is a first read.
    assert seen(policy, ReadPattern(grid=hint((5, 0, 0), (10, 1, 1)))) == []


def test_objects_held_before_continue_no_walk_unless_read_ahead_brought_them() -> None:
    policy = ReadAhead(BS, BS // 4)
    seen(policy, ReadPattern(grid=hint((0, 0, 0), (1, 1, 10))), was_held=True)
    # A warm re-read of a neighbour: nothing ahead, whatever order the reads come in.
    assert seen(policy, ReadPattern(grid=hint((0, 0, 1), (1, 1, 10))), was_held=True) == []
    # A miss next to it starts the walk; reaching what it fetched ahead (now held) goes on.
    assert indexes(seen(policy, ReadPattern(grid=hint((0, 0, 2), (1, 1, 10))))) == [
        (0, 0, 3),
        (0, 0, 4),
    ]
    ahead = seen(policy, ReadPattern(grid=hint((0, 0, 3), (1, 1, 10))), was_held=True)
    assert indexes(ahead) == [(0, 0, 4), (0, 0, 5)]


# ---------------------------------------------------------------- with the fetcher


@pytest.fixture
def fetcher(tmp_path):
    cache = BlockCache(tmp_path / "cache", 64 * 1024 * 1024)
    yield Fetcher(cache, Stats(), block_size=BS)
    cache.close()


async def test_walking_a_grid_fetches_the_next_cells_once(fetcher: Fetcher) -> None:
    log: list[tuple[Index, int, int]] = []
    async with trio.open_nursery() as n:
        fetcher.start_background(n)
        for x in (0, 1, 2):
            cell = Cell((x, 0, 0), log)
            pattern = ReadPattern(grid=hint((x, 0, 0), (4, 1, 1), log))
            assert await fetcher.read(cell, 0, BS, pattern) == cell.data
            await trio.sleep(0.1)
        n.cancel_scope.cancel()
    # Cells 2 and 3 were fetched ahead after the step from 0 to 1; the read of 2 waited for
    # (or found) them; nothing past the extent, nothing twice.
    assert sorted(index for index, _, _ in log) == [(0, 0, 0), (1, 0, 0), (2, 0, 0), (3, 0, 0)]


async def test_lines_of_a_walk_are_fetched_in_one_request_each(fetcher: Fetcher) -> None:
    """Where the grid's source fetches lines, each line fetched ahead is one request, and no
    cell is fetched twice, by either way."""
    log: list[tuple[Index, int, int]] = []
    line_requests: list[list[Index]] = []

    async def fetch_line(objects) -> list[bytes]:
        line_requests.append([obj.index for obj in objects])
        await trio.sleep(0.01)
        return [obj.data for obj in objects]

    extent = (8, 8, 8)
    region = [(x, y, z) for z in (0, 1) for y in range(4) for x in range(4)]
    async with trio.open_nursery() as n:
        fetcher.start_background(n)
        for index in region:
            cell = Cell(index, log)
            grid = GridHint("grid", index, extent, lambda i: Cell(i, log), fetch_line)
            assert await fetcher.read(cell, 0, BS, ReadPattern(grid=grid)) == cell.data
            await trio.sleep(0.05)
        n.cancel_scope.cancel()
    alone = [index for index, _, _ in log]
    in_lines = [i for line in line_requests for i in line]
    assert sorted(alone + in_lines) == sorted(set(alone + in_lines))  # none twice
    assert set(region) <= set(alone + in_lines)
    # The second plane came in lines of four: one request per line, after the first steps.
    assert [(0, y, 1) for y in (1, 2, 3)] <= [line[0] for line in line_requests]
    assert all(len(line) > 1 for line in line_requests)
    assert len(log) + len(line_requests) < len(region) * 3 // 4  # 21 here; 32 one by one


async def test_re_reading_held_cells_in_any_order_fetches_nothing(fetcher: Fetcher) -> None:
    """A warm reader costs the same whatever order its concurrent reads arrive in."""
    log: list[tuple[Index, int, int]] = []
    extent = (8, 1, 1)
    async with trio.open_nursery() as n:
        fetcher.start_background(n)
        for x in (2, 3, 4):  # cold: a walk, with cells 5 and 6 fetched ahead
            pattern = ReadPattern(grid=hint((x, 0, 0), extent, log))
            await fetcher.read(Cell((x, 0, 0), log), 0, BS, pattern)
            await trio.sleep(0.1)
        cold = sorted(index for index, _, _ in log)
        for order in ([4, 3, 2], [2, 3, 4], [3, 2, 4]):
            for x in order:
                pattern = ReadPattern(grid=hint((x, 0, 0), extent, log))
                await fetcher.read(Cell((x, 0, 0), log), 0, BS, pattern)
            await trio.sleep(0.1)
        n.cancel_scope.cancel()
    assert cold == [(x, 0, 0) for x in (2, 3, 4, 5, 6)]
    assert sorted(index for index, _, _ in log) == cold


class Slab(Assembled):
    """An assembled file: cell i holds bytes [i * BS, (i + 1) * BS)."""

    def __init__(self, fetcher: Fetcher, cells: int, log: list[tuple[Index, int, int]]) -> None:
        self._fetcher = fetcher
        self._cells = [Cell((i,), log) for i in range(cells)]
        self.size = cells * BS
        self.content_id = "slab"

    def parts(self, start: int, end: int) -> list[RemoteObject]:
        return list(self._cells[start // BS : (end - 1) // BS + 1])

    async def fetch(self, start: int, end: int) -> bytes:
        out = b""
        for cell in self.parts(start, end):
            out += await self._fetcher.read(cell, 0, BS)
        first = start // BS * BS
        return out[start - first : end - first]


async def test_an_assembled_file_is_cached_only_as_its_parts(fetcher: Fetcher) -> None:
    log: list[tuple[Index, int, int]] = []
    slab = Slab(fetcher, 32, log)
    whole = b"".join(cell.data for cell in slab.parts(0, slab.size))
    pattern = ReadPattern()
    async with trio.open_nursery() as n:
        fetcher.start_background(n)
        for offset in range(0, slab.size, BS // 2):
            assert (
                await fetcher.read(slab, offset, BS // 2, pattern)
                == whole[offset : offset + BS // 2]
            )
        await trio.sleep(0.2)
        n.cancel_scope.cancel()
    assert sorted(index for index, _, _ in log) == [(i,) for i in range(32)]
    assert fetcher.stats.get("readahead_blocks") > 0  # the parts ahead came early
    # Stored once: one block per cell, none under the assembled file's own identity.
    assert fetcher.cache.stats().stored_blocks == 32
    assert not fetcher.cache.contains("slab", 0)
    for cell in slab.parts(0, slab.size):
        assert await fetcher.read(cell, 0, BS) == cell.data
    assert len(log) == 32


async def test_read_ahead_of_parts_holds_a_bounded_number_of_requests(fetcher: Fetcher) -> None:
    concurrent = 0
    most = 0

    class Slow(Cell):
        async def fetch(self, start: int, end: int) -> bytes:
            nonlocal concurrent, most
            concurrent += 1
            most = max(most, concurrent)
            try:
                await trio.sleep(0.02)
            finally:
                concurrent -= 1
            return self.data[start:end]

    slab = Slab(fetcher, 256, [])
    slab._cells = [Slow((i,), []) for i in range(256)]
    pattern = ReadPattern()
    async with trio.open_nursery() as n:
        fetcher.start_background(n)
        for offset in range(0, 64 * BS, BS):
            await fetcher.read(slab, offset, BS, pattern)
        await trio.sleep(0.5)
        n.cancel_scope.cancel()
    # The reader's own request may run beside the read-ahead slots.
    assert 1 < most <= READAHEAD_RUNS + 1


async def test_a_slow_disk_holds_read_ahead_back_only_past_the_writes_behind(tmp_path) -> None:
    """Read-ahead's slot is free once its bytes are in memory: with a slow disk, up to
    STORE_BEHIND requests' bytes wait for it while the slots fetch the next ones (never more:
    then a request keeps its slot until a write lands); every block is stored in the end."""
    import time

    class SlowDisk(BlockCache):
        def put_blocks(self, blocks):  # type: ignore[no-untyped-def]
            time.sleep(0.05)
            return super().put_blocks(blocks)

    cache = SlowDisk(tmp_path / "cache", 64 * 1024 * 1024)
    fetcher = Fetcher(cache, Stats(), block_size=BS)
    log: list[tuple[Index, int, int]] = []
    slab = Slab(fetcher, 256, log)
    pattern = ReadPattern()
    most = {"waiting": 0, "slots": 0}

    async def watch() -> None:
        while True:
            ahead = fetcher.read_ahead
            most["waiting"] = max(most["waiting"], ahead.store_behind.borrowed_tokens)
            most["slots"] = max(most["slots"], ahead.slots.borrowed_tokens)
            await trio.sleep(0.002)

    try:
        async with trio.open_nursery() as n:
            fetcher.start_background(n)
            n.start_soon(watch)
            for offset in range(0, 64 * BS, BS):  # a stream: its window goes far ahead
                await fetcher.read(slab, offset, BS, pattern)
            while fetcher.read_ahead.store_behind.borrowed_tokens:
                await trio.sleep(0.05)
            n.cancel_scope.cancel()
        assert most == {"waiting": STORE_BEHIND, "slots": READAHEAD_RUNS}
        fetched = {i for (i,), _s, _e in log}
        assert len(log) == len(fetched)  # nothing twice
    finally:
        cache.close()
    reopened = BlockCache(tmp_path / "cache", 64 * 1024 * 1024)
    try:
        assert reopened.stats().stored_blocks == len(fetched)
    finally:
        reopened.close()

"""The fetcher over a real block cache, with an in-memory remote object counting requests."""

from __future__ import annotations

import random
from collections.abc import Mapping

import pytest
import trio

from neurofs.errors import AccessDenied, RemoteError
from neurofs.io import fetcher as fetcher_module
from neurofs.io.cache import BlockCache
from neurofs.io.cache.entry import CHECK_UNIT
from neurofs.io.fetcher import (
    FRAGMENTS_PER_BLOCK,
    FRAGMENTS_TO_BLOCK,
    HDF5_METADATA_BLOCKS,
    HDF5_SIGNATURE,
    MAX_RUN_BLOCKS,
    Fetcher,
    ServedWhole,
    _runs,
)
from neurofs.io.readahead import (
    METADATA_GUESSES,
    METADATA_REACH,
    READAHEAD_RUNS,
    SCATTER_MIN_BLOCKS,
    STREAM_MIN_BLOCKS,
    ReadPattern,
)
from neurofs.io.stats import Stats

BS = 4096
FRAG = BS // FRAGMENTS_PER_BLOCK


class Remote:
    def __init__(self, data: bytes, content_id: str = "obj", delay: float = 0.0) -> None:
        self.data = data
        self.content_id = content_id
        self.size = len(data)
        self.requests: list[tuple[int, int]] = []
        self.delay = delay
        self.fail_with: Exception | None = None
        self.concurrent = 0
        self.max_concurrent = 0

    async def fetch(self, start: int, end: int) -> bytes:
        self.requests.append((start, end))
        self.concurrent += 1
        self.max_concurrent = max(self.max_concurrent, self.concurrent)
        try:
            await trio.sleep(self.delay)
        finally:
            self.concurrent -= 1
        if self.fail_with is not None:
            raise self.fail_with
        return self.data[start:end]


@pytest.fixture
def fetcher(tmp_path):
    cache = BlockCache(tmp_path / "cache", 10 * 1024 * 1024)
    yield Fetcher(cache, Stats(), block_size=BS)
    cache.close()


def payload(n: int) -> bytes:
    return random.Random(n).randbytes(n)


async def test_reads_equal_source_at_random_offsets(fetcher):
    remote = Remote(payload(BS * 10 + 123))
    rng = random.Random(1)
    for _ in range(200):
        off = rng.randrange(0, remote.size + 10)
        size = rng.randrange(0, 3 * BS)
        assert await fetcher.read(remote, off, size) == remote.data[off : off + size]


async def test_second_read_makes_no_request(fetcher):
    remote = Remote(payload(BS * 3))
    await fetcher.read(remote, 0, remote.size)
    n = len(remote.requests)
    fetcher._hot.clear()  # force the disk cache path
    assert await fetcher.read(remote, 0, remote.size) == remote.data
    assert len(remote.requests) == n


async def test_contiguous_misses_become_one_request_per_run(fetcher):
    remote = Remote(payload(BS * 20))
    await fetcher.read(remote, 0, BS * 20)
    m = MAX_RUN_BLOCKS
    expected = [(BS * i, BS * min(i + m, 20)) for i in range(0, 20, m)]
    assert sorted(remote.requests) == expected


async def test_concurrent_misses_of_one_block_share_one_request(fetcher):
    remote = Remote(payload(BS * 2), delay=0.05)
    results = []

    async def reader():
        results.append(await fetcher.read(remote, 100, 200))

    async with trio.open_nursery() as n:
        for _ in range(8):
            n.start_soon(reader)
    assert results == [remote.data[100:300]] * 8
    assert len(remote.requests) == 1


async def test_errors_reach_every_waiter_with_their_kind(fetcher):
    remote = Remote(payload(BS), delay=0.05)
    remote.fail_with = AccessDenied("gone")
    errors = []

    async def reader():
        try:
            await fetcher.read(remote, 0, 10)
        except AccessDenied as exc:
            errors.append(exc)

    async with trio.open_nursery() as n:
        for _ in range(3):
            n.start_soon(reader)
    assert len(errors) == 3 and len(remote.requests) == 1
    remote.fail_with = None  # failures are not cached
    assert await fetcher.read(remote, 0, 10) == remote.data[:10]


async def test_short_answer_is_an_error_not_data(fetcher):
    class Short(Remote):
        async def fetch(self, start, end):
            return self.data[start : end - 1]

    with pytest.raises(RemoteError):
        await fetcher.read(Short(payload(BS)), 0, 10)


async def test_sequential_reads_trigger_growing_read_ahead(fetcher):
    remote = Remote(payload(BS * 64))
    pattern = ReadPattern()
    async with trio.open_nursery() as n:
        fetcher.start_background(n)
        for off in range(0, BS * 8, BS):
            await fetcher.read(remote, off, BS, pattern)
        await trio.sleep(0.1)
        n.cancel_scope.cancel()
    assert pattern.window > 2
    fetched = {i for s, e in remote.requests for i in range(s // BS, e // BS)}
    assert max(fetched) > 8  # blocks beyond what was read were fetched ahead


async def test_random_small_reads_fetch_fragments_and_no_read_ahead(fetcher):
    remote = Remote(payload(BS * 64))
    pattern = ReadPattern()
    rng = random.Random(3)
    async with trio.open_nursery() as n:
        fetcher.start_background(n)
        for _ in range(10):
            off = rng.randrange(0, 60) * BS + 7
            assert await fetcher.read(remote, off, 100, pattern) == remote.data[off : off + 100]
        await trio.sleep(0.05)
        n.cancel_scope.cancel()
    assert len(remote.requests) <= 10
    # Each request is the fragment (or two) around the 100 bytes, not a whole block.
    assert all(e - s <= 2 * FRAG and s % FRAG == 0 for s, e in remote.requests)


async def test_an_hdf5_files_first_small_random_reads_take_whole_blocks(fetcher):
    """Opening an HDF5 file walks its metadata with small reads: after the superblock, each
    small random read takes its whole block (one round trip for the metadata packed there),
    for at most HDF5_METADATA_BLOCKS blocks; then fragments again. Any other file's small
    random reads take fragments."""
    blocks = HDF5_METADATA_BLOCKS + 8
    hdf5 = Remote(HDF5_SIGNATURE + payload(BS * blocks - len(HDF5_SIGNATURE)), "hdf5")
    other = Remote(b"\0" * 8 + payload(BS * blocks - 8), "other")
    for remote in (hdf5, other):
        pattern = ReadPattern()
        assert await fetcher.read(remote, 0, 96, pattern) == remote.data[:96]  # superblock
        for b in range(blocks - 1, 0, -1):  # one small read in each other block
            off = b * BS + 5 * FRAG + 3
            assert await fetcher.read(remote, off, 40, pattern) == remote.data[off : off + 40]
    whole = [(s, e) for s, e in hdf5.requests[1:] if e - s == BS]
    assert len(whole) == HDF5_METADATA_BLOCKS
    assert hdf5.requests[1 : 1 + HDF5_METADATA_BLOCKS] == whole  # the first ones
    assert all(e - s == FRAG for s, e in hdf5.requests[1 + HDF5_METADATA_BLOCKS :])
    assert all(e - s == FRAG for s, e in other.requests)


async def test_an_hdf5_files_metadata_blocks_bring_their_neighbours_in_one_round_trip(fetcher):
    """A metadata block an HDF5 file's small read takes whole brings the blocks within
    METADATA_REACH of it, each its own request, out beside the reader's (one round trip for
    all), and the file's first block once the signature is seen; the next metadata reads
    there cost nothing. An open file guesses at most METADATA_GUESSES blocks."""
    blocks = 200
    hdf5 = Remote(HDF5_SIGNATURE + payload(BS * blocks - len(HDF5_SIGNATURE)), "hdf5", 0.02)
    pattern = ReadPattern()
    async with trio.open_nursery() as n:
        fetcher.start_background(n)
        assert await fetcher.read(hdf5, 0, 96, pattern) == hdf5.data[:96]  # the superblock
        await trio.sleep(0.05)
        assert hdf5.requests[1:] == [(0, BS)]  # the first block, guessed
        hdf5.requests.clear()
        hdf5.max_concurrent = 0
        far = 100
        off = far * BS + 3 * FRAG
        assert await fetcher.read(hdf5, off, 40, pattern) == hdf5.data[off : off + 40]
        near = [far + d for r in range(1, METADATA_REACH + 1) for d in (r, -r)]
        # One request per block, all out together: the reader's and its neighbours'.
        assert hdf5.requests[0] == (far * BS, (far + 1) * BS)
        await trio.sleep(0.1)
        assert sorted(hdf5.requests[1:]) == sorted((b * BS, (b + 1) * BS) for b in near)
        assert hdf5.max_concurrent == min(1 + len(near), READAHEAD_RUNS + 1)
        hdf5.requests.clear()
        for b in near:  # the next metadata reads, in those blocks: no request
            off = b * BS + 7 * FRAG
            assert await fetcher.read(hdf5, off, 40, pattern) == hdf5.data[off : off + 40]
        assert hdf5.requests == []
        for b in range(20, 100, 10):  # more metadata blocks, until the guesses run out
            await fetcher.read(hdf5, b * BS + 5, 40, pattern)
        await trio.sleep(0.1)
        n.cancel_scope.cancel()
    guessed = [(s, e) for s, e in hdf5.requests if s // BS not in range(20, 100, 10)]
    assert len(guessed) == METADATA_GUESSES - 1 - len(near)
    assert pattern.metadata_guesses == METADATA_GUESSES


async def test_a_reader_never_waits_behind_a_queued_guess(fetcher):
    """Guesses wait for a read-ahead slot before they count as on their way: a reader that
    needs a block whose guess is still queued fetches it itself, in one round trip."""
    delay = 0.3
    hdf5 = Remote(HDF5_SIGNATURE + payload(BS * 200 - len(HDF5_SIGNATURE)), "hdf5", delay)
    pattern = ReadPattern()
    took: list[float] = []

    async def read_at(block: int) -> None:
        t0 = trio.current_time()
        await fetcher.read(hdf5, block * BS + 5, 40, pattern)
        took.append(trio.current_time() - t0)

    async with trio.open_nursery() as n:
        fetcher.start_background(n)
        await fetcher.read(hdf5, 0, 96, pattern)  # the signature: the first block guessed
        n.start_soon(read_at, 150)  # its block; the guesses around it fill every slot
        await trio.sleep(delay / 10)
        assert 1 + 2 * METADATA_REACH > READAHEAD_RUNS
        n.start_soon(read_at, 100)  # its block; the guesses around it all wait
        await trio.sleep(delay / 10)
        queued = 100 - METADATA_REACH
        assert hdf5.requests.count((queued * BS, (queued + 1) * BS)) == 0
        await read_at(queued)
        await trio.sleep(3 * delay)
        n.cancel_scope.cancel()
    assert max(took) < 1.5 * delay, took
    assert hdf5.requests.count((queued * BS, (queued + 1) * BS)) == 1


async def test_other_files_and_direct_readers_get_no_metadata_guesses(fetcher):
    """Neither a file that is not HDF5 nor an HDF5 file opened with O_DIRECT gets blocks
    beside its small random reads."""
    data = payload(BS * 64)
    for remote, speculative in (
        (Remote(data, "other"), True),
        (Remote(HDF5_SIGNATURE + data[8:], "direct"), False),
    ):
        pattern = ReadPattern(speculative=speculative)
        async with trio.open_nursery() as n:
            fetcher.start_background(n)
            await fetcher.read(remote, 0, 96, pattern)
            for b in (40, 20):
                await fetcher.read(remote, b * BS + 5, 40, pattern)
            await trio.sleep(0.05)
            n.cancel_scope.cancel()
        assert len(remote.requests) == 3, remote.requests


async def test_fragments_are_cached_across_reads(fetcher):
    remote = Remote(payload(BS * 8))
    for _ in range(2):
        assert (
            await fetcher.read(remote, BS * 5 + 3, 50, ReadPattern())
            == remote.data[BS * 5 + 3 : BS * 5 + 53]
        )
        fetcher._hot.clear()  # the second round comes from disk
    assert remote.requests == [(BS * 5, BS * 5 + FRAG)]


async def test_random_reads_use_a_cached_whole_block(fetcher):
    remote = Remote(payload(BS * 8))
    await fetcher.read(remote, BS * 2, BS)  # no pattern: whole blocks
    fetcher._hot.clear()
    n = len(remote.requests)
    assert (
        await fetcher.read(remote, BS * 2 + 9, 10, ReadPattern())
        == remote.data[BS * 2 + 9 : BS * 2 + 19]
    )
    assert len(remote.requests) == n


async def test_larger_random_reads_fetch_about_what_they_ask_in_one_request(fetcher):
    remote = Remote(payload(BS * 8))
    pattern = ReadPattern()
    off, size = BS * 3 + FRAG + 7, BS + 3 * FRAG  # straddles blocks 3 and 4
    assert await fetcher.read(remote, off, size, pattern) == remote.data[off : off + size]
    # One request, rounded out to fragments: not the two blocks it touches.
    assert remote.requests == [(BS * 3 + FRAG, BS * 4 + 5 * FRAG)]
    # A random read in another block fetches only its own fragments.
    off = BS * 5 + 10 * FRAG + 1
    assert await fetcher.read(remote, off, 2 * FRAG, pattern) == remote.data[off : off + 2 * FRAG]
    assert remote.requests[1:] == [(BS * 5 + 10 * FRAG, BS * 5 + 13 * FRAG)]


async def test_the_pieces_of_a_large_random_read_are_fetched_as_it_is(fetcher):
    """The kernel cuts a large read into pieces; the rest of one that jumped is fetched as
    fragments too, not as the block it starts in. A large read at the start of a file is a
    stream's first and takes whole blocks."""
    remote = Remote(payload(BS * 16))
    pattern = ReadPattern()
    off = BS * 5 + FRAG + 7
    for start, size in ((off, BS), (off + BS, FRAG + 5)):  # the second crosses a fragment
        assert await fetcher.read(remote, start, size, pattern) == remote.data[start : start + size]
    assert remote.requests == [
        (BS * 5 + FRAG, BS * 6 + 2 * FRAG),
        (BS * 6 + 2 * FRAG, BS * 6 + 3 * FRAG),
    ]
    stream = Remote(payload(BS * 16), content_id="stream")
    await fetcher.read(stream, 0, BS // 2, ReadPattern())
    assert stream.requests == [(0, BS)]


async def test_the_pieces_of_large_random_reads_sent_together_fetch_what_they_ask(fetcher):
    """The kernel sends the pieces of one large read together (a 1 MiB read not aligned to
    pages is a 1 MiB piece and a 4 KiB one), before the first is answered: each read is
    fetched as its fragments, whatever order the pieces finish in. Before, the small last
    piece was planned as a random read of its own and, beside the first piece's fragments,
    took its block whole; and once both were noted, the next read elsewhere was taken for a
    stream's and fetched as whole blocks too."""
    remote = Remote(payload(BS * 64), delay=0.01)
    pattern = ReadPattern()
    reads = [BS * 5 + 3 * FRAG, BS * 40 + 7 * FRAG, BS * 20 + 2 * FRAG]
    for off in reads:
        async with trio.open_nursery() as n:
            for start, size in ((off, BS), (off + BS, FRAG // 4)):
                n.start_soon(fetcher.read, remote, start, size, pattern)
                await trio.sleep(0)  # planned in the order the kernel sent them
    # Each read: its first piece's fragments, and the one fragment its last piece starts.
    assert sorted(remote.requests) == sorted(
        r for off in reads for r in ((off, off + BS), (off + BS, off + BS + FRAG))
    )


async def test_small_objects_are_fetched_whole(fetcher):
    small = Remote(payload(BS - 5), content_id="small")
    await fetcher.read(small, 100, 10, ReadPattern())
    assert small.requests == [(0, BS - 5)]


async def test_a_stream_switches_from_fragments_to_blocks(fetcher):
    remote = Remote(payload(BS * 32))
    pattern = ReadPattern()
    for off in range(0, BS * 4, FRAG * 2):
        assert (
            await fetcher.read(remote, off, FRAG * 2, pattern) == remote.data[off : off + FRAG * 2]
        )
    first, *rest = sorted(remote.requests)
    assert first == (0, FRAG * 2)  # the opening read could have been a lone one
    assert rest and all(s % BS == 0 and (e - s) % BS == 0 for s, e in rest)


async def test_a_block_hit_at_random_again_and_again_is_fetched_whole(fetcher):
    remote = Remote(payload(BS * 8))
    offsets = [BS * 3 + FRAG * k + 5 for k in (0, 4, 9, 13)]  # far apart within block 3
    for off in offsets:
        assert await fetcher.read(remote, off, 10, ReadPattern()) == remote.data[off : off + 10]
    fragments = [(BS * 3 + FRAG * k, BS * 3 + FRAG * (k + 1)) for k in (0, 4)]
    assert remote.requests == [*fragments[:FRAGMENTS_TO_BLOCK], (BS * 3, BS * 4)]


async def test_read_ahead_grows_with_the_run_not_with_the_read_count(fetcher):
    remote = Remote(payload(BS * 256))
    pattern = ReadPattern()
    async with trio.open_nursery() as n:
        fetcher.start_background(n)
        run = STREAM_MIN_BLOCKS  # blocks read in 8 small reads each
        for off in range(0, BS * run, BS // 8):
            await fetcher.read(remote, off, BS // 8, pattern)
        await trio.sleep(0.1)
        n.cancel_scope.cancel()
    fetched = {i for s, e in remote.requests for i in range(s // BS, -(-e // BS))}
    # Twice the run, though many more reads were sequential.
    assert pattern.window == 2 * run
    assert max(fetched) <= run + 2 * run


def test_out_of_order_reads_of_a_stream_keep_its_window():
    # The kernel sends a stream's reads concurrently; they may arrive out of order.
    pattern = ReadPattern()
    for first in (0, 1, 3, 2, 4, 6, 5, 7):
        pattern.observe(first * BS, (first + 1) * BS, BS, BS // 4)
    assert pattern.run_start == 0 and pattern.next_offset == 8 * BS
    assert pattern.window >= 8
    pattern.observe(40 * BS, 41 * BS, BS, BS // 4)  # a real jump starts over
    assert pattern.window == 0 and pattern.run_start == 40 * BS


async def test_read_ahead_holds_a_bounded_number_of_requests(fetcher):
    remote = Remote(payload(BS * 256), delay=0.02)
    pattern = ReadPattern()
    async with trio.open_nursery() as n:
        fetcher.start_background(n)
        for off in range(0, BS * 128, BS):
            await fetcher.read(remote, off, BS, pattern)
        await trio.sleep(0.5)
        n.cancel_scope.cancel()
    # The reader's own request may run beside the read-ahead slots.
    assert 1 < remote.max_concurrent <= READAHEAD_RUNS + 1


def test_runs():
    assert _runs([5, 1, 2, 3, 7], 8) == [(1, 3), (5, 5), (7, 7)]
    assert _runs(range(10), 4) == [(0, 3), (4, 7), (8, 9)]


async def test_readers_do_not_wait_for_the_disk_write(tmp_path):
    import threading

    class SlowDisk(BlockCache):
        release = threading.Event()

        def put_many(self, content: str, blocks: Mapping[int, bytes | memoryview]) -> int:
            self.release.wait(10)
            return super().put_many(content, blocks)

    cache = SlowDisk(tmp_path / "cache", 10 * 1024 * 1024)
    fetcher = Fetcher(cache, Stats(), block_size=BS)
    remote = Remote(payload(BS * 4))
    try:
        async with trio.open_nursery() as n:
            fetcher.start_background(n)
            with trio.fail_after(5):
                assert await fetcher.read(remote, 0, BS) == remote.data[:BS]
                # And again, from memory, while the block is still being written.
                assert await fetcher.read(remote, 10, 20) == remote.data[10:30]
            assert not cache.contains("obj", 0)
            SlowDisk.release.set()
        assert cache.contains("obj", 0) and len(remote.requests) == 1
    finally:
        SlowDisk.release.set()
        cache.close()


async def test_blocks_pushed_out_of_memory_before_their_write_are_not_fetched_again(
    tmp_path, monkeypatch
):
    """A run's blocks are recorded on disk together, after all their files: until then a
    block that the memory LRU has already let go is served from the write under way, never
    fetched a second time."""
    import threading

    class SlowDisk(BlockCache):
        release = threading.Event()

        def put_many(self, content: str, blocks: Mapping[int, bytes | memoryview]) -> int:
            self.release.wait(10)
            return super().put_many(content, blocks)

    monkeypatch.setattr(fetcher_module, "HOT_BYTES", BS)  # memory holds one block
    cache = SlowDisk(tmp_path / "cache", 10 * 1024 * 1024)
    fetcher = Fetcher(cache, Stats(), block_size=BS)
    remote = Remote(payload(BS * 4))
    try:
        async with trio.open_nursery() as n:
            fetcher.start_background(n)
            with trio.fail_after(5):
                assert await fetcher.read(remote, 0, 4 * BS) == remote.data
                assert len(remote.requests) == 1
                for i in range(4):  # none on disk yet, three no longer in the LRU
                    assert await fetcher.read(remote, i * BS, BS) == remote.data[i * BS :][:BS]
            assert not cache.contains("obj", 0)
            SlowDisk.release.set()
        assert len(remote.requests) == 1
        assert all(cache.contains("obj", i) for i in range(4))
    finally:
        SlowDisk.release.set()
        cache.close()


class WholeRemote(ServedWhole, Remote):
    """A remote whose server ignores ranges (a WEBKNOSSOS chunk)."""


async def test_an_object_served_whole_is_one_request_cut_into_blocks(fetcher):
    remote = WholeRemote(payload(3 * BS + 100))
    # A small read at a random place would take a fragment of a ranged object.
    assert await fetcher.read(remote, BS + 7, 10, ReadPattern()) == remote.data[BS + 7 : BS + 17]
    assert remote.requests == [(0, remote.size)]
    fetcher._hot.clear()
    assert await fetcher.read(remote, 0, remote.size) == remote.data  # every block was kept
    assert remote.requests == [(0, remote.size)]
    # A block dropped from the cache alone comes back with the whole object, in one request.
    await trio.to_thread.run_sync(fetcher.cache.drop, [("obj", 2)])
    fetcher._hot.clear()
    assert await fetcher.read(remote, 2 * BS, BS) == remote.data[2 * BS : 3 * BS]
    assert remote.requests == [(0, remote.size)] * 2


async def test_bytes_read_before_come_from_disk_after_a_restart(tmp_path):
    """Random small reads (some straddling blocks, some in blocks of which two fragments
    were fetched, which once made a re-read fetch the whole block) are all read again from
    disk by a new cache and fetcher on the same directory: no request."""
    remote = Remote(payload(BS * 16))
    rng = random.Random(16)
    reads = [(rng.randrange(0, BS * 16 - 100), rng.randrange(1, 100)) for _ in range(60)]
    reads += [(BS * k - 30, 60) for k in (3, 7, 11)]  # across a block boundary
    reads += [(BS * 13 + 5, 10), (BS * 13 + FRAG * 9, 10)]  # two fragments of one block
    for restart in (False, True):
        with BlockCache(tmp_path / "cache", 10 * 1024 * 1024) as cache:
            fetcher = Fetcher(cache, Stats(), block_size=BS)
            before = len(remote.requests)
            for off, size in reads:
                got = await fetcher.read(remote, off, size, ReadPattern())
                assert got == remote.data[off : off + size]
            if restart:
                assert len(remote.requests) == before
                assert fetcher.stats.snapshot()["cache_hits"] >= len(reads)


async def test_a_stream_over_blocks_held_as_fragments_fetches_none_of_their_bytes(tmp_path):
    """Blocks read earlier as fragments (a sequential reader's reads, arriving out of order
    under load, look random) are read from disk by a later stream over them, and its
    read-ahead skips them: no request covers a byte held, before or after a restart."""
    remote = Remote(payload(BS * 32))
    held = range(2, 6)  # blocks 2..5, fetched as fragments only
    with BlockCache(tmp_path / "cache", 10 * 1024 * 1024) as cache:
        first = Fetcher(cache, Stats(), block_size=BS)
        for off in reversed(range(held.start * BS, held.stop * BS, BS // 2)):
            got = await first.read(remote, off, BS // 2, ReadPattern())
            assert got == remote.data[off : off + BS // 2]
    assert all(e - s == BS // 2 for s, e in remote.requests)
    for restart in (False, True):
        remote.requests.clear()
        with BlockCache(tmp_path / "cache", 10 * 1024 * 1024) as cache:
            fetcher = Fetcher(cache, Stats(), block_size=BS)
            pattern = ReadPattern()
            async with trio.open_nursery() as n:
                fetcher.start_background(n)
                for off in range(0, 8 * BS, BS // 2):
                    got = await fetcher.read(remote, off, BS // 2, pattern)
                    assert got == remote.data[off : off + BS // 2]
                await trio.sleep(0.1)
                n.cancel_scope.cancel()
        fetched = {i for s, e in remote.requests for i in range(s // BS, -(-e // BS))}
        assert not fetched & set(held), (restart, remote.requests)
        if not restart:
            # The first stream fetched blocks 0, 1 and those beyond 5: the second none of
            # those it reads.
            assert fetched >= {0, 1, 6, 7}


async def test_a_warm_stream_reads_each_block_from_disk_once(tmp_path, monkeypatch):
    """A stream over blocks on disk (after a restart) with a read-ahead window wider than the
    hot set: each block is read back and checked once, by the read that wants it, and
    nothing is asked of the server. (Read ahead into memory, blocks were pushed out before
    the reader came and read again: twice the disk reads and checksums.)"""
    monkeypatch.setattr(fetcher_module, "HOT_BYTES", 4 * BS)
    remote = Remote(payload(BS * 64))
    with BlockCache(tmp_path / "cache", 10 * 1024 * 1024) as cache:
        assert await Fetcher(cache, Stats(), block_size=BS).read(remote, 0, 64 * BS) == (
            remote.data
        )
    remote.requests.clear()
    with BlockCache(tmp_path / "cache", 10 * 1024 * 1024) as cache:
        fetcher = Fetcher(cache, Stats(), block_size=BS)
        hinted: list[tuple[str, int]] = []
        will_need = cache.will_need
        monkeypatch.setattr(cache, "will_need", lambda keys: [hinted.extend(keys), will_need(keys)])
        pattern = ReadPattern()
        async with trio.open_nursery() as n:
            fetcher.start_background(n)
            for off in range(0, 64 * BS, BS):
                got = await fetcher.read(remote, off, BS, pattern)
                assert got == remote.data[off : off + BS]
                await trio.sleep(0.001)  # read-ahead gets its turns
            # Instead, the kernel was asked to read the window's block files ahead, each
            # once, from where the stream was recognised to the end of the file.
            keys = {fetcher._block.key(remote, i) for i in range(8, 64)}
            for _ in range(500):  # the hints run in worker threads
                if keys <= set(hinted):
                    break
                await trio.sleep(0.01)
            n.cancel_scope.cancel()
        assert remote.requests == []
        assert cache.stats().verified_bytes == 64 * BS
        assert keys <= set(hinted) and len(hinted) == len(set(hinted))


async def test_blocks_another_process_stored_are_read_from_disk(tmp_path):
    """Two fetchers on one cache directory (two processes of a machine): a stream in the
    second over blocks the first stored after it opened asks for none of them, read-ahead
    included; the first then reads the second's blocks the same way."""
    remote = Remote(payload(BS * 24))
    directory = tmp_path / "cache"
    with BlockCache(directory, 10 * 1024 * 1024) as one, BlockCache(directory, 10**7) as two:
        first = Fetcher(one, Stats(), block_size=BS)
        second = Fetcher(two, Stats(), block_size=BS)
        assert await first.read(remote, 0, 12 * BS) == remote.data[: 12 * BS]
        assert sorted(remote.requests) == [(0, 4 * BS), (4 * BS, 8 * BS), (8 * BS, 12 * BS)]

        async def stream(fetcher: Fetcher, start: int, stop: int) -> None:
            pattern = ReadPattern()
            async with trio.open_nursery() as n:
                fetcher.start_background(n)
                for off in range(start, stop, BS):
                    got = await fetcher.read(remote, off, BS, pattern)
                    assert got == remote.data[off : off + BS]
                await trio.sleep(0.1)
                n.cancel_scope.cancel()

        remote.requests.clear()
        await stream(second, 0, 10 * BS)
        fetched = {i for s, e in remote.requests for i in range(s // BS, e // BS)}
        assert fetched and min(fetched) >= 12, remote.requests  # read-ahead beyond only
        assert second.stats.snapshot()["cache_hits"] >= 10
        remote.requests.clear()
        await stream(first, 12 * BS, 14 * BS)
        assert all(s >= 14 * BS for s, _e in remote.requests), remote.requests


async def test_a_small_hit_reads_and_checks_only_the_units_it_needs(tmp_path):
    """A 4 KiB read of a 1 MiB block held on disk reads and checksums at most the two
    checksum units it touches, and keeps no copy of the block in memory."""
    mib = 1024 * 1024
    remote = Remote(payload(4 * mib))
    with BlockCache(tmp_path / "cache", 16 * mib) as cache:
        fetcher = Fetcher(cache, Stats(), block_size=mib)
        await fetcher.read(remote, mib, mib)  # block 1, whole
        fetcher._hot.clear()
        requests = len(remote.requests)
        rng = random.Random(4)
        for _ in range(20):
            off = mib + rng.randrange(0, mib - 4096)
            before = cache.stats().verified_bytes
            got = await fetcher.read(remote, off, 4096, ReadPattern())
            assert got == remote.data[off : off + 4096]
            assert 0 < cache.stats().verified_bytes - before <= 2 * CHECK_UNIT
        assert len(remote.requests) == requests
        assert not fetcher._hot


async def test_a_reader_all_over_a_file_gets_the_rest_fetched_in_runs(fetcher):
    """Random reads in enough distinct blocks get the rest of the file fetched in the
    background, in runs of MAX_RUN_BLOCKS through the read-ahead slots; from then on the
    reader's reads cost no request."""
    blocks = 4 * SCATTER_MIN_BLOCKS
    remote = Remote(payload(BS * blocks), delay=0.001)
    pattern = ReadPattern()
    order = random.Random(9).sample(range(blocks), blocks)
    async with trio.open_nursery() as n:
        fetcher.start_background(n)
        for b in order[:SCATTER_MIN_BLOCKS]:
            off = b * BS + 11
            assert await fetcher.read(remote, off, 8, pattern) == remote.data[off : off + 8]
        assert pattern.whole
        await trio.sleep(0.5)
        n.cancel_scope.cancel()
    assert remote.max_concurrent <= READAHEAD_RUNS + 1
    # One fragment per read before, then the rest of the file in runs.
    rest = remote.requests[SCATTER_MIN_BLOCKS:]
    assert all(e - s == FRAG for s, e in remote.requests[:SCATTER_MIN_BLOCKS])
    assert len(rest) <= blocks // MAX_RUN_BLOCKS + SCATTER_MIN_BLOCKS
    assert all(s % BS == 0 and e - s <= MAX_RUN_BLOCKS * BS for s, e in rest)
    done = len(remote.requests)
    for b in order:
        off = b * BS + 100
        assert await fetcher.read(remote, off, 8, pattern) == remote.data[off : off + 8]
    assert len(remote.requests) == done


async def test_scattered_reads_of_held_bytes_fetch_nothing_more(tmp_path):
    """A reader re-reading bytes it read before (after a restart) is not bound by round
    trips: however many blocks its small random reads touch, no rest of the file is fetched."""
    blocks = 4 * SCATTER_MIN_BLOCKS
    remote = Remote(payload(BS * blocks))
    touched = random.Random(3).sample(range(blocks), 2 * SCATTER_MIN_BLOCKS)
    # The first mount reads those blocks whole and stops (the rest never asked for).
    with BlockCache(tmp_path / "cache", 10 * 1024 * 1024) as cache:
        first = Fetcher(cache, Stats(), block_size=BS)
        for b in touched:
            assert await first.read(remote, b * BS, BS) == remote.data[b * BS : (b + 1) * BS]
    remote.requests.clear()

    with BlockCache(tmp_path / "cache", 10 * 1024 * 1024) as cache:
        again = Fetcher(cache, Stats(), block_size=BS)
        pattern = ReadPattern()
        async with trio.open_nursery() as n:
            again.start_background(n)
            for b in touched:
                off = b * BS + 101
                assert await again.read(remote, off, 8, pattern) == remote.data[off : off + 8]
            await trio.sleep(0.2)
            n.cancel_scope.cancel()
    assert not pattern.whole
    assert remote.requests == []

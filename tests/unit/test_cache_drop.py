"""Dropping one object's bytes: from the fetcher's memory and the block cache, nothing else."""

from __future__ import annotations

import random

import trio

from neurofs.io.cache import BlockCache
from neurofs.io.fetcher import FRAGMENTS_PER_BLOCK, Fetcher, ReadPattern
from neurofs.io.stats import Stats
from tests.unit.test_fetcher import Remote

BS = 4096


def test_block_cache_drop_takes_only_the_named_blocks(tmp_path) -> None:
    with BlockCache(tmp_path / "cache", 1 << 20) as cache:
        for i in range(3):
            cache.put("a", i, b"x" * 10)
        cache.put("b", 0, b"y" * 10)
        assert cache.drop([("a", 0), ("a", 1), ("a", 1), ("a", 9)]) == 2
        assert [cache.contains("a", i) for i in range(3)] == [False, False, True]
        assert cache.get("b", 0) == b"y" * 10


async def test_fetcher_drop_forgets_blocks_and_fragments_so_the_next_read_fetches(
    tmp_path,
) -> None:
    with BlockCache(tmp_path / "cache", 1 << 20) as cache:
        fetcher = Fetcher(cache, Stats(), block_size=BS)
        remote = Remote(random.Random(3).randbytes(BS * 5 + 17), "obj")
        other = Remote(b"z" * BS, "other")
        await fetcher.read(remote, 3 * BS + 5, 10, ReadPattern())  # a fragment
        await fetcher.read(remote, 0, remote.size)
        await fetcher.read(other, 0, BS)
        assert cache.contains("obj#fragment", (3 * BS + 5) // (BS // FRAGMENTS_PER_BLOCK))
        assert await fetcher.drop(remote) == 7  # six blocks and one fragment
        assert not any(cache.contains("obj", i) for i in range(6))
        remote.requests.clear()
        assert await fetcher.read(remote, 0, remote.size) == remote.data
        assert remote.requests  # fetched again, not served from memory
        other.requests.clear()
        assert await fetcher.read(other, 0, BS) == other.data and not other.requests


async def test_drop_waits_for_the_disk_write_of_bytes_just_fetched(tmp_path) -> None:
    """Readers get their bytes before the disk write: a drop right after the read must not
    let that write land afterwards."""
    with BlockCache(tmp_path / "cache", 1 << 20) as cache:
        fetcher = Fetcher(cache, Stats(), block_size=BS)
        remote = Remote(random.Random(4).randbytes(BS), "obj")
        async with trio.open_nursery() as nursery:
            fetcher.start_background(nursery)
            await fetcher.read(remote, 0, BS)
            assert await fetcher.drop(remote) == 1
        assert not cache.contains("obj", 0)

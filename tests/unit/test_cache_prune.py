"""Block cache prune, shrink, clear and summaries (the ``neurofs cache`` commands)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from neurofs.cli.cache import parse_duration
from neurofs.io.cache import (
    BlockCache,
    in_use,
    read_summary,
    summarize,
)
from tests.unit.cache_files import disk_usage

KiB = 1024


def _fill(cache: BlockCache, names: list[str], size: int = 10 * KiB) -> None:
    for name in names:
        assert cache.put(name, 0, bytes([len(name)]) * size)


def test_prune_drops_only_blocks_unused_for_that_long(tmp_path: Path) -> None:
    with BlockCache(tmp_path, 10**9) as cache:
        _fill(cache, ["dandi-blob:old1", "dandi-blob:old2"])
        time.sleep(0.3)
        _fill(cache, ["dandi-blob:new"])
        assert cache.prune(0.15) == 2
        assert not cache.contains("dandi-blob:old1", 0)
        assert cache.get("dandi-blob:new", 0) is not None
    # Durable: a reopened cache agrees, and the dropped block files are gone.
    with BlockCache(tmp_path, 10**9) as cache:
        assert cache.stats().stored_blocks == 1
        assert disk_usage(tmp_path) == 10 * KiB


def test_shrink_to_drops_least_recently_used_first(tmp_path: Path) -> None:
    with BlockCache(tmp_path, 10**9) as cache:
        _fill(cache, ["k:1", "k:2", "k:3", "k:4"])
        assert cache.get("k:1", 0) is not None  # read back: kept longer than k:2
        assert cache.shrink_to(25 * KiB) == 2
        assert cache.stats().stored_bytes == 20 * KiB
        assert cache.contains("k:1", 0) and cache.contains("k:4", 0)
        assert cache.shrink_to(10**9) == 0
        assert cache.shrink_to(0) == 2
        assert cache.stats().stored_blocks == 0 and disk_usage(tmp_path) == 0


def test_clear_drops_everything_on_disk(tmp_path: Path) -> None:
    with BlockCache(tmp_path, 10**9) as cache:
        _fill(cache, ["a:1", "b:2", "c:3"])
        cache.clear()
        assert cache.stats().stored_bytes == 0 and disk_usage(tmp_path) == 0
        _fill(cache, ["a:1"])  # still usable
        assert cache.get("a:1", 0) is not None


def test_summary_by_kind_and_ages(tmp_path: Path) -> None:
    start = time.time()
    with BlockCache(tmp_path, 10**9) as cache:
        _fill(cache, ["dandi-blob:x", "dandi-blob:y"], size=KiB)
        _fill(cache, ["wk:ds/color/1/0.0.0.0"], size=3 * KiB)
        summary = cache.summary()
        assert summary.stored_bytes == 5 * KiB and summary.stored_blocks == 3
        assert {k: (u.blocks, u.bytes) for k, u in summary.by_kind.items()} == {
            "dandi-blob": (2, 2 * KiB),
            "wk": (1, 3 * KiB),
        }
        assert summary.oldest_use is not None and summary.newest_use is not None
        assert start <= summary.oldest_use <= summary.newest_use <= time.time()
        # The read-only summary (used while a mount holds the cache) sees the same.
        assert read_summary(tmp_path) == summary
    assert summarize([]).oldest_use is None
    assert read_summary(tmp_path / "nothing-here").stored_blocks == 0


def test_in_use_while_a_cache_is_open(tmp_path: Path) -> None:
    assert not in_use(tmp_path)
    with BlockCache(tmp_path, 10**9):
        assert in_use(tmp_path)
        with BlockCache(tmp_path, 10**9):  # a second process shares it
            assert in_use(tmp_path)
        assert in_use(tmp_path)
    assert not in_use(tmp_path)


def test_parse_duration() -> None:
    assert parse_duration("90") == 90
    assert parse_duration("15m") == 900
    assert parse_duration("7d") == 7 * 86400
    assert parse_duration("2w") == 14 * 86400
    assert parse_duration("1.5h") == 5400
    for bad in ("", "7 days", "-1d", "d", "1y"):
        with pytest.raises(ValueError):
            parse_duration(bad)

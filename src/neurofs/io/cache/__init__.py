"""The on-disk block cache (see block_cache.py for how its parts fit together)."""

from neurofs.io.cache.block_cache import BlockCache, CacheStats
from neurofs.io.cache.directory import CacheError, in_use
from neurofs.io.cache.entry import BlockKey
from neurofs.io.cache.eviction import PROTECTED_SHARE
from neurofs.io.cache.summary import CacheSummary, KindUsage, read_summary, summarize

# 1 MiB blocks: the kernel asks FUSE for at most 128 KiB per read, and HTTP range requests
# cost a round trip each, so a block serves 8 kernel reads per request and sequential
# throughput is not latency-bound (the fetcher also merges neighbouring blocks into one
# request). Small enough that a scattered 4 KiB HDF5 metadata read wastes little bandwidth,
# it matches typical zarr chunk sizes (~1 MiB), and it keeps the file count of a 100 GiB cache
# at ~100k files and the per-block index row (~150 B in memory) negligible.
BLOCK_SIZE = 1024 * 1024

__all__ = [
    "BLOCK_SIZE",
    "PROTECTED_SHARE",
    "BlockCache",
    "BlockKey",
    "CacheError",
    "CacheStats",
    "CacheSummary",
    "KindUsage",
    "in_use",
    "read_summary",
    "summarize",
]

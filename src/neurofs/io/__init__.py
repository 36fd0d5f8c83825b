"""The I/O layer: the shared HTTP client, the on-disk block cache, the fetcher and prefetcher
that read remote bytes through it, and the live counters behind ``.neurofs/stats.json``.

Nothing here knows FUSE, inodes or errnos; sources call in, and failures surface as
``neurofs.errors`` exceptions.
"""

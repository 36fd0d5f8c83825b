"""What a cache holds, for ``neurofs cache stats``: totals, ages and a breakdown by kind."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from neurofs.io.cache.directory import index_path
from neurofs.io.cache.index import read_usage


@dataclass(frozen=True, slots=True)
class KindUsage:
    blocks: int
    bytes: int


@dataclass(frozen=True, slots=True)
class CacheSummary:
    """What is stored: totals, the oldest and newest use (seconds since the epoch, None when
    empty), and a breakdown by kind of content (the content string up to its first ``:``,
    e.g. ``dandi-blob``, ``dandi-zarr``, ``wk``, ``wk-raw``)."""

    stored_bytes: int
    stored_blocks: int
    oldest_use: float | None
    newest_use: float | None
    by_kind: dict[str, KindUsage]


def summarize(rows: Iterable[tuple[str, int, float]]) -> CacheSummary:
    """A summary of ``(content, size, last_used)`` rows."""
    total = count = 0
    oldest: float | None = None
    newest: float | None = None
    kinds: dict[str, list[int]] = {}
    for content, size, last_used in rows:
        total += size
        count += 1
        oldest = last_used if oldest is None else min(oldest, last_used)
        newest = last_used if newest is None else max(newest, last_used)
        usage = kinds.setdefault(content.split(":", 1)[0], [0, 0])
        usage[0] += 1
        usage[1] += size
    return CacheSummary(
        total,
        count,
        oldest,
        newest,
        {k: KindUsage(b, n) for k, (b, n) in sorted(kinds.items())},
    )


def read_summary(directory: Path) -> CacheSummary:
    """The summary of a cache directory's index, read-only: safe while a mount uses the
    cache. Recency not yet written by that mount (at most ``index.FLUSH_INTERVAL`` seconds of it) is
    not seen. Raises sqlite3.Error."""
    return summarize(read_usage(index_path(Path(directory))))

"""Live counters shown in ``.neurofs/stats.json``.

One ``Stats`` object per mount. Everything runs on the trio thread except cache calls made
from worker threads, which only report through ``add`` (a plain dict update guarded by a
lock), so the counters never tear.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any


def status_class(status: int) -> str:
    """'2xx', '3xx', ... for an HTTP status."""
    return f"{status // 100}xx"


class Stats:
    """Counters by source: requests by status class, bytes fetched, retries, errors,
    and global cache and serving counters."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._started = time.time()
        self._per_source: dict[str, Counter[str]] = {}
        self._global: Counter[str] = Counter()

    def add(self, counter: str, amount: int = 1, *, source: str | None = None) -> None:
        with self._lock:
            if source is None:
                self._global[counter] += amount
            else:
                self._per_source.setdefault(source, Counter())[counter] += amount

    def request(self, source: str, status: int, nbytes: int) -> None:
        """Record one finished HTTP exchange (status 0 = no response: network error)."""
        with self._lock:
            c = self._per_source.setdefault(source, Counter())
            c["requests"] += 1
            c["requests_" + (status_class(status) if status else "failed")] += 1
            c["bytes_fetched"] += nbytes

    def get(self, counter: str, *, source: str | None = None) -> int:
        with self._lock:
            if source is None:
                return self._global[counter]
            return self._per_source.get(source, Counter())[counter]

    def snapshot(self, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        with self._lock:
            sources = {
                name: dict(sorted(c.items())) for name, c in sorted(self._per_source.items())
            }
            totals: Counter[str] = Counter()
            for c in self._per_source.values():
                totals.update(c)
            out: dict[str, Any] = {
                "uptime_seconds": round(time.time() - self._started, 1),
                "requests": totals["requests"],
                "bytes_fetched": totals["bytes_fetched"],
                "retries": totals["retries"],
                "errors": totals["errors"],
                "sources": sources,
                **dict(sorted(self._global.items())),
            }
        if extra:
            out.update(extra)
        return out

"""In-memory caching of API answers (listings, attributes) with single flight.

Mutable answers live in a TTL cache; immutable ones (published versions) in an LRU that never
expires. Concurrent requests for the same key wait for one fetch instead of each sending one.
Failures are not cached; negative answers (NotFound) are cached briefly, since ``ls`` and
shells probe for names that do not exist.

``forget_changeable`` drops the mutable and negative answers of every memo of the process
(``neurofs refresh``); immutable answers stay, since they cannot change.
"""

from __future__ import annotations

import weakref
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, TypeVar

import cachetools
import trio

from neurofs.errors import NotFound

T = TypeVar("T")

_memos: weakref.WeakSet[Memo] = weakref.WeakSet()


def forget_changeable() -> None:
    """Forget every answer that may change (listings, drafts, metadata) in every memo."""
    for memo in list(_memos):
        memo.forget_changeable()


class Memo:
    def __init__(
        self, *, ttl: float = 30.0, negative_ttl: float = 5.0, maxsize: int = 20_000
    ) -> None:
        self._mutable: cachetools.TTLCache[Hashable, Any] = cachetools.TTLCache(
            maxsize=maxsize, ttl=ttl
        )
        self._immutable: cachetools.LRUCache[Hashable, Any] = cachetools.LRUCache(maxsize=maxsize)
        self._negative: cachetools.TTLCache[Hashable, NotFound] = cachetools.TTLCache(
            maxsize=maxsize, ttl=negative_ttl
        )
        self._locks: dict[Hashable, trio.Lock] = {}
        _memos.add(self)

    def _lookup(self, key: Hashable) -> tuple[bool, Any]:
        for cache in (self._immutable, self._mutable):
            if key in cache:
                return True, cache[key]
        if key in self._negative:
            raise NotFound(str(self._negative[key]))
        return False, None

    async def get(
        self, key: Hashable, fetch: Callable[[], Awaitable[T]], *, immutable: bool = False
    ) -> T:
        hit, value = self._lookup(key)
        if hit:
            return value
        lock = self._locks.setdefault(key, trio.Lock())
        try:
            async with lock:
                hit, value = self._lookup(key)
                if hit:
                    return value
                try:
                    result = await fetch()
                except NotFound as exc:
                    self._negative[key] = exc
                    raise
                (self._immutable if immutable else self._mutable)[key] = result
                return result
        finally:
            if not lock.locked() and lock.statistics().tasks_waiting == 0:
                self._locks.pop(key, None)

    def invalidate(self, predicate: Callable[[Hashable], bool] | None = None) -> None:
        """Forget entries (all, or those whose key matches)."""
        for cache in (self._mutable, self._immutable, self._negative):
            for key in list(cache.keys()):
                if predicate is None or predicate(key):
                    cache.pop(key, None)

    def forget_changeable(self) -> None:
        """Forget the mutable and negative answers; immutable ones stay."""
        self._mutable.clear()
        self._negative.clear()

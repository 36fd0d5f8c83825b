"""In-memory caching of API answers (listings, attributes) with single flight.

Mutable answers live in a TTL cache; immutable ones (published versions) in an LRU that never
expires. Concurrent requests for the same key wait for one fetch instead of each sending one.
Failures are not cached; negative answers (NotFound) are cached briefly, since ``ls`` and
shells probe for names that do not exist.

An answer can carry views (``view``): values derived from it, such as a listing's index by
name, built once per fetch of the answer and forgotten with it, so a lookup by name reuses
the index of the listing it comes from and never outlives that listing.

A fresh read (``fresh=True``: a save about to merge onto the server's current state) fetches
the answer again and replaces the one held. ``forget_changeable`` drops the mutable and negative
answers of this memo (a source's ``refresh``); immutable answers stay, since they cannot change.
Each source's API client owns its memo: nothing here is shared between sources or mounts.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable
from typing import Any, TypeVar

import cachetools
import trio

from neurofs.errors import NotFound

T = TypeVar("T")
D = TypeVar("D")


def as_fetched(answer: T) -> T:
    """The view that is the answer itself."""
    return answer


class _Answer:
    """One memoised answer and the views derived from it (view function → value)."""

    __slots__ = ("value", "views")

    def __init__(self, value: Any) -> None:
        self.value = value
        self.views: dict[Callable[[Any], Any], Any] = {}


class Memo:
    def __init__(
        self, *, ttl: float = 30.0, negative_ttl: float = 5.0, maxsize: int = 20_000
    ) -> None:
        self._mutable: cachetools.TTLCache[Hashable, _Answer] = cachetools.TTLCache(
            maxsize=maxsize, ttl=ttl
        )
        self._immutable: cachetools.LRUCache[Hashable, _Answer] = cachetools.LRUCache(
            maxsize=maxsize
        )
        self._negative: cachetools.TTLCache[Hashable, NotFound] = cachetools.TTLCache(
            maxsize=maxsize, ttl=negative_ttl
        )
        self._locks: dict[Hashable, trio.Lock] = {}

    def _lookup(self, key: Hashable) -> _Answer | None:
        for cache in (self._immutable, self._mutable):
            answer = cache.get(key)
            if answer is not None:
                return answer
        if key in self._negative:
            raise NotFound(str(self._negative[key]))
        return None

    async def _answer(
        self, key: Hashable, fetch: Callable[[], Awaitable[Any]], immutable: bool, fresh: bool
    ) -> _Answer:
        answer = None if fresh else self._lookup(key)
        if answer is not None:
            return answer
        lock = self._locks.setdefault(key, trio.Lock())
        try:
            async with lock:
                # A fresh read does not take an answer fetched while it waited: that fetch
                # may have started before the read was asked for.
                answer = None if fresh else self._lookup(key)
                if answer is not None:
                    return answer
                if fresh:
                    self.forget(key)
                try:
                    answer = _Answer(await fetch())
                except NotFound as exc:
                    self._negative[key] = exc
                    raise
                (self._immutable if immutable else self._mutable)[key] = answer
                return answer
        finally:
            if not lock.locked() and lock.statistics().tasks_waiting == 0:
                self._locks.pop(key, None)

    async def get(
        self,
        key: Hashable,
        fetch: Callable[[], Awaitable[T]],
        *,
        immutable: bool = False,
        fresh: bool = False,
    ) -> T:
        """The answer at ``key``, fetched when not held (or, ``fresh``, in any case)."""
        value: T = (await self._answer(key, fetch, immutable, fresh)).value
        return value

    async def view(
        self,
        key: Hashable,
        fetch: Callable[[], Awaitable[T]],
        derive: Callable[[T], D],
        *,
        immutable: bool = False,
        fresh: bool = False,
    ) -> D:
        """``derive(answer)`` for the answer at ``key``: built once per fetch of the answer and
        forgotten with it. ``derive`` names the view, so it must be one function for all
        calls (a module-level one), never a closure made anew at each call."""
        answer = await self._answer(key, fetch, immutable, fresh)
        if derive not in answer.views:
            answer.views[derive] = derive(answer.value)
        view: D = answer.views[derive]
        return view

    def held(self, key: Hashable) -> Any | None:
        """The answer at ``key`` if one is held now, else None: never fetches."""
        for cache in (self._immutable, self._mutable):
            answer = cache.get(key)
            if answer is not None:
                return answer.value
        return None

    def forget(self, *keys: Hashable) -> None:
        """Forget the answers at ``keys`` (and their views)."""
        for key in keys:
            for cache in (self._mutable, self._immutable, self._negative):
                cache.pop(key, None)

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

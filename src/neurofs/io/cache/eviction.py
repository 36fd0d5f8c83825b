"""Which blocks go when the cache is full: a segmented LRU over the recorded blocks.

Blocks never read back since they were stored go first, least recently used first; blocks
read back ("protected") go only after them, so that a bulk stream cannot flush the small hot
blocks that HDF5 metadata reads keep coming back to. Protected blocks may fill at most
PROTECTED_SHARE of the capacity; beyond it, the oldest are demoted.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Container, ItemsView

from neurofs.io.cache.entry import BlockEntry, BlockKey

# At most this share of the capacity is kept for blocks that were read back: the rest always
# has room for new blocks.
PROTECTED_SHARE = 0.8


class SegmentedLru:
    """The recorded blocks, least recently used first, with their byte totals. Not
    thread-safe: the cache uses it under its memory lock."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._entries: OrderedDict[BlockKey, BlockEntry] = OrderedDict()
        self.stored_bytes = 0
        self._protected_bytes = 0
        self._last_stamp = 0.0

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def get(self, key: BlockKey) -> BlockEntry | None:
        return self._entries.get(key)

    def items(self) -> ItemsView[BlockKey, BlockEntry]:
        return self._entries.items()

    def add(self, key: BlockKey, entry: BlockEntry) -> None:
        """Record ``entry`` as the most recently used (at open: in the order of last use)."""
        self._entries[key] = entry
        self.stored_bytes += entry.size
        self._last_stamp = max(self._last_stamp, entry.last_used)

    def remove(self, key: BlockKey) -> BlockEntry:
        entry = self._entries.pop(key)
        self.stored_bytes -= entry.size
        if entry.protected:
            self._protected_bytes -= entry.size
        return entry

    def touch(self, key: BlockKey, entry: BlockEntry) -> None:
        """A read of ``entry``: most recently used now, and protected."""
        entry.last_used = self.stamp()
        self._entries.move_to_end(key)
        if not entry.protected:
            entry.protected = True
            self._protected_bytes += entry.size

    def stamp(self) -> float:
        """A time of use. Strictly increasing, so the order reloaded from the index's
        last_used is exactly the LRU order (time.time() can repeat within its resolution, or
        step back)."""
        self._last_stamp = max(time.time(), self._last_stamp + 1e-6)
        return self._last_stamp

    @property
    def last_stamp(self) -> float:
        return self._last_stamp

    def victims(self, excess: int, exclude: Container[BlockKey] = ()) -> list[BlockKey]:
        """Keys whose sizes add up to at least ``excess`` (or all of them), in eviction order;
        keys in ``exclude`` are never among them. Demotes protected blocks beyond their share."""
        if excess <= 0:
            return []
        self._demote()
        victims: list[BlockKey] = []
        for want_protected in (False, True):
            for key, entry in self._entries.items():
                if excess <= 0:
                    return victims
                if entry.protected == want_protected and key not in exclude:
                    victims.append(key)
                    excess -= entry.size
        return victims

    def _demote(self) -> None:
        limit = int(self.capacity * PROTECTED_SHARE)
        for entry in self._entries.values():
            if self._protected_bytes <= limit:
                return
            if entry.protected:
                entry.protected = False
                self._protected_bytes -= entry.size

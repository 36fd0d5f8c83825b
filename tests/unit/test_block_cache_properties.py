"""Stateful property test: the block cache against an exact reference model.

The "source" maps (content, index) to deterministic bytes. Reads go through the cache and,
on a miss, fetch from the source and put, as the fetcher does. The model is a plain LRU list
and a record of which files were damaged on disk, so it predicts every result:
which gets hit, which puts are refused, what is evicted, and every counter.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from neurofs.io.cache import PROTECTED_SHARE, BlockCache
from tests.unit.cache_files import block_file, disk_usage

# Few keys, so that reads often hit; awkward content strings, which must never become paths.
CONTENTS = ["dandi-blob:3f2a", "dandi-zarr:z/0.0@e1", "../../etc", "ü\x00"]
KEYS = [(c, i) for c in CONTENTS for i in range(2)]
MAX_SIZE = 24


def source(content: str, index: int) -> bytes:
    seed = hashlib.sha256(f"{content}\0{index}".encode()).digest()
    return (seed * 2)[: seed[0] % (MAX_SIZE + 1)]


Key = tuple[str, int]


class Model:
    """Exact segmented LRU: ``order`` lists present blocks, least recently used first; blocks
    read back since they were stored are protected and evicted only after the others, and
    protected blocks beyond PROTECTED_SHARE of the capacity are demoted, oldest first."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.order: dict[Key, int] = {}  # insertion order = recency order
        self.protected: set[Key] = set()
        self.damage: dict[Key, str] = {}  # present blocks whose file was damaged
        self.reset_counters()

    def reset_counters(self) -> None:
        self.hits = self.misses = self.evictions = self.corrupt_dropped = 0

    @property
    def stored(self) -> int:
        return sum(self.order.values())

    def get(self, key: Key) -> bool:
        """True on a hit."""
        if key not in self.order:
            self.misses += 1
            return False
        if key in self.damage:
            self.misses += 1
            # A deleted file is gone (another process sharing the directory evicted it),
            # not damage.
            self.corrupt_dropped += self.damage[key] != "delete"
            self._forget(key)
            return False
        self.hits += 1
        self.order[key] = self.order.pop(key)
        self.protected.add(key)
        return True

    def put(self, key: Key, size: int) -> bool:
        if size > self.capacity:
            return False
        if key in self.order:
            self._forget(key)
        self._evict(self.stored + size - self.capacity)
        self.order[key] = size
        return True

    def restart(self) -> None:
        self.protected.clear()  # protection lives in memory only
        self.reset_counters()
        for key, kind in list(self.damage.items()):
            if kind != "flip":  # size changed or file gone: dropped by the open-time check
                self._forget(key)
        self._evict(self.stored - self.capacity)

    def clear(self) -> None:
        for key in list(self.order):
            self._forget(key)

    def disk_bytes(self) -> int:
        deltas = {"flip": 0, "truncate": -1, "extend": +1}
        total = 0
        for key, size in self.order.items():
            kind = self.damage.get(key)
            if kind != "delete":
                total += size + (deltas[kind] if kind else 0)
        return total

    def _evict(self, excess: int) -> None:
        if excess <= 0:
            return
        limit = int(self.capacity * PROTECTED_SHARE)
        for key in list(self.order):
            if sum(self.order[k] for k in self.protected) <= limit:
                break
            self.protected.discard(key)
        for want_protected in (False, True):
            for key in list(self.order):
                if excess <= 0:
                    return
                if (key in self.protected) == want_protected:
                    excess -= self.order[key]
                    self._forget(key)
                    self.evictions += 1

    def _forget(self, key: Key) -> None:
        del self.order[key]
        self.damage.pop(key, None)
        self.protected.discard(key)


class BlockCacheMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix="neurofs-cache-prop-"))
        self.dir = self.tmp / "cache"
        self.cache: BlockCache | None = None
        self.model = Model(0)

    @initialize(capacity=st.sampled_from([20, 50, 100]))
    def open_cache(self, capacity: int) -> None:
        self.model = Model(capacity)
        self.cache = BlockCache(self.dir, capacity)

    @property
    def c(self) -> BlockCache:
        assert self.cache is not None
        return self.cache

    def teardown(self) -> None:
        if self.cache is not None:
            self.cache.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    @rule(key=st.sampled_from(KEYS))
    def read(self, key: Key) -> None:
        self._read(key)

    @precondition(lambda self: bool(self.model.order))
    @rule(data=st.data())
    def read_present(self, data: st.DataObject) -> None:
        """Reads of present (and especially of damaged) blocks are what the model is for."""
        self._read(data.draw(st.sampled_from(list(self.model.order))))

    @precondition(lambda self: bool(self.model.damage))
    @rule(data=st.data())
    def read_damaged(self, data: st.DataObject) -> None:
        self._read(data.draw(st.sampled_from(list(self.model.damage))))

    def _read(self, key: Key) -> None:
        got = self.c.get(*key)
        if self.model.get(key):
            assert got == source(*key)
            return
        assert got is None
        data = source(*key)
        assert self.c.put(*key, data) == self.model.put(key, len(data))

    @rule(key=st.sampled_from(KEYS))
    def refetch(self, key: Key) -> None:
        """A put of a block that may already be present (a duplicate fetch)."""
        data = source(*key)
        assert self.c.put(*key, data) == self.model.put(key, len(data))

    @rule()
    def restart(self) -> None:
        self.c.close()
        self.cache = BlockCache(self.dir, self.model.capacity)
        self.model.restart()

    @rule()
    def clear(self) -> None:
        self.c.clear()
        self.model.clear()

    @precondition(lambda self: any(k not in self.model.damage for k in self.model.order))
    @rule(
        data=st.data(),
        kind=st.sampled_from(["flip", "truncate", "extend", "delete"]),
        then_read=st.booleans(),
    )
    def damage_file(self, data: st.DataObject, kind: str, then_read: bool) -> None:
        healthy = [k for k in self.model.order if k not in self.model.damage]
        key = data.draw(st.sampled_from(healthy))
        size = self.model.order[key]
        if size == 0 and kind in ("flip", "truncate"):
            kind = "extend"
        path = block_file(self.dir, *key)
        assert path is not None
        if kind == "flip":
            pos = data.draw(st.integers(0, size - 1))
            raw = bytearray(path.read_bytes())
            raw[pos] ^= 1 << data.draw(st.integers(0, 7))
            path.write_bytes(bytes(raw))
        elif kind == "truncate":
            os.truncate(path, size - 1)
        elif kind == "extend":
            with open(path, "ab") as f:
                f.write(b"\0")
        else:
            path.unlink()
        self.model.damage[key] = kind
        if then_read:  # often read at once: later steps may evict or restart first
            self._read(key)

    @invariant()
    def stats_match_model(self) -> None:
        if self.cache is None:
            return
        s = self.cache.stats()
        m = self.model
        assert (s.hits, s.misses) == (m.hits, m.misses)
        assert (s.evictions, s.corrupt_dropped, s.write_failures) == (
            m.evictions,
            m.corrupt_dropped,
            0,
        )
        assert (s.stored_blocks, s.stored_bytes) == (len(m.order), m.stored)
        assert s.stored_bytes <= m.capacity

    @invariant()
    def presence_matches_model(self) -> None:
        if self.cache is None:
            return
        for key in KEYS:
            assert self.cache.contains(*key) == (key in self.model.order)

    @invariant()
    def disk_matches_model(self) -> None:
        if self.cache is None:
            return
        assert disk_usage(self.dir) == self.model.disk_bytes()


BlockCacheMachine.TestCase.settings = settings(
    max_examples=60,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestBlockCache = BlockCacheMachine.TestCase
# The machine damages block files on purpose; the cache says so when it drops them.
TestBlockCache.pytestmark = [
    pytest.mark.expect_log(r"block cache: block \d+ of .* failed verification; dropped")
]

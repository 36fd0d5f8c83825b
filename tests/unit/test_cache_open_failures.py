"""Opening the on-disk stores when their files are damaged or the disk is failing: a lost
cache is rebuilt, a disk that cannot be written keeps what it holds for a later start, and
neither refuses the mount."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from neurofs.io import responses
from neurofs.io.cache import BlockCache
from neurofs.io.cache import index as cache_index
from neurofs.io.responses import ResponseStore
from tests.unit.cache_files import disk_usage


def _disk_error(*args: object, **kwargs: object) -> object:
    raise sqlite3.OperationalError("disk I/O error")


@pytest.mark.expect_log(r"block cache: cannot open the index .*; the blocks stored there")
def test_an_index_that_cannot_be_opened_keeps_its_blocks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    with BlockCache(tmp_path, 1 << 30) as cache:
        assert cache.put("blob", 0, b"kept")
    with monkeypatch.context() as m:
        m.setattr(cache_index, "_connect", _disk_error)
        with BlockCache(tmp_path, 1 << 30) as degraded:
            assert degraded.get("blob", 0) is None  # nothing served from the unread index
            assert degraded.put("blob", 1, b"new")  # works, in memory only
    with BlockCache(tmp_path, 1 << 30) as cache:
        assert cache.get("blob", 0) == b"kept"
        assert cache.get("blob", 1) is None  # the degraded run's block was an orphan
        assert disk_usage(tmp_path) == len(b"kept")


@pytest.mark.expect_log(r"is unreadable \(.*\); starting it afresh")
def test_a_garbage_index_is_rebuilt_empty(tmp_path: Path):
    with BlockCache(tmp_path, 1 << 30) as cache:
        cache.put("blob", 0, b"lost")
    (tmp_path / "index.sqlite3").write_bytes(b"not a database" * 100)
    with BlockCache(tmp_path, 1 << 30) as cache:
        assert cache.get("blob", 0) is None
        assert disk_usage(tmp_path) == 0
        assert cache.put("blob", 0, b"again") and cache.get("blob", 0) == b"again"


@pytest.mark.expect_log(r"responses\.sqlite is unreadable .*; starting it afresh")
def test_a_garbage_response_store_starts_afresh(tmp_path: Path):
    path = tmp_path / "responses.sqlite"
    store = ResponseStore(path)
    store.save("dandi", "http://x/api/", {"a": 1})
    store.close()
    path.write_bytes(b"not a database" * 100)
    store = ResponseStore(path)
    assert store.load("dandi", "http://x/api/") is None
    store.save("dandi", "http://x/api/", {"a": 2})
    loaded = store.load("dandi", "http://x/api/")
    assert loaded is not None and loaded[0] == {"a": 2}
    store.close()
    assert path.stat().st_mode & 0o777 == 0o600


@pytest.mark.expect_log(r"cannot open .*responses\.sqlite .*; offline answers are not kept")
def test_a_response_store_on_a_failing_disk_works_in_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    real_open = responses._open

    def failing(path: object) -> sqlite3.Connection:
        if path != ":memory:":
            raise sqlite3.OperationalError("database or disk is full")
        return real_open(path)  # type: ignore[arg-type]

    monkeypatch.setattr(responses, "_open", failing)
    store = ResponseStore(tmp_path / "responses.sqlite")
    store.save("dandi", "u", [1, 2])
    loaded = store.load("dandi", "u")
    assert loaded is not None and loaded[0] == [1, 2]
    store.close()

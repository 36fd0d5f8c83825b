"""Frozen CAVE versions as Parquet through a real mount: pandas, pyarrow and Dask read the
same rows as the version's CSV; the file is rendered once into the cache and later reads (and
later mounts) ask the server nothing; a failure mid-render is EIO and leaves no file; the
daemon's memory does not follow the table."""

from __future__ import annotations

import errno
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from neurofs.io.cache.rendered import RENDERED_DIR
from neurofs_emulators.cave.materialize import QUERY_LIMIT_ENV
from neurofs_emulators.cave.sample import DATASTACK, SampleCave
from neurofs_emulators.launch import start_emulator
from tests.support.memory import high_water_mark, reset_high_water_mark, resident

from .conftest import CaveEmulator, Mount

pytestmark = pytest.mark.mount

SAMPLE = SampleCave()
# What the frozen tables cost to render: the version's row count and the query pages.
MATERIALIZE_READS = re.compile(r"/version/\d+/table/[^/]+/(query|count)$")


def version_dir(mount: Mount, version: int) -> Path:
    return mount / f"cave/{DATASTACK}/versions/{version}"


def materialize_reads(emulator: CaveEmulator) -> list[dict[str, Any]]:
    return [r for r in emulator.requests() if MATERIALIZE_READS.search(r["path"])]


def comparable(frame: Any) -> list[tuple[Any, ...]]:
    """Rows as tuples of plain values, nulls as None (CSV and Parquet type columns apart:
    an all-empty CSV column is float NaN, a Parquet one a typed null)."""
    cells = frame.astype(object).where(frame.notna(), None)
    return [tuple(row) for row in cells.itertuples(index=False)]


@pytest.fixture
def mount(make_mount, cave_emulator: CaveEmulator) -> Mount:
    m = make_mount(cave_emulator)
    cave_emulator.clear_refusals()
    cave_emulator.reset()
    return m


def test_pandas_pyarrow_and_dask_read_the_rows_of_the_csv(
    mount: Mount, cave_emulator: CaveEmulator
):
    import dask.dataframe as dd
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    tables = sorted(SAMPLE.table_names)
    version = version_dir(mount, 2)
    names = sorted(os.listdir(version))
    assert names == sorted([f"{t}.csv" for t in tables] + [f"{t}.parquet" for t in tables])
    # Listing renders no file, CSV or Parquet: it asks each table's count (is it long?),
    # never a row.
    assert [r["path"].rsplit("/", 1)[-1] for r in materialize_reads(cave_emulator)] == [
        "count"
    ] * len(tables)
    assert list((mount.cache_dir / RENDERED_DIR).iterdir()) == []
    for table in tables:
        path = version / f"{table}.parquet"
        cave_emulator.reset()
        size = path.stat().st_size  # the first lookup renders the file: its size is exact
        # One page (the tables are below a page; the version's row count was asked by the
        # listing, to know the table is not long).
        reads = [r["path"].rsplit("/", 1)[-1] for r in materialize_reads(cave_emulator)]
        assert reads == ["query"]
        assert len(path.read_bytes()) == size
        csv = pd.read_csv(version / f"{table}.csv")
        frame = pd.read_parquet(path)
        assert list(frame.columns) == list(csv.columns)
        assert list(frame["id"]) == [r["id"] for r in SAMPLE.materialized(table, 2)]
        assert comparable(frame) == comparable(csv)
        assert comparable(pq.read_table(path).to_pandas()) == comparable(csv)
        lazy = dd.read_parquet(str(path)).compute().reset_index(drop=True)
        assert comparable(lazy) == comparable(csv)
    types = pq.read_schema(version / "synapse.parquet")
    assert types.field("id").type == pa.int64()
    assert types.field("pre_pt_position_x").type == pa.int64()
    assert types.field("post_pt_root_id").type == pa.int64()
    assert types.field("valid").type == pa.bool_()
    assert types.field("created").type == pa.timestamp("ns", tz="UTC")
    assert pq.read_schema(version / "bound_tag.parquet").field("tag").type == pa.string()


def test_the_file_is_rendered_once_and_read_from_the_cache(
    mount: Mount, cave_emulator: CaveEmulator
):
    import pandas as pd

    path = version_dir(mount, 1) / "cell_type_local.parquet"
    data = path.read_bytes()
    assert data[:4] == data[-4:] == b"PAR1"
    assert len(materialize_reads(cave_emulator)) == 2
    cave_emulator.reset()
    assert len(pd.read_parquet(path)) == len(SAMPLE.materialized("cell_type_local", 1))
    assert path.read_bytes() == data
    assert materialize_reads(cave_emulator) == []
    # Another daemon on the same cache reads the same bytes, again with no query.
    mount.remount()
    cave_emulator.reset()
    assert path.stat().st_size == len(data)
    assert path.read_bytes() == data
    assert materialize_reads(cave_emulator) == []
    with pytest.raises(OSError) as info:
        path.write_bytes(b"x")
    assert info.value.errno == errno.EROFS


def test_rendering_memory_is_bounded_by_a_page(mount: Mount):
    """Rendering the 50,526-row synapse table (6 MB as Arrow) raises the daemon's peak
    memory by less than 64 MB. The bound at scale is tests/unit/test_cave_parquet.py's."""
    assert mount.pid is not None
    # The daemon is warm: Arrow and Parquet code is loaded by a first, small render.
    (version_dir(mount, 2) / "bound_tag.parquet").stat()
    before = resident(mount.pid)
    reset_high_water_mark(mount.pid)
    (version_dir(mount, 2) / "synapse.parquet").stat()
    rise = high_water_mark(mount.pid) - before
    assert rise < 64 * 1024 * 1024, f"the peak rose by {rise / 2**20:.0f} MB"


# The engine's row cap in the emulator below: the bound_tag table of version 2 (232 rows)
# takes five pages.
CAP = 50


@pytest.fixture(scope="module")
def capped_emulator() -> Iterator[CaveEmulator]:
    with start_emulator("cave", [], env={QUERY_LIMIT_ENV: str(CAP)}) as running:
        yield CaveEmulator(running)


def test_pages_continue_past_the_servers_cap(make_mount, capped_emulator: CaveEmulator):
    import pandas as pd

    mount = make_mount(capped_emulator)
    capped_emulator.reset()
    frame = pd.read_parquet(version_dir(mount, 2) / "bound_tag.parquet")
    expected = SAMPLE.materialized("bound_tag", 2)
    assert len(expected) > 4 * CAP
    assert list(frame["id"]) == [r["id"] for r in expected]
    queries = [r for r in materialize_reads(capped_emulator) if r["path"].endswith("/query")]
    assert len(queries) == 5


@pytest.mark.expect_log(r"giving up after \d+ tries", r"lookup.*bound_tag\.parquet")
def test_a_failure_mid_render_is_eio_and_leaves_no_file(make_mount, capped_emulator: CaveEmulator):
    import pandas as pd

    mount = make_mount(capped_emulator, retry_seconds=1)
    capped_emulator.clear_refusals()
    query = f"/materialize/api/v3/datastack/{DATASTACK}/version/2/table/bound_tag/query"
    # The third page and every retry of it fail as the engine fails.
    capped_emulator.refuse(
        "POST", query, 500, {"code": 500, "message": "database gone"}, times=1000, after=2
    )
    path = version_dir(mount, 2) / "bound_tag.parquet"
    with pytest.raises(OSError) as info:
        path.stat()
    assert info.value.errno == errno.EIO
    rendered = mount.cache_dir / RENDERED_DIR
    assert list(rendered.iterdir()) == []  # neither a short file nor a temporary
    assert "bound_tag.parquet" in (mount / ".neurofs/errors.log").read_text()
    capped_emulator.clear_refusals()
    assert len(pd.read_parquet(path)) == len(SAMPLE.materialized("bound_tag", 2))
    assert [p.suffix for p in rendered.iterdir()] == [".parquet"]

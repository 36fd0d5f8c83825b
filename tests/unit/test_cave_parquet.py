"""Parquet of frozen CAVE tables, the rendering layer alone: the file's schema, one page of
the engine's Arrow answer cast to it, and the page-by-page render against a stand-in for the
API (pages computed on the fly) — its paging past a server's cap, its refusals, and its
memory, which follows a page and not the table."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from neurofs.errors import RemoteError
from neurofs.sources.cave.models import TableSchema
from neurofs.sources.cave.parquet import (
    PAGE_ROWS,
    arrow_schema,
    page_table,
    parquet_names,
    render_version_table,
)
from neurofs.sources.cave.table_format import format_from_schema
from neurofs.sources.payloads import shown
from tests.unit.test_cave_table_format import SYNAPSE

FMT = format_from_schema(SYNAPSE)
SCHEMA = arrow_schema(FMT)
# The engine's frozen-query columns (split positions), in its order: no created,
# superceded_id or deleted.
ENGINE_COLUMNS = [
    "id",
    "valid",
    "pre_pt_supervoxel_id",
    "pre_pt_root_id",
    "post_pt_supervoxel_id",
    "post_pt_root_id",
    "size",
    *(f"{p}_position_{a}" for p in ("pre_pt", "ctr_pt", "post_pt") for a in "xyz"),
]


def arrow_answer(first: int, count: int, **override: pa.Array) -> bytes:
    """Rows ``first`` to ``first + count`` as the engine's Arrow IPC stream; every value is
    computed from the row number."""
    ids = np.arange(first, first + count, dtype=np.int64) + 1
    columns: dict[str, pa.Array] = {}
    for name in ENGINE_COLUMNS:
        if name == "id":
            columns[name] = pa.array(ids)
        elif name == "valid":
            columns[name] = pa.array(np.ones(count, dtype=bool))
        elif name == "size":
            columns[name] = pa.array(ids * 0.5)
        else:
            columns[name] = pa.array(ids * 7 + len(name))
    columns.update(override)
    table = pa.table(columns)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue().to_pybytes())


class EngineStandIn:
    """What the renderer asks of ``CaveApi``, for a frozen table of ``rows`` rows served at
    most ``cap`` rows a query (and, with ``stop_at``, nothing from that row on)."""

    def __init__(self, rows: int, cap: int = 200_000, stop_at: int | None = None) -> None:
        self.rows, self.cap, self.stop_at = rows, cap, stop_at
        self.pages: list[tuple[int, int]] = []
        self.ranges: list[tuple[int, int | None] | None] = []
        self.on_page: Any = None

    async def table_schema(self, datastack: str, table: str) -> Any:
        return shown(TableSchema, SYNAPSE, "schema")

    async def version_count(self, datastack: str, version: int, table: str) -> int:
        return self.rows

    async def version_query_count(
        self, datastack: str, version: int, table: str, ids: tuple[int, int | None]
    ) -> int:
        lo, hi = ids
        return max(0, min(self.rows + 1, hi or self.rows + 1) - lo)

    async def version_arrow_page(
        self,
        datastack: str,
        version: int,
        table: str,
        offset: int,
        limit: int,
        ids: tuple[int, int | None] | None = None,
    ) -> bytes:
        self.pages.append((offset, limit))
        self.ranges.append(ids)
        if self.on_page is not None:
            self.on_page()
        # Rows are numbered from 0 (id 1); a range starts at its first id.
        first = 0 if ids is None else ids[0] - 1
        rows = self.rows if ids is None else first + await self.version_query_count("", 0, "", ids)
        end = min(first + offset + min(limit, self.cap), rows)
        if self.stop_at is not None:
            end = min(end, self.stop_at)
        return arrow_answer(first + offset, max(0, end - first - offset))


async def render(api: EngineStandIn, path: Path) -> None:
    await render_version_table(api, "ds", 1, "synapse", path)  # type: ignore[arg-type]


def test_the_files_columns_are_the_csvs_typed_from_the_schema():
    assert SCHEMA.names == FMT.columns
    types = {f.name: f.type for f in SCHEMA}
    assert types["id"] == pa.int64()
    assert types["pre_pt_position_x"] == types["post_pt_root_id"] == pa.int64()
    assert types["size"] == pa.float64()
    assert types["valid"] == pa.bool_()
    assert types["created"] == types["deleted"] == pa.timestamp("ns", tz="UTC")
    assert types["superceded_id"] == pa.int64()


def test_a_page_is_cast_to_the_files_columns():
    page = page_table(SCHEMA, arrow_answer(0, 3), "rows")
    assert page.schema == SCHEMA
    assert page.column("id").to_pylist() == [1, 2, 3]
    # What the engine does not send for a frozen table is null, as it is empty in the CSV.
    assert page.column("created").null_count == page.column("deleted").null_count == 3


def test_a_page_that_cannot_be_shown_exactly_is_refused():
    scaled = pa.array([1.5, 2.0])
    with pytest.raises(RemoteError, match="pre_pt_position_x"):
        page_table(SCHEMA, arrow_answer(0, 2, pre_pt_position_x=scaled), "rows")
    with pytest.raises(RemoteError, match="without an id"):
        page_table(SCHEMA, arrow_answer(0, 2, id=pa.array([1, None])), "rows")
    with pytest.raises(RemoteError, match="not an Arrow stream"):
        page_table(SCHEMA, b'{"code": 500}', "rows")


def test_names_end_in_parquet():
    names = parquet_names(["synapse", "a/b", "synapse"])
    assert names["synapse.parquet"] == "synapse"
    assert sorted(names.values()) == ["a/b", "synapse"]
    assert all(name.endswith(".parquet") and "/" not in name for name in names)


async def test_pages_go_on_past_the_servers_cap_until_the_count(tmp_path: Path):
    api = EngineStandIn(rows=25_000, cap=10_000)
    await render(api, tmp_path / "t.parquet")
    table = pq.read_table(tmp_path / "t.parquet")
    assert table.column("id").to_pylist() == list(range(1, 25_001))
    assert [offset for offset, _ in api.pages] == [0, 10_000, 20_000]
    assert pq.ParquetFile(tmp_path / "t.parquet").metadata.num_row_groups == 3


async def test_a_part_holds_the_rows_of_its_id_range(tmp_path: Path):
    """A part of a long table: its range's own count, then pages of that range only."""
    api = EngineStandIn(rows=50_000, cap=4_000)
    path = tmp_path / "part.parquet"
    await render_version_table(api, "ds", 1, "synapse", path, (20_001, 30_001))  # type: ignore[arg-type]
    assert pq.read_table(path).column("id").to_pylist() == list(range(20_001, 30_001))
    assert [offset for offset, _ in api.pages] == [0, 4_000, 8_000]
    assert set(api.ranges) == {(20_001, 30_001)}
    # The last part: every id from its first on.
    api = EngineStandIn(rows=50_000)
    await render_version_table(api, "ds", 1, "synapse", path, (40_001, None))  # type: ignore[arg-type]
    assert pq.read_table(path).column("id").to_pylist() == list(range(40_001, 50_001))


async def test_an_empty_table_is_a_file_with_the_columns(tmp_path: Path):
    api = EngineStandIn(rows=0)
    await render(api, tmp_path / "t.parquet")
    assert pq.read_table(tmp_path / "t.parquet").schema.names == FMT.columns
    assert api.pages == []


async def test_a_server_that_stops_short_of_its_count_is_an_error(tmp_path: Path):
    api = EngineStandIn(rows=25_000, cap=10_000, stop_at=20_000)
    with pytest.raises(RemoteError, match="stopped at 20000 of its 25000 rows"):
        await render(api, tmp_path / "t.parquet")


def _resident_and_peak() -> tuple[int, int]:
    status = Path("/proc/self/status").read_text()
    found = [re.search(rf"^{k}:\s+(\d+) kB", status, re.M) for k in ("VmRSS", "VmHWM")]
    assert found[0] and found[1]
    return int(found[0].group(1)) * 1024, int(found[1].group(1)) * 1024


async def test_memory_follows_a_page_not_the_table(tmp_path: Path):
    """The render's peak memory does not grow with the table: 2,500,000 rows (16 int64
    columns, 305 MB as Arrow) raise the process's peak by no more than 500,000 rows do (give
    or take 32 MB), and by less than a quarter of the table; pyarrow never holds more than a
    few pages."""

    async def peak_rise(rows: int) -> int:
        api = EngineStandIn(rows=rows)
        held: list[int] = []
        api.on_page = lambda: held.append(pa.total_allocated_bytes())
        before, _ = _resident_and_peak()
        Path("/proc/self/clear_refs").write_text("5")  # the peak starts again from here
        await render(api, tmp_path / f"{rows}.parquet")
        _, peak = _resident_and_peak()
        assert max(held) < 4 * PAGE_ROWS * len(ENGINE_COLUMNS) * 8
        assert pq.ParquetFile(tmp_path / f"{rows}.parquet").metadata.num_rows == rows
        return peak - before

    await peak_rise(PAGE_ROWS)  # allocators and code warm
    small = await peak_rise(500_000)
    large = await peak_rise(2_500_000)
    whole = 2_500_000 * len(ENGINE_COLUMNS) * 8
    measured = f"peak rise {small / 2**20:.0f} MB, then {large / 2**20:.0f} MB"
    assert large < small + 32 * 1024 * 1024, measured
    assert large < whole / 4, measured

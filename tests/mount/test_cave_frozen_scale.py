"""A long table frozen in a version, through a real mount: the emulator's scale sample
(``--sample large``) freezes its 10,000,000-row ``synapse_large`` in version 2, served with a
per-query row cap below neurofs's page.

``versions/2/synapse_large/`` is a directory of read-only CSV pages and
``versions/2/synapse_large.parquet/`` a directory of Parquet parts, one per page. Bounds are
proven by what the server was asked and by the daemon's peak memory, never by time."""

from __future__ import annotations

import errno
import io
import os
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import dask.dataframe as dd
import pandas as pd
import pyarrow.parquet as pq
import pytest

from neurofs_emulators.cave.sample import DATASTACK, LARGE_ROWS, LARGE_TABLE
from tests.support.emulators import started_cave_emulator
from tests.support.memory import high_water_mark

from .conftest import CaveEmulator, Mount

pytestmark = pytest.mark.mount

ROW_CAP = 7_000
VERSION = 2
VERSION_QUERY = f"/version/{VERSION}/table/{LARGE_TABLE}/query"


@pytest.fixture(scope="module")
def large_emulator() -> Iterator[CaveEmulator]:
    with started_cave_emulator(["--sample", "large", "--row-cap", str(ROW_CAP)]) as emulator:
        yield emulator


@pytest.fixture
def mount(make_mount, large_emulator: CaveEmulator) -> Mount:
    m = make_mount(large_emulator, retry_seconds=1)
    large_emulator.reset()
    return m


def version_dir(mount: Mount) -> Path:
    return mount / f"cave/{DATASTACK}/versions/{VERSION}"


def queries(emulator: CaveEmulator) -> list[dict]:
    """The materialization queries since the last reset (count queries included)."""
    return [w for w in emulator.writes() if w["path"].endswith("/query")]


def data_queries(emulator: CaveEmulator) -> list[dict]:
    """Queries of rows (not counts): those carry an offset."""
    return [q for q in queries(emulator) if "offset" in q["body"]]


def rows_asked(emulator: CaveEmulator) -> int:
    """Rows the data queries could have returned (their ``limit``, as the server caps it)."""
    return sum(min(q["body"]["limit"], ROW_CAP) for q in data_queries(emulator))


def id_ranges(emulator: CaveEmulator) -> set[tuple[int | None, int | None]]:
    out = set()
    for q in queries(emulator):
        body = q["body"]
        lo = body.get("filter_greater_equal_dict", {}).get(LARGE_TABLE, {}).get("id")
        hi = body.get("filter_less_dict", {}).get(LARGE_TABLE, {}).get("id")
        out.add((lo, hi))
    return out


def peak_rss_mb(mount: Mount) -> float:
    """The daemon's peak resident memory so far (VmHWM), in MB."""
    assert mount.pid is not None
    return high_water_mark(mount.pid) / 2**20


def test_a_long_frozen_table_is_a_directory_of_pages_and_of_parts(
    mount: Mount, large_emulator: CaveEmulator
) -> None:
    names = set(os.listdir(version_dir(mount)))
    # Short tables stay one file each; the long one is two directories.
    assert {"synapse.csv", "synapse.parquet", LARGE_TABLE, f"{LARGE_TABLE}.parquet"} <= names
    assert f"{LARGE_TABLE}.csv" not in names
    # (Listing the version shows its small tables' CSV sizes: it renders those, never the
    # long table's rows.)
    assert not [q for q in queries(large_emulator) if f"/table/{LARGE_TABLE}/" in q["path"]]
    large_emulator.reset()
    pages = sorted(os.listdir(version_dir(mount) / LARGE_TABLE))
    assert len(pages) == LARGE_ROWS // 10_000
    assert pages[0] == "rows-000000001-000010000.csv"
    assert pages[-1] == "rows-009990001-010000000.csv"
    parts = sorted(os.listdir(version_dir(mount) / f"{LARGE_TABLE}.parquet"))
    assert parts[0] == "part-00000.parquet" and parts[-1] == "part-00999.parquet"
    assert len(parts) == len(pages)
    # Listing asks for counts (GET), never for rows, and renders nothing.
    assert queries(large_emulator) == []
    rendered = mount.cache_dir / "rendered"
    assert not rendered.exists() or not any(rendered.iterdir())
    # Names outside the computed ones do not exist.
    assert not (version_dir(mount) / LARGE_TABLE / "rows-000000001-000010001.csv").exists()
    assert not (version_dir(mount) / f"{LARGE_TABLE}.parquet" / "part-01000.parquet").exists()


def test_head_of_a_frozen_page_reads_one_page(mount: Mount, large_emulator: CaveEmulator) -> None:
    page = version_dir(mount) / LARGE_TABLE / "rows-000000001-000010000.csv"
    out = subprocess.run(
        ["head", "-5", str(page)], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert out[0].startswith("id,pre_pt_position_x")
    assert [int(line.split(",", 1)[0]) for line in out[1:]] == [1, 2, 3, 4]
    # One page of rows at most, by id range, of the frozen version only.
    assert rows_asked(large_emulator) <= 10_000
    assert id_ranges(large_emulator) == {(1, 10_001)}
    assert all(q["path"].endswith(VERSION_QUERY) for q in queries(large_emulator))
    # The size is exact, and a second read asks nothing.
    large_emulator.reset()
    data = page.read_bytes()
    assert os.stat(page).st_size == len(data)
    assert len(data.splitlines()) == 10_001
    assert queries(large_emulator) == []


def test_a_part_holds_the_rows_of_its_page(mount: Mount, large_emulator: CaveEmulator) -> None:
    """pyarrow reads two parts by path; each holds its CSV page's rows. Only those two id
    ranges are asked, and the daemon's memory stays bounded."""
    parts = version_dir(mount) / f"{LARGE_TABLE}.parquet"
    chosen = {0: (1, 10_001), 500: (5_000_001, 5_010_001)}
    table = pq.read_table([str(parts / f"part-{i:05d}.parquet") for i in chosen])
    assert table.num_rows == 20_000
    assert id_ranges(large_emulator) == set(chosen.values())
    assert rows_asked(large_emulator) <= 20_000 + ROW_CAP
    frame = table.to_pandas()
    for lo, hi in chosen.values():
        name = f"rows-{lo:09d}-{hi - 1:09d}.csv"
        csv = pd.read_csv(io.BytesIO((version_dir(mount) / LARGE_TABLE / name).read_bytes()))
        part = frame[(frame["id"] >= lo) & (frame["id"] < hi)].reset_index(drop=True)
        assert list(part["id"]) == list(csv["id"]) == list(range(lo, hi))
        for column in ("pre_pt_position_x", "post_pt_position_z", "size", "pre_pt_root_id"):
            assert list(part[column]) == list(csv[column]), column
    # Rendered into the cache: a second read asks nothing.
    large_emulator.reset()
    again = pq.read_table(str(parts / "part-00500.parquet"))
    assert again.num_rows == 10_000
    assert queries(large_emulator) == []
    # Memory follows a part, not the parts read: six more parts and their pages.
    before = peak_rss_mb(mount)
    for i in range(1, 7):
        pq.read_table(str(parts / f"part-{i:05d}.parquet"))
        name = f"rows-{i * 10_000 + 1:09d}-{(i + 1) * 10_000:09d}.csv"
        (version_dir(mount) / LARGE_TABLE / name).read_bytes()
    assert peak_rss_mb(mount) - before < 40
    assert peak_rss_mb(mount) < 300


def test_dask_reads_chosen_parts_at_the_cost_of_those_parts(
    mount: Mount, large_emulator: CaveEmulator
) -> None:
    """Dask looks up every file it is given (pyarrow's discovery asks each one's size), and a
    part's size is known once rendered: three parts costs exactly those three
    parts (a count and two capped queries each), never the table. (Given the whole
    directory, Dask renders every part, once for the cache: see docs/scale-parquet.md.)"""
    parts = version_dir(mount) / f"{LARGE_TABLE}.parquet"
    frame = dd.read_parquet([str(parts / f"part-{i:05d}.parquet") for i in (2, 3, 4)])
    head = frame.head(5)
    assert list(head["id"]) == [20_001, 20_002, 20_003, 20_004, 20_005]
    ranges = {(20_001, 30_001), (30_001, 40_001), (40_001, 50_001)}
    assert id_ranges(large_emulator) == ranges
    per_part = 1 + -(-10_000 // ROW_CAP)
    assert len(queries(large_emulator)) == per_part * len(ranges)
    assert len(frame) == 30_000


# ------------------------------------------------------------------ the table at an instant


def instant() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()


@pytest.mark.expect_log(r"synapse_large at .*: \d+ rows, too many for one file")
def test_a_long_table_at_an_instant_is_not_one_file(
    mount: Mount, large_emulator: CaveEmulator
) -> None:
    """``at/<instant>.csv`` of a long table is refused at once (EFBIG, errors.log), no row
    asked: it would be the whole table in memory."""
    at = mount / f"cave/{DATASTACK}/tables/{LARGE_TABLE}/at"
    when = instant()
    with pytest.raises(OSError) as failed:
        (at / f"{when}.csv").read_bytes()
    assert failed.value.errno == errno.EFBIG
    assert queries(large_emulator) == []
    log = (mount / ".neurofs/errors.log").read_text()
    assert f"at/{when}/" in log


def test_a_long_table_at_an_instant_is_read_in_pages(
    mount: Mount, large_emulator: CaveEmulator
) -> None:
    at = mount / f"cave/{DATASTACK}/tables/{LARGE_TABLE}/at"
    when = instant()
    pages = sorted(os.listdir(at / when))
    assert pages[0] == "rows-000000001-000010000.csv" and len(pages) >= LARGE_ROWS // 10_000
    assert queries(large_emulator) == []  # listing: the table's count only
    page = at / when / "rows-009990001-010000000.csv"
    out = subprocess.run(
        ["head", "-3", str(page)], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert [int(line.split(",", 1)[0]) for line in out[1:]] == [9_990_001, 9_990_002]
    assert rows_asked(large_emulator) <= 10_000
    # The live query at that instant, by id range (the last page: every id from its first).
    assert {q["body"]["timestamp"][:19] for q in queries(large_emulator)} == {when[:19]}
    assert {r[0] for r in id_ranges(large_emulator)} == {9_990_001}
    assert os.stat(page).st_size == len(page.read_bytes())

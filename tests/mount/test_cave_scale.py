"""CAVE tables of any size through a real mount, against the emulator's scale sample
(``--sample large``: a 10,000,000-row table computed on the fly) with a per-query row cap
far below what neurofs asks (``--row-cap``).

Bounds are proven by what the server was asked (the request log: queries, rows asked) and by
the daemon's peak memory (VmHWM), never by time."""

from __future__ import annotations

import contextlib
import errno
import io
import os
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from neurofs_emulators.cave.sample import (
    ALIGNED_VOLUME as VOLUME,
)
from neurofs_emulators.cave.sample import (
    DATASTACK,
    LARGE_ROWS,
    LARGE_TABLE,
    SampleCave,
    build_state,
)
from tests.support.emulators import started_cave_emulator
from tests.support.memory import high_water_mark

from .conftest import CaveEmulator, Mount

pytestmark = pytest.mark.mount

# Rows per materialization query, whatever neurofs asks: below its page sizes (and not a
# divisor of them), so every read crosses the cap.
ROW_CAP = 7_000
SAMPLE = SampleCave()
SAMPLE_LARGE = build_state("large").tables[LARGE_TABLE]


@pytest.fixture(scope="module")
def large_emulator() -> Iterator[CaveEmulator]:
    with started_cave_emulator(["--sample", "large", "--row-cap", str(ROW_CAP)]) as emulator:
        yield emulator


@pytest.fixture
def mount(make_mount, large_emulator: CaveEmulator) -> Mount:
    m = make_mount(large_emulator, retry_seconds=1)
    large_emulator.clear_refusals()
    large_emulator.reset()
    return m


def tables(mount: Mount) -> Path:
    return mount / f"cave/{DATASTACK}/tables"


def queries(emulator: CaveEmulator) -> list[dict]:
    """The materialization queries sent since the last reset (count queries included)."""
    return [w for w in emulator.writes() if w["path"].endswith("/query")]


def server_count(emulator: CaveEmulator, table: str) -> int:
    """How many rows the server says the live query holds now."""
    with emulator.local() as c:
        answer = c.post(
            f"materialize/api/v3/datastack/{DATASTACK}/query",
            params={"return_pyarrow": "false", "count": "true"},
            json={"table": table, "timestamp": datetime.now(UTC).isoformat()},
        )
    return int(answer.json()[0]["count"])


def peak_rss_mb(mount: Mount) -> float:
    """The daemon's peak resident memory so far (VmHWM), in MB."""
    assert mount.pid is not None
    return high_water_mark(mount.pid) / 2**20


# ------------------------------------------------------------------ never a short table


def test_a_table_longer_than_the_servers_cap_is_read_whole(
    mount: Mount, large_emulator: CaveEmulator
) -> None:
    """The server answers at most ROW_CAP rows per query (neurofs asks 200,000): paging goes
    on to the query's count, so the file holds every row."""
    text = (tables(mount) / "synapse/annotations.csv").read_text()
    lines = text.splitlines()
    expected = server_count(large_emulator, "synapse")
    assert expected > ROW_CAP * 5
    assert len(lines) - 1 == expected
    ids = [int(line.split(",", 1)[0]) for line in lines[1:]]
    assert ids == sorted(set(ids))
    pages = [q for q in queries(large_emulator) if "offset" in q["body"]]
    # One count, then one query per capped page, each starting where the last one ended.
    assert [q["body"]["offset"] for q in pages] == list(range(0, expected, ROW_CAP))


@pytest.mark.expect_log(r"rows of synapse: the server gave \d+ of its 999999 rows")
def test_a_server_that_stops_short_of_its_count_is_an_error(
    mount: Mount, large_emulator: CaveEmulator
) -> None:
    """A server whose pages run out before its count: EIO and an errors.log line, never a
    file that ends early looking complete."""
    large_emulator.refuse(
        "POST", f"/materialize/api/v3/datastack/{DATASTACK}/query", 200, [{"count": 999_999}]
    )
    with pytest.raises(OSError) as failed:
        (tables(mount) / "synapse/annotations.csv").read_bytes()
    assert failed.value.errno == errno.EIO
    log = (mount / ".neurofs/errors.log").read_text()
    assert "the server gave" in log and "of its 999999 rows" in log


# ------------------------------------------------------------------ a 10,000,000-row table


def pages_dir(mount: Mount) -> Path:
    return tables(mount) / f"{LARGE_TABLE}/annotations"


def first_page(mount: Mount) -> Path:
    return pages_dir(mount) / "rows-000000001-000010000.csv"


def rows_asked(emulator: CaveEmulator) -> int:
    """Rows the data queries since the last reset could have returned (their ``limit``, as
    the server caps it)."""
    return sum(
        min(q["body"].get("limit", ROW_CAP), ROW_CAP)
        for q in queries(emulator)
        if "offset" in q["body"]
    )


def id_ranges(emulator: CaveEmulator) -> set[tuple[int, int | None]]:
    """The id ranges the queries since the last reset asked for."""
    out = set()
    for q in queries(emulator):
        body = q["body"]
        lo = body.get("filter_greater_equal_dict", {}).get(LARGE_TABLE, {}).get("id")
        hi = body.get("filter_less_dict", {}).get(LARGE_TABLE, {}).get("id")
        out.add((lo, hi))
    return out


def test_a_long_table_is_a_directory_of_pages_named_from_its_count(
    mount: Mount, large_emulator: CaveEmulator
) -> None:
    table_dir = tables(mount) / LARGE_TABLE
    assert sorted(os.listdir(table_dir)) == [
        "annotations",
        "at",
        "count",
        "metadata.json",
        "schema.json",
    ]
    names = os.listdir(pages_dir(mount))
    pages = sorted(n for n in names if n.startswith("rows-"))
    # Ids run from 1 to the count (every row the table ever gave: appends add pages).
    with large_emulator.local() as c:
        count = c.get(f"annotation/api/v2/aligned_volume/{VOLUME}/table/{LARGE_TABLE}/count")
    expected = -(-int(count.json()) // 10_000)
    assert int(count.json()) >= LARGE_ROWS
    assert len(pages) == expected and "append.csv" in names
    assert pages[0] == "rows-000000001-000010000.csv"
    assert pages[LARGE_ROWS // 10_000 - 1] == "rows-009990001-010000000.csv"
    # Listing asks for the count, never for rows.
    assert queries(large_emulator) == []
    assert not (table_dir / "annotations.csv").exists()
    # Small tables stay one file.
    assert (tables(mount) / "synapse/annotations.csv").is_file()


def test_head_of_a_long_table_reads_one_page(mount: Mount, large_emulator: CaveEmulator) -> None:
    out = subprocess.run(
        ["head", "-5", str(first_page(mount))], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert out[0].startswith("id,pre_pt_position_x")
    assert [int(line.split(",", 1)[0]) for line in out[1:]] == [1, 2, 3, 4]
    expected = SAMPLE_LARGE.computed(1).values["pre_pt_position"]
    assert out[1].split(",")[1:4] == [str(int(c)) for c in expected]
    # Bounded by one page, whatever the table's length; by id range, not offset.
    assert rows_asked(large_emulator) <= 10_000
    assert id_ranges(large_emulator) == {(1, 10_001)}


def test_pages_tell_their_exact_size_and_hold_exactly_their_rows(
    mount: Mount, large_emulator: CaveEmulator
) -> None:
    page = pages_dir(mount) / "rows-005000001-005010000.csv"
    size = os.stat(page).st_size
    data = page.read_bytes()
    assert len(data) == size
    ids = [int(line.split(b",", 1)[0]) for line in data.splitlines()[1:]]
    assert ids == list(range(5_000_001, 5_010_001))
    # stat renders that page only: the rows of one page, in capped queries, and its count.
    assert id_ranges(large_emulator) == {(5_000_001, 5_010_001)}
    assert rows_asked(large_emulator) == 10_000
    late = pages_dir(mount) / "rows-009980001-009990000.csv"
    assert late.read_bytes().splitlines()[-1].split(b",", 1)[0] == b"9990000"


def test_pandas_reads_a_thousand_rows_of_a_long_table_from_one_page(
    mount: Mount, large_emulator: CaveEmulator
) -> None:
    import pandas as pd

    frame = pd.read_csv(first_page(mount), nrows=1000)
    assert list(frame["id"]) == list(range(1, 1001))
    assert rows_asked(large_emulator) <= 10_000


def test_streaming_pages_keeps_the_daemon_small(mount: Mount, large_emulator: CaveEmulator) -> None:
    """Reading page after page (``cat`` or pandas over the files) holds a few pages at a
    time: the daemon's peak memory stops growing with the rows read."""
    import pandas as pd

    names = sorted(n for n in os.listdir(pages_dir(mount)) if n.startswith("rows-"))

    def read(pages: list[str]) -> int:
        return sum(len(pd.read_csv(pages_dir(mount) / n)) for n in pages)

    # Past the texts the mount keeps of what was last read (16 MB: merge bases of edits).
    assert read(names[:12]) == 120_000
    after_some = peak_rss_mb(mount)
    assert read(names[12:24]) == 120_000
    after_twice = peak_rss_mb(mount)
    assert after_twice < 300
    # Twice the rows (20 MB more CSV) moved the peak by far less than they weigh.
    assert after_twice - after_some < 8, (after_some, after_twice)


# ------------------------------------------------------------------ writing to a long table


def annotation_writes(emulator: CaveEmulator) -> list[dict]:
    return [w for w in emulator.writes() if "/annotations" in w["path"]]


def new_rows(header: str, n: int, start: int = 0) -> str:
    """CSV rows without id (new rows) for the synapse schema, under ``header``."""
    lines = []
    for i in range(start, start + n):
        cells = dict.fromkeys(header.split(","), "")
        for point, shift in (("pre_pt", 0), ("post_pt", 7), ("ctr_pt", 3)):
            for axis, base in zip("xyz", (50_000, 60_000, 2_000), strict=True):
                cells[f"{point}_position_{axis}"] = str(base + i + shift)
        cells["size"] = str(100 + i)
        lines.append(",".join(cells.values()) + "\n")
    return "".join(lines)


def append_file(mount: Mount) -> Path:
    return pages_dir(mount) / "append.csv"


def test_appending_to_a_long_table_sends_exactly_the_new_rows(
    mount: Mount, large_emulator: CaveEmulator
) -> None:
    path = append_file(mount)
    header = path.read_text().strip()
    assert header.startswith("id,pre_pt_position_x") and "\n" not in header
    before = server_count(large_emulator, LARGE_TABLE)
    large_emulator.reset()
    rows = new_rows(header, 2)
    subprocess.run(["sh", "-c", f"printf '%s' '{rows}' >> '{path}'"], check=True)
    writes = annotation_writes(large_emulator)
    assert [w["method"] for w in writes] == ["POST"]
    posted = writes[0]["body"]["annotations"]
    assert [a["pre_pt"]["position"] for a in posted] == [
        [50_000, 60_000, 2_000],
        [50_001, 60_001, 2_001],
    ]
    assert [a["size"] for a in posted] == [100, 101]
    # No row of the table was read to append.
    assert queries(large_emulator) == []
    assert server_count(large_emulator, LARGE_TABLE) == before + 2
    # append.csv is the header again; the new rows are in the last page.
    assert path.read_text().strip() == header
    pages = sorted(n for n in os.listdir(pages_dir(mount)) if n.startswith("rows-"))
    tail = (pages_dir(mount) / pages[-1]).read_text().splitlines()[-2:]
    assert [line.split(",")[1] for line in tail] == ["50000", "50001"]


def test_pandas_appends_to_a_long_table(mount: Mount, large_emulator: CaveEmulator) -> None:
    import pandas as pd

    path = append_file(mount)
    header = path.read_text().strip()
    frame = pd.read_csv(io.StringIO(header + "\n" + new_rows(header, 3, start=10)))
    large_emulator.reset()
    frame.to_csv(path, mode="a", header=False, index=False)
    writes = annotation_writes(large_emulator)
    assert [w["method"] for w in writes] == ["POST"]
    assert [a["size"] for a in writes[0]["body"]["annotations"]] == [110, 111, 112]
    assert queries(large_emulator) == []


def test_a_page_rewritten_updates_and_deletes_its_rows_only(
    make_mount, large_emulator: CaveEmulator
) -> None:
    mount = make_mount(large_emulator, retry_seconds=1, fuse_options=["allow_delete"])
    page = pages_dir(mount) / "rows-000020001-000030000.csv"
    lines = page.read_text().splitlines()
    by_id = {int(line.split(",", 1)[0]): i for i, line in enumerate(lines[1:], start=1)}
    header = lines[0].split(",")
    changed = lines[by_id[20_010]].split(",")
    changed[header.index("size")] = "4242"
    lines[by_id[20_010]] = ",".join(changed)
    del lines[by_id[20_005]]
    large_emulator.reset()
    assert write(page, ("\n".join(lines) + "\n").encode()) == 0
    writes = annotation_writes(large_emulator)
    assert [w["method"] for w in writes] == ["PUT", "DELETE"]
    assert [a["id"] for a in writes[0]["body"]["annotations"]] == [20_010]
    assert writes[0]["body"]["annotations"][0]["size"] == 4242
    assert writes[1]["body"] == {"annotation_ids": [20_005]}
    # The save read that page's rows, nothing more.
    assert id_ranges(large_emulator) == {(20_001, 30_001)}
    after = [int(line.split(",", 1)[0]) for line in page.read_text().splitlines()[1:]]
    assert 20_005 not in after and 20_010 not in after and len(after) == 9_998


def write(path: Path, data: bytes, flags: int = os.O_WRONLY | os.O_TRUNC) -> int:
    """Write ``data`` and close: 0, or the errno of the write or the close."""
    fd = os.open(path, flags)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    except OSError as exc:
        with contextlib.suppress(OSError):  # close repeats the refusal
            os.close(fd)
        return exc.errno or -1
    try:
        os.close(fd)
    except OSError as exc:
        return exc.errno or -1
    return 0


def kept_bytes(mount: Mount) -> list[bytes]:
    kept = mount / ".neurofs/rejected/cave" / DATASTACK / f"tables/{LARGE_TABLE}/annotations"
    return [p.read_bytes() for p in kept.iterdir()]


@pytest.mark.parametrize(
    "case",
    [
        "a row with an id",
        "a position that is no number",
    ],
)
@pytest.mark.expect_log(r"append\.csv: write refused \(EINVAL\)")
def test_bad_rows_appended_are_einval_and_kept(
    mount: Mount, large_emulator: CaveEmulator, case: str
) -> None:
    path = append_file(mount)
    header = path.read_text().strip()
    row = new_rows(header, 1)
    row = "17" + row if case == "a row with an id" else row.replace("50000", "5e", 1)
    data = (header + "\n" + row).encode()
    large_emulator.reset()
    assert write(path, data) == errno.EINVAL
    assert annotation_writes(large_emulator) == []
    assert data in kept_bytes(mount)
    assert "append.csv" in (mount / ".neurofs/errors.log").read_text().splitlines()[-1]


@pytest.mark.expect_log(r"write refused \(EINVAL\)")
def test_an_id_of_another_page_is_einval(make_mount, large_emulator: CaveEmulator) -> None:
    mount = make_mount(large_emulator, retry_seconds=1, fuse_options=["allow_delete"])
    page = pages_dir(mount) / "rows-000030001-000040000.csv"
    text = page.read_text()
    data = (text + text.splitlines()[1].replace("30001", "1", 1) + "\n").encode()
    large_emulator.reset()
    assert write(page, data) == errno.EINVAL
    assert annotation_writes(large_emulator) == []
    assert "belongs to another page" in (mount / ".neurofs/errors.log").read_text()


@pytest.mark.parametrize(
    ("status", "body", "code"),
    [
        (
            500,
            {"code": 500, "message": "422 Unprocessable Entity: {'size': ['Not a number.']}"},
            errno.EINVAL,
        ),
        (503, {"code": 503, "message": "Service Unavailable"}, errno.EIO),
    ],
)
@pytest.mark.expect_log(r"append\.csv: write refused \(E(INVAL|IO)\)")
def test_a_refused_or_failed_append_keeps_the_users_rows(
    mount: Mount, large_emulator: CaveEmulator, status: int, body: dict, code: int
) -> None:
    path = append_file(mount)
    header = path.read_text().strip()
    data = (header + "\n" + new_rows(header, 2)).encode()
    before = server_count(large_emulator, LARGE_TABLE)
    large_emulator.refuse("POST", "/annotation/", status, body, times=50)
    try:
        assert write(path, data) == code
    finally:
        large_emulator.clear_refusals()
    assert data in kept_bytes(mount)
    assert server_count(large_emulator, LARGE_TABLE) == before

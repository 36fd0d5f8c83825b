"""CAVE tables of any size through a real mount, against the emulator's scale sample
(``--sample large``: a 10,000,000-row table computed on the fly) with a per-query row cap
far below what neurofs asks (``--row-cap``).

Bounds are proven by what the server was asked (the request log: queries, rows asked) and by
the daemon's peak memory (VmHWM), never by time."""

from __future__ import annotations

import errno
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from neurofs_emulators.cave.sample import DATASTACK, SampleCave
from tests.support.emulators import started_cave_emulator

from .conftest import CaveEmulator, Mount

pytestmark = pytest.mark.mount

# Rows per materialization query, whatever neurofs asks: below its page sizes (and not a
# divisor of them), so every read crosses the cap.
ROW_CAP = 3_000
SAMPLE = SampleCave()


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
    for line in Path(f"/proc/{mount.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


# ------------------------------------------------------------------ never a short table


def test_a_table_longer_than_the_servers_cap_is_read_whole(
    mount: Mount, large_emulator: CaveEmulator
) -> None:
    """The server answers at most ROW_CAP rows per query (neurofs asks 200,000): paging goes
    on to the query's count, so the file holds every row."""
    text = (tables(mount) / "synapse/annotations.csv").read_text()
    lines = text.splitlines()
    expected = server_count(large_emulator, "synapse")
    assert expected > ROW_CAP * 10
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

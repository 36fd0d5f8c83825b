"""The CAVE emulator's scale sample (``--sample large``) and its row cap (``--row-cap``): a
10,000,000-row table computed from its ids, answered lazily (counts by arithmetic, queries
by id range), with writes kept in an overlay, in a process that stays small."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from neurofs_emulators.cave.computed import LargeTable
from neurofs_emulators.cave.sample import (
    ALIGNED_VOLUME,
    DATASTACK,
    LARGE_ROWS,
    LARGE_TABLE,
    OWNER_TOKEN,
    build_state,
)
from neurofs_emulators.cave.state import mat_record
from neurofs_emulators.launch import RunningEmulator, start_emulator

OWNER = {"Authorization": f"Bearer {OWNER_TOKEN}"}
CAP = 500
JSON = {"return_pyarrow": "false", "split_positions": "true"}
TRUTH = build_state("large").tables[LARGE_TABLE]
assert isinstance(TRUTH, LargeTable)


@pytest.fixture(scope="module")
def emulator() -> Iterator[RunningEmulator]:
    with start_emulator("cave", ["--sample", "large", "--row-cap", str(CAP)]) as running:
        yield running


def mat(emulator: RunningEmulator) -> str:
    return f"{emulator.urls[1]}/materialize/api/v3/datastack/{DATASTACK}"


def av(emulator: RunningEmulator) -> str:
    return f"{emulator.urls[1]}/annotation/api/v2/aligned_volume/{ALIGNED_VOLUME}"


def live(emulator: RunningEmulator, body: dict[str, Any], **params: str) -> httpx.Response:
    now = dt.datetime.now(dt.UTC).isoformat()
    return httpx.post(
        mat(emulator) + "/query",
        params={**JSON, **params},
        json={"table": LARGE_TABLE, "timestamp": now, **body},
        headers=OWNER,
        timeout=60,
    )


def ids_between(lo: int, hi: int) -> dict[str, Any]:
    return {
        "filter_greater_equal_dict": {LARGE_TABLE: {"id": lo}},
        "filter_less_dict": {LARGE_TABLE: {"id": hi}},
    }


def test_counts_of_the_large_table(emulator: RunningEmulator) -> None:
    count = httpx.get(av(emulator) + f"/table/{LARGE_TABLE}/count", headers=OWNER)
    assert count.json() == LARGE_ROWS
    frozen = httpx.get(
        f"{emulator.urls[1]}/materialize/api/v2/datastack/{DATASTACK}/version/2/table/"
        f"{LARGE_TABLE}/count",
        headers=OWNER,
    )
    assert frozen.json() == LARGE_ROWS
    assert live(emulator, {}, count="true").json() == [{"count": LARGE_ROWS}]
    window = live(emulator, ids_between(9_999_991, 20_000_000), count="true")
    assert window.json() == [{"count": 10}]
    versions = f"{emulator.urls[1]}/materialize/api/v2/datastack/{DATASTACK}/version"
    # Frozen in version 2 only (its rows were made between the two versions).
    assert LARGE_TABLE not in httpx.get(versions + "/1/tables", headers=OWNER).json()
    assert LARGE_TABLE in httpx.get(versions + "/2/tables", headers=OWNER).json()


def test_rows_are_computed_from_ids_and_capped(emulator: RunningEmulator) -> None:
    r = live(emulator, {**ids_between(7_000_001, 7_002_001), "limit": 2_000})
    rows = r.json()
    # The deployment's cap, not the limit asked, with the engine's warning.
    assert len(rows) == CAP
    assert f'201 - "Limited query to {CAP} rows' in r.headers.get_list("warning")
    expected = [mat_record(TRUTH, TRUTH.computed(i), True) for i in range(7_000_001, 7_000_006)]
    for got, want in zip(rows[:5], expected, strict=True):
        assert {k: got[k] for k in want} == want
    # Offset pages within the window continue where the cap stopped.
    more = live(emulator, {**ids_between(7_000_001, 7_002_001), "offset": CAP, "limit": 10})
    assert [row["id"] for row in more.json()] == list(range(7_000_001 + CAP, 7_000_011 + CAP))
    # Any other filter is applied to the rows it reads.
    size = TRUTH.computed(3).values["size"]
    hit = live(
        emulator, {**ids_between(1, 100), "filter_equal_dict": {LARGE_TABLE: {"size": size}}}
    )
    assert 3 in [row["id"] for row in hit.json()]


def test_writes_to_the_large_table_stick(emulator: RunningEmulator) -> None:
    url = av(emulator) + f"/table/{LARGE_TABLE}/annotations"
    point = {"position": [50_000, 60_000, 2_000]}
    new = {"pre_pt": point, "post_pt": point, "ctr_pt": point, "size": 5.0}
    posted = httpx.post(url, json={"annotations": [new]}, headers=OWNER)
    assert posted.json() == [LARGE_ROWS + 1]
    deleted = httpx.request("DELETE", url, json={"annotation_ids": [5]}, headers=OWNER)
    assert deleted.json() == [5]
    updated = httpx.put(url, json={"annotations": [{"id": 7, **new}]}, headers=OWNER)
    assert updated.json() == {"7": LARGE_ROWS + 2}
    rows = live(emulator, ids_between(1, 11)).json()
    assert [row["id"] for row in rows] == [1, 2, 3, 4, 6, 8, 9, 10]
    assert live(emulator, {}, count="true").json() == [{"count": LARGE_ROWS}]
    tail = live(emulator, ids_between(LARGE_ROWS + 1, LARGE_ROWS + 10)).json()
    assert [row["id"] for row in tail] == [LARGE_ROWS + 1, LARGE_ROWS + 2]
    assert httpx.get(url.rsplit("/", 1)[0] + "/count", headers=OWNER).json() == LARGE_ROWS + 2


def test_the_emulator_stays_small(emulator: RunningEmulator) -> None:
    """Rows are never stored: after queries across the table the process is small."""
    for lo in (2_000_001, 4_000_001, 9_999_001):
        assert len(live(emulator, ids_between(lo, lo + CAP)).json()) == CAP
    status = Path(f"/proc/{emulator.process.pid}/status").read_text()
    peak = next(line for line in status.splitlines() if line.startswith("VmHWM"))
    rss_mb = int(peak.split()[1]) / 1024
    assert rss_mb < 300, rss_mb

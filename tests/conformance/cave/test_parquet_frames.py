"""The mount's Parquet of a frozen version against the official client's DataFrame of the
same version: ``pd.read_parquet`` of ``versions/<n>/<table>.parquet`` has every column of
``query_table(..., split_positions=True)`` with the same values and the same dtypes."""

from __future__ import annotations

import pytest

from neurofs_emulators.cave.sample import DATASTACK, SampleCave
from neurofs_emulators.launch import RunningEmulator
from tests.support.fixtures import MakeMount

from .conftest import CaveClientRunner

pytestmark = [pytest.mark.conformance, pytest.mark.mount]


def test_parquet_equals_the_clients_frame(
    make_mount: MakeMount,
    run_cave_client: CaveClientRunner,
    cave_emulator: RunningEmulator,
    cave_sample: SampleCave,
) -> None:
    # A bound point (positions, supervoxel and root ids) and text columns.
    table, version = "cell_type_local", 1
    mount = make_mount(cave_emulator)
    path = mount / f"cave/{DATASTACK}/versions/{version}/{table}.parquet"
    result = run_cave_client(
        """
        import pandas as pd
        table, version = os.environ["TABLE"], int(os.environ["VERSION"])
        theirs = client.materialize.query_table(
            table, materialization_version=version, split_positions=True
        )
        ours = pd.read_parquet(os.environ["PARQUET"])
        theirs = theirs.sort_values("id").reset_index(drop=True)
        emit({
            "theirs": list(theirs.columns),
            "ours": list(ours.columns),
            "rows": [len(theirs), len(ours)],
            "differ": [c for c in theirs.columns if not theirs[c].equals(ours[c])],
            "dtypes": {c: [str(theirs[c].dtype), str(ours[c].dtype)] for c in theirs.columns},
        })
        """,
        TABLE=table,
        VERSION=str(version),
        PARQUET=str(path),
    )
    assert result["rows"] == [len(cave_sample.materialized(table, version))] * 2
    assert set(result["theirs"]) <= set(result["ours"])
    # The file also has the CSV's read-only columns the engine leaves out of frozen tables.
    assert set(result["ours"]) - set(result["theirs"]) == {"created", "superceded_id", "deleted"}
    assert result["differ"] == []
    assert all(theirs == ours for theirs, ours in result["dtypes"].values()), result["dtypes"]

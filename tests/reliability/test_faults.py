"""Injected faults through real mounts: every read is byte-exact, and readers see no error.

The emulators answer 10 % of requests with a 500, 502 or 503, cut 5 % of the connections
halfway through the body, and answer 2 % with a 429 carrying ``Retry-After: 1`` (one roll
per request, see ``neurofs_emulators.network``). The mount retries all of them within its
retry budget; a reader must never notice. Expected bytes come from the emulators' sample
data built in this process, or from the API's own digests read before the faults start.
"""

from __future__ import annotations

import csv
import hashlib
import os
import random
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from neurofs_emulators.cave.sample import DATASTACK
from neurofs_emulators.launch import start_emulator
from neurofs_emulators.webknossos.sample import ORGANIZATION, SampleWorld
from tests.mount.conftest import CaveEmulator, Emulator, WkEmulator

from .conftest import Figures, bounded
from .groundtruth import big_blob
from .network import FAULTS, Tally, fault_note, injected, sha256_file

pytestmark = pytest.mark.mount

MIB = 1024 * 1024


def _faulty(emulator: Emulator, seed: int) -> None:
    emulator.running.set_knobs(**FAULTS, seed=seed)
    emulator.reset()


def _calm(emulator: Emulator) -> None:
    """No faults: the ground truth is read straight from the server, which an earlier test
    of the module may have left faulty."""
    emulator.running.set_knobs()


@pytest.fixture(scope="module")
def faulty_dandi() -> Iterator[Emulator]:
    with start_emulator("dandi", []) as running:
        yield Emulator(running)


@pytest.fixture(scope="module")
def faulty_wk() -> Iterator[WkEmulator]:
    with start_emulator("webknossos", []) as running:
        yield WkEmulator(running)


@pytest.fixture(scope="module")
def faulty_cave() -> Iterator[CaveEmulator]:
    with start_emulator("cave", []) as running:
        yield CaveEmulator(running)


def _check(tally: Tally, report: Figures, mount: Any, emulators: list[Emulator]) -> None:
    """Fill the figures, then require zero reader errors and proof that faults happened."""
    tally.fill(report, fault_note(mount, emulators))
    assert tally.errors == [], tally.errors[:5]
    assert sum(sum(injected(e).values()) for e in emulators) > 0, "no fault was injected"
    assert mount.stats()["retries"] > 0


# ---------------------------------------------------------------- DANDI


def test_blob_copy_under_faults(
    make_mount: Any, faulty_dandi: Emulator, tmp_path: Path, report: Figures
) -> None:
    """`cp` of the 1 GiB blob (in CI: `head -c` of its first 256 MiB), sha256 against the
    generator of the emulator's bytes."""
    target = big_blob()
    size = int(bounded(256 * MIB, target.size))
    expected = hashlib.sha256()
    for start in range(0, size, 16 * MIB):
        expected.update(target.expected(start, min(size, start + 16 * MIB)))
    _faulty(faulty_dandi, seed=1)
    mount = make_mount(faulty_dandi)
    source, dest = mount / target.relpath, tmp_path / "copy"
    tally = Tally()
    if size == target.size:
        tally.run("cp", lambda: subprocess.run(["cp", str(source), str(dest)], check=True))
    else:
        with dest.open("wb") as out:
            tally.run(
                "head",
                lambda: subprocess.run(
                    ["head", "-c", str(size), str(source)], stdout=out, check=True
                ),
            )
    got = sha256_file(dest) if dest.exists() else ""
    if got == expected.hexdigest() and dest.stat().st_size == size:
        tally.verified(size)
    else:
        tally.error(f"copy of {size} bytes differs from the source")
    _check(tally, report, mount, [faulty_dandi])


def test_walk_of_the_2005_asset_dandiset_under_faults(
    make_mount: Any, faulty_dandi: Emulator, report: Figures
) -> None:
    """find + stat of every asset of 000003, then a sample of files read whole (every file
    in the full run), sha256 against the API's digests."""
    _calm(faulty_dandi)
    assets = faulty_dandi.all_assets("000003", "draft")
    blobs = {a["path"]: a for a in assets if a["blob"]}
    assert len(assets) > 2000
    _faulty(faulty_dandi, seed=2)
    mount = make_mount(faulty_dandi)
    root = mount / "dandi/000003/draft"
    tally = Tally()

    def find() -> list[str]:
        out = subprocess.run(
            ["find", ".", "-type", "f", "-not", "-path", "*.zarr/*"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        return [p.removeprefix("./") for p in out]

    found = tally.run("find", find) or []
    if set(found) - {"dandiset.yaml"} != set(blobs):
        tally.error(f"find listed {len(found)} files, the API {len(blobs)}")
    for path, asset in blobs.items():
        st = tally.run(f"stat {path}", lambda p=path: os.stat(root / p))
        if st is not None and st.st_size != asset["size"]:
            tally.error(f"{path}: size {st.st_size} != {asset['size']}")
    count = int(bounded(200, len(blobs)))

    def read(path: str) -> None:
        data = tally.run(f"read {path}", (root / path).read_bytes)
        if data is None:
            return
        if hashlib.sha256(data).hexdigest() != blobs[path]["metadata"]["digest"]["dandi:sha2-256"]:
            tally.error(f"{path}: bytes differ")
        else:
            tally.verified(len(data))

    # Eight readers at a time, like `find | xargs -P 8 sha256sum`.
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(read, random.Random(2).sample(sorted(blobs), count)))
    _check(tally, report, mount, [faulty_dandi])


# ---------------------------------------------------------------- WEBKNOSSOS

WORLD = SampleWorld()


def _expected_whole_mag(
    dataset: str, layer: str, mag: tuple[int, int, int], shape: tuple[int, ...]
) -> np.ndarray:
    """The whole OME-Zarr array (z, y, x) of a mag: the layer's voxels, zero outside its box."""
    z, y, x = shape[-3:]
    v = WORLD.voxels(dataset, layer, mag, 0, 0, 0, x, y, z).transpose(0, 3, 2, 1)
    return v[0] if v.shape[0] == 1 else v


def test_webknossos_mag_read_under_faults(
    make_mount: Any, faulty_wk: WkEmulator, report: Figures
) -> None:
    """zarr-python reads a whole mag through `.ome.zarr` (color mag 1 of l4_demo; the full
    run adds the segmentation layer's mag 1) and equals the ground truth voxel for voxel."""
    import zarr

    _faulty(faulty_wk, seed=3)
    mount = make_mount(faulty_wk)
    dataset_dir = mount / f"webknossos/datasets/{ORGANIZATION}/l4_demo"
    layers = ["color"] if not bounded(0, 1) else ["color", "segmentation"]
    mag = (1, 1, 1)
    tally = Tally()
    for layer in layers:

        def read(layer: str = layer) -> np.ndarray:
            group = zarr.open_group(str(dataset_dir / f"{layer}.ome.zarr"), mode="r")
            return np.asarray(group[WORLD.mag_name(mag)][...])

        got = tally.run(f"zarr read of {layer}", read)
        if got is None:
            continue
        # One operation per chunk file zarr read (32³ chunks over z, y, x).
        tally.operations += int(np.prod([-(-n // 32) for n in got.shape[-3:]])) - 1
        expected = _expected_whole_mag("l4_demo", layer, mag, got.shape)
        if got.shape != expected.shape or not np.array_equal(got, expected):
            tally.error(f"{layer} mag 1 differs from the ground truth")
        else:
            tally.verified(got.nbytes)
    _check(tally, report, mount, [faulty_wk])


# ---------------------------------------------------------------- CAVE


def _server_rows(emulator: CaveEmulator, table: str) -> list[dict[str, Any]]:
    """The table's valid rows as the materialization service answers, asked directly."""
    with emulator.local() as client:
        response = client.post(
            f"materialize/api/v3/datastack/{DATASTACK}/query",
            params={"return_pyarrow": "false", "split_positions": "false"},
            json={
                "table": table,
                "offset": 0,
                "limit": 200_000,
                "timestamp": datetime.now(UTC).isoformat(),
            },
        )
    response.raise_for_status()
    rows: list[dict[str, Any]] = response.json()
    return rows


def _csv_value(value: Any) -> str:
    """A server value as annotations.csv writes it."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _row_mismatches(rows: list[dict[str, str]], expected: list[dict[str, Any]]) -> list[str]:
    """Differences between the CSV's rows and the server's, field by field."""
    if len(rows) != len(expected):
        return [f"{len(rows)} rows, the server has {len(expected)}"]
    out = []
    for got, want in zip(rows, expected, strict=True):
        for column, text in got.items():
            point, _, axis = column.rpartition("_position_")
            if point and f"{point}_position" in want:
                value = want[f"{point}_position"]["xyz".index(axis)]
            else:
                value = want.get(column)
            if text != _csv_value(value):
                out.append(f"id {want['id']}: {column} = {text!r}, server {value!r}")
                break
    return out


def test_cave_table_read_under_faults(
    make_mount: Any, faulty_cave: CaveEmulator, report: Figures
) -> None:
    """annotations.csv of every table (the synapse table has over 50,000 rows) equals the
    server's valid rows, field by field."""
    tables = ["synapse", "bound_tag", "cell_type_local"]
    _calm(faulty_cave)
    expected = {table: _server_rows(faulty_cave, table) for table in tables}
    assert len(expected["synapse"]) > 50_000
    _faulty(faulty_cave, seed=4)
    mount = make_mount(faulty_cave)
    tally = Tally()
    for table in tables:
        path = mount / f"cave/{DATASTACK}/tables/{table}/annotations.csv"
        text = tally.run(f"read {table}/annotations.csv", path.read_text)
        if text is None:
            continue
        mismatches = _row_mismatches(list(csv.DictReader(text.splitlines())), expected[table])
        if mismatches:
            tally.error(f"{table}: {len(mismatches)} rows differ, first: {mismatches[0]}")
        else:
            tally.verified(len(text.encode()))
    _check(tally, report, mount, [faulty_cave])

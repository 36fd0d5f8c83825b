"""pynwb (installed with the official ``dandi`` client in .venv-conformance) reads the sample
NWB file: through a real neurofs mount, and streamed over HTTP from the emulator the way
DANDI's own streaming examples do it (``fsspec`` + ``h5py``).

The values pynwb returns are compared with the emulator's ground truth: the session metadata
and the exact bytes of ElectricalSeries rows and their timestamps, read by pynwb and by h5py
alone.
"""

from __future__ import annotations

import hashlib
import textwrap
from typing import Any

import numpy as np
import pytest

from neurofs_emulators.dandi import generate
from neurofs_emulators.dandi.sample import NWB_PATH, PUBLISHED_DANDISET, SampleArchive
from neurofs_emulators.launch import RunningEmulator
from tests.support.emulators import Emulator

from .conftest import ClientRunner

pytestmark = [pytest.mark.conformance, pytest.mark.mount]

# Two slices of the raw ElectricalSeries: the first 10,000 rows, and rows that straddle
# chunk boundaries near the end of the recording.
SLICES = [(0, 10_000), (286_000, 300_000)]

# Runs in .venv-conformance. ``open_nwb()`` returns the h5py.File to hand to pynwb.
READ_NWB = f"""
import hashlib, warnings
import h5py, numpy as np
from pynwb import NWBHDF5IO, validate

with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    h5 = open_nwb()
    io = NWBHDF5IO(file=h5, mode="r", load_namespaces=True)
    nwb = io.read()
    es = nwb.acquisition["ElectricalSeries"]
    digests = []
    times = []
    raw = []  # the same slices read with h5py alone, without pynwb
    for start, stop in {SLICES!r}:
        rows = np.ascontiguousarray(es.data[start:stop])
        digests.append([list(rows.shape), str(rows.dtype), hashlib.sha256(rows).hexdigest()])
        t = np.ascontiguousarray(es.timestamps[start:stop])
        times.append([list(t.shape), str(t.dtype), hashlib.sha256(t).hexdigest()])
        h5_rows = np.ascontiguousarray(h5["acquisition/ElectricalSeries/data"][start:stop])
        h5_times = np.ascontiguousarray(h5["acquisition/ElectricalSeries/timestamps"][start:stop])
        raw.append([hashlib.sha256(h5_rows).hexdigest(), hashlib.sha256(h5_times).hexdigest()])
    units = nwb.units
    result = {{
        "identifier": nwb.identifier,
        "session_description": nwb.session_description,
        "session_start_time": nwb.session_start_time.isoformat(),
        "subject": [nwb.subject.subject_id, nwb.subject.species, nwb.subject.sex],
        "type": type(es).__name__,
        "shape": list(es.data.shape),
        "chunks": list(es.data.chunks),
        "conversion": es.conversion,
        "unit": es.unit,
        "slices": digests,
        "timestamps": times,
        "h5py_slices": raw,
        "rate": es.rate,
        "timestamps_unit": es.timestamps_unit,
        "electrodes": [es.electrodes.table.name, len(es.electrodes.table),
                       [int(i) for i in es.electrodes.data[:]]],
        "groups": sorted(nwb.electrode_groups),
        "devices": sorted({{g.device.name for g in nwb.electrode_groups.values()}}),
        "location": list(nwb.electrodes["location"][:]),
        "units": len(units),
        "unit7": [float(t) for t in units["spike_times"][7]],
        "lfp_rate": nwb.processing["ecephys"]["LFP"]["ElectricalSeriesLFP"].rate,
    }}
    io.close()
    h5.close()
# What pynwb and hdmf warn about while reading: fields they find deprecated or cannot map.
result["warnings"] = [
    f"{{w.category.__name__}}: {{w.message}}"
    for w in caught
    if "/pynwb/" in w.filename or "/hdmf/" in w.filename
]
if VALIDATE:
    result["validation"] = [str(e) for e in validate(path=NWB_FILE)]
emit(result)
"""


def _check(result: dict[str, Any]) -> None:
    assert result["identifier"] == generate.NWB_IDENTIFIER
    assert result["session_description"] == generate.NWB_SESSION_DESCRIPTION
    assert result["session_start_time"] == generate.NWB_SESSION_START
    assert result["subject"] == ["01", "Mus musculus", "F"]
    assert result["type"] == "ElectricalSeries"
    assert result["shape"] == [generate.ECEPHYS_ROWS, generate.ECEPHYS_CHANNELS]
    assert result["chunks"] == [generate.ECEPHYS_CHUNK_ROWS, generate.ECEPHYS_CHANNELS]
    assert result["conversion"] == generate.ECEPHYS_CONVERSION and result["unit"] == "volts"
    expected = []
    for start, stop in SLICES:
        rows = SampleArchive.nwb_ecephys_expected(start, stop)
        assert rows.dtype == np.int16 and len(rows) == stop - start
        expected.append([list(rows.shape), "int16", hashlib.sha256(rows.tobytes()).hexdigest()])
    assert result["slices"] == expected
    # The sample times of the same rows (the series has timestamps, not a rate).
    expected_times = []
    for start, stop in SLICES:
        t = np.arange(start, stop, dtype=np.float64) / generate.ECEPHYS_RATE
        expected_times.append([[stop - start], "float64", hashlib.sha256(t.tobytes()).hexdigest()])
    assert result["timestamps"] == expected_times
    assert result["rate"] is None and result["timestamps_unit"] == "seconds"
    pairs = zip(expected, expected_times, strict=True)
    assert result["h5py_slices"] == [[rows[2], times[2]] for rows, times in pairs]
    channels = list(range(generate.ECEPHYS_CHANNELS))
    assert result["electrodes"] == ["electrodes", generate.ECEPHYS_CHANNELS, channels]
    assert result["groups"] == [f"shank{s}" for s in range(generate.SHANKS)]
    assert result["devices"] == ["Probe"]
    assert result["location"] == ["CA1"] * 32 + ["DG"] * 32
    assert result["units"] == generate.UNIT_COUNT
    assert result["unit7"] == generate.unit_spike_times(7).tolist()
    assert result["lfp_rate"] == generate.ECEPHYS_RATE / generate.LFP_DECIMATION
    assert result["warnings"] == []


def _snippet(setup: str) -> str:
    """``setup`` (defines ``open_nwb``, ``NWB_FILE`` and ``VALIDATE``), then the reader."""
    return textwrap.dedent(setup) + READ_NWB


def _blob_reads(emulator: RunningEmulator) -> list[dict[str, Any]]:
    return [r for r in emulator.requests() if r["path"].startswith("/dandiarchive/")]


def test_pynwb_reads_the_nwb_file_through_the_mount(
    run_client: ClientRunner, dandi_emulator: Emulator, request: pytest.FixtureRequest
) -> None:
    mount = request.getfixturevalue("make_mount")(dandi_emulator)
    path = mount / f"dandi/{PUBLISHED_DANDISET}/draft/{NWB_PATH}"
    dandi_emulator.clear_requests()
    result = run_client(
        _snippet(
            """
            import h5py
            NWB_FILE = os.environ["NWB_FILE"]
            VALIDATE = True
            def open_nwb():
                return h5py.File(NWB_FILE, "r")
            """
        ),
        NWB_FILE=str(path),
    )
    _check(result)
    assert result["validation"] == []
    # The bytes came from the blob store, fetched by the mount.
    assert _blob_reads(dandi_emulator)


def test_pynwb_streams_the_nwb_file_over_http(
    run_client: ClientRunner, dandi_emulator: Emulator
) -> None:
    dandi_emulator.clear_requests()
    result = run_client(
        _snippet(
            f"""
            import fsspec, h5py
            from dandi.dandiapi import DandiAPIClient
            with DandiAPIClient(api_url=API_URL) as client:
                draft = client.get_dandiset("{PUBLISHED_DANDISET}", "draft")
                url = draft.get_asset_by_path("{NWB_PATH}").get_content_url(
                    follow_redirects=1, strip_query=False
                )
            NWB_FILE = None
            VALIDATE = False
            def open_nwb():
                return h5py.File(fsspec.filesystem("http").open(url, "rb"), "r")
            """
        )
    )
    _check(result)
    assert _blob_reads(dandi_emulator)

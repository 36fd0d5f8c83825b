"""Deterministic generators for the sample archive's bytes.

Everything here is a pure function of fixed constants: running it twice (or on another
machine with the same library versions) gives identical bytes. Array contents come from
numpy's PCG64 *raw* bit stream (stable across numpy versions) and integer arithmetic only,
so tests can recompute any value with the ``*_expected`` functions.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

# ---------------------------------------------------------------- NWB 2.x file (dandiset 000001)

NWB_KEY = 0x4E5742  # "NWB"
NWB_VERSION = "2.7.0"
NWB_IDENTIFIER = "neurofs-sample-sub-01-ses-1"
NWB_SESSION_DESCRIPTION = "Open-field foraging with a 64-channel silicon probe"
NWB_SESSION_START = "2023-11-14T10:30:00+00:00"
NWB_FILE_CREATED = "2023-11-20T09:14:51+00:00"
ECEPHYS_ROWS = 300_000  # 10 s at 30 kHz
ECEPHYS_CHANNELS = 64
ECEPHYS_CHUNK_ROWS = 8192  # 1 MiB chunks of int16 x 64
ECEPHYS_RATE = 30_000.0
ECEPHYS_CONVERSION = 1.95e-7  # volts per count
ECEPHYS_FILTERING = "0.1-7500 Hz hardware bandpass"
SHANKS = 8  # electrode groups of 8 electrodes each
LFP_DECIMATION = 24  # the LFP is every 24th row of the raw data: 1250 Hz
UNIT_COUNT = 300
WAVEFORM_SAMPLES = 82
# /specifications: the cached schemas of NWB core 2.7.0, hdmf-common 1.8.0 and
# hdmf-experimental 0.5.0, as pynwb caches them in every file it writes. They come from the
# nwb-schema and hdmf-common-schema projects (BSD-3-Clause-LBNL: their licences are beside it).
NWB_SPECIFICATIONS = Path(__file__).with_name("nwb_schema") / "specifications.json"
NWB_OBJECT_NAMESPACE = uuid.UUID("6f0f4c36-5a52-4b9f-9d3c-2f1b6f0a7e11")


def _object_id(path: str) -> str:
    """The object id of the HDF5 object at ``path``: UUID4-shaped, like pynwb's, but fixed."""
    digest = uuid.uuid5(NWB_OBJECT_NAMESPACE, path)
    return str(uuid.UUID(bytes=digest.bytes, version=4))


def _raw(key: int, index: int, words: int) -> np.ndarray:
    return np.random.PCG64([key, index]).random_raw(words).astype("<u8")


def ecephys_chunk(chunk: int) -> np.ndarray:
    """Rows ``[chunk * 8192, ...)`` of the ElectricalSeries data, shape ``(rows, 64)`` int16."""
    start = chunk * ECEPHYS_CHUNK_ROWS
    rows = min(ECEPHYS_CHUNK_ROWS, ECEPHYS_ROWS - start)
    words = _raw(NWB_KEY, chunk, ECEPHYS_CHUNK_ROWS * ECEPHYS_CHANNELS // 4)
    noise = words.view("<i2").reshape(ECEPHYS_CHUNK_ROWS, ECEPHYS_CHANNELS)[:rows] >> 4
    t = np.arange(start, start + rows, dtype=np.int64)[:, None]
    ch = np.arange(ECEPHYS_CHANNELS, dtype=np.int64)[None, :]
    saw = (t + 97 * ch) % 600 - 300
    return (noise.astype(np.int64) + saw).astype(np.int16)


def ecephys_expected(start: int, stop: int) -> np.ndarray:
    """``/acquisition/ElectricalSeries/data[start:stop]`` of the sample NWB file."""
    stop = min(stop, ECEPHYS_ROWS)
    if start >= stop:
        return np.zeros((0, ECEPHYS_CHANNELS), dtype=np.int16)
    first, last = start // ECEPHYS_CHUNK_ROWS, (stop - 1) // ECEPHYS_CHUNK_ROWS
    block = np.concatenate([ecephys_chunk(c) for c in range(first, last + 1)])
    offset = first * ECEPHYS_CHUNK_ROWS
    return block[start - offset : stop - offset]


def lfp_expected() -> np.ndarray:
    """``/processing/ecephys/LFP/ElectricalSeriesLFP/data``: every 24th raw row."""
    return ecephys_expected(0, ECEPHYS_ROWS)[::LFP_DECIMATION]


BEHAVIOR_SERIES = (
    ("Position_x", "m", 4000),
    ("Position_y", "m", 4000),
    ("RunningSpeed", "m/s", 4000),
    ("PupilDiameter", "mm", 3000),
    ("LickRate", "Hz", 2000),
    ("RewardVolume", "uL", 1000),
    ("WheelRotation", "radians", 4000),
    ("AirPuff", "a.u.", 1000),
)


def behavior_expected(index: int, length: int) -> np.ndarray:
    """Data of the ``index``-th behavioural TimeSeries (float32, exactly representable)."""
    words = _raw(NWB_KEY + 1, index, length)
    return ((words % 20001).astype(np.int64) - 10000).astype(np.float32) / np.float32(64)


def unit_spike_times(unit: int) -> np.ndarray:
    """Spike times (seconds, sorted) of unit ``unit``: 20 to 199 spikes in the 10 s."""
    count = 20 + (unit * 37) % 180
    samples = np.sort(_raw(NWB_KEY + 3, unit, count) % ECEPHYS_ROWS)
    return samples.astype(np.float64) / ECEPHYS_RATE


def unit_waveform_mean(unit: int) -> np.ndarray:
    """The mean waveform of unit ``unit``: 82 float32 samples, in volts."""
    words = _raw(NWB_KEY + 2, unit, WAVEFORM_SAMPLES) % 2001
    return (words.astype(np.int64) - 1000).astype(np.float32) * np.float32(2.0**-20)


def _index_dtype(largest: int) -> Any:
    """The smallest unsigned type that holds ``largest``, as hdmf picks for ragged indices."""
    for dtype in (np.uint8, np.uint16, np.uint32):
        if largest <= np.iinfo(dtype).max:
            return dtype
    return np.uint64


def write_nwb(path: Path) -> None:
    """Write the sample NWB 2.7.0 file (about 42 MiB) to ``path``, with h5py alone.

    The layout is the one pynwb writes for the same contents: typed groups and datasets
    carry ``namespace``, ``neurodata_type`` and ``object_id`` attributes, tables are
    ``DynamicTable`` groups of ``VectorData`` columns, links and references point where pynwb
    points them, and ``/specifications`` holds the cached schemas. The raw ElectricalSeries is
    chunked (1 MiB chunks, uncompressed), as converters of acquisition data commonly write it;
    the small datasets are contiguous. Object ids are derived from paths and ``track_times`` is
    off, so the bytes do not depend on when the file was written.
    """
    import h5py

    text = h5py.string_dtype("utf-8")
    isodatetime = h5py.string_dtype("ascii")

    def typed(obj: Any, neurodata_type: str, namespace: str = "core", **attrs: Any) -> Any:
        for key, value in attrs.items():
            if isinstance(value, list):
                obj.attrs.create(key, value, dtype=text)
            elif isinstance(value, h5py.Reference):
                obj.attrs.create(key, value, dtype=h5py.ref_dtype)
            else:
                obj.attrs[key] = value
        obj.attrs["namespace"] = namespace
        obj.attrs["neurodata_type"] = neurodata_type
        obj.attrs["object_id"] = _object_id(obj.name)
        return obj

    def dataset(parent: Any, name: str, data: Any, dtype: Any = None, **kwargs: Any) -> Any:
        return parent.create_dataset(name, data=data, dtype=dtype, track_times=False, **kwargs)

    def column(table: Any, name: str, data: Any, description: str, dtype: Any = None) -> Any:
        return typed(
            dataset(table, name, data, dtype), "VectorData", "hdmf-common", description=description
        )

    def dynamic_table(
        group: Any,
        neurodata_type: str,
        namespace: str,
        description: str,
        colnames: list[str],
        rows: int,
    ) -> Any:
        typed(group, neurodata_type, namespace, colnames=colnames, description=description)
        ids = dataset(group, "id", np.arange(rows, dtype=np.int64))
        typed(ids, "ElementIdentifiers", "hdmf-common")
        return group

    def ragged_index(table: Any, target: Any, lengths: list[int]) -> None:
        ends = np.cumsum(lengths, dtype=np.int64)
        index = dataset(
            table,
            f"{target.name.rsplit('/', 1)[1]}_index",
            ends.astype(_index_dtype(int(ends[-1]))),
        )
        typed(
            index,
            "VectorIndex",
            "hdmf-common",
            description=f"Index for VectorData '{target.name.rsplit('/', 1)[1]}'",
            target=target.ref,
        )

    def region(parent: Any, name: str, rows: Any, description: str, table: Any) -> Any:
        d = dataset(parent, name, np.asarray(rows, dtype=np.int64))
        return typed(
            d, "DynamicTableRegion", "hdmf-common", description=description, table=table.ref
        )

    def series(parent: Any, name: str, neurodata_type: str, description: str, **attrs: Any) -> Any:
        grp = parent.create_group(name)
        return typed(grp, neurodata_type, comments="no comments", description=description, **attrs)

    def series_data(grp: Any, data: Any, unit: str, conversion: float = 1.0, **kwargs: Any) -> Any:
        d = dataset(grp, "data", data, **kwargs)
        d.attrs["conversion"] = conversion
        d.attrs["offset"] = 0.0
        d.attrs["resolution"] = -1.0
        d.attrs["unit"] = unit
        return d

    def timestamps(grp: Any, values: np.ndarray, **kwargs: Any) -> None:
        d = dataset(grp, "timestamps", values, **kwargs)
        d.attrs["interval"] = 1
        d.attrs["unit"] = "seconds"

    def starting_time(grp: Any, rate: float) -> None:
        d = dataset(grp, "starting_time", 0.0, dtype=np.float64)
        d.attrs["rate"] = rate
        d.attrs["unit"] = "seconds"

    with h5py.File(path, "w", libver=("earliest", "v110")) as f:
        typed(f, "NWBFile", nwb_version=NWB_VERSION)
        dataset(f, "file_create_date", [NWB_FILE_CREATED], isodatetime)
        dataset(f, "identifier", NWB_IDENTIFIER, text)
        dataset(f, "session_description", NWB_SESSION_DESCRIPTION, text)
        dataset(f, "session_start_time", NWB_SESSION_START, isodatetime)
        dataset(f, "timestamps_reference_time", NWB_SESSION_START, isodatetime)

        general = f.create_group("general")
        dataset(general, "experimenter", ["Doe, Jane"], text)
        dataset(
            general,
            "experiment_description",
            "Hippocampal ensembles recorded with a silicon probe during open-field foraging",
            text,
        )
        dataset(general, "institution", "Neurofs Institute of Emulated Neuroscience", text)
        dataset(general, "lab", "Sample Lab", text)
        dataset(general, "session_id", "ses-1", text)
        dataset(general, "keywords", ["hippocampus", "CA1", "dentate gyrus", "foraging"], text)
        dataset(general, "related_publications", ["doi:10.1016/j.neuron.2000.00.000"], text)
        subject = typed(general.create_group("subject"), "Subject")
        for key, value in (
            ("subject_id", "01"),
            ("species", "Mus musculus"),
            ("strain", "C57BL/6J"),
            ("sex", "F"),
            ("age", "P90D"),
            ("description", "implanted with the probe at P60"),
        ):
            dataset(subject, key, value, text)
        subject["age"].attrs["reference"] = "birth"

        probe = general.create_group("devices").create_group("Probe")
        typed(
            probe,
            "Device",
            description=f"{ECEPHYS_CHANNELS}-channel silicon probe with {SHANKS} shanks",
        )
        ecephys = general.create_group("extracellular_ephys")
        per_shank = ECEPHYS_CHANNELS // SHANKS
        shanks = []
        for shank in range(SHANKS):
            grp = ecephys.create_group(f"shank{shank}")
            first = shank * per_shank
            typed(
                grp,
                "ElectrodeGroup",
                description=f"shank {shank}: electrodes {first}-{first + per_shank - 1}",
                location="CA1" if shank < SHANKS // 2 else "DG",
            )
            grp["device"] = h5py.SoftLink(probe.name)
            shanks.append(grp)
        idx = np.arange(ECEPHYS_CHANNELS)
        electrodes = dynamic_table(
            ecephys.create_group("electrodes"),
            "DynamicTable",
            "hdmf-common",
            "metadata about extracellular electrodes",
            [
                "location",
                "group",
                "group_name",
                "x",
                "y",
                "z",
                "imp",
                "filtering",
                "rel_x",
                "rel_y",
            ],
            ECEPHYS_CHANNELS,
        )
        column(
            electrodes,
            "location",
            [shanks[i // per_shank].attrs["location"] for i in idx],
            "the location of channel within the subject e.g. brain region",
            text,
        )
        column(
            electrodes,
            "group",
            [shanks[i // per_shank].ref for i in idx],
            "a reference to the ElectrodeGroup this electrode is a part of",
            h5py.ref_dtype,
        )
        column(
            electrodes,
            "group_name",
            [f"shank{i // per_shank}" for i in idx],
            "the name of the ElectrodeGroup this electrode is a part of",
            text,
        )
        rel_x = (idx % 2) * 16.0
        rel_y = (idx % per_shank) * 20.0
        for name, values, description in (
            (
                "x",
                2000.0 + (idx // per_shank) * 200.0 + rel_x,
                "the x coordinate of the position (+x is posterior)",
            ),
            ("y", 1500.0 + rel_y, "the y coordinate of the position (+y is inferior)"),
            (
                "z",
                np.full(ECEPHYS_CHANNELS, -1800.0),
                "the z coordinate of the position (+z is right)",
            ),
            ("imp", 1.5e5 + (idx % 7) * 1e4, "the impedance of the electrode, in ohms"),
        ):
            column(electrodes, name, values.astype(np.float64), description)
        column(
            electrodes,
            "filtering",
            [ECEPHYS_FILTERING] * ECEPHYS_CHANNELS,
            "description of hardware filtering, including the filter name and frequency cutoffs",
            text,
        )
        column(electrodes, "rel_x", rel_x, "the x coordinate within the electrode group")
        column(electrodes, "rel_y", rel_y, "the y coordinate within the electrode group")

        acquisition = f.create_group("acquisition")
        es = series(
            acquisition,
            "ElectricalSeries",
            "ElectricalSeries",
            "raw broadband voltage from the probe",
            filtering=ECEPHYS_FILTERING,
        )
        data = series_data(
            es,
            None,
            "volts",
            ECEPHYS_CONVERSION,
            shape=(ECEPHYS_ROWS, ECEPHYS_CHANNELS),
            dtype=np.int16,
            chunks=(ECEPHYS_CHUNK_ROWS, ECEPHYS_CHANNELS),
        )
        for chunk in range((ECEPHYS_ROWS + ECEPHYS_CHUNK_ROWS - 1) // ECEPHYS_CHUNK_ROWS):
            start = chunk * ECEPHYS_CHUNK_ROWS
            block = ecephys_chunk(chunk)
            data[start : start + len(block)] = block
        region(es, "electrodes", idx, "all electrodes", electrodes)
        timestamps(es, np.arange(ECEPHYS_ROWS, dtype=np.float64) / ECEPHYS_RATE, chunks=(65536,))

        for i, (name, unit, length) in enumerate(BEHAVIOR_SERIES):
            ts = series(acquisition, name, "TimeSeries", f"{name} sampled from the tracking system")
            series_data(ts, behavior_expected(i, length), unit)
            timestamps(ts, np.arange(length, dtype=np.float64) * (10.0 / length))

        f.create_group("analysis")
        stimulus = f.create_group("stimulus")
        stimulus.create_group("presentation")
        stimulus.create_group("templates")

        processing = f.create_group("processing")
        ecephys_module = typed(
            processing.create_group("ecephys"),
            "ProcessingModule",
            description="LFP and spike sorting",
        )
        lfp = typed(ecephys_module.create_group("LFP"), "LFP")
        lfp_series = series(
            lfp,
            "ElectricalSeriesLFP",
            "ElectricalSeries",
            f"LFP: the raw data decimated to {ECEPHYS_RATE / LFP_DECIMATION:g} Hz",
            filtering="0.1-300 Hz software lowpass",
        )
        series_data(lfp_series, lfp_expected(), "volts", ECEPHYS_CONVERSION)
        region(lfp_series, "electrodes", idx, "all electrodes", electrodes)
        starting_time(lfp_series, ECEPHYS_RATE / LFP_DECIMATION)

        behavior_module = typed(
            processing.create_group("behavior"),
            "ProcessingModule",
            description="processed behavioural data",
        )
        position = typed(behavior_module.create_group("Position"), "Position")
        spatial = series(position, "position", "SpatialSeries", "position in the arena")
        xy = np.stack([behavior_expected(0, 4000), behavior_expected(1, 4000)], axis=1)
        series_data(spatial, xy, "meters")
        dataset(spatial, "reference_frame", "(0, 0) is the south-west corner of the arena", text)
        starting_time(spatial, 400.0)

        trials = dynamic_table(
            f.create_group("intervals").create_group("trials"),
            "TimeIntervals",
            "core",
            "experimental trials",
            ["start_time", "stop_time", "outcome"],
            200,
        )
        onsets = np.arange(200, dtype=np.float64) * 0.05
        column(trials, "start_time", onsets, "Start time of epoch, in seconds")
        column(trials, "stop_time", onsets + 0.04, "Stop time of epoch, in seconds")
        column(
            trials,
            "outcome",
            [("rewarded", "unrewarded")[t % 2] for t in range(200)],
            "trial outcome",
            text,
        )

        units = dynamic_table(
            f.create_group("units"),
            "Units",
            "core",
            "Autogenerated by NWBFile",
            ["spike_times", "electrodes", "waveform_mean", "quality"],
            UNIT_COUNT,
        )
        trains = [unit_spike_times(u) for u in range(UNIT_COUNT)]
        spikes = column(
            units, "spike_times", np.concatenate(trains), "the spike times for each unit"
        )
        ragged_index(units, spikes, [len(t) for t in trains])
        peak = region(
            units,
            "electrodes",
            np.arange(UNIT_COUNT) % ECEPHYS_CHANNELS,
            "the electrodes that each spike unit came from",
            electrodes,
        )
        ragged_index(units, peak, [1] * UNIT_COUNT)
        waveforms = column(
            units,
            "waveform_mean",
            np.stack([unit_waveform_mean(u) for u in range(UNIT_COUNT)]),
            "the spike waveform mean for each spike unit",
        )
        waveforms.attrs["unit"] = "volts"
        column(
            units,
            "quality",
            [("good", "mua", "noise")[u % 3] for u in range(UNIT_COUNT)],
            "curation label",
            text,
        )

        specifications = f.create_group("specifications")
        cached = json.loads(NWB_SPECIFICATIONS.read_text(encoding="utf-8"))
        for namespace, versions in cached.items():
            for version, sources in versions.items():
                grp = specifications.create_group(f"{namespace}/{version}")
                for source, spec in sources.items():
                    dataset(grp, source, json.dumps(spec, separators=(",", ":")), text)
        f.attrs.create(".specloc", specifications.ref, dtype=h5py.ref_dtype)


# ---------------------------------------------------------------- OME-Zarr (dandisets 000002, 3)


def ome_zarr_level0(shape: tuple[int, int, int], modulus: int) -> np.ndarray:
    z, y, x = np.indices(shape, dtype=np.int64)
    return ((z * 1000 + y * 3 + x * 5 + (x * y) % 97) % modulus).astype(
        np.uint16 if modulus > 256 else np.uint8
    )


def write_ome_zarr(
    root: Path, shape: tuple[int, int, int], chunks: tuple[int, int, int], levels: int, modulus: int
) -> None:
    """Write an OME-Zarr 0.4 multiscale image (zarr v2 format, Blosc/lz4) with zarr-python.

    Level ``n`` is level 0 subsampled by ``2**n`` on every axis (see :func:`ome_zarr_expected`).
    """
    import numcodecs
    import zarr

    group = zarr.open_group(str(root), mode="w", zarr_format=2)
    base = ome_zarr_level0(shape, modulus)
    datasets = []
    for level in range(levels):
        step = 2**level
        data = base[::step, ::step, ::step]
        array = group.create_array(
            str(level),
            shape=data.shape,
            chunks=tuple(min(c, s) for c, s in zip(chunks, data.shape, strict=True)),
            dtype=data.dtype,
            compressors=numcodecs.Blosc(cname="lz4", clevel=5, shuffle=numcodecs.Blosc.SHUFFLE),
            fill_value=0,
        )
        array[...] = data
        datasets.append(
            {
                "path": str(level),
                "coordinateTransformations": [
                    {"type": "scale", "scale": [2.0 * step, 0.5 * step, 0.5 * step]}
                ],
            }
        )
    multiscales: Any = [
        {
            "version": "0.4",
            "name": root.name,
            "axes": [
                {"name": "z", "type": "space", "unit": "micrometer"},
                {"name": "y", "type": "space", "unit": "micrometer"},
                {"name": "x", "type": "space", "unit": "micrometer"},
            ],
            "datasets": datasets,
            "type": "subsample",
        }
    ]
    group.attrs["multiscales"] = multiscales


def ome_zarr_expected(shape: tuple[int, int, int], modulus: int, level: int) -> np.ndarray:
    step = 2**level
    return ome_zarr_level0(shape, modulus)[::step, ::step, ::step]


def ensure_dir_tree(target: Path, writer: Callable[[Path], None]) -> None:
    """Create ``target`` with ``writer`` once, atomically (temp dir + rename).

    Concurrent first runs may both generate; the bytes are identical, the first rename wins.
    """
    if target.is_dir():
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        writer(tmp / "out")
        try:
            os.rename(tmp / "out", target)
        except OSError:
            if not target.is_dir():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def ensure_file(target: Path, writer: Callable[[Path], None]) -> None:
    """Create the file ``target`` with ``writer`` once, atomically (temp file + rename)."""
    if target.is_file():
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        writer(tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


# ---------------------------------------------------------------- small text blobs

TEXT_KEY = 0x545854  # "TXT"


def text_blob(kind: str, key: int, **fields: Any) -> bytes:
    """A small deterministic text file: ``kind`` is ``json``, ``tsv`` or ``txt``.

    ``key`` picks the pseudo-random stream; sizes land between ~150 bytes and ~5 KiB.
    """
    words = _raw(TEXT_KEY, key, 600)
    if kind == "json":
        n = 8 + int(words[0] % 400)
        doc = dict(fields)
        doc["values"] = [int(w % 100_000) for w in words[1 : 1 + n]]
        return (json.dumps(doc, indent=2) + "\n").encode()
    if kind == "tsv":
        n = 4 + int(words[0] % 150)
        lines = ["onset\tduration\ttrial_type\tvalue"]
        for i in range(n):
            w = int(words[1 + i])
            lines.append(
                f"{i * 0.5:.3f}\t{(w % 400) / 1000:.3f}\t"
                f"{('go', 'nogo', 'probe')[w % 3]}\t{(w >> 8) % 1000}"
            )
        return ("\n".join(lines) + "\n").encode()
    if kind == "txt":
        n = 4 + int(words[0] % 60)
        vocab = (
            "spike",
            "probe",
            "session",
            "mouse",
            "trial",
            "reward",
            "lick",
            "theta",
            "gamma",
            "unit",
            "shank",
            "cortex",
            "hippocampus",
            "stimulus",
            "baseline",
        )
        header = str(fields.get("title", "notes"))
        lines = [header, "=" * len(header), ""]
        for i in range(n):
            w = int(words[1 + i])
            lines.append(" ".join(vocab[(w >> (4 * j)) % len(vocab)] for j in range(8)) + ".")
        return ("\n".join(lines) + "\n").encode()
    raise ValueError(kind)

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

# ---------------------------------------------------------------- NWB-like HDF5 (dandiset 000001)

NWB_KEY = 0x4E5742  # "NWB"
ECEPHYS_ROWS = 300_000  # 10 s at 30 kHz
ECEPHYS_CHANNELS = 64
ECEPHYS_CHUNK_ROWS = 8192  # 1 MiB chunks of int16 x 64
ECEPHYS_RATE = 30_000.0
UNIT_COUNT = 300
NWB_OBJECT_NAMESPACE = uuid.UUID("6f0f4c36-5a52-4b9f-9d3c-2f1b6f0a7e11")


def _object_id(name: str) -> str:
    return str(uuid.uuid5(NWB_OBJECT_NAMESPACE, name))


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


def write_nwb(path: Path) -> None:
    """Write the NWB-like HDF5 sample file (about 41 MB) to ``path``.

    Layout follows NWB 2.x (``/acquisition/<series>/data`` + ``timestamps``, ``/general``,
    ``/processing``, ``/specifications``...), with hundreds of small groups carrying
    attributes so HDF5 metadata reads are as scattered as in real files. ``track_times`` is
    off everywhere so the bytes do not depend on when the file was written.
    """
    import h5py

    vlen = h5py.string_dtype()

    def scalar(group: Any, name: str, value: str) -> None:
        group.create_dataset(name, data=value, dtype=vlen, track_times=False)

    def typed(obj: Any, neurodata_type: str, name: str, namespace: str = "core") -> None:
        obj.attrs["namespace"] = namespace
        obj.attrs["neurodata_type"] = neurodata_type
        obj.attrs["object_id"] = _object_id(name)

    with h5py.File(path, "w", libver=("earliest", "v110")) as f:
        typed(f, "NWBFile", "root")
        f.attrs["nwb_version"] = "2.7.0"
        f.create_dataset(
            "file_create_date",
            data=["2023-11-20T09:14:51.000000+00:00"],
            dtype=vlen,
            track_times=False,
        )
        scalar(f, "identifier", "neurofs-sample-sub-01-ses-1")
        scalar(f, "session_description", "Open-field foraging with a 64-channel silicon probe")
        scalar(f, "session_start_time", "2023-11-14T10:30:00.000000+00:00")
        scalar(f, "timestamps_reference_time", "2023-11-14T10:30:00.000000+00:00")

        general = f.create_group("general")
        scalar(general, "experimenter", "Doe, Jane")
        scalar(general, "institution", "Neurofs Institute of Emulated Neuroscience")
        scalar(general, "lab", "Sample Lab")
        subject = general.create_group("subject")
        typed(subject, "Subject", "subject")
        for key, value in (
            ("subject_id", "01"),
            ("species", "Mus musculus"),
            ("sex", "F"),
            ("age", "P90D"),
            ("description", "C57BL/6J, implanted at P60"),
        ):
            scalar(subject, key, value)
        devices = general.create_group("devices")
        for i in range(4):
            dev = devices.create_group(f"Probe{i}")
            typed(dev, "Device", f"Probe{i}")
            dev.attrs["description"] = f"16-channel shank {i} of a 64-channel probe"
            dev.attrs["manufacturer"] = "Emulated Probes Inc."
        ecephys_general = general.create_group("extracellular_ephys")
        for shank in range(8):
            grp = ecephys_general.create_group(f"shank{shank}")
            typed(grp, "ElectrodeGroup", f"shank{shank}")
            grp.attrs["description"] = f"electrodes {shank * 8}-{shank * 8 + 7}"
            grp.attrs["location"] = "CA1" if shank < 4 else "DG"
            grp["device"] = h5py.SoftLink(f"/general/devices/Probe{shank // 2}")
        electrodes = ecephys_general.create_group("electrodes")
        typed(electrodes, "DynamicTable", "electrodes", namespace="hdmf-common")
        electrodes.attrs["colnames"] = ["x", "y", "z", "location", "group_name", "filtering"]
        electrodes.attrs["description"] = "metadata about extracellular electrodes"
        idx = np.arange(ECEPHYS_CHANNELS)
        electrodes.create_dataset("id", data=idx.astype(np.int32), track_times=False)
        for col, values in (
            ("x", (idx % 8 * 20).astype(np.float64)),
            ("y", (idx // 8 * 200).astype(np.float64)),
            ("z", np.zeros(ECEPHYS_CHANNELS)),
        ):
            electrodes.create_dataset(col, data=values, track_times=False)
        electrodes.create_dataset(
            "location",
            data=["CA1" if i < 32 else "DG" for i in idx],
            dtype=vlen,
            track_times=False,
        )
        electrodes.create_dataset(
            "group_name", data=[f"shank{i // 8}" for i in idx], dtype=vlen, track_times=False
        )
        electrodes.create_dataset(
            "filtering", data=["300-6000 Hz bandpass"] * 64, dtype=vlen, track_times=False
        )

        acquisition = f.create_group("acquisition")
        es = acquisition.create_group("ElectricalSeries")
        typed(es, "ElectricalSeries", "ElectricalSeries")
        es.attrs["description"] = "raw broadband voltage"
        es.attrs["comments"] = "no comments"
        data = es.create_dataset(
            "data",
            shape=(ECEPHYS_ROWS, ECEPHYS_CHANNELS),
            dtype=np.int16,
            chunks=(ECEPHYS_CHUNK_ROWS, ECEPHYS_CHANNELS),
            track_times=False,
        )
        data.attrs["conversion"] = 1.95e-7
        data.attrs["offset"] = 0.0
        data.attrs["resolution"] = -1.0
        data.attrs["unit"] = "volts"
        for chunk in range((ECEPHYS_ROWS + ECEPHYS_CHUNK_ROWS - 1) // ECEPHYS_CHUNK_ROWS):
            start = chunk * ECEPHYS_CHUNK_ROWS
            block = ecephys_chunk(chunk)
            data[start : start + len(block)] = block
        ts = es.create_dataset(
            "timestamps",
            data=np.arange(ECEPHYS_ROWS, dtype=np.float64) / ECEPHYS_RATE,
            chunks=(65536,),
            track_times=False,
        )
        ts.attrs["interval"] = 1
        ts.attrs["unit"] = "seconds"
        region = es.create_dataset("electrodes", data=idx.astype(np.int32), track_times=False)
        region.attrs["description"] = "all electrodes"
        region.attrs["namespace"] = "hdmf-common"
        region.attrs["neurodata_type"] = "DynamicTableRegion"
        region.attrs["object_id"] = _object_id("electrodes-region")
        region.attrs["table"] = electrodes.ref

        for i, (name, unit, length) in enumerate(BEHAVIOR_SERIES):
            series = acquisition.create_group(name)
            typed(series, "TimeSeries", name)
            series.attrs["description"] = f"{name} sampled from the tracking system"
            series.attrs["comments"] = "no comments"
            d = series.create_dataset("data", data=behavior_expected(i, length), track_times=False)
            d.attrs["conversion"] = 1.0
            d.attrs["offset"] = 0.0
            d.attrs["resolution"] = -1.0
            d.attrs["unit"] = unit
            t = series.create_dataset(
                "timestamps",
                data=np.arange(length, dtype=np.float64) * (10.0 / length),
                track_times=False,
            )
            t.attrs["interval"] = 1
            t.attrs["unit"] = "seconds"

        f.create_group("analysis")
        stimulus = f.create_group("stimulus")
        stimulus.create_group("presentation")
        stimulus.create_group("templates")

        trials = f.create_group("intervals").create_group("trials")
        typed(trials, "TimeIntervals", "trials")
        trials.attrs["colnames"] = ["start_time", "stop_time"]
        trials.attrs["description"] = "experimental trials"
        trials.create_dataset("id", data=np.arange(200, dtype=np.int32), track_times=False)
        trials.create_dataset(
            "start_time", data=np.arange(200, dtype=np.float64) * 0.05, track_times=False
        )
        trials.create_dataset(
            "stop_time", data=np.arange(200, dtype=np.float64) * 0.05 + 0.04, track_times=False
        )

        processing = f.create_group("processing")
        ecephys_mod = processing.create_group("ecephys")
        typed(ecephys_mod, "ProcessingModule", "ecephys-module")
        ecephys_mod.attrs["description"] = "spike sorting results"
        waveforms = ecephys_mod.create_group("waveforms")
        for unit_index in range(UNIT_COUNT):
            grp = waveforms.create_group(f"unit_{unit_index:03d}")
            typed(grp, "Waveform", f"unit-{unit_index}", namespace="neurofs-sample")
            grp.attrs["peak_channel"] = unit_index % ECEPHYS_CHANNELS
            grp.attrs["quality"] = ("good", "mua", "noise")[unit_index % 3]
            grp.attrs["firing_rate_hz"] = float(1 + unit_index % 40) / 4.0
            w = _raw(NWB_KEY + 2, unit_index, 82) % 2001
            grp.create_dataset(
                "mean_waveform",
                data=(w.astype(np.int64) - 1000).astype(np.float32) / np.float32(8),
                track_times=False,
            )
        behavior_mod = processing.create_group("behavior")
        typed(behavior_mod, "ProcessingModule", "behavior-module")
        behavior_mod.attrs["description"] = "processed behavioural events"
        for epoch in range(40):
            grp = behavior_mod.create_group(f"epoch_{epoch:02d}")
            grp.attrs["start_time"] = epoch * 0.25
            grp.attrs["stop_time"] = epoch * 0.25 + 0.25
            grp.attrs["label"] = ("explore", "groom", "rest", "run")[epoch % 4]

        specs = f.create_group("specifications")
        for namespace, version, names in (
            ("core", "2.7.0", ("namespace", "nwb.base", "nwb.ecephys", "nwb.behavior", "nwb.file")),
            ("hdmf-common", "1.8.0", ("namespace", "table", "base", "sparse")),
        ):
            grp = specs.create_group(f"{namespace}/{version}")
            for name in names:
                spec = {"name": name, "namespace": namespace, "version": version}
                scalar(grp, name, json.dumps(spec, sort_keys=True))


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

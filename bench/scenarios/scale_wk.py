"""Scenario 11: the 40,000 × 40,000 × 10,000 WEBKNOSSOS layer of the emulator's scale sample.

- A 256³ region deep inside the layer (mag 1, top-left (30720, 20480, 5120), chunk-aligned),
  cold: zarr-python on the mount's ``color.ome.zarr/1`` against the official client's
  ``RemoteDataset.open(dataset_id=…).get_layer("color").get_mag("1").read(…)``.
- The first MiB of the 3.9 GB ``color/16.raw``, cold: ``head -c 1MiB`` on the mount against
  the client reading the same voxels (rows 0–419 of plane 0 at mag 16) as one box.

The emulator runs ``--sample large --api-version 14`` (the client speaks v13 and newer) with
the bench's latency and bandwidth; the data is computed on request, never stored.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path
from statistics import median
from typing import Any

from bench.context import Ctx
from bench.harness import PY_MAIN, PY_WK, Emu, cpu_seconds, drop_caches, fmt_s, log, run_snippet
from bench.report import Result
from neurofs_emulators.launch import start_emulator
from neurofs_emulators.webknossos.sample import (
    API_VERSIONS,
    DATASET_LARGE,
    ORGANIZATION,
    OWNER_TOKEN,
)

TOPLEFT = (30_720, 20_480, 5_120)  # x, y, z (mag 1): chunk (960, 640, 160)
SIDE = 256
ZYX = [[TOPLEFT[i], TOPLEFT[i] + SIDE] for i in (2, 1, 0)]
LAYER = f"webknossos/datasets/{ORGANIZATION}/large_volume/color"
MiB = 1 << 20
# The first MiB of 16.raw: rows 0..419 (and 48 voxels of row 420) of plane 0, at mag 16.
RAW_ROWS = MiB // 2500 + 1


def _large_emulator(ctx: Ctx) -> Emu:
    key = "webknossos-large"
    if key not in ctx.bench.emulators:
        args = ["--sample", "large", "--api-version", str(max(API_VERSIONS))]
        args += ["--latency-ms", str(ctx.latency_ms)]
        if ctx.bandwidth_mbps:
            args += ["--bandwidth-mbps", str(ctx.bandwidth_mbps)]
        log("starting the WEBKNOSSOS emulator with its scale sample")
        ctx.bench.emulators[key] = Emu(start_emulator("webknossos", args))
    return ctx.bench.emulators[key]


def _client(
    emu: Emu, scratch: Path, mag: str, topleft: tuple[int, int, int], size: tuple[int, int, int]
) -> dict[str, Any]:
    """The official client reads a box (mag-1 coordinates) of the big layer at ``mag``."""
    drop_caches()
    out = run_snippet(
        PY_WK,
        "wk_read",
        {
            "dataset_id": DATASET_LARGE,
            "layer": "color",
            "mag": mag,
            "topleft": topleft,
            "size": size,
            "repeat": 1,
            "log_url": f"{emu.running.origin}/__emulator__/requests",
        },
        env={
            "WK_URL": emu.running.urls[0].rstrip("/"),
            "WK_TOKEN": OWNER_TOKEN,
            "WEBKNOSSOS_SKIP_VERSION_CHECK": "True",
        },
        cwd=scratch,
    )
    run: dict[str, Any] = out["runs"][0]
    return run


def scale_wk(ctx: Ctx) -> list[Result]:
    emu = _large_emulator(ctx)
    region = Result(
        key="11 region",
        title=f"WK 40k×40k×10k layer, {SIDE}³ region at mag 1, cold",
        competitor="webknossos",
        target_ratio=1.0,
        target_text="no slower than the client",
    )
    raw = Result(
        key="11 raw",
        title="WK 40k×40k×10k layer, head -c 1MiB of color/16.raw (3.9 GB), cold",
        competitor="webknossos",
        target_ratio=None,
        target_text="5 boxes per MiB (≤ 512 a side), about the bytes read",
    )
    counts: dict[str, list[int]] = {"zarr": [], "client": [], "head": [], "client_raw": []}
    # CPU-seconds of the region read: the mount's daemon, and the emulator for each side.
    cpu: dict[str, list[float]] = {"daemon": [], "emulator (mount)": [], "emulator (client)": []}
    chunks = (SIDE // 32) ** 3
    sums: set[int] = set()
    scratch = ctx.bench.new_dir("s11-client")
    for rep in range(ctx.reps):
        r = f"rep {rep + 1}/{ctx.reps}"
        m = ctx.wk_mount(emu, "s11-wk")
        m.start()
        try:
            drop_caches()
            emu.clear()
            array = str(m / f"{LAYER}.ome.zarr/1")
            d0, e0 = cpu_seconds(m.pid), cpu_seconds(emu.pid)
            out = run_snippet(PY_MAIN, "zarr_read", {"path": array, "zyx": ZYX})
            cpu["daemon"].append(cpu_seconds(m.pid) - d0)
            cpu["emulator (mount)"].append(cpu_seconds(emu.pid) - e0)
            c = emu.count()
            region.neurofs_s.append(out["seconds"])
            counts["zarr"].append(c["data_requests"])
            sums.add(out["sum"])
            log(
                f"[11] {r} zarr on the mount: {fmt_s(out['seconds'])}, {c['data_requests']}"
                f" datastore requests for {chunks} chunks; CPU-seconds: daemon"
                f" {cpu['daemon'][-1]:.2f}, emulator {cpu['emulator (mount)'][-1]:.2f}"
            )
            drop_caches()
            emu.clear()
            t0 = time.perf_counter()
            argv = ["head", "-c", str(MiB), str(m / f"{LAYER}/16.raw")]
            head = subprocess.run(argv, capture_output=True, check=True)
            elapsed = time.perf_counter() - t0
            assert len(head.stdout) == MiB
            c = emu.count()
            raw.neurofs_s.append(elapsed)
            counts["head"].append(c["data_requests"])
            fetched = m.stats()["bytes_fetched"]
            log(
                f"[11] {r} head -c 1MiB 16.raw: {fmt_s(elapsed)}, {c['data_requests']} datastore"
                f" requests; the mount fetched {fetched / MiB:.1f} MiB in all so far"
            )
        finally:
            m.stop()
            shutil.rmtree(m.cache_dir, ignore_errors=True)
        e0 = cpu_seconds(emu.pid)
        run = _client(emu, scratch, "1", TOPLEFT, (SIDE, SIDE, SIDE))
        cpu["emulator (client)"].append(cpu_seconds(emu.pid) - e0)
        region.competitor_s.append(run["seconds"])
        counts["client"].append(run["data_requests"])
        sums.add(run["sum"])
        log(
            f"[11] {r} webknossos client: {fmt_s(run['seconds'])},"
            f" {run['data_requests']} datastore requests"
        )
        run = _client(emu, scratch, "16", (0, 0, 0), (2500 * 16, RAW_ROWS * 16, 16))
        raw.competitor_s.append(run["seconds"])
        counts["client_raw"].append(run["data_requests"])
        log(
            f"[11] {r} webknossos client, the same MiB as a box: {fmt_s(run['seconds'])},"
            f" {run['data_requests']} datastore requests"
        )
    region.title += f" [{max(counts['zarr'])} vs {max(counts['client'])} req]"
    raw.title += f" [{max(counts['head'])} vs {max(counts['client_raw'])} req]"
    note = (
        f"{ctx.network}; region {SIDE}³ voxels at {TOPLEFT} (x, y, z, mag 1) = {chunks} chunks;"
        f" datastore requests (max) zarr on the mount {max(counts['zarr'])}, client"
        f" {max(counts['client'])}; CPU-seconds (median):"
        + ",".join(f" {k} {median(v):.2f}" for k, v in cpu.items())
    )
    if len(sums) != 1:
        note += f". WARNING: the sides read different voxel sums {sorted(sums)}"
    region.notes.append(note)
    raw.notes.append(
        f"{ctx.network}; head -c 1MiB asks the kernel, which reads ahead up to 4 MiB of a file"
        " read from its start; each MiB is one band of rows from the datastore's raw route,"
        " five boxes across (the datastore serves at most 512 voxels a side)."
        f" Requests (max): head {max(counts['head'])}, client {max(counts['client_raw'])}"
    )
    region.extra.update(requests=counts, topleft=TOPLEFT, side=SIDE, cpu=cpu)
    raw.extra.update(requests=counts)
    return [region, raw]

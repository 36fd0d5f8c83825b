"""Scenario 8: the 1,000,003-key DANDI zarr (``--sample large``), zarr-python through the mount
vs zarr-python over s3fs straight from the object store.

Both sides open the array ``0`` of ``big.ome.zarr`` in dandiset 000200 (800³ uint8 in a
100×100×100 grid of 8³ chunks) and read the region of one chunk deep inside it
(``[400:408, 600:608, 96:104]``, z y x). The competitor is what a user does without neurofs:
``s3fs.S3FileSystem(anon=True, client_kwargs={"endpoint_url": …})`` + ``zarr.open_array`` on
``dandiarchive/zarr/<zarr id>/0``, in ``.venv-bench``; its warm run is the same open + read
again in the same process with a new filesystem object (s3fs keeps nothing across processes).
neurofs's cold run is a fresh mount with an empty cache; its warm run a new process on a
remounted mount with the cold run's cache, page cache dropped. Requests are counted in the
emulator's log (API + object store) for both.
"""

from __future__ import annotations

import shutil

from bench.context import Ctx
from bench.harness import PY_BENCH, PY_MAIN, Emu, drop_caches, fmt_s, log, run_snippet
from bench.report import Result
from neurofs_emulators.dandi.sample import SCALE_ZARR_DANDISET, SCALE_ZARR_PATH
from neurofs_emulators.launch import start_emulator

ZYX = [[400, 408], [600, 608], [96, 104]]
EMULATOR_KEY = "dandi --sample large"


def _emulator(ctx: Ctx) -> Emu:
    """The DANDI emulator with the scale sample, started once per bench run (the bench stops
    it with the others)."""
    if EMULATOR_KEY not in ctx.bench.emulators:
        log("starting the DANDI emulator with --sample large")
        args = ["--sample", "large", "--latency-ms", str(ctx.latency_ms)]
        if ctx.bandwidth_mbps:
            args += ["--bandwidth-mbps", str(ctx.bandwidth_mbps)]
        ctx.bench.emulators[EMULATOR_KEY] = Emu(start_emulator("dandi", args))
    return ctx.bench.emulators[EMULATOR_KEY]


def _zarr_id(emu: Emu) -> str:
    import httpx

    with httpx.Client(base_url=emu.api_url + "/") as c:
        found = c.get("zarr/", params={"dandiset": SCALE_ZARR_DANDISET}).json()["results"]
    return str(found[0]["zarr_id"])


def scale_zarr(ctx: Ctx) -> list[Result]:
    emu = _emulator(ctx)
    zarr_id = _zarr_id(emu)
    cold = Result(
        key="8 cold",
        title="DANDI zarr of 1,000,003 keys: zarr-python open + 1 chunk's region, cold",
        competitor="zarr over s3fs",
        target_text="< 1 s at 20 ms/request",
    )
    warm = Result(
        key="8 warm",
        title="DANDI zarr of 1,000,003 keys: zarr-python open + 1 chunk's region, warm",
        competitor="zarr over s3fs",
    )
    log(f"[8] zarr {zarr_id}: zarr-python on the mount vs zarr-python over s3fs ({ctx.network})")
    array = f"dandi/{SCALE_ZARR_DANDISET}/draft/{SCALE_ZARR_PATH}/0"
    counts: dict[str, list[int]] = {"nc": [], "nw": [], "sc": [], "sw": []}
    sums: set[int] = set()
    log_url = f"{emu.running.origin}/__emulator__/requests"

    def mount_side(path: str, label: str, res: Result, key: str) -> None:
        drop_caches()
        emu.clear()
        out = run_snippet(PY_MAIN, "zarr_read", {"path": path, "zyx": ZYX})
        n = emu.count()["requests"]
        res.neurofs_s.append(out["seconds"])
        counts[key].append(n)
        sums.add(out["sum"])
        log(f"[8] {label} neurofs: {fmt_s(out['seconds'])}, shape {out['shape']}, {n} requests")

    for rep in range(ctx.reps):
        r = f"rep {rep + 1}/{ctx.reps}"
        m = ctx.dandi_mount(emu, "s8-zarr")
        m.start()
        try:
            mount_side(str(m / array), f"{r} cold", cold, "nc")
        finally:
            m.stop()
        emu.clear()
        out = run_snippet(
            PY_BENCH,
            "s3_zarr_read",
            {
                "endpoint_url": emu.running.urls[1],
                "path": f"dandiarchive/zarr/{zarr_id}/0",
                "zyx": ZYX,
                "repeat": 2,
                "log_url": log_url,
            },
        )
        for res, run, key, label in (
            (cold, out["runs"][0], "sc", "cold"),
            (warm, out["runs"][1], "sw", "warm"),
        ):
            res.competitor_s.append(run["seconds"])
            counts[key].append(run["requests"])
            sums.add(run["sum"])
            log(
                f"[8] {r} {label} zarr over s3fs: {fmt_s(run['seconds'])}, shape"
                f" {run['shape']}, {run['requests']} requests"
            )
        m.start()
        try:
            mount_side(str(m / array), f"{r} warm", warm, "nw")
        finally:
            m.stop()
            shutil.rmtree(m.cache_dir, ignore_errors=True)
    cold.title += f" [{max(counts['nc'])} vs {max(counts['sc'])} req]"
    warm.title += f" [{max(counts['nw'])} vs {max(counts['sw'])} req]"
    note = (
        f"{ctx.network}; region {ZYX} (z, y, x) = one 8³ chunk of the 800³ array;"
        f" requests (max) neurofs cold {max(counts['nc'])}, warm {max(counts['nw'])};"
        f" zarr over s3fs {out['s3fs']} cold {max(counts['sc'])}, warm {max(counts['sw'])}"
    )
    if len(sums) != 1:
        note += f". WARNING: the sides read different voxel sums {sorted(sums)}"
    cold.notes.append(note)
    warm.notes.append(
        "warm: neurofs = new process, remounted on the cold run's cache, page cache dropped;"
        " s3fs = the same open + read again in the same process, new S3FileSystem"
    )
    for res in (cold, warm):
        res.extra.update(requests=counts, zyx=ZYX, zarr_id=zarr_id)
    return [cold, warm]

"""Scenario 6: a WEBKNOSSOS region through the mount with zarr-python vs the official client.

The sample's layers are smaller than 256³: l4_demo's color layer at mag 1 is 320×256×96
(x, y, z) at top-left (64, 32, 16), so the region is 256×256×96 (x, y, z) from that corner,
the largest 256×256 region that fits. Through the mount it is
``color.ome.zarr/1[16:112, 32:288, 64:320]`` (axes z, y, x; arrays start at voxel 0).

Competitor: ``webknossos`` 4.3 in ``.venv-conformance-webknossos``,
``RemoteDataset.open(dataset_id=…).get_layer("color").get_mag("1").read(absolute_bounding_box=…)``.
Its warm run is the same open + read again in the same process (it keeps nothing across
processes); neurofs's warm run is a new process on a remounted mount with the cold run's cache,
page cache dropped.
"""

from __future__ import annotations

import os
import shutil

from bench.context import Ctx
from bench.harness import PY_MAIN, PY_WK, drop_caches, fmt_s, log, run_snippet
from bench.report import Result
from neurofs_emulators.webknossos.sample import DATASET_L4, ORGANIZATION, OWNER_TOKEN

TOPLEFT = (64, 32, 16)  # x, y, z (mag 1, absolute)
SIZE = (256, 256, 96)
ZYX = [
    [TOPLEFT[2], TOPLEFT[2] + SIZE[2]],
    [TOPLEFT[1], TOPLEFT[1] + SIZE[1]],
    [TOPLEFT[0], TOPLEFT[0] + SIZE[0]],
]
ARRAY = f"webknossos/datasets/{ORGANIZATION}/l4_demo/color.ome.zarr/1"


def wk_region(ctx: Ctx) -> list[Result]:
    emu = ctx.webknossos(throttled=True)
    region = "×".join(map(str, SIZE))
    cold = Result(
        key="6 cold",
        title=f"WK l4_demo color mag 1, {region} (x×y×z), cold",
        competitor="webknossos",
        target_ratio=1.0,
        target_text="no slower than the client",
    )
    warm = Result(
        key="6 warm",
        title=f"WK l4_demo color mag 1, {region} (x×y×z), warm",
        competitor="webknossos",
        target_ratio=5.0,
        target_text="≤ ⅕ of the client's time",
    )
    log(f"[6] l4_demo color mag 1, {region} voxels (x×y×z): zarr on the mount vs webknossos client")
    scratch = ctx.bench.new_dir("s6-client")
    client_env = {
        "WK_URL": emu.running.urls[0].rstrip("/"),
        "WK_TOKEN": OWNER_TOKEN,
        "WEBKNOSSOS_SKIP_VERSION_CHECK": "True",
    }
    log_url = f"{emu.running.origin}/__emulator__/requests"
    counts: dict[str, list[int]] = {"nc": [], "nw": [], "cc": [], "cw": []}
    local = ctx.bench.new_dir("s6-local") / "1"
    sums: set[int] = set()

    def mount_side(path: str, label: str, res: Result, key: str) -> None:
        drop_caches()
        emu.clear()
        out = run_snippet(PY_MAIN, "zarr_read", {"path": path, "zyx": ZYX})
        c = emu.count()
        res.neurofs_s.append(out["seconds"])
        counts[key].append(c["requests"])
        sums.add(out["sum"])
        log(
            f"[6] {label} neurofs zarr: {fmt_s(out['seconds'])}, shape {out['shape']},"
            f" {c['requests']} requests ({c['data_requests']} to the datastore)"
        )

    for rep in range(ctx.reps):
        r = f"rep {rep + 1}/{ctx.reps}"
        m = ctx.wk_mount(emu, "s6-wk")
        m.start()
        try:
            mount_side(str(m / ARRAY), f"{r} cold", cold, "nc")
        finally:
            m.stop()
        drop_caches()
        out = run_snippet(
            PY_WK,
            "wk_read",
            {
                "dataset_id": DATASET_L4,
                "layer": "color",
                "mag": "1",
                "topleft": TOPLEFT,
                "size": SIZE,
                "repeat": 2,
                "log_url": log_url,
            },
            env=client_env,
            cwd=scratch,
        )
        for res, run, key, label in (
            (cold, out["runs"][0], "cc", "cold"),
            (warm, out["runs"][1], "cw", "warm"),
        ):
            res.competitor_s.append(run["seconds"])
            counts[key].append(run["requests"])
            sums.add(run["sum"])
            log(
                f"[6] {r} {label} webknossos: {fmt_s(run['seconds'])}, shape {run['shape']},"
                f" {run['requests']} requests ({run['data_requests']} to the datastore)"
            )
        m.start()
        try:
            os.stat(m / ARRAY)
            mount_side(str(m / ARRAY), f"{r} warm", warm, "nw")
            if rep == ctx.reps - 1:
                shutil.copytree(m / ARRAY, local)  # for the floor below (not timed)
        finally:
            m.stop()
            shutil.rmtree(m.cache_dir, ignore_errors=True)
    drop_caches()
    floor = run_snippet(PY_MAIN, "zarr_read", {"path": str(local), "zyx": ZYX})
    sums.add(floor["sum"])
    log(f"[6] the same zarr read of a local copy of the array: {fmt_s(floor['seconds'])}")
    cold.title += f" [{max(counts['nc'])} vs {max(counts['cc'])} req]"
    warm.title += f" [{max(counts['nw'])} vs {max(counts['cw'])} req]"
    note = (
        f"{ctx.network}; region {region} (x×y×z) at {TOPLEFT} = the largest 256×256 region of"
        f" the 320×256×96 layer; requests (max) neurofs cold {max(counts['nc'])}, warm"
        f" {max(counts['nw'])}; webknossos cold {max(counts['cc'])}, warm {max(counts['cw'])}"
    )
    if len(sums) != 1:
        note += f". WARNING: the sides read different voxel sums {sorted(sums)}"
    cold.notes.append(note)
    warm.notes.append(
        "warm: neurofs = new process, remounted on the cold run's cache, page cache dropped;"
        " webknossos = the same open + read again in the same process (no cache across"
        f" processes); zarr on a local copy of the array (page cache dropped):"
        f" {fmt_s(floor['seconds'])}"
    )
    for res in (cold, warm):
        res.extra.update(requests=counts, topleft=TOPLEFT, size=SIZE, local_s=floor["seconds"])
    return [cold, warm]

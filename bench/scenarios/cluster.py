"""Scenario 14: a lab's cluster.

- **Through the shared tier**: three cold mounts (caches of their own: three nodes) read the
  same part of the 1 GiB blob through one tier (``neurofs tier run``, nginx on loopback), one
  after another and then (three fresh ones, a fresh tier) at once. Reported: the bytes the
  origin sent (goal: the part once, against three times without the tier, measured too), and
  the second and third nodes' time against the first's (goal: faster than the origin: here
  the tier's link is loopback, so they read at the daemon's own pace).
- **Without FUSE**: ``neurofs://`` (neurofs.fsspec) against the mount on scenarios 4 (pynwb
  opening the NWB file, cold) and 6 (zarr-python reading the WEBKNOSSOS region, cold).
"""

from __future__ import annotations

import shutil
import threading
import time
from urllib.parse import urlsplit

from tests.support.mounting import write_sources
from tests.support.tier import started_tier

from bench.context import Ctx
from bench.harness import (
    PY_BENCH,
    PY_MAIN,
    Emu,
    MiB,
    Mount,
    drop_caches,
    fmt_rate,
    fmt_s,
    log,
    median,
    run_snippet,
    timed,
)
from bench.report import Result
from bench.scenarios.dandi_read import DRAFT_BLOB, read_cmd
from bench.scenarios.nwb import MOUNT_PATH as NWB_MOUNT_PATH
from bench.scenarios.nwb import ROWS
from bench.scenarios.wk import ARRAY, ZYX
from neurofs_emulators.webknossos.sample import OWNER_TOKEN as WK_OWNER_TOKEN

NODES = 3


def _origin_bytes(emu: Emu) -> int:
    """Bytes the object store sent for ranges since the last clear."""
    return sum(r.get("sent", 0) for r in emu.requests() if r.get("range"))


def _node(ctx: Ctx, emu: Emu, name: str, tier: str | None) -> Mount:
    m = ctx.dandi_mount(emu, name)
    if tier is not None:
        m.env["NEUROFS_TIER"] = tier
    m.start()
    return m


def _read(m: Mount, nbytes: int) -> float:
    return timed(read_cmd("cp", m / DRAFT_BLOB, nbytes))


def cluster(ctx: Ctx) -> list[Result]:
    emu = ctx.dandi(throttled=True)
    nbytes = ctx.read_bytes
    what = "1 GiB" if nbytes >= 1 << 30 else f"{nbytes // MiB} MiB"
    origins = [f"http://{urlsplit(u).netloc}" for u in emu.running.urls]
    later = Result(
        key="14 tier",
        title=f"3 nodes read the same {what} through the tier: nodes 2–3 vs node 1",
        competitor="node 1 (from the origin)",
        target_ratio=1.0,
        target_text="faster than the origin; origin bytes those of one node (3× without)",
    )
    at_once = Result(
        key="14 at once",
        title=f"3 nodes read the same {what} at once through the tier vs one node alone",
        competitor="one node, no tier",
        target_ratio=None,
        target_text="origin bytes those of one node",
    )
    origin_mib: dict[str, list[float]] = {"tier, in turn": [], "tier, at once": [], "no tier": []}
    for rep in range(ctx.reps):
        r = f"rep {rep + 1}/{ctx.reps}"
        # in turn, through a fresh tier
        with started_tier(origins, ctx.bench.new_dir("s14-tier") / "tier") as tier:
            emu.clear()
            times = []
            for node in range(NODES):
                m = _node(ctx, emu, f"s14-node{node}", tier.url)
                try:
                    drop_caches()
                    times.append(_read(m, nbytes))
                finally:
                    m.stop()
                    shutil.rmtree(m.cache_dir, ignore_errors=True)
            origin_mib["tier, in turn"].append(_origin_bytes(emu) / MiB)
        later.competitor_s.append(times[0])
        later.neurofs_s.append(max(times[1:]))
        log(
            f"[14] {r} in turn through the tier: nodes {', '.join(fmt_s(t) for t in times)};"
            f" origin sent {origin_mib['tier, in turn'][-1]:.0f} MiB"
        )
        # at once, through a fresh tier
        with started_tier(origins, ctx.bench.new_dir("s14-tier") / "tier") as tier:
            mounts = [_node(ctx, emu, f"s14-once{n}", tier.url) for n in range(NODES)]
            drop_caches()
            emu.clear()
            took: list[float] = [0.0] * NODES

            def read(i: int) -> None:
                took[i] = _read(mounts[i], nbytes)  # noqa: B023 (joined below)

            threads = [threading.Thread(target=read, args=(i,)) for i in range(NODES)]
            t0 = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            wall = time.perf_counter() - t0
            origin_mib["tier, at once"].append(_origin_bytes(emu) / MiB)
            for m in mounts:
                m.stop()
                shutil.rmtree(m.cache_dir, ignore_errors=True)
        at_once.neurofs_s.append(wall)
        # the reference: one node alone, no tier; and three without a tier, for origin bytes
        emu.clear()
        alone = []
        for node in range(NODES):
            m = _node(ctx, emu, f"s14-notier{node}", None)
            try:
                drop_caches()
                alone.append(_read(m, nbytes))
            finally:
                m.stop()
                shutil.rmtree(m.cache_dir, ignore_errors=True)
        origin_mib["no tier"].append(_origin_bytes(emu) / MiB)
        at_once.competitor_s.append(alone[0])
        log(
            f"[14] {r} at once through the tier: {fmt_s(wall)} for all three"
            f" ({', '.join(fmt_s(t) for t in took)}), origin sent"
            f" {origin_mib['tier, at once'][-1]:.0f} MiB; without the tier, one node"
            f" {fmt_s(alone[0])}, three sent {origin_mib['no tier'][-1]:.0f} MiB"
        )
    part = nbytes / MiB
    for res in (later, at_once):
        res.notes.append(
            f"{ctx.network} between the tier (or a node) and the origin, loopback between the"
            f" nodes and the tier; origin MiB sent for {part:.0f} MiB read by each of 3 nodes"
            " (median): " + ", ".join(f"{k} {median(v) or 0:.0f}" for k, v in origin_mib.items())
        )
        res.extra.update(origin_mib=origin_mib, bytes=nbytes)
    n1 = median(later.competitor_s) or 0
    later.notes.append(f"node 1 read at {fmt_rate(nbytes, n1)} from the origin through the tier")
    # What one node alone makes the origin send (its read-ahead may run past the part read).
    one_node = (median(origin_mib["no tier"]) or 0) / NODES
    for res, key in ((later, "tier, in turn"), (at_once, "tier, at once")):
        res.conditions["origin bytes ≤ 1.1× one node's alone"] = (
            max(origin_mib[key]) <= 1.1 * one_node
        )
    return [later, at_once, *_fsspec_rows(ctx)]


def _fsspec_rows(ctx: Ctx) -> list[Result]:
    nwb = Result(
        key="14 fsspec nwb",
        title="pynwb open + slice, cold: neurofs:// (no FUSE) vs the mount",
        competitor="mount",
        target_ratio=None,
        target_text="(reference)",
        verdict_override="",
    )
    region = Result(
        key="14 fsspec wk",
        title="WK 256×256×96 region with zarr-python, cold: neurofs:// vs the mount",
        competitor="mount",
        target_ratio=None,
        target_text="(reference)",
        verdict_override="",
    )
    dandi = ctx.dandi(throttled=True)
    wk = ctx.webknossos(throttled=True)
    for rep in range(ctx.reps):
        r = f"rep {rep + 1}/{ctx.reps}"
        # NWB: the same program (snippets/h5_open.py) in .venv-bench, which has neurofs too
        m = ctx.dandi_mount(dandi, "s14-nwb")
        m.start()
        try:
            drop_caches()
            out = run_snippet(
                PY_BENCH,
                "h5_open",
                {"rows": ROWS, "source": "path", "target": str(m / NWB_MOUNT_PATH)},
            )
            nwb.competitor_s.append(out["seconds"])
        finally:
            m.stop()
        options = _fsspec_options(
            ctx, [{"kind": "dandi", "name": "dandi", "url": dandi.api_url}], "s14-nwb-fsspec"
        )
        drop_caches()
        out = run_snippet(
            PY_BENCH,
            "h5_open",
            {"rows": ROWS, "source": "fsspec", "target": NWB_MOUNT_PATH, "options": options},
        )
        nwb.neurofs_s.append(out["seconds"])
        log(
            f"[14] {r} NWB cold: neurofs:// {fmt_s(nwb.neurofs_s[-1])},"
            f" mount {fmt_s(nwb.competitor_s[-1])}"
        )
        # the WEBKNOSSOS region
        m = ctx.wk_mount(wk, "s14-wk")
        m.start()
        try:
            drop_caches()
            out = run_snippet(PY_MAIN, "zarr_read", {"path": str(m / ARRAY), "zyx": ZYX})
            region.competitor_s.append(out["seconds"])
        finally:
            m.stop()
        source = {
            "kind": "webknossos",
            "name": "webknossos",
            "url": wk.running.urls[0].rstrip("/"),
            "token": WK_OWNER_TOKEN,
        }
        options = _fsspec_options(ctx, [source], "s14-wk-fsspec")
        drop_caches()
        out = run_snippet(
            PY_MAIN,
            "zarr_read",
            {"path": f"neurofs://{ARRAY}", "zyx": ZYX, "storage_options": options},
        )
        region.neurofs_s.append(out["seconds"])
        log(
            f"[14] {r} WK region cold: neurofs:// {fmt_s(region.neurofs_s[-1])},"
            f" mount {fmt_s(region.competitor_s[-1])}"
        )
    for res in (nwb, region):
        res.notes.append(
            f"{ctx.network}; the same program on both sides; neurofs:// runs the sources, block"
            " cache and read-ahead in the reading process (a fresh cache each time)"
        )
    return [nwb, region]


def _fsspec_options(ctx: Ctx, sources: list[dict[str, str]], name: str) -> dict[str, str]:
    base = ctx.bench.new_dir(name)
    config = write_sources(base / "config.toml", sources)
    return {"config": str(config), "cache_dir": str(base / "cache")}

"""Scenario 5: every asset of the 2,005-asset dandiset, with its size and time.

neurofs: a fresh mount (empty cache), then ``find`` with ``stat`` of every file; zarr assets
are directories on the mount and are stat'ed as one entry each (pruned, not descended into),
so both sides produce the same 2,005 assets. Competitor: the official ``dandi`` client,
``DandiAPIClient(api_url).get_dandiset("000003", "draft").get_assets()``, in
``.venv-conformance``.
"""

from __future__ import annotations

import shutil
import subprocess
import time

from bench.context import Ctx
from bench.harness import PY_DANDI, fmt_s, log, median, run_snippet
from bench.report import Result
from neurofs_emulators.dandi.sample import LARGE_DANDISET

DANDI_ENV = {"DANDI_NO_ET": "1", "DANDI_CACHE": "ignore"}


def find_cmd(root: str) -> list[str]:
    """Every asset once: the version's ``dandiset.yaml`` sidecar is skipped, zarr stores are
    stat'ed as one entry (not descended into), blob assets are files."""
    return [
        "find",
        root,
        "-path",
        f"{root}/dandiset.yaml",
        "-prune",
        "-o",
        "(",
        "-name",
        "*.zarr",
        "-prune",
        "-o",
        "-type",
        "f",
        ")",
        "-exec",
        "stat",
        "--format=%s %Y %n",
        "{}",
        "+",
    ]


def listing(ctx: Ctx) -> Result:
    emu = ctx.dandi(throttled=True)
    result = Result(
        key="5",
        title=f"find + stat of all assets of {LARGE_DANDISET}",
        competitor="dandi client",
        target_ratio=1.0,
        target_text="no slower than the client",
    )
    log(f"[5] {LARGE_DANDISET}: find + stat on a fresh mount vs dandi get_assets(), {ctx.network}")
    counts: dict[str, list[int]] = {"neurofs": [], "client": []}
    entries: set[int] = set()
    repeat: list[float] = []
    for rep in range(ctx.reps):
        r = f"rep {rep + 1}/{ctx.reps}"
        m = ctx.dandi_mount(emu, "s5-find")
        m.start()
        try:
            emu.clear()
            t0 = time.perf_counter()
            out = subprocess.run(
                find_cmd(str(m / f"dandi/{LARGE_DANDISET}/draft")),
                capture_output=True,
                text=True,
                check=True,
            )
            t = time.perf_counter() - t0
            n = emu.count()["requests"]
            # The same walk again on this mount, listings now in memory: what FUSE costs.
            t0 = time.perf_counter()
            subprocess.run(
                find_cmd(str(m / f"dandi/{LARGE_DANDISET}/draft")),
                capture_output=True,
                check=True,
            )
            again = time.perf_counter() - t0
        finally:
            m.stop()
            shutil.rmtree(m.cache_dir, ignore_errors=True)
        lines = len(out.stdout.splitlines())
        entries.add(lines)
        result.neurofs_s.append(t)
        counts["neurofs"].append(n)
        repeat.append(again)
        log(
            f"[5] {r} neurofs find+stat: {fmt_s(t)}, {lines} entries, {n} requests"
            f" (again on the same mount: {fmt_s(again)})"
        )
        emu.clear()
        res = run_snippet(
            PY_DANDI,
            "dandi_list",
            {"api_url": emu.api_url, "dandiset": LARGE_DANDISET, "version": "draft"},
            env=DANDI_ENV,
        )
        n = emu.count()["requests"]
        entries.add(res["assets"])
        result.competitor_s.append(res["seconds"])
        counts["client"].append(n)
        log(f"[5] {r} dandi client: {fmt_s(res['seconds'])}, {res['assets']} assets, {n} requests")
    result.title += f" [{max(counts['neurofs'])} vs {max(counts['client'])} req]"
    result.notes.append(
        f"{ctx.network}; entries {sorted(entries)} (zarr assets count as one entry on both"
        f" sides); requests neurofs {max(counts['neurofs'])}, dandi client"
        f" {max(counts['client'])}; the same find again on the same mount (listings in"
        f" memory, no requests) {fmt_s(median(repeat))}; the client's time is measured inside"
        f" its process (imports excluded), find's as the wall time of the find process"
    )
    result.extra.update(requests=counts, entries=sorted(entries), find_again_s=repeat)
    return result

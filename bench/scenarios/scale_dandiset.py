"""Scenario 9: the 100,000-asset dandiset of the scale sample (``--sample large``, 000100).

neurofs: on a fresh mount (empty cache, nothing in memory), ``find <mount>/dandi/000100/draft
| wc -l``, with the daemon's peak RSS; and, each on a fresh mount, ``ls`` of the version root,
``ls`` of one folder and ``stat`` of one asset three levels deep. Competitor: the official
``dandi`` client, ``DandiAPIClient(api_url).get_dandiset("000100", "draft").get_assets()``,
in ``.venv-conformance`` (as scenario 5).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

from bench.context import Ctx
from bench.harness import PY_DANDI, Emu, fmt_s, log, median, run_snippet
from bench.report import Result
from bench.scenarios.listing import DANDI_ENV
from neurofs_emulators.dandi.large_dandiset import ASSET_COUNT, LARGE_DANDISET, asset_path
from neurofs_emulators.launch import start_emulator

STAT_INDEX = 77_345  # some asset three levels down


def _large_emulator(ctx: Ctx) -> Emu:
    """The DANDI emulator with the scale sample, started once per run (stopped with the
    bench's other emulators)."""
    name = "dandi-large"
    if name not in ctx.bench.emulators:
        log("starting the DANDI emulator with --sample large")
        args = ["--sample", "large", "--latency-ms", str(ctx.latency_ms)]
        ctx.bench.emulators[name] = Emu(start_emulator("dandi", args))
    emu = ctx.bench.emulators[name]
    # Latency only: the listings are small answers, the bandwidth knob would not change them.
    emu.throttle(ctx.latency_ms, None)
    return emu


def _peak_rss(pid: int | None) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def scale_dandiset(ctx: Ctx) -> list[Result]:
    emu = _large_emulator(ctx)
    network = f"{ctx.latency_ms:g} ms latency per request"
    log(f"[9] {LARGE_DANDISET}: {ASSET_COUNT} assets, find vs dandi get_assets(), {network}")
    find = Result(
        key="9",
        title=f"find | wc -l of {ASSET_COUNT:,} assets ({LARGE_DANDISET})",
        competitor="dandi get_assets()",
        target_ratio=1.0,
        target_text="no slower than the client; RSS < 300 MB",
    )
    cold = {
        "ls root": Result(
            key="9", title="ls of a 100,000-asset version's root, cold", competitor=""
        ),
        "ls folder": Result(key="9", title="ls of one folder of it, cold", competitor=""),
        "stat": Result(key="9", title="stat of one asset 3 levels deep, cold", competitor=""),
    }
    counts: dict[str, list[int]] = {"neurofs": [], "client": [], "rss": []}
    cold_requests: dict[str, list[int]] = {k: [] for k in cold}
    for rep in range(ctx.reps):
        r = f"rep {rep + 1}/{ctx.reps}"
        draft = f"dandi/{LARGE_DANDISET}/draft"
        # ls and stat, each on its own fresh mount (nothing in memory, nothing on disk).
        for what, result in cold.items():
            m = ctx.dandi_mount(emu, f"s9-{what.replace(' ', '-')}")
            m.start()
            try:
                os.stat(m.path / "dandi")
                emu.clear()
                t0 = time.perf_counter()
                if what == "ls root":
                    os.listdir(m / draft)
                elif what == "ls folder":
                    os.listdir(m / f"{draft}/sub-0042")
                else:
                    os.stat(m / f"{draft}/{asset_path(STAT_INDEX)}")
                result.neurofs_s.append(time.perf_counter() - t0)
                cold_requests[what].append(emu.count()["requests"])
            finally:
                m.stop()
                shutil.rmtree(m.cache_dir, ignore_errors=True)
        m = ctx.dandi_mount(emu, "s9-find")
        m.start()
        try:
            emu.clear()
            t0 = time.perf_counter()
            out = subprocess.run(
                f"find {m / draft} | wc -l", shell=True, capture_output=True, text=True, check=True
            )
            t = time.perf_counter() - t0
            n = emu.count()["requests"]
            rss = _peak_rss(m.pid)
        finally:
            m.stop()
            shutil.rmtree(m.cache_dir, ignore_errors=True)
        lines = int(out.stdout.strip())
        find.neurofs_s.append(t)
        counts["neurofs"].append(n)
        counts["rss"].append(rss)
        log(f"[9] {r} neurofs find: {fmt_s(t)}, {lines} lines, {n} requests, RSS {rss >> 20} MB")
        emu.clear()
        res = run_snippet(
            PY_DANDI,
            "dandi_list",
            {"api_url": emu.api_url, "dandiset": LARGE_DANDISET, "version": "draft"},
            env=DANDI_ENV,
        )
        n = emu.count()["requests"]
        find.competitor_s.append(res["seconds"])
        counts["client"].append(n)
        log(f"[9] {r} dandi client: {fmt_s(res['seconds'])}, {res['assets']} assets, {n} requests")
    rss_mb = max(counts["rss"]) >> 20
    find.title += f" [{max(counts['neurofs'])} vs {max(counts['client'])} req, RSS {rss_mb} MB]"
    find.conditions["RSS < 300 MB"] = rss_mb < 300
    find.notes.append(
        f"{network}; find lists {ASSET_COUNT:,} assets, 1,100 folders and dandiset.yaml;"
        f" requests neurofs {max(counts['neurofs'])}, dandi client {max(counts['client'])};"
        f" daemon peak RSS {rss_mb} MB; the client's time is measured inside its process"
        f" (imports excluded), find's as the wall time of find | wc -l"
    )
    find.extra.update(requests=counts)
    for what, result in cold.items():
        n = max(cold_requests[what])
        result.title += f" [{n} req]"
        result.target_text = "< 1 s"
        result.conditions["< 1 s"] = (median(result.neurofs_s) or 0.0) < 1.0
        result.competitor_text = "–"
        result.ratio_text = "–"
        result.extra.update(requests=cold_requests[what])
        log(f"[9] {what}: {fmt_s(median(result.neurofs_s))}, {n} requests")
    return [find, *cold.values()]

"""Scenario "cpu": the daemon's CPU-seconds per GiB on cold reads, without throttling.

Two cold patterns through a fresh mount each, on the 1 GiB DANDI blob: a stream of the first
``ctx.read_bytes`` (256 MiB with --quick) and 50 random unaligned 1 MiB reads (fixed seed).
What counts is the mount daemon's user + system CPU (``/proc/<pid>/stat``) per GiB read, the
number the issue compares with rclone's 2.4; the wall time is shown but is no target here
(on a shared 2-core machine it measures the neighbours as much as neurofs).
"""

from __future__ import annotations

import os
import shutil
import time

from bench.context import Ctx
from bench.harness import GiB, MiB, cpu_seconds, drop_caches, fmt_s, log, median, timed
from bench.report import Result
from bench.scenarios.dandi_read import DRAFT_BLOB, read_cmd
from bench.scenarios.random_reads import offsets, read_file

RANDOM_READS = 50
RCLONE_CPU_PER_GIB = 2.4  # the measurement of rclone mount, unthrottled stream


def _settled_cpu(pid: int | None) -> float:
    """The daemon's CPU-seconds once it has gone idle: the disk writes a read decided finish
    after the read returns, and they are part of its cost."""
    last = cpu_seconds(pid)
    while True:
        time.sleep(0.5)
        now = cpu_seconds(pid)
        if now - last < 0.02:
            return now
        last = now


def scale_cpu(ctx: Ctx) -> list[Result]:
    emu = ctx.dandi(throttled=False)
    stream = Result(
        key="cpu-stream",
        title=f"daemon CPU per GiB, cold stream of {ctx.read_bytes // MiB} MiB, no throttle",
        competitor="rclone (issue)",
        target_text=f"≤ {RCLONE_CPU_PER_GIB} CPU-s/GiB",
    )
    random_1m = Result(
        key="cpu-random",
        title=f"daemon CPU per GiB, {RANDOM_READS} random 1 MiB reads, cold, no throttle",
        competitor="–",
        target_text="report",
    )
    per_gib: dict[str, list[float]] = {"stream": [], "random": []}
    for rep in range(ctx.reps):
        for pattern, result in (("stream", stream), ("random", random_1m)):
            m = ctx.dandi_mount(emu, f"cpu-{pattern}")
            m.start()
            try:
                path = m / DRAFT_BLOB
                os.stat(path)
                drop_caches()
                emu.clear()
                c0 = cpu_seconds(m.pid)
                if pattern == "stream":
                    nbytes = ctx.read_bytes
                    t = timed(read_cmd("cp", path, nbytes))
                else:
                    nbytes = RANDOM_READS * MiB
                    t, _digest = read_file(path, offsets(RANDOM_READS, MiB), MiB)
                cpu = _settled_cpu(m.pid) - c0
                requests = emu.count()["data_requests"]
            finally:
                m.stop()
                shutil.rmtree(m.cache_dir, ignore_errors=True)
            per_gib[pattern].append(cpu / (nbytes / GiB))
            result.neurofs_s.append(t)
            log(
                f"[cpu] rep {rep + 1}/{ctx.reps} {pattern}: {fmt_s(t)}, {requests} data"
                f" requests, daemon CPU {cpu:.2f} s = {per_gib[pattern][-1]:.2f} CPU-s/GiB"
            )
    for pattern, result in (("stream", stream), ("random", random_1m)):
        value = median(per_gib[pattern]) or 0.0
        result.neurofs_text = f"{value:.2f} CPU-s/GiB"
        result.competitor_text = f"{RCLONE_CPU_PER_GIB} CPU-s/GiB" if pattern == "stream" else "–"
        result.ratio_text = f"{RCLONE_CPU_PER_GIB / value:.2f}×" if pattern == "stream" else "–"
        if pattern == "stream":
            result.conditions[f"≤ {RCLONE_CPU_PER_GIB} CPU-s/GiB"] = value <= RCLONE_CPU_PER_GIB
        else:
            result.verdict_override = "report"
        result.notes.append(
            "daemon user + system CPU per GiB read, median of "
            + ", ".join(f"{v:.2f}" for v in per_gib[pattern])
        )
        result.extra.update(cpu_per_gib=per_gib[pattern])
    return [stream, random_1m]

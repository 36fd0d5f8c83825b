"""Scenarios 1, 2, 3 and 7: streaming the 1 GiB DANDI blob.

1. cold sequential read through a fresh mount (empty cache) vs ``curl`` of the presigned blob
   URL, with the network throttled;
2. the same without throttling (what FUSE and Python cost);
3. warm read after unmount/remount (blocks on disk, page cache dropped) vs ``cat`` of a local
   copy of the same bytes;
7. the daemon's peak RSS while streaming 2 GiB, and the cache's disk use against its cap.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from bench.context import Ctx
from bench.harness import (
    GiB,
    MiB,
    Sampler,
    cpu_seconds,
    dandi_asset,
    drop_caches,
    du_bytes,
    fmt_rate,
    fmt_s,
    log,
    median,
    presigned_url,
    timed,
)
from bench.report import Result
from neurofs_emulators.dandi.sample import BIG_BLOB_PATH, PUBLISHED_DANDISET, RELEASE_VERSION

DRAFT_BLOB = f"dandi/{PUBLISHED_DANDISET}/draft/{BIG_BLOB_PATH}"
RELEASE_BLOB = f"dandi/{PUBLISHED_DANDISET}/releases/{RELEASE_VERSION}/{BIG_BLOB_PATH}"


def read_cmd(tool: str, path: Path, nbytes: int) -> list[str]:
    """``cp``/``cat`` of the whole file, or ``head -c`` of its first ``nbytes`` (--quick)."""
    if nbytes >= GiB:
        return ["cp", str(path), "/dev/null"] if tool == "cp" else ["cat", str(path)]
    return ["head", "-c", str(nbytes), str(path)]


def curl_cmd(url: str, nbytes: int) -> list[str]:
    argv = ["curl", "--silent", "--show-error", "--fail", "--output", "/dev/null"]
    if nbytes < GiB:
        argv += ["--range", f"0-{nbytes - 1}"]
    return [*argv, url]


def _what(nbytes: int) -> str:
    return "1 GiB" if nbytes >= GiB else f"first {nbytes // MiB} MiB"


def cold_read(ctx: Ctx, throttled: bool) -> Result:
    key = "1" if throttled else "2"
    nbytes = ctx.read_bytes
    emu = ctx.dandi(throttled)
    network = ctx.network if throttled else "no throttling"
    throttle = "throttled" if throttled else "no throttle"
    result = Result(
        key=key,
        title=f"cold read, {_what(nbytes)} of the blob, {throttle}",
        competitor="curl",
        target_ratio=3.0 if throttled else 0.7,
        target_text="≥ 3× curl" if throttled else "≥ 0.7× curl",
    )
    asset = dandi_asset(emu.api_url, PUBLISHED_DANDISET, "draft", BIG_BLOB_PATH)
    tool = "cp" if nbytes >= GiB else "head -c"
    log(f"[{key}] cold read of {_what(nbytes)} of {BIG_BLOB_PATH}, {network}: {tool} vs curl")
    requests = []
    cpu: dict[str, list[float]] = {"daemon": [], "emulator (neurofs)": [], "emulator (curl)": []}
    hwm: list[int] = []
    for rep in range(ctx.reps):
        m = ctx.dandi_mount(emu, f"s{key}-cold")
        m.start()
        try:
            path = m / DRAFT_BLOB
            os.stat(path)  # the path lookups happen before the clock starts, as for curl's URL
            drop_caches()
            emu.clear()
            d0, e0 = cpu_seconds(m.pid), cpu_seconds(emu.pid)
            t = timed(read_cmd("cp", path, nbytes))
            d1, e1 = cpu_seconds(m.pid), cpu_seconds(emu.pid)
            hwm.append(Sampler(m.pid).status()["VmHWM"] if m.pid else 0)
            counts = emu.count()
            stats = m.stats()
        finally:
            m.stop()
            shutil.rmtree(m.cache_dir, ignore_errors=True)
        result.neurofs_s.append(t)
        requests.append(counts["data_requests"])
        cpu["daemon"].append(d1 - d0)
        cpu["emulator (neurofs)"].append(e1 - e0)
        log(
            f"[{key}] rep {rep + 1}/{ctx.reps} neurofs {tool}: {fmt_s(t)} ({fmt_rate(nbytes, t)}),"
            f" {counts['data_requests']} data requests, {stats.get('bytes_fetched', 0) / MiB:.0f}"
            f" MiB fetched; CPU: daemon {d1 - d0:.1f} s, emulator {e1 - e0:.1f} s; daemon VmHWM"
            f" {hwm[-1] / 1e6:.0f} MB"
        )
        url = presigned_url(emu.api_url, asset["asset_id"])
        drop_caches()
        emu.clear()
        e0 = cpu_seconds(emu.pid)
        t = timed(curl_cmd(url, nbytes))
        e1 = cpu_seconds(emu.pid)
        cpu["emulator (curl)"].append(e1 - e0)
        result.competitor_s.append(t)
        log(
            f"[{key}] rep {rep + 1}/{ctx.reps} curl: {fmt_s(t)} ({fmt_rate(nbytes, t)});"
            f" CPU: emulator {e1 - e0:.1f} s"
        )
    n, c = result.neurofs_median, result.competitor_median
    assert n is not None and c is not None
    result.notes.append(
        f"{network}; neurofs {fmt_rate(nbytes, n)}, curl {fmt_rate(nbytes, c)};"
        f" neurofs used {min(requests)}–{max(requests)} range requests; CPU seconds (median):"
        + ",".join(f" {k} {median(v) or 0:.1f}" for k, v in cpu.items())
        + f"; daemon VmHWM {max(hwm) / 1e6:.0f} MB"
    )
    result.extra.update(
        bytes=nbytes, network=network, neurofs_data_requests=requests, cpu=cpu, vm_hwm=hwm
    )
    return result


def warm_read(ctx: Ctx) -> Result:
    nbytes = ctx.read_bytes
    result = Result(
        key="3",
        title=f"warm read after remount, {_what(nbytes)}",
        competitor="local cat",
        target_ratio=0.5,
        target_text="≥ 0.5× local cat",
    )
    tool = "cat" if nbytes >= GiB else "head -c"
    # Filling is not measured: do it without throttling.
    emu = ctx.dandi(throttled=False)
    local = ctx.bench.new_dir("s3-local") / "blob.dat"
    m = ctx.dandi_mount(emu, "s3-warm")
    m.start()
    log(f"[3] filling the cache and a local copy ({_what(nbytes)}) without throttling")
    try:
        with open(local, "wb") as out:
            timed(read_cmd("cat", m / DRAFT_BLOB, nbytes), stdout=out)
    finally:
        m.stop()
    if local.stat().st_size != nbytes:
        raise RuntimeError(f"local copy has {local.stat().st_size} bytes, expected {nbytes}")
    emu = ctx.dandi(throttled=True)
    log(f"[3] warm read: {tool} through a remounted mount (same cache) vs {tool} of the local copy")
    requests = []
    daemon_cpu: list[float] = []
    for rep in range(ctx.reps):
        m.start()
        try:
            path = m / DRAFT_BLOB
            os.stat(path)
            dropped = drop_caches()
            emu.clear()
            d0 = cpu_seconds(m.pid)
            t = timed(read_cmd("cat", path, nbytes))
            daemon_cpu.append(cpu_seconds(m.pid) - d0)
            counts = emu.count()
            stats = m.stats()
        finally:
            m.stop()
        result.neurofs_s.append(t)
        requests.append(counts["data_requests"])
        log(
            f"[3] rep {rep + 1}/{ctx.reps} neurofs warm {tool}: {fmt_s(t)} ({fmt_rate(nbytes, t)}),"
            f" {counts['data_requests']} data requests, cache hits"
            f" {stats.get('cache', {}).get('hits', '?')}; page cache dropped: {dropped}"
        )
        drop_caches()
        t = timed(read_cmd("cat", local, nbytes))
        result.competitor_s.append(t)
        log(f"[3] rep {rep + 1}/{ctx.reps} local {tool}: {fmt_s(t)} ({fmt_rate(nbytes, t)})")
    n, c = result.neurofs_median, result.competitor_median
    assert n is not None and c is not None
    result.conditions["no data requests"] = max(requests) == 0
    result.notes.append(
        f"neurofs {fmt_rate(nbytes, n)}, local disk {fmt_rate(nbytes, c)}; data requests during"
        f" warm reads: {max(requests)}; daemon CPU {median(daemon_cpu) or 0:.1f} s per read"
    )
    result.extra.update(bytes=nbytes, neurofs_data_requests=requests)
    local.unlink()
    shutil.rmtree(m.cache_dir, ignore_errors=True)
    return result


# Blocks that may legitimately sit on disk beyond the cap while a read runs: the 32 MiB
# read-ahead window plus range requests of up to 8 MiB in flight (docs/performance.md, How
# reading works).
IN_FLIGHT_ALLOWANCE = 64 * MiB
RSS_TARGET = 200 * 1000 * 1000


def peak_rss(ctx: Ctx) -> Result:
    cap_text = "256MiB" if ctx.quick else "512MiB"
    cap = int(cap_text[:-3]) * MiB
    paths = [DRAFT_BLOB] if ctx.quick else [DRAFT_BLOB, RELEASE_BLOB]
    streamed = len(paths) * GiB
    emu = ctx.dandi(throttled=False)
    log(
        f"[7] peak RSS while streaming {streamed // GiB} GiB (no throttling) through a cache"
        f" capped at {cap_text}"
    )
    m = ctx.dandi_mount(emu, "s7-rss", cache_size=cap_text)
    m.start()
    try:
        if m.pid is None:
            raise RuntimeError("could not find the daemon's pid")
        for p in paths:
            os.stat(m / p)
        sampler = Sampler(m.pid, watch_dir=m.cache_dir)
        before = sampler.status()
        d0 = cpu_seconds(m.pid)
        with sampler:
            for p in paths:
                drop_caches()
                t = timed(["cp", str(m / p), "/dev/null"])
                log(f"[7] cp {p.split('/', 2)[2]}: {fmt_s(t)} ({fmt_rate(GiB, t)})")
        after = sampler.status()
        daemon_cpu = cpu_seconds(m.pid) - d0
        stats = m.stats()
        disk_end = du_bytes(m.cache_dir)
    finally:
        m.stop()
        shutil.rmtree(m.cache_dir, ignore_errors=True)
    hwm = after["VmHWM"]
    peak = max(hwm, sampler.max_rss)
    disk_peak = max(sampler.max_dir, disk_end)
    over = disk_peak - cap
    rss_ok = peak < RSS_TARGET
    disk_ok = disk_peak <= cap + IN_FLIGHT_ALLOWANCE
    cache = stats.get("cache", {})
    result = Result(
        key="7",
        title=f"daemon memory and disk while streaming {streamed // GiB} GiB",
        competitor="–",
        neurofs_text=f"peak RSS {peak / 1e6:.0f} MB",
        competitor_text=f"disk {disk_peak / MiB:.0f} MiB / cap {cap // MiB} MiB",
        ratio_text=f"{over / MiB:+.0f} MiB vs cap",
        target_text="RSS < 200 MB; disk ≤ cap + in flight",
        verdict_override="met" if rss_ok and disk_ok else "missed",
    )
    result.conditions.update({"rss": rss_ok, "disk": disk_ok})
    result.notes.append(
        f"VmHWM {hwm / 1e6:.0f} MB (VmRSS before {before['VmRSS'] / 1e6:.0f} MB, after"
        f" {after['VmRSS'] / 1e6:.0f} MB, highest sampled {sampler.max_rss / 1e6:.0f} MB over"
        f" {sampler.samples} samples; at that sample anonymous"
        f" {sampler.at_max.get('RssAnon', 0) / 1e6:.0f} MB, file-backed"
        f" {sampler.at_max.get('RssFile', 0) / 1e6:.0f} MB, shared"
        f" {sampler.at_max.get('RssShmem', 0) / 1e6:.0f} MB); cache dir du peak"
        f" {disk_peak / MiB:.0f} MiB, at the end {disk_end / MiB:.0f} MiB, cap {cap // MiB} MiB"
        f" (allowance for blocks in flight: {IN_FLIGHT_ALLOWANCE // MiB} MiB);"
        f" {stats.get('bytes_fetched', 0) / MiB:.0f} MiB fetched,"
        f" {cache.get('evictions', '?')} evictions; daemon CPU {daemon_cpu:.1f} s"
    )
    result.extra.update(
        vm_hwm=hwm,
        max_vm_rss_sampled=sampler.max_rss,
        at_max_rss=sampler.at_max,
        rss_before=before["VmRSS"],
        rss_after=after["VmRSS"],
        disk_peak=disk_peak,
        disk_end=disk_end,
        cap=cap,
        streamed=streamed,
        stats=stats,
    )
    log(f"[7] {result.notes[-1]}")
    return result

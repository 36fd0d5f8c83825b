"""Scenario 13: neurofs beside rclone mount and httpdirfs, on the same emulator.

Each tool (:data:`~bench.scenarios.peer_tools.TOOLS`) mounts the same 1 GiB blob (rclone and
httpdirfs through the object store's HTML index) and runs the same patterns, with a fresh
cache directory for every cold run:

- cold stream, throttled and unthrottled: ``cat`` of the blob (``head -c`` of its first
  --read-mib, at most 128 MiB with --quick);
- warm stream: the same after unmount + remount on the throttled run's cache;
- random 4 KiB reads (2,000; 150 with --quick) at fixed-seed offsets, cold, then warm (the
  same offsets after a remount);
- random 1 MiB reads (200; 20 with --quick), cold;
- the NWB file: pynwb open + a 10,000-row slice (``snippets/h5_open.py``), cold and warm.

Per tool and pattern: time, data requests (GETs of the blob in the emulator's log), MiB the
emulator sent for them (its request log), the mount process's CPU-seconds (and per GiB read),
and its peak RSS (VmHWM). Every byte a tool returns is checked against the blob: streams are re-read
right after the timed read (per-MiB digests), random reads are compared read by read, the
NWB slice by its sum. A tool that returns wrong bytes is reported as wrong, not timed.
"""

from __future__ import annotations

import hashlib
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import httpx

from bench.context import Ctx
from bench.harness import (
    PY_BENCH,
    Emu,
    GiB,
    MiB,
    cpu_seconds,
    dandi_asset,
    drop_caches,
    fmt_s,
    log,
    median,
    run_snippet,
    timed,
)
from bench.report import Result
from bench.scenarios.dandi_read import read_cmd
from bench.scenarios.nwb import ROWS
from bench.scenarios.peer_tools import TOOLS, Target, Tool, ToolMount
from neurofs_emulators.dandi.archive import GENERATED_BLOCK, generated_block
from neurofs_emulators.dandi.sample import (
    BIG_BLOB_KEY,
    BIG_BLOB_PATH,
    BIG_BLOB_SIZE,
    NWB_PATH,
    PUBLISHED_DANDISET,
)

SEED = 1316
QUICK_STREAM = 128 * MiB
CRASH_GRACE_S = 0.3
SMALL = 4096
LARGE = MiB
PATTERNS = {
    "stream_cold": "cold stream, throttled",
    "stream_cold_fast": "cold stream, unthrottled",
    "stream_warm": "warm stream after remount",
    "rand4k_cold": "random 4 KiB reads, cold",
    "rand4k_warm": "random 4 KiB reads, warm (remount)",
    "rand1m_cold": "random 1 MiB reads, cold",
    "nwb_cold": "pynwb open + slice, cold",
    "nwb_warm": "pynwb open + slice, warm (remount)",
}


@dataclass
class Run:
    """One tool on one pattern, one repetition."""

    seconds: float | None = None  # None when the bytes were wrong or the run failed
    data_requests: int = 0
    requests: int = 0
    mib_sent: float = 0.0
    cpu_s: float = 0.0
    read_bytes: int = 0
    vm_hwm: int = 0
    wrong: str | None = None
    crashed: str | None = None  # the tool's process died after the reads (they were right)

    @property
    def cpu_per_gib(self) -> float | None:
        return self.cpu_s / (self.read_bytes / GiB) if self.read_bytes else None


@dataclass
class Sheet:
    """Every run of the scenario: tool → pattern → runs."""

    runs: dict[str, dict[str, list[Run]]] = field(default_factory=dict)

    def add(self, tool: str, pattern: str, run: Run) -> None:
        self.runs.setdefault(tool, {}).setdefault(pattern, []).append(run)

    def median_s(self, tool: str, pattern: str) -> float | None:
        """The median time, None when a run returned wrong bytes or failed."""
        runs = self.runs.get(tool, {}).get(pattern, [])
        if not runs or any(r.wrong for r in runs):
            return None
        return median([r.seconds for r in runs if r.seconds is not None])

    def cell(self, tool: str, pattern: str) -> str:
        runs = self.runs.get(tool, {}).get(pattern, [])
        if not runs:
            return "–"
        wrong = next((r.wrong for r in runs if r.wrong), None)
        if wrong and wrong.startswith("failed: "):
            return f"FAILED ({wrong.removeprefix('failed: ')})"
        if wrong:
            return f"WRONG ({wrong})"
        m = self.median_s(tool, pattern)
        req = median([r.data_requests for r in runs]) or 0
        sent = median([r.mib_sent for r in runs]) or 0
        hwm = max(r.vm_hwm for r in runs)
        if pattern.startswith("stream"):
            cpu = median([c for r in runs if (c := r.cpu_per_gib) is not None]) or 0
            cpu_text = f", {cpu:.1f} CPU-s/GiB"
        else:
            cpu_text = f", {median([r.cpu_s for r in runs]) or 0:.2f} CPU-s"
        crashed = next((r.crashed for r in runs if r.crashed), None)
        return f"{fmt_s(m)}, {req:.0f} req, {sent:.0f} MiB{cpu_text}, {hwm / 1e6:.0f} MB RSS" + (
            f"; then CRASHED ({crashed})" if crashed else ""
        )


# ------------------------------------------------------------------ the truth


@lru_cache(maxsize=64)
def _block(index: int) -> bytes:
    return generated_block(BIG_BLOB_KEY, index, BIG_BLOB_SIZE)


def expected(offset: int, length: int) -> bytes:
    """Bytes ``[offset, offset + length)`` of the 1 GiB blob, computed as the emulator does."""
    out = bytearray()
    pos, end = offset, min(offset + length, BIG_BLOB_SIZE)
    while pos < end:
        index, within = divmod(pos, GENERATED_BLOCK)
        take = min(end - pos, GENERATED_BLOCK - within)
        out += _block(index)[within : within + take]
        pos += take
    return bytes(out)


def offsets(count: int, length: int, salt: int) -> list[int]:
    """Fixed-seed, 4 KiB-aligned offsets of ``count`` reads of ``length`` in the blob."""
    rng = random.Random(SEED * 1000 + salt)
    return [rng.randrange((BIG_BLOB_SIZE - length) // SMALL) * SMALL for _ in range(count)]


@dataclass(frozen=True)
class Truth:
    """Digests of what each pattern must return, computed once per run of the scenario."""

    stream_bytes: int  # how much of the blob the streams read
    stream_mib: list[bytes]  # sha1 of each MiB of the streamed prefix
    rand4k: list[tuple[int, bytes]]  # (offset, sha1)
    rand1m: list[tuple[int, bytes]]
    nwb_sum: int
    nwb_local_s: float


def _one_line(exc: BaseException) -> str:
    """An exception as one short line, for a table cell."""
    text = " / ".join(line.strip() for line in str(exc).splitlines() if line.strip())
    return text if len(text) <= 160 else text[:157] + "..."


def _sha1(data: bytes) -> bytes:
    return hashlib.sha1(data, usedforsecurity=False).digest()


def verify_stream(path: Path, nbytes: int, truth: Truth) -> str | None:
    """Re-read ``nbytes`` of the file (1 MiB at a time) against the blob; the first wrong
    MiB, or None."""
    with open(path, "rb", buffering=0) as f:
        for i in range(nbytes // MiB):
            chunk = f.read(MiB)
            if len(chunk) != MiB:
                return f"short read at {i} MiB"
            if _sha1(chunk) != truth.stream_mib[i]:
                return f"bytes differ in MiB {i}"
    return None


# ------------------------------------------------------------------ measuring one run


class Meter:
    """Requests, body bytes the emulator sent for the blob, and the mount process's CPU around
    one run."""

    def __init__(self, emu: Emu, mount: ToolMount, blob_id: str) -> None:
        self.emu, self.mount, self.blob_id = emu, mount, blob_id

    def __enter__(self) -> Meter:
        self.emu.clear()
        self.c0 = cpu_seconds(self.mount.pid)
        return self

    def __exit__(self, *exc: object) -> None:
        self.cpu = cpu_seconds(self.mount.pid) - self.c0
        reqs = self.emu.requests()
        self.requests = len(reqs)
        data = [r for r in reqs if r["method"] == "GET" and r["path"].endswith("/" + self.blob_id)]
        self.data = len(data)
        self.sent = sum(int(r.get("sent", 0)) for r in data)

    def run(self, seconds: float | None, read_bytes: int, wrong: str | None) -> Run:
        hwm = self.mount.vm_hwm()
        # The kernel sends FUSE's RELEASE after close() returns: a tool that dies on it (as
        # httpdirfs 1.2.5 does after random reads) is gone a moment later.
        time.sleep(CRASH_GRACE_S)
        return Run(
            seconds=None if wrong else seconds,
            data_requests=self.data,
            requests=self.requests,
            mib_sent=self.sent / MiB,
            cpu_s=self.cpu,
            read_bytes=read_bytes,
            vm_hwm=hwm,
            wrong=wrong,
            crashed=self.mount.crash(),
        )


def random_reads(
    path: Path, reads: list[tuple[int, bytes]], length: int
) -> tuple[float, str | None]:
    """pread each offset in turn; (seconds, the first wrong read or None)."""
    wrong: str | None = None
    fd = os.open(path, os.O_RDONLY)
    try:
        t0 = time.perf_counter()
        got = [os.pread(fd, length, off) for off, _ in reads]
        elapsed = time.perf_counter() - t0
    finally:
        os.close(fd)
    for (off, digest), data in zip(reads, got, strict=True):
        if len(data) != length or _sha1(data) != digest:
            wrong = f"{len(data)} bytes at offset {off} differ"
            break
    return elapsed, wrong


# ------------------------------------------------------------------ the patterns of one tool


class ToolRuns:
    """Runs every pattern for one tool, once (one repetition)."""

    def __init__(
        self, ctx: Ctx, tool: Tool, sheet: Sheet, truth: Truth, target: Target, nwb: Target
    ) -> None:
        self.ctx, self.tool, self.sheet, self.truth = ctx, tool, sheet, truth
        self.target, self.nwb = target, nwb

    def mount(self, target: Target, throttled: bool = True) -> ToolMount:
        emu = self.ctx.dandi(throttled)
        cache = self.ctx.bench.new_dir(f"s13-cache-{self.tool.name.replace(' ', '-')}")
        return ToolMount(self.ctx, self.tool, emu, target, cache)

    def record(self, pattern: str, run: Run) -> None:
        self.sheet.add(self.tool.name, pattern, run)
        if run.crashed:
            log(f"[13] {self.tool.name}: {PATTERNS[pattern]}: CRASHED ({run.crashed})")
        if run.wrong:
            log(f"[13] {self.tool.name}: {PATTERNS[pattern]}: WRONG BYTES ({run.wrong})")
        else:
            log(
                f"[13] {self.tool.name}: {PATTERNS[pattern]}: {fmt_s(run.seconds)},"
                f" {run.data_requests} data requests ({run.requests} in all),"
                f" {run.mib_sent:.0f} MiB sent, {run.cpu_s:.2f} CPU-s, VmHWM"
                f" {run.vm_hwm / 1e6:.0f} MB"
            )

    def guarded(self, patterns: tuple[str, ...], body: Callable[[], None]) -> None:
        """Run a group of patterns; when a tool fails, the patterns of the group it did not
        reach are reported as failed, and the other tools go on."""
        before = {p: len(self.sheet.runs.get(self.tool.name, {}).get(p, [])) for p in patterns}
        try:
            body()
        except Exception as exc:  # a peer's failure is a result, not the bench's failure
            log(f"[13] {self.tool.name}: {', '.join(patterns)} FAILED: {exc!r:.500}")
            for p in patterns:
                if len(self.sheet.runs.get(self.tool.name, {}).get(p, [])) == before[p]:
                    self.sheet.add(self.tool.name, p, Run(wrong=f"failed: {_one_line(exc)}"))

    def stream(self) -> None:
        nbytes = self.truth.stream_bytes
        m = self.mount(self.target)
        try:
            m.start()
            self.timed_stream("stream_cold", m, nbytes)
            m.stop()
            m.start()  # the same cache, a fresh process
            self.timed_stream("stream_warm", m, nbytes)
        finally:
            m.stop()
            m.drop_cache_dir()

    def stream_fast(self) -> None:
        m = self.mount(self.target, throttled=False)
        try:
            m.start()
            self.timed_stream("stream_cold_fast", m, self.truth.stream_bytes)
        finally:
            m.stop()
            m.drop_cache_dir()

    def timed_stream(self, pattern: str, m: ToolMount, nbytes: int) -> None:
        drop_caches()
        with Meter(m.emu, m, self.target.blob_id) as meter:
            t = timed(read_cmd("cat", m.file, nbytes))
        # The check re-reads through the same process, unthrottled (it is not timed).
        m.emu.throttle(0, None)
        try:
            wrong = verify_stream(m.file, nbytes, self.truth)
        finally:
            self.ctx.dandi(throttled=pattern != "stream_cold_fast")
        self.record(pattern, meter.run(t, nbytes, wrong))

    def random(self) -> None:
        m = self.mount(self.target)
        try:
            m.start()
            for pattern in ("rand4k_cold", "rand4k_warm"):
                if pattern == "rand4k_warm":
                    m.stop()
                    m.start()
                drop_caches()
                with Meter(m.emu, m, self.target.blob_id) as meter:
                    t, wrong = random_reads(m.file, self.truth.rand4k, SMALL)
                self.record(pattern, meter.run(t, len(self.truth.rand4k) * SMALL, wrong))
        finally:
            m.stop()
            m.drop_cache_dir()

    def random_large(self) -> None:
        m = self.mount(self.target)
        try:
            m.start()
            drop_caches()
            with Meter(m.emu, m, self.target.blob_id) as meter:
                t, wrong = random_reads(m.file, self.truth.rand1m, LARGE)
            self.record("rand1m_cold", meter.run(t, len(self.truth.rand1m) * LARGE, wrong))
        finally:
            m.stop()
            m.drop_cache_dir()

    def nwb_open(self) -> None:
        m = self.mount(self.nwb)
        try:
            m.start()
            for pattern in ("nwb_cold", "nwb_warm"):
                if pattern == "nwb_warm":
                    m.stop()
                    m.start()
                drop_caches()
                with Meter(m.emu, m, self.nwb.blob_id) as meter:
                    out = run_snippet(
                        PY_BENCH, "h5_open", {"rows": ROWS, "source": "path", "target": str(m.file)}
                    )
                wrong = (
                    None
                    if out["slice_sum"] == self.truth.nwb_sum
                    else f"slice sum {out['slice_sum']} instead of {self.truth.nwb_sum}"
                )
                self.record(pattern, meter.run(out["seconds"], 0, wrong))
        finally:
            m.stop()
            m.drop_cache_dir()

    def all(self) -> None:
        self.guarded(("stream_cold", "stream_warm"), self.stream)
        self.guarded(("stream_cold_fast",), self.stream_fast)
        self.guarded(("rand4k_cold", "rand4k_warm"), self.random)
        self.guarded(("rand1m_cold",), self.random_large)
        if PY_BENCH.exists():
            self.guarded(("nwb_cold", "nwb_warm"), self.nwb_open)


# ------------------------------------------------------------------ the scenario


def _target(emu: Emu, path: str) -> Target:
    asset = dandi_asset(emu.api_url, PUBLISHED_DANDISET, "draft", path)
    blob_id = asset["blob"]
    s3_key = f"blobs/{blob_id[:3]}/{blob_id[3:6]}/{blob_id}"
    return Target(blob_id, s3_key, int(asset["size"]), f"dandi/{PUBLISHED_DANDISET}/draft/{path}")


def _truth(ctx: Ctx, emu: Emu, nwb: Target, stream_bytes: int, n4k: int, n1m: int) -> Truth:
    log("[13] computing the expected bytes (digests of the blob, the NWB slice on a local copy)")
    stream = [_sha1(expected(i * MiB, MiB)) for i in range(stream_bytes // MiB)]
    rand4k = [(o, _sha1(expected(o, SMALL))) for o in offsets(n4k, SMALL, 1)]
    rand1m = [(o, _sha1(expected(o, LARGE))) for o in offsets(n1m, LARGE, 2)]
    local = ctx.bench.new_dir("s13-local") / "sample.nwb"
    url = f"{emu.running.urls[1].rstrip('/')}/dandiarchive/{nwb.s3_key}"
    with httpx.Client(timeout=120) as c, open(local, "wb") as f:
        f.write(c.get(url).raise_for_status().content)
    nwb_sum, nwb_local_s = 0, 0.0
    if PY_BENCH.exists():
        drop_caches()
        out = run_snippet(
            PY_BENCH, "h5_open", {"rows": ROWS, "source": "path", "target": str(local)}
        )
        nwb_sum, nwb_local_s = int(out["slice_sum"]), float(out["seconds"])
    return Truth(stream_bytes, stream, rand4k, rand1m, nwb_sum, nwb_local_s)


def peers(ctx: Ctx) -> list[Result]:
    # --quick keeps the scenario near 6 minutes for 7 tools: shorter streams, fewer reads.
    n4k, n1m = (150, 20) if ctx.quick else (2000, 200)
    stream_bytes = min(ctx.read_bytes, QUICK_STREAM) if ctx.quick else ctx.read_bytes
    reps = min(ctx.reps, 3)
    emu = ctx.dandi(throttled=False)
    target = _target(emu, BIG_BLOB_PATH)
    nwb = _target(emu, NWB_PATH)
    truth = _truth(ctx, emu, nwb, stream_bytes, n4k, n1m)
    sheet = Sheet()
    missing = {t.name: why for t in TOOLS if (why := t.missing()) is not None}
    for name, why in missing.items():
        log(f"[13] {name} skipped: {why}")
    what = "1 GiB" if stream_bytes >= GiB else f"first {stream_bytes // MiB} MiB"
    log(
        f"[13] {len(TOOLS) - len(missing)} tools, {reps} repetition(s): streams of the {what},"
        f" {n4k} random 4 KiB reads, {n1m} random 1 MiB reads, NWB open; {ctx.network}"
    )
    for rep in range(reps):
        for tool in TOOLS:
            if tool.name in missing:
                continue
            log(f"[13] rep {rep + 1}/{reps}: {tool.name} ({' '.join(tool.args) or 'defaults'})")
            ToolRuns(ctx, tool, sheet, truth, target, nwb).all()
    return _results(ctx, sheet, missing, truth, n4k, n1m, what)


def _results(
    ctx: Ctx,
    sheet: Sheet,
    missing: dict[str, str],
    truth: Truth,
    n4k: int,
    n1m: int,
    what: str,
) -> list[Result]:
    titles = {
        "stream_cold": f"cold stream of the {what}, throttled",
        "stream_cold_fast": f"cold stream of the {what}, unthrottled",
        "stream_warm": f"warm stream of the {what} after remount",
        "rand4k_cold": f"{n4k:,} random 4 KiB reads, cold",
        "rand4k_warm": f"{n4k:,} random 4 KiB reads, warm (remount)",
        "rand1m_cold": f"{n1m:,} random 1 MiB reads, cold",
        "nwb_cold": "pynwb open + slice, cold",
        "nwb_warm": "pynwb open + slice, warm (remount)",
    }
    peers_ = [t.name for t in TOOLS if t.kind != "neurofs" and t.name not in missing]
    results = []
    table = matrix(sheet, titles)
    log(
        "[13] per tool (median time, data requests, MiB sent, the mount process's CPU-s (per"
        " GiB read for streams), peak RSS):\n" + table
    )
    for pattern, title in titles.items():
        # The best peer: the fastest whose bytes were right and whose process survived.
        timed_peers = {
            p: s
            for p in peers_
            if (s := sheet.median_s(p, pattern)) is not None
            and not any(r.crashed for r in sheet.runs[p][pattern])
        }
        best = min(timed_peers, key=lambda p: timed_peers[p]) if timed_peers else None
        result = Result(
            key=f"13 {pattern.replace('_', ' ')}",
            title=title,
            competitor=best or "no correct peer",
            neurofs_s=[
                r.seconds
                for r in sheet.runs.get("neurofs", {}).get(pattern, [])
                if r.seconds is not None
            ],
            competitor_s=[
                r.seconds
                for r in sheet.runs.get(best, {}).get(pattern, [])
                if r.seconds is not None
            ]
            if best
            else [],
            target_ratio=1.0,
            target_text="ahead of the best peer",
        )
        if sheet.median_s("neurofs", pattern) is None:
            result.neurofs_text = sheet.cell("neurofs", pattern)
            result.verdict_override = "wrong" if "WRONG" in result.neurofs_text else "–"
        result.notes.append(
            f"{title}: "
            + "; ".join(
                f"{t.name}: {sheet.cell(t.name, pattern)}" for t in TOOLS if t.name not in missing
            )
        )
        result.extra["runs"] = {
            tool: [vars(r) for r in by_pattern.get(pattern, [])]
            for tool, by_pattern in sheet.runs.items()
        }
        results.append(result)
    results[0].notes.append(
        "settings: "
        + "; ".join(f"{t.name}: {' '.join(t.args) or 'defaults'} ({t.why})" for t in TOOLS)
    )
    results[0].extra["matrix"] = table
    if truth.nwb_local_s:
        results[-1].notes.append(
            f"the NWB open + slice on a local copy: {fmt_s(truth.nwb_local_s)}"
        )
    for name, why in missing.items():
        results[0].notes.append(f"{name} not measured: {why}")
    return results


def matrix(sheet: Sheet, titles: dict[str, str]) -> str:
    """A Markdown table, patterns × tools (for docs/performance.md)."""
    tools = list(sheet.runs)
    head = "| pattern | " + " | ".join(tools) + " |"
    sep = "|---" * (len(tools) + 1) + "|"
    rows = [
        f"| {titles[p]} | " + " | ".join(sheet.cell(t, p) for t in tools) + " |" for p in titles
    ]
    return "\n".join([head, sep, *rows])

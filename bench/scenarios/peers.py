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

import time
from collections.abc import Callable
from dataclasses import dataclass, field

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
from bench.scenarios.peer_truth import (
    LARGE,
    SMALL,
    Truth,
    make_truth,
    random_reads,
    verify_stream,
)
from neurofs_emulators.dandi.sample import (
    BIG_BLOB_PATH,
    NWB_PATH,
    PUBLISHED_DANDISET,
)

QUICK_STREAM = 128 * MiB
CRASH_GRACE_S = 0.3
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


def _one_line(exc: BaseException) -> str:
    """An exception as one short line, for a table cell."""
    text = " / ".join(line.strip() for line in str(exc).splitlines() if line.strip())
    return text if len(text) <= 160 else text[:157] + "..."


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


def peers(ctx: Ctx) -> list[Result]:
    # --quick keeps the scenario near 6 minutes for 7 tools: shorter streams, fewer reads.
    n4k, n1m = (150, 20) if ctx.quick else (2000, 200)
    stream_bytes = min(ctx.read_bytes, QUICK_STREAM) if ctx.quick else ctx.read_bytes
    reps = min(ctx.reps, 3)
    emu = ctx.dandi(throttled=False)
    target = _target(emu, BIG_BLOB_PATH)
    nwb = _target(emu, NWB_PATH)
    truth = make_truth(ctx, emu, nwb, stream_bytes, n4k, n1m)
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

"""The bench driver: starts the emulators, runs the scenarios, prints the table, writes JSON.

Run it with ``scripts/bench`` (which installs what the competitors need first)::

    scripts/bench                 # every scenario, 5 repetitions, 1 GiB reads (~6 minutes)
    scripts/bench --quick         # 1 repetition, 256 MiB reads (about a minute)
    scripts/bench --only 1,4      # some scenarios
    scripts/bench --latency-ms 50 --bandwidth-mbps 800

Scenarios (each against its competitor, alternating neurofs / competitor per repetition):

1. cold read of the 1 GiB DANDI blob, ``cp`` from a fresh mount vs ``curl`` of the blob URL
2. the same without throttling
3. warm read after unmount/remount vs ``cat`` of a local copy
4. opening the NWB file through the mount vs remfile, cold and warm, with request counts
5. ``find`` + ``stat`` of the 2,005-asset dandiset vs the official dandi client's listing
6. a 256×256×96 WEBKNOSSOS region with zarr through the mount vs the official client
7. the daemon's peak RSS streaming 2 GiB, and the cache's disk use against its cap
8. zarr-python on the 1,000,003-key zarr of ``--sample large``: the mount vs s3fs, cold and warm
9. ``find | wc -l`` of the 100,000-asset dandiset of ``--sample large`` vs the dandi client's
   ``get_assets()``, and cold ``ls``/``stat`` in it
10. the first rows of a 10,000,000-row CAVE table: ``head`` / ``read_csv(nrows=1000)`` on the
    mount vs caveclient's ``query_table(limit=…)``
12. 2,000 random 4 KiB reads of the 1 GiB blob cold and warm after a remount, and 200 random
    1 MiB reads cold, vs a local copy and plain HTTP range GETs
13. neurofs beside rclone mount (1.60 and 1.75, default and tuned) and httpdirfs (default and
    tuned) on the 1 GiB blob: streams, random 4 KiB and 1 MiB reads, NWB open, cold and warm
14. a cluster: 3 nodes reading the blob through the shared tier (nginx) in turn and at once,
    origin bytes and time; neurofs:// (no FUSE) vs the mount on scenarios 4 and 6

The numbers are reported, never asserted: this is not a test.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import signal
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.context import Ctx
from bench.harness import (
    PY_BENCH,
    PY_DANDI,
    PY_WK,
    REPO,
    Bench,
    GiB,
    MiB,
    drop_caches,
    drop_caches_report,
    log,
)
from bench.report import Result, environment, notes, table, write_json
from bench.scenarios import (
    cluster,
    dandi_read,
    listing,
    nwb,
    peers,
    random_reads,
    scale_cave,
    scale_cpu,
    scale_dandiset,
    scale_wk,
    scale_zarr,
    wk,
)

SCENARIOS: dict[str, tuple[str, Callable[[Ctx], Result | list[Result]]]] = {
    "1": ("cold read vs curl (throttled)", lambda c: dandi_read.cold_read(c, throttled=True)),
    "2": ("cold read vs curl (no throttle)", lambda c: dandi_read.cold_read(c, throttled=False)),
    "3": ("warm read vs local cat", dandi_read.warm_read),
    "4": ("NWB open vs remfile", nwb.nwb_open),
    "5": ("find + stat vs dandi client", listing.listing),
    "6": ("WEBKNOSSOS region vs webknossos client", wk.wk_region),
    "7": ("daemon RSS and cache disk use", dandi_read.peak_rss),
    "8": ("1,000,003-key zarr: mount vs zarr over s3fs", scale_zarr.scale_zarr),
    "9": ("100,000-asset dandiset: find vs dandi client", scale_dandiset.scale_dandiset),
    "10": ("CAVE 10,000,000-row table: head vs caveclient", scale_cave.cave_head),
    "11": ("WEBKNOSSOS 40k×40k×10k layer: region and .raw vs webknossos client", scale_wk.scale_wk),
    "12": ("random 4 KiB and 1 MiB reads vs local file and HTTP", random_reads.random_reads),
    "13": ("neurofs beside rclone mount and httpdirfs", peers.peers),
    "14": ("a cluster: 3 nodes through the shared tier; neurofs:// vs the mount", cluster.cluster),
    "cpu": ("daemon CPU-seconds per GiB on cold reads, no throttle", scale_cpu.scale_cpu),
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="scripts/bench",
        description="neurofs against the tools people use instead, side by side.",
    )
    p.add_argument("--quick", action="store_true", help="1 repetition, 256 MiB reads")
    p.add_argument("--reps", type=int, help="repetitions per scenario (default 5; 1 with --quick)")
    p.add_argument(
        "--read-mib", type=int, help="MiB of the 1 GiB blob read in 1-3 (default 1024; 256 quick)"
    )
    p.add_argument("--only", help="comma-separated scenario numbers, e.g. 1,4,6")
    p.add_argument("--latency-ms", type=float, default=20.0, help="per request (default 20)")
    p.add_argument(
        "--bandwidth-mbps",
        type=float,
        default=400.0,
        help="megabits per second per connection (default 400 = 50 MB/s)",
    )
    p.add_argument("--out", help="JSON file (default bench-results/<timestamp>.json)")
    p.add_argument("--keep-workdir", action="store_true", help="keep mounts' dirs for debugging")
    return p.parse_args(argv)


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    reps = args.reps or (1 if args.quick else 5)
    read_bytes = (args.read_mib or (256 if args.quick else 1024)) * MiB
    read_bytes = min(read_bytes, GiB)
    chosen = [s.strip() for s in args.only.split(",")] if args.only else list(SCENARIOS)
    unknown = [s for s in chosen if s not in SCENARIOS]
    if unknown:
        print(f"unknown scenario(s) {unknown}; choose from {', '.join(SCENARIOS)}", file=sys.stderr)
        return 2
    skipped: dict[str, str] = {}
    competitors = (
        (PY_BENCH, "4"),
        (PY_DANDI, "5"),
        (PY_WK, "6"),
        (PY_BENCH, "8"),
        (PY_DANDI, "9"),
        (PY_WK, "11"),
    )
    for py, key in competitors:
        if key in chosen and not py.exists():
            chosen.remove(key)
            skipped[key] = f"{py} is missing (scripts/bench creates it)"
            print(f"scenario {key} skipped: {skipped[key]}", file=sys.stderr)
    if not os.path.exists("/dev/fuse"):
        print("/dev/fuse is missing: neurofs cannot mount here", file=sys.stderr)
        return 2

    # Ctrl-C, kill and a closed terminal all end in the same cleanup (also when the shell
    # started us with SIGINT ignored, as it does for background jobs).
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _raise_interrupt)

    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    out_path = args.out or str(REPO / "bench-results" / f"{stamp}.json")
    bench = Bench(keep_workdir=args.keep_workdir)
    ctx = Ctx(
        bench=bench,
        reps=reps,
        quick=args.quick,
        latency_ms=args.latency_ms,
        bandwidth_mbps=args.bandwidth_mbps or None,
        read_bytes=read_bytes,
    )
    dropped = drop_caches()
    log(
        f"neurofs bench: scenarios {','.join(chosen)}, {reps} repetition(s), reads of"
        f" {read_bytes // MiB} MiB, network {ctx.network}; page cache drop"
        f" {'works' if dropped else 'does NOT work (not root?)'}; load average"
        f" {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs; work dir {bench.workdir}"
    )
    results: list[Result] = []
    failures: dict[str, str] = {}
    interrupted = False
    started = time.monotonic()
    try:
        for key in chosen:
            name, run = SCENARIOS[key]
            t0 = time.monotonic()
            log(f"=== scenario {key}: {name}")
            try:
                out = run(ctx)
            except KeyboardInterrupt:
                raise
            except Exception as exc:
                failures[key] = "".join(traceback.format_exception(exc))
                log(f"=== scenario {key} FAILED: {exc!r} (continuing; traceback in the JSON)")
                # a failed scenario may leave a mount behind: clean up before the next one
                for m in bench.mounts:
                    with contextlib.suppress(Exception):
                        m.stop()
                continue
            results.extend(out if isinstance(out, list) else [out])
            log(f"=== scenario {key} done in {time.monotonic() - t0:.0f} s")
    except KeyboardInterrupt:
        interrupted = True
        log("interrupted: cleaning up mounts and emulators")
    finally:
        bench.close(keep_logs=bool(failures) or interrupted)

    total = time.monotonic() - started
    header = (
        f"neurofs bench {stamp}: {reps} repetition(s), medians; network {ctx.network}"
        f" (scenarios 2 and 7 unthrottled); ratio = competitor time / neurofs time (> 1: neurofs"
        f" faster)"
    )
    drop = drop_caches_report()
    print()
    print(header)
    print()
    print(table(results))
    print()
    print(notes(results))
    print(f"- page cache: {drop['detail']}")
    for key, why in skipped.items():
        print(f"- scenario {key} skipped: {why}")
    for key, tb in failures.items():
        print(f"- scenario {key} failed: {tb.strip().splitlines()[-1]}")
    if interrupted:
        print("- interrupted: the table is partial")
    print(
        f"- total time {total / 60:.1f} min; load average at the end"
        f" {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs (other work on the machine skews"
        f" every number)"
    )
    payload = {
        "timestamp": stamp,
        "args": vars(args),
        "reps": reps,
        "read_bytes": read_bytes,
        "network": {
            "latency_ms": ctx.latency_ms,
            "bandwidth_mbps": ctx.bandwidth_mbps,
            "text": ctx.network,
        },
        "page_cache_drop": drop,
        "environment": environment(),
        "results": [r.to_json() for r in results],
        "failures": failures,
        "skipped": skipped,
        "interrupted": interrupted,
        "total_seconds": total,
        "table": table(results),
    }
    write_json(Path(out_path), payload)
    print(f"- results written to {out_path}")
    return 130 if interrupted else (1 if failures else 0)

"""Scenario 10: the first rows of a 10,000,000-row CAVE table, through the mount vs caveclient.

The CAVE emulator runs the scale sample (``--sample large``: ``synapse_large``, 10,000,000
rows computed on the fly) at the bench's latency. Through the mount the table is a directory
of pages (``tables/synapse_large/annotations/rows-000000001-000010000.csv``, …): ``head -5``
and pandas ``read_csv(nrows=1000)`` of the first page, each on a fresh mount (cold: nothing
in memory, and table pages are never on disk). Competitor: the official ``caveclient`` in
``.venv-conformance-cave``, ``client.materialize.query_table("synapse_large", limit=…)`` with
a new ``CAVEclient`` each time (it asks the info service, the versions and the table's
metadata first, as every new client does).
"""

from __future__ import annotations

from pathlib import Path

from bench.context import Ctx
from bench.harness import PY_MAIN, REPO, Emu, Mount, fmt_s, log, run_snippet
from bench.report import Result
from neurofs_emulators.cave.sample import DATASTACK, LARGE_ROWS, LARGE_TABLE, OWNER_TOKEN
from neurofs_emulators.launch import start_emulator

PY_CAVE = REPO / ".venv-conformance-cave" / "bin" / "python"  # the official caveclient
PAGE = f"cave/{DATASTACK}/tables/{LARGE_TABLE}/annotations/rows-000000001-000010000.csv"
NROWS = 1000


def cave_head(ctx: Ctx) -> list[Result]:
    if not PY_CAVE.exists():
        raise RuntimeError(f"{PY_CAVE} is missing (scripts/bench creates it)")
    args = ["--sample", "large", "--latency-ms", str(ctx.latency_ms)]
    if ctx.bandwidth_mbps:
        args += ["--bandwidth-mbps", str(ctx.bandwidth_mbps)]
    log("[10] starting the CAVE emulator with the scale sample")
    with start_emulator("cave", args) as running:
        return _run(ctx, Emu(running))


def _run(ctx: Ctx, emu: Emu) -> list[Result]:
    rows = f"{LARGE_ROWS:,}"
    head = Result(
        key="10 head",
        title=f"CAVE {rows}-row table: head -5 vs query_table(limit=5)",
        competitor="caveclient",
        target_ratio=None,
        target_text="< 2 s",
    )
    nrows = Result(
        key="10 nrows",
        title=f"CAVE {rows}-row table: read_csv(nrows={NROWS}) vs query_table(limit={NROWS})",
        competitor="caveclient",
        target_ratio=None,
        target_text="< 2 s",
    )
    requests: dict[str, list[int]] = {"head": [], "nrows": [], "client_head": []}
    home = ctx.bench.new_dir("s10-home")
    for rep in range(ctx.reps):
        r = f"rep {rep + 1}/{ctx.reps}"
        for res, what in ((head, "head"), (nrows, "nrows")):
            m = _mount(ctx, emu, f"s10-{what}")
            m.start()
            try:
                emu.clear()
                out = run_snippet(
                    PY_MAIN, "table_head", {"path": str(m / PAGE), "what": what, "nrows": NROWS}
                )
                requests[what].append(emu.count()["requests"])
            finally:
                m.stop()
            res.neurofs_s.append(out["seconds"])
            log(
                f"[10] {r} neurofs {what}: {fmt_s(out['seconds'])}, {out['rows']} rows from id"
                f" {out['first_id']}, {requests[what][-1]} requests"
            )
        emu.clear()
        client = run_snippet(
            PY_CAVE,
            "cave_query",
            {
                "url": emu.running.urls[0],
                "token": OWNER_TOKEN,
                "datastack": DATASTACK,
                "table": LARGE_TABLE,
                "limits": [5, NROWS],
            },
            env={"HOME": str(home)},
            cwd=Path(home),
        )
        requests["client_head"].append(emu.count()["requests"])
        for res, run in zip((head, nrows), client["runs"], strict=True):
            res.competitor_s.append(run["seconds"])
            log(
                f"[10] {r} caveclient query_table(limit={run['limit']}):"
                f" {fmt_s(run['seconds'])}, {run['rows']} rows from id {run['first_id']}"
            )
    for res, what in ((head, "head"), (nrows, "nrows")):
        res.conditions["< 2 s"] = (res.neurofs_median or 0) < 2.0
        res.notes.append(
            f"{ctx.network}; neurofs cold on a fresh mount, first page of 10,000 rows,"
            f" requests {max(requests[what])}; caveclient: both limits in one process,"
            f" {max(requests['client_head'])} requests for the two"
        )
        res.extra.update(requests=requests)
    return [head, nrows]


def _mount(ctx: Ctx, emu: Emu, name: str) -> Mount:
    source = {
        "kind": "cave",
        "name": "cave",
        "url": emu.running.urls[0].rstrip("/"),
        "token": OWNER_TOKEN,
        "datastacks": [DATASTACK],
    }
    return ctx.bench.mount([source], name=name)

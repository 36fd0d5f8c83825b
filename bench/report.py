"""Results of the scenarios, the table printed at the end, and the JSON record."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.harness import REPO, fmt_s, median


@dataclass
class Result:
    """One row of the table: neurofs against its competitor.

    ``ratio`` is always competitor time / neurofs time, so above 1 means neurofs is faster;
    ``target`` is the issue's goal in the same unit (a lower bound on that ratio), or a text
    for rows that compare other things (requests, memory, disk).
    """

    key: str
    title: str
    competitor: str
    neurofs_s: list[float] = field(default_factory=list)
    competitor_s: list[float] = field(default_factory=list)
    target_ratio: float | None = None
    target_text: str = ""
    # Extra conditions of the target (e.g. "≤ 30 requests"): name → met?
    conditions: dict[str, bool] = field(default_factory=dict)
    # For rows without times (peak RSS): what to print in the columns.
    neurofs_text: str | None = None
    competitor_text: str | None = None
    ratio_text: str | None = None
    verdict_override: str | None = None
    notes: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def neurofs_median(self) -> float | None:
        return median(self.neurofs_s)

    @property
    def competitor_median(self) -> float | None:
        return median(self.competitor_s)

    @property
    def ratio(self) -> float | None:
        n, c = self.neurofs_median, self.competitor_median
        if n is None or c is None or n <= 0:
            return None
        return c / n

    @property
    def verdict(self) -> str:
        if self.verdict_override is not None:
            return self.verdict_override
        ok = True
        if self.target_ratio is not None:
            if self.ratio is None:
                return "–"
            ok = self.ratio >= self.target_ratio
        ok = ok and all(self.conditions.values())
        return "met" if ok else "missed"

    def cells(self) -> list[str]:
        neurofs = self.neurofs_text or fmt_s(self.neurofs_median)
        comp = self.competitor_text or fmt_s(self.competitor_median)
        if self.competitor_median is not None and self.competitor_text is None:
            comp = f"{comp} ({self.competitor})"
        if self.ratio_text is not None:
            ratio = self.ratio_text
        else:
            ratio = f"{self.ratio:.2f}×" if self.ratio is not None else "–"
            # Never print "0.50×" next to a missed "≥ 0.5×": show the digit that decides.
            if (
                self.ratio is not None
                and self.target_ratio is not None
                and self.ratio < self.target_ratio
                and f"{self.ratio:.2f}" == f"{self.target_ratio:.2f}"
            ):
                ratio = f"{self.ratio:.3f}×"
        return [self.key, self.title, neurofs, comp, ratio, self.target_text, self.verdict]

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out.update(
            neurofs_median_s=self.neurofs_median,
            competitor_median_s=self.competitor_median,
            ratio=self.ratio,
            verdict=self.verdict,
        )
        return out


HEADERS = ["#", "scenario", "neurofs (median)", "competitor (median)", "ratio", "target", ""]


def table(results: list[Result]) -> str:
    """A Markdown table (it is also readable in a terminal)."""
    rows = [HEADERS, *(r.cells() for r in results)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADERS))]

    def line(row: list[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |"

    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(rows[0]), sep, *(line(r) for r in rows[1:])])


def notes(results: list[Result]) -> str:
    out = []
    for r in results:
        for n in r.notes:
            out.append(f"- [{r.key}] {n}")
    return "\n".join(out)


def environment() -> dict[str, Any]:
    def cmd(argv: list[str]) -> str:
        try:
            return subprocess.run(argv, capture_output=True, text=True, check=False).stdout.strip()
        except OSError:
            return ""

    return {
        "kernel": platform.release(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "neurofs_commit": cmd(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"]),
        "neurofs_dirty": bool(cmd(["git", "-C", str(REPO), "status", "--porcelain", "src"])),
        "curl": cmd(["curl", "--version"]).splitlines()[0] if cmd(["curl", "--version"]) else "",
        "mem_total_kib": _meminfo_total(),
        "load_average": os.getloadavg(),
    }


def _meminfo_total() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def write_json(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=1, default=str) + "\n")

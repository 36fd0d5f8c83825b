"""Print the reliability table from the rows the tests wrote (JSON lines, see conftest.py).

    python -m tests.reliability.table ROWS.jsonl [--json OUT]

Exit status 1 when any row lost an edit or leaked a token, so the run fails loudly even if a
test forgot to assert it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

COLUMNS = [
    ("scenario", "scenario"),
    ("operations", "operations"),
    ("bytes_verified", "bytes verified"),
    ("reader_errors", "reader errors"),
    ("edits_lost", "edits lost"),
    ("tokens_leaked", "tokens leaked"),
    ("outcome", "result"),
]


def human_bytes(n: int) -> str:
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"


def load(path: Path) -> list[dict[str, object]]:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return sorted(rows, key=lambda r: str(r.get("test", "")))


def cell(row: dict[str, object], key: str) -> str:
    value = row.get(key, "")
    if key == "bytes_verified" and isinstance(value, int):
        return human_bytes(value)
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def markdown(rows: list[dict[str, object]]) -> str:
    header = "| " + " | ".join(title for _, title in COLUMNS) + " |"
    rule = "|" + "|".join("---" for _ in COLUMNS) + "|"
    lines = [header, rule]
    for row in rows:
        lines.append("| " + " | ".join(cell(row, key) for key, _ in COLUMNS) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("rows", type=Path)
    p.add_argument("--json", type=Path, help="also write the rows as one JSON document")
    args = p.parse_args(argv)
    rows = load(args.rows)
    print(markdown(rows))
    notes = [f"- {r['scenario']}: {r['note']}" for r in rows if r.get("note")]
    if notes:
        print()
        print("\n".join(notes))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")
    bad = [r for r in rows if r.get("edits_lost") or r.get("tokens_leaked")]
    for r in bad:
        print(
            f"FAILED: {r['scenario']} lost {r.get('edits_lost')} edits, leaked"
            f" {r.get('tokens_leaked')} tokens",
            file=sys.stderr,
        )
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Memory, read from Linux: a process's resident memory (/proc), for tests that bound the
daemon's, and how much of a file is in the kernel's page cache."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path


def _status_kb(pid: int, key: str) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    found = re.search(rf"^{key}:\s+(\d+) kB", status, re.M)
    assert found, f"no {key} in /proc/{pid}/status"
    return int(found.group(1))


def high_water_mark(pid: int) -> int:
    """The process's peak resident memory (VmHWM) in bytes."""
    return _status_kb(pid, "VmHWM") * 1024


def resident(pid: int) -> int:
    """The process's resident memory now (VmRSS) in bytes."""
    return _status_kb(pid, "VmRSS") * 1024


def reset_high_water_mark(pid: int) -> None:
    """Start VmHWM again from the current RSS (Linux's clear_refs "5")."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def cached_bytes(path: Path) -> int:
    """Bytes of ``path`` in the kernel's page cache (util-linux ``fincore``)."""
    out = subprocess.run(
        ["fincore", "--bytes", "--noheadings", "--output", "RES", str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(out.stdout.strip())

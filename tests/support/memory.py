"""A process's resident memory, read from /proc (Linux): for tests that bound the daemon's."""

from __future__ import annotations

import re
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

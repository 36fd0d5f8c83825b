"""Helpers of the network-fault scenarios: emulators of their own, reader tallies, figures.

Each scenario module starts its own emulators: the knobs it turns (faults, outage, trickle)
must not reach tests of other modules that share the session's emulators.
"""

from __future__ import annotations

import hashlib
import socket
import subprocess
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from tests.mount.conftest import Emulator, Mount

from .conftest import Figures

T = TypeVar("T")

# The shares the reliability requirement names: 10 % 5xx, 5 % cut mid-body, 2 % 429.
FAULTS: dict[str, Any] = {
    "error_rate": 0.10,
    "cut_rate": 0.05,
    "throttle_rate": 0.02,
    "retry_after": 1,
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(4 * 1024 * 1024):
            h.update(chunk)
    return h.hexdigest()


@dataclass
class Tally:
    """What readers did and saw: every operation is counted, every failure kept (readers may
    be threads)."""

    operations: int = 0
    bytes_verified: int = 0
    errors: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self, what: str, op: Callable[[], T]) -> T | None:
        """``op()`` as one reader operation; an exception is a reader error, not a crash."""
        with self._lock:
            self.operations += 1
        try:
            return op()
        except (OSError, subprocess.CalledProcessError) as exc:
            self.error(f"{what}: {exc}")
            return None

    def error(self, text: str) -> None:
        with self._lock:
            self.errors.append(text)

    def verified(self, nbytes: int) -> None:
        with self._lock:
            self.bytes_verified += nbytes

    def fill(self, report: Figures, note: str = "") -> None:
        report.operations += self.operations
        report.bytes_verified += self.bytes_verified
        report.reader_errors += len(self.errors)
        if note:
            report.note = f"{report.note}; {note}" if report.note else note


def injected(emulator: Emulator) -> Counter[str]:
    """Faults the emulator injected since its log was last cleared, by kind."""
    return Counter(r["fault"] for r in emulator.requests() if r.get("fault"))


def fault_note(mount: Mount, emulators: list[Emulator]) -> str:
    """'N requests, R retried, faults injected: …' from stats.json and the emulators' logs."""
    stats = mount.stats()
    kinds: Counter[str] = Counter()
    for emulator in emulators:
        kinds.update(injected(emulator))
    shown = ", ".join(f"{k} {v}" for k, v in sorted(kinds.items()))
    return f"{stats['requests']} requests, {stats['retries']} retries; injected: {shown}"

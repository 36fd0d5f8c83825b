"""Progress of a long copy-like job (``neurofs prefetch``), for a terminal or a log.

On a terminal: one line, redrawn in place at most every ``TERMINAL_INTERVAL`` seconds. Not on
a terminal (a pipe, a file, CI logs): a plain line every ``PLAIN_INTERVAL`` seconds. Both
end with a one-line summary. The clock is injected so the output can be tested exactly.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TextIO

TERMINAL_INTERVAL = 0.2
PLAIN_INTERVAL = 10.0
# The rate is measured over this window, so it follows the network rather than averaging
# the whole run (the ETA then reacts when a slow stretch starts or ends).
RATE_WINDOW = 5.0


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def human_duration(seconds: float) -> str:
    s = round(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


class Progress:
    """Thread-safe: workers call ``advance``; the owner calls ``finish`` once."""

    def __init__(
        self,
        total_bytes: int,
        total_files: int,
        out: TextIO,
        *,
        terminal: bool,
        clock: Callable[[], float] = time.monotonic,
        interval: float | None = None,
    ) -> None:
        self.total_bytes = total_bytes
        self.total_files = total_files
        self.done_bytes = 0
        self.done_files = 0
        self._out = out
        self._terminal = terminal
        self._clock = clock
        self._interval = interval or (TERMINAL_INTERVAL if terminal else PLAIN_INTERVAL)
        self._lock = threading.Lock()
        self._start = clock()
        self._last_draw = self._start
        self._samples: list[tuple[float, int]] = [(self._start, 0)]
        self._drawn = False  # a terminal line is on screen, not yet ended

    def advance(self, nbytes: int = 0, files: int = 0) -> None:
        with self._lock:
            self.done_bytes += nbytes
            self.done_files += files
            now = self._clock()
            self._samples.append((now, self.done_bytes))
            while len(self._samples) > 2 and self._samples[1][0] < now - RATE_WINDOW:
                self._samples.pop(0)
            if now - self._last_draw >= self._interval:
                self._last_draw = now
                self._draw(self.line(now))

    def message(self, text: str) -> None:
        """A line of its own (a failed file), without garbling the progress line."""
        with self._lock:
            if self._drawn:
                self._out.write("\r\x1b[K")
                self._drawn = False
            self._out.write(text + "\n")
            self._out.flush()

    def rate(self, now: float) -> float:
        """Bytes per second over the last RATE_WINDOW seconds."""
        t0, b0 = self._samples[0]
        return (self.done_bytes - b0) / (now - t0) if now > t0 else 0.0

    def line(self, now: float) -> str:
        total = self.total_bytes
        percent = 100.0 * self.done_bytes / total if total else 100.0
        rate = self.rate(now)
        left = total - self.done_bytes
        eta = human_duration(left / rate) if rate > 0 else "?"
        if left <= 0:
            eta = "0s"
        return (
            f"{human_bytes(self.done_bytes)} / {human_bytes(total)}  {percent:5.1f}%  "
            f"{human_bytes(rate)}/s  ETA {eta}  {self.done_files}/{self.total_files} files"
        )

    def _draw(self, line: str) -> None:
        if self._terminal:
            self._out.write("\r" + line + "\x1b[K")
            self._drawn = True
        else:
            self._out.write(line + "\n")
        self._out.flush()

    def finish(self, outcome: str) -> str:
        """End the progress display with a summary line; return the summary."""
        with self._lock:
            elapsed = self._clock() - self._start
            average = self.done_bytes / elapsed if elapsed > 0 else 0.0
            summary = (
                f"{outcome}: {human_bytes(self.done_bytes)} of {human_bytes(self.total_bytes)} "
                f"in {self.done_files}/{self.total_files} files, {human_duration(elapsed)} "
                f"({human_bytes(average)}/s)"
            )
            if self._drawn:
                self._out.write("\r\x1b[K")
                self._drawn = False
            self._out.write(summary + "\n")
            self._out.flush()
            return summary

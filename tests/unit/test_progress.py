"""The progress renderer of ``neurofs prefetch``: terminal and plain modes, fake clock."""

from __future__ import annotations

import io

from neurofs.cli.progress import Progress, human_bytes, human_duration

MiB = 1024 * 1024


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_terminal_mode_redraws_one_line_in_place() -> None:
    out, clock = io.StringIO(), FakeClock()
    p = Progress(40 * MiB, 4, out, terminal=True, clock=clock)
    clock.now += 1.0
    p.advance(10 * MiB, files=1)
    clock.now += 1.0
    p.advance(10 * MiB, files=1)
    text = out.getvalue()
    assert "\n" not in text  # the same line, redrawn
    assert text.count("\r") == 2
    last = text.rsplit("\r", 1)[1]
    assert last == "20.0 MiB / 40.0 MiB   50.0%  10.0 MiB/s  ETA 2s  2/4 files\x1b[K"
    summary = p.finish("prefetched")
    assert summary == "prefetched: 20.0 MiB of 40.0 MiB in 2/4 files, 2s (10.0 MiB/s)"
    # The progress line is erased and the summary is a line of its own.
    assert out.getvalue().endswith("\r\x1b[K" + summary + "\n")


def test_terminal_mode_draws_at_most_every_interval() -> None:
    out, clock = io.StringIO(), FakeClock()
    p = Progress(100, 100, out, terminal=True, clock=clock)
    for _ in range(50):
        clock.now += 0.01  # 50 updates within 0.5 s
        p.advance(1)
    assert 1 <= out.getvalue().count("\r") <= 3


def test_plain_mode_writes_whole_lines_at_its_interval() -> None:
    out, clock = io.StringIO(), FakeClock()
    p = Progress(10 * MiB, 10, out, terminal=False, clock=clock, interval=10.0)
    for _ in range(10):
        clock.now += 3.0
        p.advance(MiB, files=1)
    lines = out.getvalue().splitlines()
    assert len(lines) == 2  # at 12 s and 24 s; 30 s is only 6 s after the last line
    assert "\r" not in out.getvalue() and "\x1b" not in out.getvalue()
    assert lines[0] == "4.0 MiB / 10.0 MiB   40.0%  341.3 KiB/s  ETA 18s  4/10 files"
    p.finish("prefetched")
    assert out.getvalue().splitlines()[-1].startswith("prefetched: 10.0 MiB of 10.0 MiB in 10/10")


def test_message_clears_the_terminal_line_first() -> None:
    out, clock = io.StringIO(), FakeClock()
    p = Progress(10, 2, out, terminal=True, clock=clock)
    clock.now += 1
    p.advance(5)
    p.message("neurofs: prefetch: x: Input/output error")
    assert out.getvalue().endswith("\r\x1b[Kneurofs: prefetch: x: Input/output error\n")


def test_eta_unknown_without_progress_and_zero_when_done() -> None:
    clock = FakeClock()
    p = Progress(10, 1, io.StringIO(), terminal=False, clock=clock)
    assert "ETA ?" in p.line(clock.now)
    clock.now += 1
    p.advance(10, files=1)
    assert "ETA 0s" in p.line(clock.now)
    empty = Progress(0, 0, io.StringIO(), terminal=False, clock=clock)
    assert "100.0%" in empty.line(clock.now)


def test_rate_follows_the_recent_window() -> None:
    clock = FakeClock()
    p = Progress(1000 * MiB, 1, io.StringIO(), terminal=False, clock=clock)
    for _ in range(10):  # fast at first: 10 MiB/s
        clock.now += 1
        p.advance(10 * MiB)
    for _ in range(10):  # then 1 MiB/s
        clock.now += 1
        p.advance(MiB)
    assert p.rate(clock.now) < 2.5 * MiB


def test_human_units() -> None:
    assert human_bytes(0) == "0 B"
    assert human_bytes(1536) == "1.5 KiB"
    assert human_bytes(3 * 1024**3) == "3.0 GiB"
    assert human_duration(59) == "59s"
    assert human_duration(61) == "1m01s"
    assert human_duration(3 * 3600 + 120) == "3h02m"

"""Fail a test when neurofs logs a warning or an error the test did not expect.

After s3ql's ``tests/pytest_checklogs.py``. Two places are watched:

- in-process: a handler on the ``neurofs`` logger (units, the tree and sources driven
  directly), for records at WARNING and above;
- the daemons of real mounts: every :class:`tests.support.mounting.Mount` reports what its
  daemon wrote to its log file (``neurofs mount``'s log, the daemon's stderr included),
  and lines at WARNING and above, tracebacks and ``neurofs: warning:`` lines count.

A test declares what it expects with ``@pytest.mark.expect_log("regex", ...)`` (on the test,
its class or its module's ``pytestmark``), or at run time with the ``expected_logs`` fixture
(``expected_logs.expect("regex")``). A pattern is searched (``re.search``) in the line as
``LEVEL logger: message`` (``WARNING neurofs.io.http: GET ... failed``), so it may name the
level, the logger or part of the message. Anything else fails the test phase during which it
was logged (setup, call or teardown); the unexpected lines are in the failure message.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass

from tests.support import mounting

LEVEL = logging.WARNING
MARKER = "expect_log"

# A daemon log line: neurofs.cli.main's format, "%(asctime)s %(levelname)s %(name)s: %(message)s".
_HEADER = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} ([A-Z]+) ([^\s:]+): ?(.*)$")
_LEVELS = {"WARNING", "ERROR", "CRITICAL"}


@dataclass(frozen=True)
class LogLine:
    """One logged record: where it came from, its level, logger and text (continuation lines,
    a traceback for instance, included)."""

    origin: str
    level: str
    logger: str
    text: str

    def __str__(self) -> str:
        return f"{self.level} {self.logger}: {self.text}"


class _Handler(logging.Handler):
    def __init__(self) -> None:
        super().__init__(LEVEL)
        self.lines: list[LogLine] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
        except Exception as exc:  # a bad format string is worth a failure too
            text = f"{record.msg!r} (unformattable: {exc})"
        if record.exc_info and record.exc_info[0] is not None:
            text += "\n" + logging.Formatter().formatException(record.exc_info)
        self.lines.append(LogLine("in-process", record.levelname, record.name, text))


def parse_daemon_log(text: str, origin: str) -> list[LogLine]:
    """The records at WARNING and above in a piece of a daemon's log, plus what the daemon
    wrote to stderr outside logging that signals trouble: tracebacks (with the lines after
    them) and the ``neurofs: warning:`` lines of a mount that came up with warnings."""
    found: list[LogLine] = []
    current: list[str] | None = None  # [level, logger, text] of the record being read

    def close() -> None:
        if current is not None and current[0] in _LEVELS:
            found.append(LogLine(origin, current[0], current[1], current[2]))

    for line in text.splitlines():
        header = _HEADER.match(line)
        if header:
            close()
            current = [header.group(1), header.group(2), header.group(3)]
        elif line.startswith("Traceback (most recent call last)"):
            if current is not None and current[0] in _LEVELS:
                current[2] += "\n" + line  # log.exception's traceback
            else:
                close()
                current = ["ERROR", "stderr", line]
        elif line.startswith("neurofs: warning: "):
            close()
            current = ["WARNING", "stderr", line]
        elif current is not None:
            current[2] += "\n" + line
    close()
    return found


class LogChecker:
    """Collects unexpected lines between :meth:`begin` and :meth:`end` of a test phase."""

    def __init__(self) -> None:
        self._handler = _Handler()
        self._daemon: list[LogLine] = []
        self._runtime_patterns: list[re.Pattern[str]] = []

    def install(self) -> None:
        logging.getLogger("neurofs").addHandler(self._handler)
        mounting.log_listeners.append(self._daemon_text)

    def uninstall(self) -> None:
        logging.getLogger("neurofs").removeHandler(self._handler)
        if self._daemon_text in mounting.log_listeners:
            mounting.log_listeners.remove(self._daemon_text)

    def _daemon_text(self, mount: mounting.Mount, text: str) -> None:
        self._daemon.extend(parse_daemon_log(text, f"daemon of {mount.path}"))

    def expect(self, pattern: str) -> None:
        """Expect lines matching ``pattern`` for the rest of the current test."""
        self._runtime_patterns.append(re.compile(pattern))

    def reset_expectations(self) -> None:
        self._runtime_patterns.clear()

    def take(self) -> list[LogLine]:
        """Everything logged since the last call (daemons of live mounts read first)."""
        mounting.collect_logs()
        lines = self._handler.lines + self._daemon
        self._handler.lines, self._daemon = [], []
        return lines

    def unexpected(self, lines: Iterable[LogLine], patterns: Iterable[str]) -> list[LogLine]:
        compiled = [re.compile(p) for p in patterns] + self._runtime_patterns
        return [line for line in lines if not any(p.search(str(line)) for p in compiled)]


def describe(lines: list[LogLine]) -> str:
    shown = "\n".join(f"  [{line.origin}] {line}" for line in lines[:20])
    more = f"\n  ... and {len(lines) - 20} more" if len(lines) > 20 else ""
    return (
        f"neurofs logged {len(lines)} unexpected warning/error line(s); declare expected ones "
        f"with @pytest.mark.{MARKER}(pattern) or expected_logs.expect(pattern):\n{shown}{more}"
    )

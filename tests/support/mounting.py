"""Mounting neurofs as a user does, for the tests and the benchmarks.

A :class:`Mount` runs ``neurofs mount`` (background mode: the command returns once the mount
serves, the daemon keeps running) and ``neurofs unmount``. It remembers the command's output,
the daemon's pid and its log file, so that whoever watches the logs (the tests' log checker,
:mod:`tests.support.logcheck`) can read what the daemon logged: every started mount is
registered until it is stopped, and :func:`collect_logs` hands each one's new log text to the
functions in :data:`log_listeners`.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

NEUROFS = [sys.executable, "-m", "neurofs"]

# How long ``neurofs mount`` may take to report the mount ready, and ``neurofs unmount`` to
# see the daemon finish.
MOUNT_TIMEOUT = 120
UNMOUNT_TIMEOUT = 120

# Called with (mount, text) for each piece of a daemon's log read by collect_logs or stop.
LogListener = Callable[["Mount", str], None]
log_listeners: list[LogListener] = []

# Started and not yet stopped, by id (a Mount compares by value, so it is not hashable).
_live: dict[int, Mount] = {}


class MountFailed(AssertionError):
    """``neurofs mount`` did not report the mount ready (an AssertionError, so that a test
    that meets it fails rather than errors)."""


def require_fuse() -> None:
    """Skip without /dev/fuse; in CI (``CI`` set), fail instead."""
    if not os.path.exists("/dev/fuse"):
        from tests.unavailable import unavailable

        unavailable("/dev/fuse is missing")


def is_dead(path: Path) -> bool:
    """True for a dead mount (the daemon is gone: "Transport endpoint is not connected")."""
    try:
        os.stat(path)
    except OSError:
        return True
    return False


@dataclass
class Mount:
    """A mount point, its configuration and cache, and the daemon serving it."""

    path: Path
    config: Path
    cache_dir: Path
    # More arguments for ``neurofs mount`` (``-o`` options, ``--cache-size`` ...).
    extra: list[str] = field(default_factory=list)
    # Environment variables added for ``neurofs mount`` (and so the daemon).
    env: dict[str, str] = field(default_factory=dict)
    cache_size: str | None = None  # --cache-size
    log_level: str | None = None  # --log-level; None: the daemon's default (info)
    # What the last ``neurofs mount`` printed (stdout, then stderr).
    last_output: str = ""
    pid: int | None = None  # the daemon's, while mounted
    log_path: Path | None = None  # the daemon's log file, from the mount command's output
    _log_offset: int = field(default=0, repr=False)  # how far the log has been read

    def argv(self) -> list[str]:
        argv = [*NEUROFS, "mount", str(self.path)]
        argv += ["--config", str(self.config), "--cache-dir", str(self.cache_dir)]
        if self.cache_size:
            argv += ["--cache-size", self.cache_size]
        if self.log_level:
            argv += ["--log-level", self.log_level]
        return argv + self.extra

    def start(self, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Mount. With ``check`` a failure raises :class:`MountFailed` with the output."""
        result = subprocess.run(
            self.argv(),
            capture_output=True,
            text=True,
            timeout=MOUNT_TIMEOUT,
            env={**os.environ, **self.env},
            check=False,
        )
        self.last_output = result.stdout + result.stderr
        if result.returncode == 0:
            self._started(self.last_output)
        if check and (result.returncode != 0 or not os.path.ismount(self.path)):
            raise MountFailed(
                f"neurofs mount {self.path} failed ({result.returncode}):\n{self.last_output}"
            )
        return result

    def _started(self, output: str) -> None:
        log_found = re.search(r"\blog (/\S+\.log)\)", output)
        log_path = Path(log_found.group(1)) if log_found else None
        if log_path != self.log_path:
            self.log_path, self._log_offset = log_path, 0
        pid_found = re.search(r"daemon pid (\d+)", output)
        self.pid = int(pid_found.group(1)) if pid_found else _pid_from_file(self.path)
        _live[id(self)] = self

    def stop(self) -> None:
        """Unmount (also a dead mount) and wait for the daemon to finish. When ``neurofs
        unmount`` fails, the mount is detached lazily and MountFailed raised."""
        try:
            if os.path.ismount(self.path) or is_dead(self.path):
                result = subprocess.run(
                    [*NEUROFS, "unmount", str(self.path)],
                    capture_output=True,
                    text=True,
                    timeout=UNMOUNT_TIMEOUT,
                    check=False,
                )
                if result.returncode != 0:
                    subprocess.run(["fusermount3", "-u", "-z", str(self.path)], check=False)
                    raise MountFailed(f"unmount failed: {result.stdout}{result.stderr}")
        finally:
            self.pid = None
            _live.pop(id(self), None)
            self.collect_log()

    def remount(self) -> None:
        self.stop()
        self.start()

    def collect_log(self) -> str:
        """What the daemon logged since the last call (whole lines), also handed to the
        :data:`log_listeners`."""
        if self.log_path is None:
            return ""
        try:
            with self.log_path.open("rb") as f:
                f.seek(self._log_offset)
                data = f.read()
        except OSError:
            return ""
        end = data.rfind(b"\n") + 1
        self._log_offset += end
        text = data[:end].decode(errors="replace")
        if text:
            for listener in log_listeners:
                listener(self, text)
        return text

    def stats(self) -> dict[str, Any]:
        return json.loads((self.path / ".neurofs" / "stats.json").read_text())

    def __truediv__(self, other: str) -> Path:
        return self.path / other


def collect_logs() -> None:
    """Read the new log lines of every mount started and not yet stopped."""
    for mount in list(_live.values()):
        mount.collect_log()


def _pid_from_file(mountpoint: Path) -> int | None:
    try:
        from neurofs.fs.daemon import pid_file

        return int(pid_file(mountpoint).read_text().split()[0])
    except Exception:
        return None


def write_sources(path: Path, sources: Sequence[Mapping[str, Any]]) -> Path:
    """A configuration file with these ``[[source]]`` tables, private (0600) as a file
    holding tokens must be."""
    lines: list[str] = []
    for source in sources:
        lines.append("[[source]]")
        lines += [f"{key} = {json.dumps(value)}" for key, value in source.items()]
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)
    return path


def write_config(
    path: Path, url: str, token: str | None, kind: str = "dandi", **extra: Any
) -> Path:
    """A configuration with one source of ``kind``, named like it."""
    source: dict[str, Any] = {"kind": kind, "name": kind, "url": url}
    if token:
        source["token"] = token
    return write_sources(path, [source | extra])

"""Running the daemon in the background and waiting until its mount is ready.

The parent starts the same command with ``--foreground --ready-fd N`` in a new session (so it
outlives the terminal), its output going to a log file, and reads one line from the pipe:
``READY`` plus warnings, or ``ERROR <message>``. It exits 0 only after ``READY``.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from neurofs.config import default_log_dir, private_dir
from neurofs.secrets import redact

log = logging.getLogger(__name__)

READY_TIMEOUT = 120.0


class Readiness:
    """The child's side: report once, through the inherited pipe (or to stderr)."""

    def __init__(self, fd: int | None) -> None:
        self._fd = fd
        self._sent = False

    def ready(self, warnings: list[str]) -> None:
        warnings = [redact(w) for w in warnings]
        self._send({"ready": True, "warnings": warnings})
        log.info("mount ready")
        for w in warnings:
            print(f"neurofs: warning: {w}", file=sys.stderr, flush=True)

    def failed(self, message: str) -> None:
        self._send({"ready": False, "error": redact(message)})

    def _send(self, message: dict[str, object]) -> None:
        if self._sent or self._fd is None:
            return
        self._sent = True
        try:
            os.write(self._fd, (json.dumps(message) + "\n").encode())
            os.close(self._fd)
        except OSError:
            pass


def log_file_for(mountpoint: Path) -> Path:
    log_dir = private_dir(default_log_dir())
    safe = str(mountpoint.resolve()).strip("/").replace("/", "_") or "root"
    return log_dir / f"mount-{safe}.log"


def spawn_and_wait(argv: Sequence[str], mountpoint: Path) -> int:
    """Start ``neurofs <argv> --foreground --ready-fd N`` detached; wait for readiness."""
    read_fd, write_fd = os.pipe()
    log_path = log_file_for(mountpoint)
    # The log is the user's alone (it names files and servers' messages): 0600.
    fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
    os.fchmod(fd, 0o600)
    with open(fd, "ab") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "neurofs", *argv, "--foreground", "--ready-fd", str(write_fd)],
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=log_file,
            pass_fds=(write_fd,),
            start_new_session=True,
        )
    os.close(write_fd)
    line = _read_line(read_fd, proc)
    os.close(read_fd)
    if line is None:
        code = proc.poll()
        print(
            f"neurofs: the daemon exited (status {code}) before the mount was ready; "
            f"see {log_path}",
            file=sys.stderr,
        )
        return 1
    message = json.loads(line)
    if not message.get("ready"):
        print(f"neurofs: {message.get('error')}", file=sys.stderr)
        proc.wait(timeout=30)
        return 1
    for w in message.get("warnings", []):
        print(f"neurofs: warning: {w}", file=sys.stderr)
    print(f"neurofs: mounted at {mountpoint} (daemon pid {proc.pid}, log {log_path})")
    print(f"neurofs: leave with: neurofs unmount {mountpoint}")
    return 0


def _read_line(fd: int, proc: subprocess.Popen[bytes]) -> str | None:
    deadline = time.monotonic() + READY_TIMEOUT
    buf = b""
    os.set_blocking(fd, True)
    while b"\n" not in buf:
        if time.monotonic() > deadline:
            proc.terminate()
            return None
        chunk = os.read(fd, 4096)
        if not chunk:
            return None
        buf += chunk
    return buf.split(b"\n", 1)[0].decode()

"""A shared cache tier for tests: ``neurofs tier run`` (real nginx) on a free loopback port."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.support.mounting import NEUROFS
from tests.unavailable import unavailable

START_TIMEOUT = 20.0


@dataclass
class RunningTier:
    url: str
    cache_dir: Path
    process: subprocess.Popen[bytes]

    @property
    def access_log(self) -> Path:
        return self.cache_dir / "access.log"

    def stop(self) -> None:
        """nginx's fast shutdown: the master stops its workers, then itself."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
        self.kill()  # any worker left behind

    def kill(self) -> None:
        """SIGKILL to the master and its workers at once (killing the master alone leaves
        the workers serving)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()


def nginx_available() -> bool:
    return shutil.which("nginx") is not None or os.access("/usr/sbin/nginx", os.X_OK)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.contextmanager
def started_tier(origins: Sequence[str], cache_dir: Path) -> Iterator[RunningTier]:
    """nginx serving ``origins`` from ``cache_dir`` until the block ends (without nginx: a
    skip on a developer's machine, a failure in CI)."""
    if not nginx_available():
        unavailable("nginx is not installed (scripts/setup installs it)")
    port = free_port()
    argv = [*NEUROFS, "tier", "run", "--listen", f"127.0.0.1:{port}", "--cache-dir", str(cache_dir)]
    argv += [a for o in origins for a in ("--origin", o)]
    if os.geteuid() == 0:  # the test's directories are root's own: workers must be root too
        argv += ["--user", "root"]
    # A process group of its own: the master and its workers can be killed together.
    process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, start_new_session=True)
    tier = RunningTier(f"http://127.0.0.1:{port}", cache_dir, process)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"neurofs tier run exited with {process.returncode}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
                break
            if time.monotonic() > deadline:
                raise RuntimeError("the tier did not start listening")
            time.sleep(0.05)
        yield tier
    finally:
        tier.stop()

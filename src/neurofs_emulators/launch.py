"""Start an emulator in a subprocess and wait for its ready line.

Used by ``neurofs demo``, the mount tests and the emulator tests::

    with start_emulator("dandi", ["--latency-ms", "5"]) as emu:
        httpx.get(emu.api_url + "/dandisets/")
        emu.requests()        # what the emulator has seen (GET /__emulator__/requests)

The subprocess runs ``python -m neurofs_emulators.<service> ARGS`` with the current
interpreter; its stderr is inherited (warnings show up where the caller's do).
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import IO, Any, Self
from urllib.parse import urlsplit

import httpx

from neurofs_emulators.server import READY_PREFIX

# The first start of an emulator may generate its sample data (about 10 s for DANDI).
DEFAULT_READY_TIMEOUT = 300.0


class EmulatorStartError(RuntimeError):
    """The emulator exited or stayed silent instead of printing its ready line."""


class RunningEmulator:
    """A started emulator subprocess: its URLs, its request log, and how to stop it."""

    def __init__(
        self,
        service: str,
        process: subprocess.Popen[str],
        urls: list[str],
        pump: threading.Thread | None = None,
    ) -> None:
        self.service = service
        self.process = process
        self.urls = urls
        self._pump = pump

    @property
    def api_url(self) -> str:
        """The first URL of the ready line (for DANDI: ``http://HOST:PORT/api``)."""
        return self.urls[0]

    @property
    def origin(self) -> str:
        """``scheme://host:port`` of the first socket (where ``/__emulator__`` lives)."""
        parts = urlsplit(self.urls[0])
        return f"{parts.scheme}://{parts.netloc}"

    def requests(self) -> list[dict[str, Any]]:
        """Every request the emulator has served since start or :meth:`clear_requests`."""
        response = httpx.get(f"{self.origin}/__emulator__/requests", timeout=10)
        response.raise_for_status()
        result: list[dict[str, Any]] = response.json()
        return result

    def clear_requests(self) -> None:
        httpx.delete(f"{self.origin}/__emulator__/requests", timeout=10).raise_for_status()

    def set_knobs(self, **knobs: Any) -> dict[str, Any]:
        """Replace the network knobs at run time (fields of ``NetworkKnobs``)."""
        response = httpx.put(f"{self.origin}/__emulator__/knobs", json=knobs, timeout=10)
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM, then SIGKILL after ``timeout`` seconds; returns the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        # The pump thread sees EOF once the child is gone; join it before closing the pipe.
        if self._pump is not None:
            self._pump.join(5)
        if self.process.stdout is not None:
            self.process.stdout.close()
        return self.process.returncode

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def parse_ready_line(line: str, service: str) -> list[str] | None:
    parts = line.split()
    if len(parts) >= 4 and parts[:3] == [READY_PREFIX, service, "ready"]:
        return parts[3:]
    return None


def start_emulator(
    service: str,
    args: Sequence[str] = (),
    *,
    env: Mapping[str, str] | None = None,
    timeout: float = DEFAULT_READY_TIMEOUT,
) -> RunningEmulator:
    """Run ``python -m neurofs_emulators.<service> ARGS`` and wait for its ready line.

    ``env`` entries are added to the current environment.
    """
    full_env = dict(os.environ)
    full_env.update(env or {})
    process = subprocess.Popen(
        [sys.executable, "-m", f"neurofs_emulators.{service}", *args],
        stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env=full_env,
    )
    assert process.stdout is not None
    lines: queue.Queue[str | None] = queue.Queue()
    pump = threading.Thread(target=_pump, args=(process.stdout, lines), daemon=True)
    pump.start()
    try:
        while True:
            try:
                line = lines.get(timeout=timeout)
            except queue.Empty:
                raise EmulatorStartError(
                    f"{service} emulator printed no ready line within {timeout:.0f} s"
                ) from None
            if line is None:
                code = process.wait()
                raise EmulatorStartError(f"{service} emulator exited with status {code}")
            urls = parse_ready_line(line, service)
            if urls is not None:
                return RunningEmulator(service, process, urls, pump)
    except BaseException:
        if process.poll() is None:
            process.kill()
            process.wait()
        raise


def _pump(stream: IO[str], lines: queue.Queue[str | None]) -> None:
    """Forward the child's stdout lines; keeps draining after the ready line."""
    try:
        for line in stream:
            lines.put(line.rstrip("\n"))
    except ValueError:  # closed by stop()
        pass
    finally:
        lines.put(None)

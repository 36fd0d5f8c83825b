"""mount(8) and /etc/fstab: `mount -t fuse.neurofs`, an fstab line, umount, and bad configs.

The helper is installed into /sbin with scripts/install-mount-helper (and removed afterwards
when this test installed it); the fstab is util-linux's alternative one (`mount -T FILE`).
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.mount.conftest import OWNER_TOKEN, Emulator, write_config
from tests.system.conftest import require, require_fuse, require_tool

REPO = Path(__file__).resolve().parents[2]
HELPER = REPO / ".venv" / "bin" / "mount.fuse.neurofs"
LINKS = (Path("/sbin/mount.fuse.neurofs"), Path("/sbin/mount.neurofs"))
INSTALL = REPO / "scripts" / "install-mount-helper"
# Generous bounds for a slow machine: they only keep a stuck daemon from hanging the run.
MOUNT_WAIT = 180
EXIT_WAIT = 90.0


@pytest.fixture(scope="module")
def helper_installed() -> Iterator[None]:
    require(os.getuid() == 0, "mount(8) with a helper in /sbin needs root")
    require_tool("mount")
    ours = [link.is_symlink() and Path(os.readlink(link)) == HELPER for link in LINKS]
    for link, mine in zip(LINKS, ours, strict=True):
        if link.exists() and not mine:
            pytest.fail(f"{link} exists and is not this checkout's helper; not replacing it")
    installed_here = not all(ours)
    if installed_here:
        subprocess.run([str(INSTALL)], check=True, capture_output=True, text=True)
    assert all(Path(os.readlink(link)) == HELPER for link in LINKS)
    yield
    if installed_here:
        subprocess.run([str(INSTALL), "--remove"], check=True, capture_output=True, text=True)
        assert not any(link.is_symlink() for link in LINKS)


@pytest.fixture
def setup(
    tmp_path: Path, dandi_emulator: Emulator, helper_installed: None
) -> tuple[Path, Path, Path]:
    """(mount point, config, cache directory)."""
    require_fuse()
    mountpoint = tmp_path / "neuro"
    mountpoint.mkdir()
    config = write_config(tmp_path / "config.toml", dandi_emulator.api_url, OWNER_TOKEN)
    return mountpoint, config, tmp_path / "cache"


def mount(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["mount", *args], capture_output=True, text=True, timeout=MOUNT_WAIT)


def daemon_pids(mountpoint: Path) -> list[int]:
    """The neurofs daemons serving ``mountpoint`` (their command line names it)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"neurofs" in argv and b"--foreground" in argv and str(mountpoint).encode() in argv:
            pids.append(int(entry.name))
    return pids


def mount_entry(mountpoint: Path) -> list[str]:
    for line in Path("/proc/mounts").read_text().splitlines():
        fields = line.split()
        if fields[1] == str(mountpoint):
            return fields
    raise AssertionError(f"{mountpoint} is not in /proc/mounts")


def umount_and_check_the_daemon_exits(mountpoint: Path) -> None:
    [pid] = daemon_pids(mountpoint)
    result = subprocess.run(["umount", str(mountpoint)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert not os.path.ismount(mountpoint)
    deadline = time.monotonic() + EXIT_WAIT
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not Path(f"/proc/{pid}").exists(), "the daemon kept running after umount"


@pytest.fixture
def cleanup(setup: tuple[Path, Path, Path]) -> Iterator[None]:
    yield
    mountpoint = setup[0]
    if os.path.ismount(mountpoint):
        subprocess.run(["umount", "-l", str(mountpoint)], capture_output=True, check=False)


@pytest.mark.parametrize("fstype", ["fuse.neurofs", "neurofs"])
def test_mount_t_fuse_neurofs_then_umount(
    setup: tuple[Path, Path, Path], cleanup: None, fstype: str
) -> None:
    mountpoint, config, cache = setup
    result = mount(
        "-t", fstype, "neurofs", str(mountpoint), "-o", f"config={config},cache_dir={cache}"
    )
    assert result.returncode == 0, result.stderr
    # Quiet on success, as mount helpers are.
    assert result.stdout == ""
    assert os.path.ismount(mountpoint)
    assert mount_entry(mountpoint)[:3] == ["neurofs", str(mountpoint), "fuse.neurofs"]
    assert "000001" in os.listdir(mountpoint / "dandi")
    umount_and_check_the_daemon_exits(mountpoint)


def test_an_fstab_line_with_mount_and_systemd_options(
    setup: tuple[Path, Path, Path], cleanup: None, tmp_path: Path
) -> None:
    mountpoint, config, cache = setup
    fstab = tmp_path / "fstab"
    fstab.write_text(
        "# neurofs for the lab\n"
        f"neurofs {mountpoint} fuse.neurofs "
        f"_netdev,user,noauto,nofail,x-systemd.mount-timeout=2min,config={config},"
        f"cache_dir={cache},allow_other 0 0\n"
    )
    result = mount("-T", str(fstab), str(mountpoint))
    assert result.returncode == 0, result.stderr
    options = mount_entry(mountpoint)[3].split(",")
    # "user" implies noexec, which reaches the mount; allow_other brings default_permissions.
    assert {"noexec", "nosuid", "nodev", "allow_other", "default_permissions"} <= set(options)
    assert "000001" in os.listdir(mountpoint / "dandi")
    umount_and_check_the_daemon_exits(mountpoint)


@pytest.mark.parametrize(
    ("write", "message"),
    [
        (None, "does not exist"),
        (
            "[[source]]\nkind = 'dandi'\nname = 'dandi'\nurl = 'ftp://nowhere'\n",
            "is not an http(s) URL",
        ),
        ("[[source]\n", "config.toml: "),
    ],
    ids=["missing", "invalid", "not TOML"],
)
def test_a_bad_config_fails_with_the_reason(
    setup: tuple[Path, Path, Path], cleanup: None, write: str | None, message: str
) -> None:
    mountpoint, config, cache = setup
    if write is None:
        config.unlink()
    else:
        config.write_text(write)
    result = mount(
        "-t", "fuse.neurofs", "neurofs", str(mountpoint), "-o", f"config={config},cache_dir={cache}"
    )
    assert result.returncode != 0
    assert message in result.stderr
    assert not os.path.ismount(mountpoint)
    assert daemon_pids(mountpoint) == []


def test_a_relative_config_path_is_refused(setup: tuple[Path, Path, Path], cleanup: None) -> None:
    mountpoint, _, _ = setup
    result = mount("-t", "fuse.neurofs", "neurofs", str(mountpoint), "-o", "config=config.toml")
    assert result.returncode != 0
    assert "config=config.toml must be an absolute path" in result.stderr
    assert not os.path.ismount(mountpoint)

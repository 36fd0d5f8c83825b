"""Permissions: the config file with a token, the cache, state and runtime files, the mount.

- A config file that holds a token and that group or others can read is refused.
- The cache dir and every directory below it are 0700, every file 0600 (the SQLite index with
  its -wal and -shm, responses.sqlite, the blocks); so are the rejected store, the log and
  the pid file, even when a directory already existed with a wider mode.
- The mount is private to its user: another uid cannot even stat it. With ``-o allow_other``
  the kernel enforces the modes (``default_permissions``): another uid reads what is
  world-readable, cannot write a sidecar, and cannot read the owner's errors.log or
  rejected copies.

Other users are played by ``nobody`` through ``setpriv`` (the tests run as root).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from neurofs_emulators.dandi.sample import OWNER_TOKEN
from tests.mount.conftest import NEUROFS, Emulator, Mount, require_fuse, write_config
from tests.reliability.conftest import Figures

NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


def as_nobody(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*NOBODY, *argv], capture_output=True, text=True, timeout=60)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


# ---------------------------------------------------------------- the config file


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o606])
@pytest.mark.parametrize("key", ["token", "sharing_token"])
def test_config_with_a_token_that_others_can_read_is_refused(
    tmp_path: Path, dandi_emulator: Emulator, mode: int, key: str
) -> None:
    require_fuse()
    (tmp_path / "m").mkdir()
    config = tmp_path / "config.toml"
    config.write_text(
        f'[[source]]\nkind = "dandi"\nname = "d"\nurl = "{dandi_emulator.api_url}"\n'
        f'{key} = "a-secret-value"\n'
    )
    config.chmod(mode)
    result = subprocess.run(
        [*NEUROFS, "mount", str(tmp_path / "m"), "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "chmod 600" in result.stderr and "a-secret-value" not in result.stderr
    assert not os.path.ismount(tmp_path / "m")


def test_config_with_a_password_in_a_url_is_refused_when_readable(
    tmp_path: Path, dandi_emulator: Emulator
) -> None:
    require_fuse()
    (tmp_path / "m").mkdir()
    url = dandi_emulator.api_url.replace("http://", "http://user:a-secret-value@")
    config = tmp_path / "config.toml"
    config.write_text(f'[[source]]\nkind = "dandi"\nname = "d"\nurl = "{url}"\n')
    config.chmod(0o644)
    result = subprocess.run(
        [*NEUROFS, "mount", str(tmp_path / "m"), "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0 and "chmod 600" in result.stderr
    assert "a-secret-value" not in result.stderr


def test_config_without_a_token_may_be_readable(tmp_path: Path, dandi_emulator: Emulator) -> None:
    """Only files that hold a token must be private (token_env names a variable)."""
    require_fuse()
    (tmp_path / "m").mkdir()
    config = tmp_path / "config.toml"
    config.write_text(
        f'[[source]]\nkind = "dandi"\nname = "d"\nurl = "{dandi_emulator.api_url}"\n'
        'token_env = "SOME_VARIABLE"\n'
    )
    config.chmod(0o644)
    mount = Mount(tmp_path / "m", config, tmp_path / "cache")
    mount.start()
    mount.stop()


# ---------------------------------------------------------------- files the daemon writes


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """HOME and XDG_RUNTIME_DIR of the daemon inside the test's directory, with the
    directories it writes to created beforehand with wide modes (they must be tightened)."""
    home = tmp_path / "home"
    for name in ("XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME", "XDG_DATA_HOME"):
        monkeypatch.delenv(name, raising=False)
    for d in (home / ".local/state/neurofs/rejected", home / ".local/state/neurofs/log"):
        d.mkdir(parents=True)
        d.chmod(0o755)
    run = tmp_path / "run"
    (run / "neurofs").mkdir(parents=True)
    (run / "neurofs").chmod(0o755)
    return {"HOME": str(home), "XDG_RUNTIME_DIR": str(run)}


@pytest.mark.expect_log(r"write refused \(EACCES\): PUT .*: HTTP 403")
def test_cache_state_log_and_pid_files_are_private(
    tmp_path: Path, private_dandi_emulator: Emulator, isolated: dict[str, str], report: Figures
) -> None:
    require_fuse()
    (tmp_path / "mnt").mkdir()
    cache = tmp_path / "cache"
    cache.mkdir(mode=0o755)
    cache.chmod(0o755)
    config = write_config(
        tmp_path / "config.toml", private_dandi_emulator.api_url, OWNER_TOKEN, retry_seconds=2
    )
    mount = Mount(tmp_path / "mnt", config, cache, env=isolated)
    mount.start()
    try:
        # Reads (blocks, index, offline answers) and a refused save (a rejected copy).
        draft = mount / "dandi/000004/draft"
        for where, _, files in os.walk(draft):
            for f in files:
                Path(where, f).read_bytes()
        private_dandi_emulator.refuse(
            "PUT", "/api/dandisets/000004/", 403, {"detail": "no"}, times=10
        )
        yaml_path = draft / "dandiset.yaml"
        with pytest.raises(OSError) as info:
            yaml_path.write_bytes(yaml_path.read_bytes().replace(b"name: ", b"name: X ", 1))
        assert info.value.errno == errno.EACCES
        home = Path(isolated["HOME"])
        run = Path(isolated["XDG_RUNTIME_DIR"]) / "neurofs"
        pid_files = list(run.glob("*.pid"))
        assert pid_files, "no pid file while mounted"
        # The state dir holds the log, the rejected store and the journal of saves.
        state = home / ".local/state/neurofs"
        checked = _check_private_tree(cache) + _check_private_tree(state)
        checked += _check_private_tree(run)
        names = {p.name for p in cache.rglob("*")}
        assert {"responses.sqlite", "responses.sqlite-wal"} <= names, names
        assert any(n.endswith("-wal") and n != "responses.sqlite-wal" for n in names), names
        assert list((state / "rejected").rglob("dandiset.yaml.*"))
        assert list((state / "log").glob("*.log"))
        report.operations = checked
        report.note = f"{checked} files and directories are 0600 / 0700"
    finally:
        private_dandi_emulator.clear_refusals()
        mount.stop()


def _check_private_tree(top: Path) -> int:
    """Every directory from ``top`` down is 0700 and every file 0600; returns how many."""
    assert _mode(top) == 0o700, f"{top}: {oct(_mode(top))}"
    count = 1
    for where, dirs, files in os.walk(top):
        for d in dirs:
            assert _mode(Path(where, d)) == 0o700, f"{where}/{d}: {oct(_mode(Path(where, d)))}"
        for f in files:
            path = Path(where, f)
            assert _mode(path) == 0o600, f"{path}: {oct(_mode(path))}"
        count += len(dirs) + len(files)
    return count


# ---------------------------------------------------------------- the mount and other users


@pytest.fixture
def public_dir() -> Iterator[Path]:
    """A directory every user can traverse (pytest's tmp_path is private to root, which
    would make any check of another user's access pass for the wrong reason)."""
    path = Path(tempfile.mkdtemp(prefix="neurofs-perm-", dir="/tmp"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _shared_mount(public_dir: Path, emulator: Emulator, options: list[str]) -> Mount:
    require_fuse()
    if shutil.which("setpriv") is None:
        pytest.fail("setpriv (util-linux) is needed to act as another user")
    (public_dir / "mnt").mkdir(mode=0o755)
    (public_dir / "control").mkdir(mode=0o755)
    config = write_config(public_dir / "config.toml", emulator.api_url, OWNER_TOKEN)
    extra = [a for o in options for a in ("-o", o)]
    mount = Mount(public_dir / "mnt", config, public_dir / "cache", extra=extra)
    mount.start()
    return mount


def _mount_options(mount: Mount) -> set[str]:
    for line in Path("/proc/mounts").read_text().splitlines():
        fields = line.split()
        if fields[1] == str(mount.path):
            return set(fields[3].split(","))
    raise AssertionError(f"{mount.path} is not in /proc/mounts")


def test_the_mount_is_private_to_its_user(
    public_dir: Path, private_dandi_emulator: Emulator, report: Figures
) -> None:
    mount = _shared_mount(public_dir, private_dandi_emulator, [])
    try:
        assert "allow_other" not in _mount_options(mount)
        # The place is reachable by others: a plain directory next to it can be listed.
        assert as_nobody("ls", str(public_dir / "control")).returncode == 0
        for argv in (
            ["stat", str(mount.path)],
            ["ls", str(mount.path)],
            ["cat", str(mount / ".neurofs/config.json")],
            ["cat", str(mount / "dandi/000004/draft/dandiset.yaml")],
        ):
            result = as_nobody(*argv)
            assert result.returncode != 0, argv
            assert "Permission denied" in result.stderr, (argv, result.stderr)
            report.operations += 1
        # The owner still reads everything.
        assert json.loads((mount / ".neurofs/config.json").read_text())["source"]
        report.note = "another uid: EACCES on stat, ls and cat of the mount"
    finally:
        mount.stop()


@pytest.mark.expect_log(r"write refused \(EACCES\): PUT .*: HTTP 403")
def test_allow_other_enforces_the_modes(
    public_dir: Path, private_dandi_emulator: Emulator, report: Figures
) -> None:
    emulator = private_dandi_emulator
    mount = _shared_mount(public_dir, emulator, ["allow_other"])
    try:
        options = _mount_options(mount)
        assert {"allow_other", "default_permissions"} <= options, options
        sidecar = mount / "dandi/000004/draft/dandiset.yaml"
        assert _mode(sidecar) == 0o644 and sidecar.stat().st_uid == 0
        # Another user reads what is world-readable...
        result = as_nobody("cat", str(sidecar))
        assert result.returncode == 0 and result.stdout.encode() == sidecar.read_bytes()
        assert as_nobody("ls", str(mount / "dandi/000004/draft")).returncode == 0
        # ...but cannot write the owner's sidecar: the kernel refuses, nothing is sent.
        emulator.reset()
        result = as_nobody("sh", "-c", f"echo 'name: hijacked' >> '{sidecar}'")
        assert result.returncode != 0 and "Permission denied" in result.stderr
        assert emulator.writes() == []
        # A refused save of the owner's: its copy and errors.log stay the owner's alone.
        emulator.refuse("PUT", "/api/dandisets/000004/", 403, {"detail": "no"}, times=10)
        with pytest.raises(OSError):
            sidecar.write_bytes(sidecar.read_bytes().replace(b"name: ", b"name: Mine ", 1))
        for private in (mount / ".neurofs/errors.log", mount / ".neurofs/rejected"):
            assert _mode(private) & 0o077 == 0, oct(_mode(private))
            result = as_nobody("ls" if private.is_dir() else "cat", str(private))
            assert result.returncode != 0 and "Permission denied" in result.stderr, private
            report.operations += 1
        assert (mount / ".neurofs/errors.log").read_text()  # the owner reads it
        # The control channel is the owner's alone: another user cannot drop the cache.
        control = mount / ".neurofs/control"
        assert _mode(control) == 0o200
        result = as_nobody("sh", "-c", f"echo 'cache clear' > '{control}'")
        assert result.returncode != 0 and "Permission denied" in result.stderr
        assert "control" not in (mount / ".neurofs/errors.log").read_text()
        report.operations += 5
        report.note = (
            "allow_other: others read 0444/0644, cannot write; errors.log, rejected/ 0700; "
            "control 0200"
        )
    finally:
        emulator.clear_refusals()
        mount.stop()

"""Mounting, unmounting and failing clearly: what a user sees from the command line."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from neurofs_emulators.launch import start_emulator

from .conftest import NEUROFS, Emulator, Mount, require_fuse, write_config

pytestmark = pytest.mark.mount


def run(*args: str, env: dict[str, str] | None = None, timeout: float = 120):
    return subprocess.run(
        [*NEUROFS, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def daemon_pid(mount: Path) -> int:
    from neurofs.fs.daemon import pid_file

    return int(pid_file(mount).read_text())


def wait_until(predicate, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.05)


def test_missing_mountpoint_fails_clearly(tmp_path: Path, dandi_emulator: Emulator):
    require_fuse()
    config = write_config(tmp_path / "c.toml", dandi_emulator.api_url, None)
    result = run("mount", str(tmp_path / "nope"), "--config", str(config))
    assert result.returncode != 0
    assert "does not exist" in result.stderr


def test_busy_mountpoint_fails_clearly(make_mount, dandi_emulator: Emulator):
    mount = make_mount(dandi_emulator)
    result = run(
        "mount",
        str(mount.path),
        "--config",
        str(mount.config),
        "--cache-dir",
        str(mount.cache_dir.parent / "other-cache"),
    )
    assert result.returncode != 0
    assert "already a mount point" in result.stderr


def test_two_mounts_share_one_cache_directory(make_mount, dandi_emulator: Emulator, tmp_path: Path):
    """A second mount of the same cache directory joins it: bytes the first fetched cost it
    no request, and ``neurofs cache`` still works through a mount."""
    first = make_mount(dandi_emulator)
    draft = first / "dandi/000001/draft"
    big = max((p for p in draft.rglob("*.nwb") if p.is_file()), key=lambda p: p.stat().st_size)
    with big.open("rb") as f:
        head = f.read(2 * 1024 * 1024)
    second = Mount(tmp_path / "m2", first.config, first.cache_dir)
    second.path.mkdir()
    second.start()
    try:
        deadline = time.monotonic() + 60
        while first.stats()["cache"]["stored_blocks"] < 2 and time.monotonic() < deadline:
            time.sleep(0.05)  # blocks are written to disk just after they are served
        dandi_emulator.reset()
        again = second.path / big.relative_to(first.path)
        with again.open("rb") as f:
            assert f.read(2 * 1024 * 1024) == head
        starts = [
            int(r["range"].removeprefix("bytes=").split("-")[0])
            for r in dandi_emulator.data_requests()
            if r["range"]
        ]
        # Read-ahead may go beyond the bytes read; none of those is asked for again.
        assert all(start >= len(head) for start in starts), starts
    finally:
        second.stop()


@pytest.mark.parametrize(
    ("body", "mode", "message"),
    [
        (
            '[[source]]\nkind="dandi"\nname="d"\nurl="http://127.0.0.1:1/api"\ntoken="abcdef"\n',
            0o644,
            "chmod 600",
        ),
        ('[[source]]\nkind="webdav"\nname="d"\nurl="http://x"\n', 0o600, "kind"),
        ("[[source]\n", 0o600, "config.toml"),
    ],
)
def test_bad_config_fails_before_mounting(tmp_path: Path, body: str, mode: int, message: str):
    require_fuse()
    (tmp_path / "m").mkdir()
    config = tmp_path / "config.toml"
    config.write_text(body)
    config.chmod(mode)
    result = run("mount", str(tmp_path / "m"), "--config", str(config))
    assert result.returncode != 0 and message in result.stderr
    assert not os.path.ismount(tmp_path / "m")


@pytest.mark.expect_log(
    r"giving up after \d+ tries: ConnectError",
    r"is not reachable now",
    r"server unreachable; serving the answer kept on disk",
)
def test_unreachable_server_is_a_warning_and_cache_stays_readable(make_mount, tmp_path: Path):
    require_fuse()
    with start_emulator("dandi", []) as running:
        emulator = Emulator(running)
        mount: Mount = make_mount(emulator)
        asset = next(a for a in emulator.all_assets("000003", "draft") if a["blob"])
        path = mount / "dandi/000003/draft" / asset["path"]
        data = path.read_bytes()
        listing = sorted(os.listdir(path.parent))
        mount.stop()
    # The server is gone now.
    result = mount.start()
    assert "warning" in result.stderr and "not reachable" in result.stderr
    assert sorted(os.listdir(path.parent)) == listing
    assert path.read_bytes() == data
    never_read = next(p for p in listing if p != path.name and p != "dandiset.yaml")
    with pytest.raises(OSError):
        (path.parent / never_read).read_bytes()
    assert mount.stats()["sources"]["dandi"]["answers_served_offline"] > 0


@pytest.mark.expect_log(r"cleaning up a stale mount left by a daemon that died")
def test_unmount_cleans_a_dead_mount_and_mount_reuses_it(make_mount, dandi_emulator: Emulator):
    mount = make_mount(dandi_emulator)
    os.kill(daemon_pid(mount.path), signal.SIGKILL)
    wait_until(lambda: _enotconn(mount.path))
    result = run("unmount", str(mount.path))
    assert result.returncode == 0, result.stderr
    assert "stale" in result.stdout
    assert not os.path.ismount(mount.path)
    # A new mount on a stale mount point cleans it up by itself.
    mount.start()
    os.kill(daemon_pid(mount.path), signal.SIGKILL)
    wait_until(lambda: _enotconn(mount.path))
    mount.start()
    assert "dandi" in os.listdir(mount.path)


def _enotconn(path: Path) -> bool:
    from neurofs.fs.daemon import is_stale_mount

    return is_stale_mount(path)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signals_unmount_cleanly(make_mount, dandi_emulator: Emulator, sig: int):
    mount = make_mount(dandi_emulator)
    pid = daemon_pid(mount.path)
    os.kill(pid, sig)
    wait_until(lambda: not os.path.ismount(mount.path))
    wait_until(lambda: not _alive(pid))
    os.stat(mount.path)  # a plain directory again, not a dead mount


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_demo_mounts_the_emulators_and_unmount_stops_them(tmp_path: Path):
    require_fuse()
    mnt = tmp_path / "demo"
    mnt.mkdir()
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache")}
    result = run("demo", str(mnt), env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    assert str(mnt) in result.stdout and "unmount" in result.stdout
    try:
        assert "000001" in os.listdir(mnt / "dandi")
        assert os.listdir(mnt / "webknossos/datasets")  # the WEBKNOSSOS emulator too
        assert "tables" in os.listdir(mnt / "cave/neurofs_demo")  # and CAVE
        # The demo's tokens may edit: the sample drafts and datasets are editable.
        assert os.stat(mnt / "dandi/000004/draft/dandiset.yaml").st_mode & 0o200
        assert "127.0.0.1" in (mnt / ".neurofs/config.json").read_text()
        pid = daemon_pid(mnt)
        children = _children(pid)
        assert children, "the demo daemon should own its emulator processes"
    finally:
        assert run("unmount", str(mnt)).returncode == 0
    wait_until(lambda: not any(_alive(c) for c in children))


def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if ppid == pid:
                out.append(int(entry.name))
    return out


def test_max_read_is_refused_before_mounting(tmp_path: Path, dandi_emulator: Emulator):
    # libfuse would abort the daemon after mounting (a dead mount); refuse it up front.
    require_fuse()
    (tmp_path / "m").mkdir()
    config = write_config(tmp_path / "c.toml", dandi_emulator.api_url, None)
    result = run("mount", str(tmp_path / "m"), "--config", str(config), "-o", "max_read=1048576")
    assert result.returncode != 0 and "max_read" in result.stderr
    assert not os.path.ismount(tmp_path / "m")


def test_an_option_libfuse_does_not_know_is_named(tmp_path: Path, dandi_emulator: Emulator):
    require_fuse()
    (tmp_path / "m").mkdir()
    config = write_config(tmp_path / "c.toml", dandi_emulator.api_url, None)
    result = run("mount", str(tmp_path / "m"), "--config", str(config), "-o", "no_such_option")
    assert result.returncode != 0
    assert "mount failed" in result.stderr and "-o no_such_option" in result.stderr
    assert not os.path.ismount(tmp_path / "m")

"""Finding the mount's backing device and raising its read-ahead window."""

from __future__ import annotations

from pathlib import Path

from neurofs.fs.kernel_readahead import mount_device, raise_read_ahead
from neurofs.mountinfo import neurofs_mount_points

MOUNTINFO = """\
22 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw
101 22 0:51 / /mnt/neuro rw,nosuid,nodev - fuse.neurofs neurofs rw,user_id=0
102 22 0:52 / /mnt/with\\040space rw - fuse.neurofs neurofs rw
103 22 0:53 / /mnt/neuro rw,nosuid,nodev - fuse.neurofs neurofs rw,user_id=0
"""


def test_mount_device_takes_the_topmost_mount_and_unescapes():
    assert mount_device(Path("/mnt/neuro"), MOUNTINFO) == "0:53"
    assert mount_device(Path("/mnt/with space"), MOUNTINFO) == "0:52"
    assert mount_device(Path("/mnt/other"), MOUNTINFO) is None


def _setup(tmp_path: Path, current: int) -> tuple[Path, Path, Path]:
    info = tmp_path / "mountinfo"
    info.write_text(MOUNTINFO)
    setting = tmp_path / "bdi" / "0:53" / "read_ahead_kb"
    setting.parent.mkdir(parents=True)
    setting.write_text(f"{current}\n")
    return info, tmp_path / "bdi", setting


def test_raises_a_small_window(tmp_path: Path):
    info, bdi, setting = _setup(tmp_path, 128)
    assert raise_read_ahead(Path("/mnt/neuro"), 1024, bdi, info) == 1024
    assert setting.read_text().strip() == "1024"


def test_keeps_a_larger_window_and_survives_refusal(tmp_path: Path):
    info, bdi, setting = _setup(tmp_path, 4096)
    assert raise_read_ahead(Path("/mnt/neuro"), 1024, bdi, info) == 4096
    assert setting.read_text().strip() == "4096"
    setting.write_text("128\n")
    setting.chmod(0o444)
    setting.parent.chmod(0o555)
    try:
        # Root may write anyway; either way the call answers the window in force.
        assert raise_read_ahead(Path("/mnt/neuro"), 1024, bdi, info) == int(setting.read_text())
    finally:
        setting.parent.chmod(0o755)
        setting.chmod(0o644)
    assert raise_read_ahead(Path("/mnt/elsewhere"), 1024, bdi, info) == 0


def test_neurofs_mount_points_are_read_from_the_table(tmp_path: Path):
    """The one reader of the mount table: the neurofs mounts, unescaped; a malformed line
    is skipped, an unreadable table is no mounts."""
    table = tmp_path / "mountinfo"
    table.write_text(MOUNTINFO + "garbage without a separator\n")
    assert neurofs_mount_points(table) == ["/mnt/neuro", "/mnt/with space", "/mnt/neuro"]
    assert neurofs_mount_points(tmp_path / "missing") == []

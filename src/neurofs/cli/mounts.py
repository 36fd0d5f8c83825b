"""Finding neurofs mounts from the outside, and sending commands to their control channel.

A running mount takes commands through ``.neurofs/control`` (see ``tree.control``): one
command per write, answered with the write's errno. The commands here never touch the files
of a cache that a live mount holds; they ask that mount instead.
"""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

from neurofs.mountinfo import neurofs_mount_points

CONTROL = Path(".neurofs") / "control"
ERRORS_LOG = Path(".neurofs") / "errors.log"


class ControlError(Exception):
    """A command the mount refused, with the reason in words and the errno of the write (0
    when the control channel could not be opened)."""

    def __init__(self, reason: str, code: int = 0) -> None:
        super().__init__(reason)
        self.errno = code


def find_mount_root(path: Path) -> Path | None:
    """The neurofs mount holding ``path``: the nearest directory at or above it that is a
    mount point and has ``.neurofs/control``. Symlinks are not resolved, so a path through
    ``latest`` stays inside the mount it names."""
    current = Path(os.path.abspath(path))
    for candidate in (current, *current.parents):
        if os.path.ismount(candidate) and (candidate / CONTROL).exists():
            return candidate
    return None


def send_command(root: Path, command: str) -> None:
    """Write one command to the mount's control file; ControlError when it is refused."""
    data = (command + "\n").encode()
    try:
        fd = os.open(root / CONTROL, os.O_WRONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise ControlError(f"{root}: cannot open the control channel ({exc.strerror})") from None
    try:
        os.write(fd, data)
    except OSError as exc:
        reason = {
            errno.ENOENT: "no such file or directory in the mount",
            errno.EINVAL: "refused (see .neurofs/errors.log)",
        }.get(exc.errno or 0, exc.strerror or str(exc))
        raise ControlError(reason, exc.errno or 0) from None
    finally:
        os.close(fd)


def last_control_error(root: Path) -> str | None:
    """What the mount wrote to ``.neurofs/errors.log`` about the last refused command (the
    server's own message, say), or None. The write's errno says only the kind of refusal."""
    try:
        lines = (root / ERRORS_LOG).read_text(errors="replace").splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        # "<time> .neurofs/control <ERRNO> control: <message>" (tree.control.ErrorLog)
        parts = line.split(" ", 3)
        if len(parts) == 4 and parts[1] == str(CONTROL):
            return parts[3].removeprefix("control: ")
    return None


def neurofs_mounts() -> list[Path]:
    """Mount points of the neurofs filesystems this process can see."""
    return [Path(point) for point in neurofs_mount_points()]


def mount_using_cache(cache_dir: Path) -> Path | None:
    """The live mount whose cache directory is ``cache_dir`` (from its config.json)."""
    wanted = os.path.realpath(cache_dir)
    for mountpoint in neurofs_mounts():
        try:
            config = json.loads((mountpoint / ".neurofs" / "config.json").read_text())
            used = config["cache"]["dir"]
        except (OSError, ValueError, KeyError, TypeError):
            continue  # a dead mount, or another user's
        if isinstance(used, str) and os.path.realpath(used) == wanted:
            return mountpoint
    return None

"""The mounts this process sees, from ``/proc/self/mountinfo``: read as text, never by
touching a mount point (a daemon that stat()ed its own mount, or a path into it, while serving
a request could hang it).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

MOUNTINFO = Path("/proc/self/mountinfo")
# The file system type of every neurofs mount (``subtype=neurofs``, fs/daemon.py).
NEUROFS_TYPE = "fuse.neurofs"


@dataclass(frozen=True)
class MountEntry:
    device: str  # major:minor
    mount_point: str
    fs_type: str


def parse(text: str) -> list[MountEntry]:
    """The entries of mountinfo ``text``, in its order (a later mount on the same point is
    on top). Malformed lines are skipped."""
    entries = []
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if sep and len(fields) >= 5 and tail:
            entries.append(MountEntry(fields[2], _unescape(fields[4]), tail[0]))
    return entries


def read(path: Path = MOUNTINFO) -> list[MountEntry]:
    """This process's mounts; none when the table cannot be read."""
    try:
        return parse(path.read_text())
    except OSError:
        return []


def neurofs_mount_points(path: Path = MOUNTINFO) -> list[str]:
    """The mount points of the neurofs mounts this process sees."""
    return [e.mount_point for e in read(path) if e.fs_type == NEUROFS_TYPE]


def _unescape(field: str) -> str:
    """mountinfo writes space, tab, newline and backslash in octal (\\040 …)."""
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and i + 4 <= len(field) and field[i + 1 : i + 4].isdigit():
            out.append(chr(int(field[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)

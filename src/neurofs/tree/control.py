"""The mount root and its ``.neurofs/`` control directory.

```
.neurofs/stats.json    live counters (rendered at open)
.neurofs/config.json   the effective configuration, secrets redacted
.neurofs/errors.log    recent rejected writes and failed reads, newest last
.neurofs/rejected/     the bytes of refused writes
.neurofs/control       write-only: one command per write (refresh, reload-datastore,
                       cache prune/clear/drop)
```

Commands written to ``control`` (UTF-8, one line, at most ``MAX_COMMAND_BYTES``)::

    refresh <path relative to the mount root>     ("" or "." is the whole mount)
    reload-datastore <path of a WEBKNOSSOS dataset directory, relative to the mount root>
    cache prune older-than=<seconds>
    cache prune to=<bytes>
    cache clear
    cache drop <path relative to the mount root>  (a file, or every file below a directory)

``parse_command`` turns the bytes into a :class:`Command` or raises ``InvalidContent`` naming
the problem; the fs layer runs it and answers the write with its errno.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from neurofs.errors import AccessDenied, InvalidContent
from neurofs.secrets import redact
from neurofs.tree.nodes import (
    Attrs,
    Directory,
    File,
    FileHandle,
    GeneratedFile,
    Kind,
    LiveFile,
    Node,
    NodePath,
    StaticDirectory,
)
from neurofs.tree.rejected import LocalDirectory, RejectedStore
from neurofs.tree.render import json_text

CONTROL_DIR = ".neurofs"
CONTROL_FILE = "control"
# A command is one short line; anything longer is refused before it is looked at.
MAX_COMMAND_BYTES = 4096


# ---------------------------------------------------------------- control commands


@dataclass(frozen=True)
class Refresh:
    """Drop cached listings, attributes and metadata at and below ``key`` (() = everything)."""

    key: NodePath


@dataclass(frozen=True)
class ReloadDatastore:
    """Have the WEBKNOSSOS datastore read the dataset at ``key`` again from its storage, then
    refresh ``key`` as :class:`Refresh` does."""

    key: NodePath


@dataclass(frozen=True)
class PruneOlderThan:
    seconds: float


@dataclass(frozen=True)
class PruneTo:
    size: int


@dataclass(frozen=True)
class ClearCache:
    pass


@dataclass(frozen=True)
class DropCached:
    """Forget the cached bytes of the file at ``key``, or of every file below it (bytes
    found to be wrong): the next read fetches them again."""

    key: NodePath


Command = Refresh | ReloadDatastore | PruneOlderThan | PruneTo | ClearCache | DropCached

USAGE = (
    "refresh PATH | reload-datastore PATH | cache prune older-than=SECONDS | "
    "cache prune to=BYTES | cache clear | cache drop PATH"
)
_DROP = "cache drop "


def parse_command(data: bytes) -> Command:
    """One command from the bytes of one write; InvalidContent says what is wrong."""
    if len(data) > MAX_COMMAND_BYTES:
        raise InvalidContent(f"a command is at most {MAX_COMMAND_BYTES} bytes, got {len(data)}")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidContent("a command must be UTF-8 text") from None
    text = text.removesuffix("\n")
    if "\n" in text:
        raise InvalidContent("one command per write")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in text):
        raise InvalidContent("a command must not hold control characters")
    verb, _, rest = text.partition(" ")
    if verb == "refresh":
        return Refresh(_relative_key(rest))
    if verb == "reload-datastore":
        key = _relative_key(rest)
        if not key:
            raise InvalidContent("reload-datastore takes the path of a WEBKNOSSOS dataset")
        return ReloadDatastore(key)
    if text.startswith(_DROP):
        key = _relative_key(text[len(_DROP) :])
        if not key:
            raise InvalidContent("cache drop takes a path in the mount (cache clear drops all)")
        return DropCached(key)
    words = text.split()
    if words == ["cache", "clear"]:
        return ClearCache()
    if len(words) == 3 and words[:2] == ["cache", "prune"]:
        name, _, value = words[2].partition("=")
        if name == "older-than":
            return PruneOlderThan(float(_count(name, value)))
        if name == "to":
            return PruneTo(_count(name, value))
    raise InvalidContent(f"unknown command {text[:80]!r}; expected {USAGE}")


def _count(name: str, value: str) -> int:
    if not value.isascii() or not value.isdigit() or len(value) > 19:
        raise InvalidContent(f"{name}= takes a whole number, not {value[:40]!r}")
    return int(value)


def _relative_key(path: str) -> NodePath:
    if path.startswith("/"):
        raise InvalidContent("a command's path is relative to the mount root")
    parts = tuple(p for p in path.split("/") if p not in ("", "."))
    if ".." in parts:
        raise InvalidContent("a command's path may not contain '..'")
    return parts


class ControlFile(File):
    """``.neurofs/control``: write-only, owner only. The fs layer runs what is written."""

    direct_io = True

    def __init__(self, mtime: float) -> None:
        super().__init__((CONTROL_DIR, CONTROL_FILE))
        self._attrs = Attrs(Kind.FILE, 0, mtime, writable=True, private=True, write_only=True)

    async def stat(self) -> Attrs:
        return self._attrs

    async def open(self) -> FileHandle:
        raise AccessDenied(f"{CONTROL_DIR}/{CONTROL_FILE} is write-only")


class ErrorLog:
    """The last lines of errors.log, kept in memory for the life of the mount."""

    def __init__(self, max_lines: int = 1000) -> None:
        self._lines: collections.deque[str] = collections.deque(maxlen=max_lines)

    def add(self, path: str, errno_name: str, message: str) -> None:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        line = f"{stamp} {path} {errno_name} {message}".replace("\n", " ")
        self._lines.append(redact(line))

    def render(self) -> bytes:
        return "".join(line + "\n" for line in self._lines).encode()


def build_root(
    sources: Sequence[Directory],
    *,
    stats: Callable[[], dict[str, Any]],
    config: dict[str, Any],
    errors: ErrorLog,
    rejected: RejectedStore,
) -> StaticDirectory:
    config_bytes = json_text(config)

    async def render_config() -> bytes:
        return config_bytes

    now = time.time()
    control = StaticDirectory(
        (CONTROL_DIR,),
        [
            LiveFile((CONTROL_DIR, "stats.json"), lambda: json_text(stats())),
            GeneratedFile((CONTROL_DIR, "config.json"), render_config, mtime=now),
            LiveFile((CONTROL_DIR, "errors.log"), errors.render, private=True),
            LocalDirectory((CONTROL_DIR, "rejected"), rejected.directory),
            ControlFile(now),
        ],
        mtime=now,
    )
    children: list[Node] = [control, *sources]
    return StaticDirectory((), children, mtime=now)

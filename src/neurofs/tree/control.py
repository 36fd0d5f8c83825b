"""The mount root and its ``.neurofs/`` control directory.

```
.neurofs/stats.json    live counters (rendered at open)
.neurofs/config.json   the effective configuration, secrets redacted
.neurofs/errors.log    recent rejected writes and failed reads, newest last
.neurofs/rejected/     the bytes of refused writes
```
"""

from __future__ import annotations

import collections
import json
import time
from collections.abc import Callable, Sequence
from typing import Any

from neurofs.secrets import redact
from neurofs.tree.nodes import Directory, GeneratedFile, LiveFile, Node, StaticDirectory
from neurofs.tree.rejected import LocalDirectory, RejectedStore

CONTROL_DIR = ".neurofs"


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


def _json(data: Any) -> bytes:
    return (json.dumps(data, indent=2, sort_keys=False) + "\n").encode()


def build_root(
    sources: Sequence[Directory],
    *,
    stats: Callable[[], dict[str, Any]],
    config: dict[str, Any],
    errors: ErrorLog,
    rejected: RejectedStore,
) -> StaticDirectory:
    config_bytes = _json(config)

    async def render_config() -> bytes:
        return config_bytes

    now = time.time()
    control = StaticDirectory(
        (CONTROL_DIR,),
        [
            LiveFile((CONTROL_DIR, "stats.json"), lambda: _json(stats())),
            GeneratedFile((CONTROL_DIR, "config.json"), render_config, mtime=now),
            LiveFile((CONTROL_DIR, "errors.log"), errors.render, private=True),
            LocalDirectory((CONTROL_DIR, "rejected"), rejected.directory),
        ],
        mtime=now,
    )
    children: list[Node] = [control, *sources]
    return StaticDirectory((), children, mtime=now)

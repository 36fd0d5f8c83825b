"""Looking at a block cache's directory from outside, as a test checking it on disk does."""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path


def disk_usage(directory: Path) -> int:
    """Bytes of all files under blocks/, measured on disk: blocks being written and damaged
    files not yet noticed included."""
    total = 0
    for root, _dirs, files in os.walk(directory / "blocks"):
        for name in files:
            try:
                st = os.lstat(os.path.join(root, name))
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode):
                total += st.st_size
    return total


def block_file(directory: Path, content: str, index: int) -> Path | None:
    """The file the index names for a block, or None. Reads the index beside the open cache
    (its rows are committed before ``put`` returns)."""
    db = sqlite3.connect(f"file:{directory / 'index.sqlite3'}?mode=ro", uri=True)
    try:
        row = db.execute(
            "SELECT name FROM blocks WHERE content = ? AND idx = ?", (content, index)
        ).fetchone()
    finally:
        db.close()
    return None if row is None else directory / "blocks" / row[0]

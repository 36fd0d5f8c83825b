"""The last good answer of every API GET, on disk, for when the server is unreachable.

The block cache keeps bytes; this keeps the listings and metadata needed to reach them, so a
mount started (or kept running) during an outage still shows what it saw before and serves
the cached bytes. Answers are served from here only when the server could not be reached
after retries, never in place of a real answer (a 404 or 403 is final).

One SQLite file in the cache directory; keys are the source name and the full request URL
(URLs never hold secrets: tokens travel in headers).
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from neurofs.io.sqlite_files import connect, connect_in_memory, open_or_rebuild

log = logging.getLogger(__name__)

# Answers bigger than this are not kept (a listing page of 1000 assets is ~300 KB).
MAX_ANSWER_BYTES = 8 * 1024 * 1024


def _open(path: Path) -> sqlite3.Connection:
    return _prepare(connect(path))


def _prepare(db: sqlite3.Connection) -> sqlite3.Connection:
    try:
        db.execute(
            "CREATE TABLE IF NOT EXISTS answers "
            "(source TEXT, url TEXT, body TEXT, saved REAL, PRIMARY KEY (source, url))"
        )
    except BaseException:
        db.close()
        raise
    return db


class ResponseStore:
    def __init__(self, path: Path) -> None:
        self._lock = threading.Lock()
        try:
            # Damaged (not a database, corrupt): a lost cache, rebuilt rather than a reason to
            # refuse to mount.
            self._db = open_or_rebuild(path, _open)
        except sqlite3.OperationalError as exc:
            # A full or failing disk: keep answers in memory for this mount only; reads work.
            log.warning("cannot open %s (%s); offline answers are not kept", path, exc)
            self._db = _prepare(connect_in_memory())

    def save(self, source: str, url: str, data: Any) -> None:
        body = json.dumps(data, separators=(",", ":"))
        if len(body) > MAX_ANSWER_BYTES:
            return
        try:
            with self._lock:
                self._db.execute(
                    "INSERT OR REPLACE INTO answers VALUES (?, ?, ?, ?)",
                    (source, url, body, time.time()),
                )
        except sqlite3.Error as exc:  # a full disk must not break reads
            log.warning("could not keep an answer for offline use: %s", exc)

    def load(self, source: str, url: str) -> tuple[Any, float] | None:
        """The stored answer and when it was saved, or None."""
        try:
            with self._lock:
                row = self._db.execute(
                    "SELECT body, saved FROM answers WHERE source = ? AND url = ?", (source, url)
                ).fetchone()
            if row is None:
                return None
            return json.loads(row[0]), float(row[1])
        except (sqlite3.Error, ValueError, TypeError) as exc:  # damaged on disk: no answer
            log.warning("could not read a kept answer: %s", exc)
            return None

    def clear(self) -> None:
        with self._lock:
            self._db.execute("DELETE FROM answers")

    def close(self) -> None:
        with self._lock:
            self._db.close()

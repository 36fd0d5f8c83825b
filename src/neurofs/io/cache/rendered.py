"""Files rendered once into the cache directory and served from there (Parquet of frozen
CAVE versions).

    <cache>/rendered/<sha256 of the identity>.<suffix>      a finished file
    <cache>/rendered/<...>.<nonce>.tmp                      one being written

A rendered file is named by a content identity, as blocks are: equal identities mean equal
bytes, so a file is written once and later opens, other readers and later mounts read it with
no request. It is written under a temporary name, fsynced and renamed into place, so a file
under its final name is always whole: a render that fails (or a crash mid-render) leaves no
file, only a temporary that is deleted at once (or swept when a process next opens the
directory alone: while others share it, a temporary may be theirs, being written). Each
render writes its own temporary, so two processes rendering one identity at once do not mix
their bytes; the later rename wins, with equal bytes.

Concurrent asks for one identity share one render and its outcome (single flight).

Unlike blocks, rendered files are not counted in the cache's capacity: a whole file is needed
or nothing. Frozen tables are few and stay until ``clear``; kinds that may be many (a root's
supervoxel ids, one file per root asked for) are rendered with a budget, and past it the
oldest rendered files of that kind are deleted (an open reader keeps its descriptor).
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import trio

from neurofs.errors import NeurofsError, RemoteError
from neurofs.io.durable import fsync_directory, private_directory

log = logging.getLogger(__name__)

RENDERED_DIR = "rendered"
_TEMP_SUFFIX = ".tmp"

# Writes the file's bytes into the path it is given (which does not exist yet).
Render = Callable[[Path], Awaitable[None]]


@dataclass(frozen=True)
class RenderedFile:
    path: Path
    size: int


@dataclass
class _Inflight:
    done: trio.Event = field(default_factory=trio.Event)
    error: BaseException | None = None


class RenderedFiles:
    """The ``rendered/`` directory of a cache directory. Call from the event loop."""

    def __init__(self, cache_directory: Path, *, sweep: bool = True) -> None:
        """``sweep``: delete the temporaries left by a crash (only when no other process
        uses the directory)."""
        self.directory = private_directory(Path(cache_directory) / RENDERED_DIR)
        self._inflight: dict[str, _Inflight] = {}
        if sweep:
            self._sweep()

    def path_of(self, identity: str, suffix: str) -> Path:
        digest = hashlib.sha256(identity.encode()).hexdigest()
        return self.directory / f"{digest}{suffix}"

    def find(self, identity: str, suffix: str) -> RenderedFile | None:
        """The finished file of ``identity``, if it is there."""
        path = self.path_of(identity, suffix)
        try:
            return RenderedFile(path, path.stat().st_size)
        except FileNotFoundError:
            return None

    async def ensure(
        self,
        identity: str,
        suffix: str,
        render: Render,
        *,
        budget: tuple[int, int] | None = None,
    ) -> RenderedFile:
        """The finished file of ``identity``, rendered now if it is not there. A failed render
        raises its error (to every caller that waited for it) and leaves nothing behind.
        ``budget`` (files, bytes): after a render, the files named with ``suffix`` are kept
        within both, the oldest rendered deleted first (never the one just rendered)."""
        while True:
            found = self.find(identity, suffix)
            if found is not None:
                return found
            inflight = self._inflight.get(identity)
            if inflight is None:
                break
            await inflight.done.wait()
            if inflight.error is not None:
                raise _shared(inflight.error)
        inflight = self._inflight[identity] = _Inflight()
        path = self.path_of(identity, suffix)
        try:
            await self._render(path, render)
        except BaseException as exc:
            inflight.error = exc
            raise
        finally:
            del self._inflight[identity]
            inflight.done.set()
        if budget is not None:
            await trio.to_thread.run_sync(_prune, self.directory, suffix, budget, path)
        found = self.find(identity, suffix)
        if found is None:  # removed between the rename and now (a clear): say so, not ENOENT
            raise RemoteError(f"{identity}: rendered file removed while it was being served")
        return found

    async def _render(self, path: Path, render: Render) -> None:
        temp = path.with_name(f"{path.name}.{secrets.token_hex(8)}{_TEMP_SUFFIX}")
        try:
            await render(temp)
            await trio.to_thread.run_sync(_make_durable, temp, path)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise

    def clear(self) -> int:
        """Delete every finished file (open readers keep theirs); how many."""
        return clear_rendered(self.directory.parent)

    def _sweep(self) -> None:
        """Temporaries left by a crash are never finished: delete them."""
        for entry in self.directory.iterdir():
            if entry.name.endswith(_TEMP_SUFFIX):
                log.info("rendered files: removing the unfinished %s", entry.name)
                entry.unlink(missing_ok=True)


def clear_rendered(cache_directory: Path) -> int:
    """Delete the finished rendered files of a cache directory (``neurofs cache clear``);
    how many. Renders under way keep their temporaries and finish."""
    directory = Path(cache_directory) / RENDERED_DIR
    if not directory.is_dir():
        return 0
    count = 0
    for entry in directory.iterdir():
        if not entry.name.endswith(_TEMP_SUFFIX):
            entry.unlink(missing_ok=True)
            count += 1
    return count


def _prune(directory: Path, suffix: str, budget: tuple[int, int], keep: Path) -> None:
    """Delete the oldest finished files named with ``suffix`` until at most ``budget`` (files,
    bytes) are left, never ``keep``."""
    most_files, most_bytes = budget
    found: list[tuple[float, int, Path]] = []
    for entry in os.scandir(directory):
        if entry.name.endswith(suffix) and entry.path != str(keep):
            try:
                info = entry.stat()
            except FileNotFoundError:
                continue  # deleted by another process meanwhile
            found.append((info.st_mtime, info.st_size, Path(entry.path)))
    found.sort(reverse=True)  # newest first: they stay
    try:
        total = keep.stat().st_size
    except FileNotFoundError:
        total = 0
    files = 1
    for _, size, path in found:
        files, total = files + 1, total + size
        if files > most_files or total > most_bytes:
            log.debug("rendered files: removing %s (past the budget of %s)", path.name, suffix)
            path.unlink(missing_ok=True)


def _make_durable(temp: Path, path: Path) -> None:
    fd = os.open(temp, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.chmod(temp, 0o600)
    os.rename(temp, path)
    fsync_directory(path.parent)


def _shared(error: BaseException) -> NeurofsError:
    """A fresh error of the same kind for each caller that waited for a failed render."""
    if isinstance(error, NeurofsError):
        return type(error)(str(error))
    return RemoteError(f"render failed: {error!r}")

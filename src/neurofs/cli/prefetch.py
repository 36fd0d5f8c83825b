"""``neurofs prefetch PATH...``: warm the block cache by reading through the mount.

Reading through the mount fills the cache exactly as a reader would, works with any mount
and needs no private channel. First a walk sizes the job (``.neurofs/`` is skipped, symlinks
are not followed, a file reached twice is read once), then a few worker threads read it in
large pieces; a large file is split so that the workers share it. Ctrl-C stops after the
reads in flight: what was read is in the cache.

The chunks of a ``--bbox`` are read with O_DIRECT: the reader names every chunk it wants, and
the mount reads nothing ahead for such a reader (as the kernel does not), so exactly the
chunks of the box are fetched.
"""

from __future__ import annotations

import os
import stat
import sys
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

import click

from neurofs.cli.bbox import Box, BoxError, chunk_files, parse_box
from neurofs.cli.mounts import find_mount_root
from neurofs.cli.progress import Progress

CONTROL_DIR = ".neurofs"
# One read call; the kernel splits it into FUSE requests of up to its max_read, and the
# mount's read-ahead keeps several in flight.
READ_SIZE = 4 * 1024 * 1024
# A file larger than this is cut into pieces of this size, read by different workers.
PIECE_SIZE = 64 * 1024 * 1024
EXIT_INTERRUPTED = 130


@dataclass(frozen=True)
class Piece:
    path: Path
    offset: int
    length: int
    last: bool  # the file's last piece: the file counts as done when all are
    direct: bool = False  # read with O_DIRECT: the mount reads nothing ahead of it


@dataclass
class Plan:
    """Files to read, with their sizes, in phases read one after the other."""

    phases: list[list[tuple[Path, int]]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    # Files named exactly (the chunks of a box), read with O_DIRECT.
    direct: set[Path] = field(default_factory=set)

    @property
    def files(self) -> list[tuple[Path, int]]:
        return [file for phase in self.phases for file in phase]

    @property
    def total_bytes(self) -> int:
        return sum(size for _, size in self.files)


def plan(paths: Iterable[Path], box: Box | None) -> Plan:
    """Every regular file to read, each once, with its size."""
    result = Plan()
    seen: set[tuple[int, int]] = set()

    def add(phase: list[tuple[Path, int]], path: Path) -> None:
        try:
            st = os.lstat(path)
        except OSError as exc:
            result.problems.append(f"{path}: {exc.strerror}")
            return
        if stat.S_ISREG(st.st_mode) and (st.st_dev, st.st_ino) not in seen:
            seen.add((st.st_dev, st.st_ino))
            phase.append((path, st.st_size))

    for path in paths:
        if box is not None:
            result.phases.append([])
            for chunk in chunk_files(path, box):
                add(result.phases[-1], chunk)
                result.direct.add(chunk)
            continue
        result.phases.append([])
        # A PATH given as a symlink (``latest``) is followed once; nothing below it is.
        if path.is_dir():
            for file in _walk(path, result.problems):
                add(result.phases[-1], file)
        else:
            add(result.phases[-1], path)
    return result


def _walk(top: Path, problems: list[str]) -> Iterator[Path]:
    def failed(exc: OSError) -> None:
        problems.append(f"{exc.filename}: {exc.strerror}")

    for root, dirs, files in os.walk(top, onerror=failed, followlinks=False):
        dirs[:] = sorted(d for d in dirs if d != CONTROL_DIR)
        for name in sorted(files):
            yield Path(root) / name


def pieces(files: list[tuple[Path, int]], direct: set[Path] | None = None) -> list[Piece]:
    out: list[Piece] = []
    for path, size in files:
        exact = direct is not None and path in direct
        offsets = list(range(0, size, PIECE_SIZE)) or [0]
        for offset in offsets:
            length = min(PIECE_SIZE, size - offset)
            out.append(Piece(path, offset, length, offset == offsets[-1], exact))
    return out


class Reader:
    """Reads pieces; stops between reads once ``stop`` is set."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.stop = threading.Event()
        self.failed: dict[Path, str] = {}
        self._lock = threading.Lock()
        self._pending: dict[Path, int] = {}

    def expect(self, work: list[Piece]) -> None:
        for piece in work:
            self._pending[piece.path] = self._pending.get(piece.path, 0) + 1

    def read(self, piece: Piece) -> None:
        if self.stop.is_set() or piece.path in self.failed:
            return
        try:
            flags = os.O_RDONLY | os.O_CLOEXEC | (os.O_DIRECT if piece.direct else 0)
            fd = os.open(piece.path, flags)
        except OSError as exc:
            self._fail(piece.path, exc)
            return
        try:
            buffer = bytearray(READ_SIZE)
            view = memoryview(buffer)
            offset, end = piece.offset, piece.offset + piece.length
            while offset < end and not self.stop.is_set():
                n = os.preadv(fd, [view[: min(READ_SIZE, end - offset)]], offset)
                if n == 0:
                    break  # shorter than its size said: the rest does not exist
                offset += n
                self.progress.advance(n)
            # The point is the mount's disk cache: leave the page cache to what the machine
            # is doing (a prefetch of a few hundred GiB would otherwise push it all out).
            os.posix_fadvise(fd, piece.offset, offset - piece.offset, os.POSIX_FADV_DONTNEED)
        except OSError as exc:
            self._fail(piece.path, exc)
            return
        finally:
            os.close(fd)
        if offset >= end:
            self._piece_done(piece.path)

    def _piece_done(self, path: Path) -> None:
        with self._lock:
            self._pending[path] -= 1
            done = self._pending[path] == 0
        if done and path not in self.failed:
            self.progress.advance(files=1)

    def _fail(self, path: Path, exc: OSError) -> None:
        with self._lock:
            first = path not in self.failed
            self.failed[path] = exc.strerror or str(exc)
        if first:
            self.progress.message(f"neurofs: prefetch: {path}: {self.failed[path]}")


def run(phases: list[list[Piece]], reader: Reader, jobs: int) -> bool:
    """Read everything with ``jobs`` workers, one phase after the other; False when
    interrupted (Ctrl-C): the reads in flight finish, nothing new starts."""
    for work in phases:
        reader.expect(work)
    running: set[Future[None]] = set()
    with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="prefetch") as pool:
        try:
            for work in phases:
                queue = iter(work)
                while True:
                    while len(running) < jobs * 2:
                        piece = next(queue, None)
                        if piece is None:
                            break
                        running.add(pool.submit(reader.read, piece))
                    if not running:
                        break  # the phase is done
                    # A timeout keeps the main thread responsive to Ctrl-C.
                    done, running = wait(running, timeout=0.5, return_when=FIRST_COMPLETED)
                    for future in done:
                        future.result()
        except KeyboardInterrupt:
            reader.stop.set()
            for future in running:
                future.cancel()
            return False
    return True


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--jobs", "-j", default=4, show_default=True, type=click.IntRange(1, 64))
@click.option(
    "--bbox",
    help="Only the chunks of a volume mag inside X0,Y0,Z0:X1,Y1,Z1 (mag voxels, end exclusive).",
)
@click.option(
    "--verify",
    "then_verify",
    is_flag=True,
    help="Then check what was read against the DANDI Archive's digests (neurofs verify).",
)
def prefetch(paths: tuple[Path, ...], jobs: int, bbox: str | None, then_verify: bool) -> None:
    """Read PATH... through the mount so that later reads come from the cache.

    PATH is a file or a directory inside a neurofs mount (a dandiset, a folder, a zarr, a
    WEBKNOSSOS mag). With --bbox, each PATH is a volume mag directory
    (<layer>.ome.zarr/<mag> or <layer>/<mag>). With --verify, the DANDI files among them are
    then checked as `neurofs verify` does, from the cache just filled.
    """
    for path in paths:
        if find_mount_root(path) is None:
            raise click.UsageError(f"{path} is not inside a neurofs mount")
    try:
        box = parse_box(bbox) if bbox is not None else None
        job = plan(paths, box)
    except BoxError as exc:
        raise click.UsageError(str(exc)) from None
    except KeyboardInterrupt:
        click.echo("interrupted: nothing read yet (stopped while listing)", err=True)
        sys.exit(EXIT_INTERRUPTED)
    for problem in job.problems:
        click.echo(f"neurofs: prefetch: {problem}", err=True)
    progress = Progress(job.total_bytes, len(job.files), sys.stderr, terminal=sys.stderr.isatty())
    reader = Reader(progress)
    finished = run([pieces(phase, job.direct) for phase in job.phases], reader, jobs)
    if not finished:
        progress.finish("interrupted")
        sys.exit(EXIT_INTERRUPTED)
    failed = len(reader.failed) + len(job.problems)
    progress.finish(f"prefetched, {failed} failed" if failed else "prefetched")
    status = 1 if failed else 0
    if then_verify:
        from neurofs.cli.verify import verify_paths  # verify builds on this module

        status = max(status, verify_paths(paths, jobs))
    if status:
        sys.exit(status)

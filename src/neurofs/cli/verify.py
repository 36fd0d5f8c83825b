"""``neurofs verify PATH...``: check the bytes a mount serves against the archive's digests.

The archive's digests come from the mount's extended attribute ``user.dandi.digest`` (see
``sources.dandi.digests``):

- a DANDI blob: the dandi-etag of its bytes, and their sha2-256 when the archive has one;
- a zarr: each key's md5 against the ETag of the zarr's listing, then the zarr's checksum
  computed from those md5s.

The bytes are read through the mount, so what is cached is checked where it is and what is
not is fetched by the mount's own read path, once. Each file streams through its hashers in
``READ_SIZE`` reads, never whole in memory. On a mismatch the mount is told to forget those
bytes (``cache drop PATH`` on ``.neurofs/control``), so the next read fetches them again.
Files without a digest (sidecars, other services) are skipped. Exit status: 0 when every
digest matched, 1 on a mismatch or a file that could not be read, 130 on Ctrl-C.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import sys
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import click

from neurofs.cli.mounts import ControlError, find_mount_root, send_command
from neurofs.cli.prefetch import CONTROL_DIR, EXIT_INTERRUPTED, READ_SIZE
from neurofs.cli.progress import Progress
from neurofs.io.digests import (
    DANDI_ETAG,
    MD5,
    SHA2_256,
    ZARR_CHECKSUM,
    DandiEtagHasher,
    ZarrEntryDigest,
    zarr_checksum,
)
from neurofs.sources.dandi.digests import DIGEST_XATTR

_PLAIN_MD5 = frozenset("0123456789abcdef")


class _Hasher(Protocol):
    def update(self, data: bytes | memoryview, /) -> None: ...

    def hexdigest(self) -> str: ...


def _hasher(algorithm: str, size: int) -> _Hasher:
    if algorithm == DANDI_ETAG:
        return DandiEtagHasher(size)
    return hashlib.sha256() if algorithm == SHA2_256 else hashlib.md5()


@dataclass
class FileCheck:
    """One file to read: the digests to compute, and those the archive has for it."""

    path: Path
    size: int
    algorithms: tuple[str, ...]
    expected: dict[str, str]
    got: dict[str, str] = field(default_factory=dict)
    error: str | None = None

    def wrong(self) -> list[str]:
        """The algorithms whose digest of the bytes read differs from the archive's."""
        return [a for a, value in self.expected.items() if a in self.got and self.got[a] != value]


@dataclass
class ZarrCheck:
    path: Path
    checksum: str | None  # None while the archive has not computed it
    keys: dict[str, FileCheck] = field(default_factory=dict)  # by key in the zarr


@dataclass
class Plan:
    files: list[FileCheck] = field(default_factory=list)  # blobs and files given alone
    zarrs: list[ZarrCheck] = field(default_factory=list)
    skipped: int = 0
    problems: list[str] = field(default_factory=list)

    def reads(self) -> list[FileCheck]:
        return [*self.files, *(k for z in self.zarrs for k in z.keys.values())]


def _digest(path: Path) -> dict[str, str]:
    """The archive's digests of ``path`` (empty when it has none)."""
    try:
        raw = os.getxattr(path, DIGEST_XATTR)
    except OSError as exc:
        if exc.errno in (errno.ENODATA, errno.ENOTSUP):
            return {}
        raise
    data = json.loads(raw)
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def plan(paths: Iterable[Path]) -> Plan:
    result = Plan()
    for path in paths:
        try:
            if path.is_dir():
                _add_directory(path, result)
            else:
                _add_file(path, result)
        except OSError as exc:
            result.problems.append(f"{path}: {exc.strerror}")
    return result


def _add_file(path: Path, result: Plan) -> None:
    digest = _digest(path)
    algorithms = tuple(a for a in (DANDI_ETAG, SHA2_256, MD5) if a in digest)
    if not algorithms:
        result.skipped += 1
        return
    expected = {a: digest[a] for a in algorithms}
    result.files.append(FileCheck(path, path.stat().st_size, algorithms, expected))


def _add_directory(top: Path, result: Plan) -> None:
    digest = _digest(top)
    if ZARR_CHECKSUM in digest:
        result.zarrs.append(_zarr(top, digest[ZARR_CHECKSUM] or None))
        return
    for entry in sorted(os.scandir(top), key=lambda e: e.name):
        path = Path(entry.path)
        try:
            if entry.name == CONTROL_DIR:
                continue
            if entry.is_dir(follow_symlinks=False):
                _add_directory(path, result)
            elif entry.is_file(follow_symlinks=False):
                _add_file(path, result)
        except OSError as exc:
            result.problems.append(f"{path}: {exc.strerror}")


def _zarr(root: Path, checksum: str | None) -> ZarrCheck:
    check = ZarrCheck(root, checksum)
    for directory, dirs, files in os.walk(root, followlinks=False):
        dirs.sort()
        for name in sorted(files):
            path = Path(directory) / name
            etag = _digest(path).get(MD5, "")
            # A multipart ETag is not an md5: the checksum still covers that key.
            plain = len(etag) == 32 and set(etag) <= _PLAIN_MD5
            key = path.relative_to(root).as_posix()
            check.keys[key] = FileCheck(
                path, path.stat().st_size, (MD5,), {MD5: etag} if plain else {}
            )
    return check


# ---------------------------------------------------------------- reading


def read_and_hash(check: FileCheck, progress: Progress, stop: threading.Event) -> None:
    """Stream the file through its hashers; ``check.got`` or ``check.error`` is set."""
    hashers = {a: _hasher(a, check.size) for a in check.algorithms}
    try:
        fd = os.open(check.path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        check.error = exc.strerror or str(exc)
        return
    try:
        buffer = bytearray(READ_SIZE)
        view = memoryview(buffer)
        offset = 0
        while offset < check.size and not stop.is_set():
            n = os.preadv(fd, [view[: min(READ_SIZE, check.size - offset)]], offset)
            if n == 0:
                check.error = f"ended after {offset} of {check.size} bytes"
                return
            for hasher in hashers.values():
                hasher.update(view[:n])
            offset += n
            progress.advance(n)
        # As prefetch: the point is the mount's cache, not the machine's page cache.
        os.posix_fadvise(fd, 0, offset, os.POSIX_FADV_DONTNEED)
    except OSError as exc:
        check.error = exc.strerror or str(exc)
        return
    finally:
        os.close(fd)
    if offset == check.size:
        check.got = {a: h.hexdigest() for a, h in hashers.items()}
        progress.advance(files=1)


def run_all(
    checks: list[FileCheck], work: Callable[[FileCheck], None], jobs: int, stop: threading.Event
) -> bool:
    """``work`` on every check with ``jobs`` threads; False when interrupted (Ctrl-C): the
    reads in flight stop at their next read, nothing new starts."""
    queue = iter(checks)
    running: set[Future[None]] = set()
    with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="verify") as pool:
        try:
            while True:
                while len(running) < jobs * 2 and (check := next(queue, None)) is not None:
                    running.add(pool.submit(work, check))
                if not running:
                    return True
                # A timeout keeps the main thread responsive to Ctrl-C.
                done, running = wait(running, timeout=0.5, return_when=FIRST_COMPLETED)
                for future in done:
                    future.result()
        except KeyboardInterrupt:
            stop.set()
            for future in running:
                future.cancel()
            return False


# ---------------------------------------------------------------- judging


@dataclass
class Outcome:
    ok: int = 0
    bad: int = 0

    def say(self, text: str, ok: bool) -> None:
        click.echo(text)
        if ok:
            self.ok += 1
        else:
            self.bad += 1


def _drop(path: Path) -> str:
    """Have the mount forget the cached bytes at ``path``; how that went, in words."""
    root = find_mount_root(path)
    if root is None:
        return "not in a neurofs mount: nothing dropped"
    relative = os.path.relpath(os.path.realpath(path), os.path.realpath(root))
    try:
        send_command(root, f"cache drop {relative}")
    except ControlError as exc:
        return f"its cached bytes could not be dropped: {exc}"
    return "its cached bytes were dropped"


def judge_file(check: FileCheck, outcome: Outcome) -> None:
    if check.error is not None:
        outcome.say(f"FAILED {check.path}: {check.error}", ok=False)
        return
    wrong = check.wrong()
    if not wrong:
        first = check.algorithms[0]
        outcome.say(f"ok {check.path}: {first} {check.got[first]}", ok=True)
        return
    dropped = _drop(check.path)
    for algorithm in wrong:
        outcome.say(
            f"MISMATCH {check.path}: {algorithm} expected {check.expected[algorithm]}, "
            f"got {check.got[algorithm]}; {dropped}",
            ok=False,
        )


def judge_zarr(check: ZarrCheck, outcome: Outcome) -> None:
    failed = [k for k in check.keys.values() if k.error is not None]
    wrong = [k for k in check.keys.values() if k.wrong()]
    for key in failed:
        outcome.say(f"FAILED {key.path}: {key.error}", ok=False)
    for key in wrong:
        outcome.say(
            f"MISMATCH {key.path}: {MD5} expected {key.expected[MD5]} (the zarr's listing), "
            f"got {key.got[MD5]}; {_drop(key.path)}",
            ok=False,
        )
    if failed:
        return
    entries = [ZarrEntryDigest(key, k.got[MD5], k.size) for key, k in check.keys.items()]
    got = zarr_checksum(entries)
    if check.checksum is None:
        if not wrong:
            outcome.say(f"ok {check.path}: every key matches the listing (no checksum yet)", True)
    elif got == check.checksum:
        outcome.say(f"ok {check.path}: {ZARR_CHECKSUM} {got}", ok=True)
    else:
        # Keys already named were dropped; otherwise the listing itself disagrees with the
        # checksum, and the whole zarr is read again next time.
        dropped = "its bad keys were dropped" if wrong else _drop(check.path)
        outcome.say(
            f"MISMATCH {check.path}: {ZARR_CHECKSUM} expected {check.checksum}, got {got}; "
            f"{dropped}",
            ok=False,
        )


def verify_paths(paths: Iterable[Path], jobs: int) -> int:
    """Verify PATHs; the exit status (0, 1 or EXIT_INTERRUPTED)."""
    try:
        job = plan(paths)
    except KeyboardInterrupt:
        click.echo("interrupted: nothing verified (stopped while listing)", err=True)
        return EXIT_INTERRUPTED
    for problem in job.problems:
        click.echo(f"neurofs: verify: {problem}", err=True)
    reads = job.reads()
    progress = Progress(
        sum(c.size for c in reads), len(reads), sys.stderr, terminal=sys.stderr.isatty()
    )
    stop = threading.Event()
    if not run_all(reads, lambda c: read_and_hash(c, progress, stop), jobs, stop):
        progress.finish("interrupted")
        return EXIT_INTERRUPTED
    outcome = Outcome()
    for file in job.files:
        judge_file(file, outcome)
    for zarr in job.zarrs:
        judge_zarr(zarr, outcome)
    bad = outcome.bad + len(job.problems)
    skipped = f", {job.skipped} without a digest" if job.skipped else ""
    progress.finish(f"verified {outcome.ok} ok, {bad} failed{skipped}")
    return 1 if bad else 0


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--jobs", "-j", default=4, show_default=True, type=click.IntRange(1, 64))
def verify(paths: tuple[Path, ...], jobs: int) -> None:
    """Check the bytes of PATH... against the DANDI Archive's digests.

    PATH is a file or a directory inside a neurofs mount: a blob asset (dandi-etag, and
    sha2-256 when the archive has it), a zarr (each key's md5 and the zarr checksum), or a
    folder or version holding them. Bytes not cached are fetched through the mount. On a
    mismatch the mount drops those bytes from its cache; the exit status is then 1.
    """
    for path in paths:
        if find_mount_root(path) is None:
            raise click.UsageError(f"{path} is not inside a neurofs mount")
    sys.exit(verify_paths(paths, jobs))

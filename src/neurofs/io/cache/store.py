"""The block files under ``blocks/``: written durably, read back verified, deleted, swept.

    blocks/<xx>/<sha256>.<nonce>        one file per block

``<sha256>`` hashes the content string and the index; the content string itself never becomes
a path (it is untrusted and may contain ``/`` or ``..``). ``<xx>`` is the first two hex digits
of the sha256 of the content string alone, so the blocks of one file share a directory (one
directory fsync makes a group of them durable) while contents spread over 256 directories
that are created once, at open. Caches written before keep their blocks under the key's
digits, which are accepted too. ``<nonce>`` is random per write, so replacing a block never
overwrites a file another thread may be reading and verifying: the store needs no lock.

A block file is written under its final name and fsynced, with no temp file and rename: the
index names it only after the file and its directory are durable, so a crash mid-write leaves
a file no row names, which the sweep at open deletes.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import re
import secrets
import shutil
import zlib
from collections.abc import Iterable, Sequence
from pathlib import Path

from neurofs.io.cache.entry import CHECK_UNIT, BlockEntry, BlockKey
from neurofs.io.durable import fsync_directory, make_directory, write_new_file

log = logging.getLogger(__name__)

_PREFIXES = tuple(f"{i:02x}" for i in range(256))
_NAME_RE = re.compile(r"([0-9a-f]{2})/([0-9a-f]{64})\.[0-9a-f]{16}")
_FILE_RE = re.compile(r"[0-9a-f]{64}\.[0-9a-f]{16}")


class BlockStore:
    """Thread-safe without a lock: every write goes to a new file name."""

    def __init__(self, blocks: Path) -> None:
        self.blocks = blocks
        self._prefix = f"{blocks}{os.sep}"  # a hit joins strings, not Paths (cheaper)
        # Bytes read from block files and checked against their checksums, since open: what
        # a hit costs, for ``CacheStats`` (an approximate count under concurrent reads).
        self.verified_bytes = 0

    def write_group(self, blocks: Sequence[tuple[str, bytes | memoryview]]) -> list[OSError | None]:
        """Store each ``(name, data)`` (names from :func:`new_name`) durably: every file
        written and fsynced, then every directory holding one fsynced once (not once per
        file). Per block, None once it is durable, or the error; a failed block leaves no
        file behind."""
        errors: list[OSError | None] = []
        for name, data in blocks:
            path = self._prefix + name
            try:
                try:
                    write_new_file(Path(path), data)
                except FileNotFoundError:  # the prefix directory was removed behind our back
                    make_directory(Path(path).parent)
                    write_new_file(Path(path), data)
            except OSError as exc:
                errors.append(exc)
            else:
                errors.append(None)
        written = [name for (name, _data), e in zip(blocks, errors, strict=True) if e is None]
        for directory in {name[:2] for name in written}:
            try:
                fsync_directory(self.blocks / directory)
            except OSError as exc:  # the names there may not survive a crash: not stored
                for i, (name, _data) in enumerate(blocks):
                    if errors[i] is None and name[:2] == directory:
                        errors[i] = exc
                        self.unlink([name])
        return errors

    def read(self, entry: BlockEntry) -> bytes | None:
        """The block's bytes if their length and checksums match ``entry``, else None."""
        path = self.blocks / entry.name
        try:
            data = _read_file(path, entry.size)
        except OSError as exc:
            if exc.errno != errno.ENOENT:
                log.warning("block cache: cannot read %s: %s", path, exc)
            return None
        if len(data) != entry.size or not self._sound(entry, 0, data):
            return None
        return data

    def read_range(self, entry: BlockEntry, start: int, end: int) -> bytes | None:
        """Bytes [start, end) of the block, if the checksum units holding them match
        ``entry`` and the file has the recorded size, else None. Reads and checks only those
        units (a block of an older version, with one checksum, is read whole)."""
        if entry.sums is None:
            data = self.read(entry)
            return None if data is None else data[start:end]
        first = start // CHECK_UNIT * CHECK_UNIT
        last = min(-(-end // CHECK_UNIT) * CHECK_UNIT, entry.size)
        path = self._prefix + entry.name
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                # A file of another length was damaged (or replaced) behind our back.
                if os.fstat(fd).st_size != entry.size:
                    return None
                data = os.pread(fd, last - first, first)
            finally:
                os.close(fd)
        except OSError as exc:
            if exc.errno != errno.ENOENT:
                log.warning("block cache: cannot read %s: %s", path, exc)
            return None
        if len(data) != last - first or not self._sound(entry, first, data):
            return None
        return data[start - first : end - first]

    def _sound(self, entry: BlockEntry, offset: int, data: bytes) -> bool:
        """Whether ``data``, read at ``offset`` (a unit boundary) of the block, matches the
        block's checksums."""
        self.verified_bytes += len(data)
        if entry.sums is None:
            return zlib.crc32(data) == entry.crc
        view = memoryview(data)
        unit = offset // CHECK_UNIT
        for i in range(0, len(view), CHECK_UNIT):
            want = entry.sums[4 * unit : 4 * unit + 4]
            if zlib.crc32(view[i : i + CHECK_UNIT]).to_bytes(4, "little") != want:
                return False
            unit += 1
        return True

    def will_need(self, entries: Iterable[BlockEntry]) -> None:
        """Ask the kernel to start reading these block files into its page cache (a reader
        is about to want them): the reads that follow find them in memory, and nothing is
        held here. A file gone meanwhile is skipped."""
        for entry in entries:
            try:
                fd = os.open(self._prefix + entry.name, os.O_RDONLY | os.O_CLOEXEC)
            except OSError:
                continue
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_WILLNEED)
            except OSError:
                pass  # a hint only
            finally:
                os.close(fd)

    def exists(self, entry: BlockEntry) -> bool:
        return os.path.exists(self._prefix + entry.name)

    def unlink(self, names: Iterable[str]) -> None:
        for name in names:
            try:
                os.unlink(self.blocks / name)
            except FileNotFoundError:
                pass
            except OSError as exc:  # left as an orphan; the next open deletes it
                log.warning("block cache: cannot delete %s: %s", name, exc)

    def sweep(self) -> dict[str, int]:
        """Delete temp files and anything unexpected under blocks/, make sure the 256 prefix
        directories exist, and return the block files found: name -> size."""
        make_directory(self.blocks)
        found: dict[str, int] = {}
        with os.scandir(self.blocks) as it:
            for item in it:
                if item.name not in _PREFIXES or not item.is_dir(follow_symlinks=False):
                    _remove_any(Path(item.path))
        created = False
        for prefix in _PREFIXES:
            directory = self.blocks / prefix
            if _make_directory_quiet(directory):
                created = True
                continue
            found.update(_sweep_prefix_dir(directory, prefix))
        if created:
            fsync_directory(self.blocks)
        return found


def is_name_of(name: str, key: BlockKey) -> bool:
    """Whether ``name`` is a block file name that a write of ``key`` could have chosen, now or
    before blocks were grouped by content (the index lives in a private directory, but a bad
    name must never lead outside blocks/)."""
    match = _NAME_RE.fullmatch(name)
    if match is None:
        return False
    try:
        digest = _key_digest(key)
        directory = _content_directory(key[0])
    except ValueError:
        return False
    return match[2] == digest and match[1] in (directory, digest[:2])


def _key_digest(key: BlockKey) -> str:
    """Hex sha256 of the key. The index follows the last NUL, so the encoding is unambiguous.
    Raises ValueError for content that is not valid text (lone surrogates)."""
    content = key[0].encode("utf-8")
    return hashlib.sha256(b"%s\0%d" % (content, key[1])).hexdigest()


def _content_directory(content: str) -> str:
    """The prefix directory of a content's blocks: the first two hex digits of its sha256.
    Raises ValueError for content that is not valid text."""
    return hashlib.sha256(content.encode("utf-8")).hexdigest()[:2]


def new_name(key: BlockKey) -> str:
    """A file name for a new write of ``key``, relative to blocks/. Raises ValueError for
    content that is not valid text."""
    return f"{_content_directory(key[0])}/{_key_digest(key)}.{secrets.token_hex(8)}"


def _read_file(path: Path, size: int) -> bytes:
    """Read up to size + 1 bytes: one extra byte reveals a file longer than recorded. A single
    read() normally returns everything (regular files only read short at end of file)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        parts: list[bytes] = []
        total = 0
        while total < size:
            chunk = os.read(fd, size + 1 - total)
            if not chunk:
                break
            parts.append(chunk)
            total += len(chunk)
    finally:
        os.close(fd)
    return parts[0] if len(parts) == 1 else b"".join(parts)


def _make_directory_quiet(path: Path) -> bool:
    """mkdir without an fsync per directory (the caller fsyncs the parent once)."""
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        return False
    return True


def _sweep_prefix_dir(directory: Path, prefix: str) -> dict[str, int]:
    found: dict[str, int] = {}
    with os.scandir(directory) as it:
        for item in it:
            if _FILE_RE.fullmatch(item.name) and item.is_file(follow_symlinks=False):
                found[f"{prefix}/{item.name}"] = item.stat(follow_symlinks=False).st_size
            else:  # temp files of interrupted writes, and anything we did not put there
                _remove_any(Path(item.path))
    return found


def _remove_any(path: Path) -> None:
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    except OSError as exc:
        log.warning("block cache: cannot remove %s: %s", path, exc)

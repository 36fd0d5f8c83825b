"""``neurofs://``: the mount's tree as an fsspec filesystem, for workers without FUSE.

    fs = NeurofsFileSystem()                         # the configuration a mount would use
    zarr.open("neurofs://webknossos/datasets/org/ds/color.ome.zarr/1", mode="r")
    h5py.File(fs.open("neurofs://dandi/000001/draft/sub-01/x.nwb"), "r")
    pandas.read_csv("neurofs://cave/minnie65/tables/synapses/annotations.csv")

Paths are the mount's (``dandi/…``, ``webknossos/…``, ``cave/…``, without ``.neurofs/``),
served by a :class:`~neurofs.fsspec.session.Session` of the same sources, block cache and
shared tier. Reads only: a save is the mount's (editing goes through its sidecar files).
Options (``storage_options``, all plain values, so Dask can send them to its workers):
``config`` (a configuration file; default: the one a mount would read), ``cache_dir``,
``cache_size`` and ``tier`` (override the file's ``[cache]``).
"""

from __future__ import annotations

import contextlib
import errno
import os
from pathlib import Path
from typing import Any, ClassVar

from fsspec.spec import AbstractBufferedFile, AbstractFileSystem

from neurofs.config import CacheConfig, load_config, parse_size
from neurofs.fsspec.session import Session
from neurofs.tree.nodes import Attrs, FileHandle, Kind, Node

# ``cat_ranges`` reads this many ranges at once (each a read of the mount's read path).
RANGES_AT_ONCE = 16


class NeurofsFileSystem(AbstractFileSystem):
    protocol: ClassVar[str | tuple[str, ...]] = "neurofs"
    root_marker = ""

    def __init__(
        self,
        config: str | None = None,
        cache_dir: str | None = None,
        cache_size: str | int | None = None,
        tier: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        loaded = load_config(Path(config).expanduser() if config else None)
        # As `neurofs mount`'s options do: over the file and the environment (NEUROFS_TIER).
        if cache_dir is not None:
            loaded.cache.dir = Path(cache_dir).expanduser()
        if cache_size is not None:
            loaded.cache.size = parse_size(cache_size)
        if tier is not None:
            loaded.cache.tier = CacheConfig.valid_tier(tier)
        self.session = Session.of(loaded)

    @classmethod
    def _strip_protocol(cls, path: str) -> str:
        if isinstance(path, list):
            return [cls._strip_protocol(p) for p in path]
        path = str(path)
        path = path.removeprefix("neurofs://").removeprefix("neurofs:")
        return path.strip("/")

    # ------------------------------------------------------------------ listing

    def _entry(self, path: str, node: Node, attrs: Attrs) -> dict[str, Any]:
        kind = {Kind.DIRECTORY: "directory", Kind.FILE: "file"}.get(attrs.kind, "link")
        entry: dict[str, Any] = {
            "name": path,
            "size": attrs.size,
            "type": kind,
            "mtime": attrs.mtime,
        }
        if kind == "link":
            entry["destination"] = getattr(node, "target", None)
        return entry

    def ls(self, path: str, detail: bool = True, **kwargs: Any) -> list[Any]:
        path = self._strip_protocol(path)
        listed = self.session.run(self.session.entries, path)
        prefix = f"{path}/" if path else ""
        entries = [self._entry(prefix + node.name, node, attrs) for node, attrs in listed]
        for entry in entries:  # a link's type is its target's (as `ls -L`)
            if entry["type"] == "link":
                try:
                    followed = self.info(entry["name"])
                except OSError:
                    continue
                entry.update(type=followed["type"], size=followed["size"])
        return entries if detail else [e["name"] for e in entries]

    def info(self, path: str, **kwargs: Any) -> dict[str, Any]:
        path = self._strip_protocol(path)
        node, attrs = self.session.run(self.session.stat, path)
        return self._entry(path, node, attrs)

    # ------------------------------------------------------------------ reading

    def cat_file(
        self, path: str, start: int | None = None, end: int | None = None, **kwargs: Any
    ) -> bytes:
        return self.session.run(self.session.cat, self._strip_protocol(path), start, end)

    def cat_ranges(
        self,
        paths: list[str],
        starts: list[int | None] | int | None,
        ends: list[int | None] | int | None,
        max_gap: int | None = None,
        on_error: str = "return",
        **kwargs: Any,
    ) -> list[bytes | BaseException]:
        n = len(paths)
        first = starts if isinstance(starts, list) else [starts] * n
        last = ends if isinstance(ends, list) else [ends] * n
        if len(first) != n or len(last) != n:
            raise ValueError("paths, starts and ends must be as long as each other")
        ranges = [
            (self._strip_protocol(p), s, e) for p, s, e in zip(paths, first, last, strict=True)
        ]
        out = self.session.run(self.session.cat_ranges, ranges, RANGES_AT_ONCE)
        if on_error == "raise":
            for result in out:
                if isinstance(result, BaseException):
                    raise result
        return out

    def _open(
        self,
        path: str,
        mode: str = "rb",
        block_size: int | None = None,
        autocommit: bool = True,
        cache_options: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> NeurofsFile:
        if mode != "rb":
            raise OSError(
                errno.EROFS,
                f"{os.strerror(errno.EROFS)}: neurofs:// is read-only; edit files through a mount",
                path,
            )
        return NeurofsFile(
            self,
            self._strip_protocol(path),
            block_size=block_size,
            cache_options=cache_options,
            **kwargs,
        )

    # ------------------------------------------------------------------ writing: refused

    def _read_only(self, path: str, *args: Any, **kwargs: Any) -> None:
        raise OSError(
            errno.EROFS,
            f"{os.strerror(errno.EROFS)}: neurofs:// is read-only; edit files through a mount",
            path,
        )

    rm_file = _read_only
    _rm = _read_only
    mkdir = _read_only
    makedirs = _read_only
    rmdir = _read_only
    cp_file = _read_only
    pipe_file = _read_only
    touch = _read_only
    mv = _read_only


class NeurofsFile(AbstractBufferedFile):
    """A file opened for random-access reads. Its reads go to the mount's read path (block
    cache, fragments, read-ahead of this open file) as they are asked: fsspec's own cache is
    off by default (``cache_type="none"``), since the fetcher already keeps what it read."""

    def __init__(self, fs: NeurofsFileSystem, path: str, **kwargs: Any) -> None:
        self._session = fs.session
        handle, size = self._session.run(self._session.open, path)
        self._handle: FileHandle | None = handle
        kwargs.setdefault("cache_type", "none")
        if kwargs.get("block_size") is None:
            kwargs["block_size"] = 1 << 20
        super().__init__(fs, path, mode="rb", size=size, **kwargs)

    def _fetch_range(self, start: int, end: int) -> bytes:
        if self._handle is None:
            raise ValueError("I/O operation on closed file")
        end = min(end, self.size)
        return self._session.run(self._session.read, self._handle, self.path, start, end)

    def close(self) -> None:
        handle, self._handle = self._handle, None
        if handle is not None:
            with contextlib.suppress(RuntimeError):  # the session is closed already
                self._session.run(handle.release)
        super().close()

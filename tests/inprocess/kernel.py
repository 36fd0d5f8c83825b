"""Calling the handlers of ``Operations`` as the kernel does, by path, without a mount.

pyfuse3's request types are built in-process; ``SetattrFields`` is the exception (its fields
cannot be set from Python), so :class:`SetattrFields` here stands in for it with the
attribute the handlers read.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import cast

import pyfuse3
import pytest

from neurofs.fs.operations import Operations


@dataclass
class SetattrFields:
    update_size: bool = False
    update_mode: bool = False
    update_mtime: bool = False


@contextlib.contextmanager
def fails_with(code: int) -> Iterator[None]:
    """The block must fail with FUSEError(code), as the kernel would pass it on."""
    with pytest.raises(pyfuse3.FUSEError) as caught:
        yield
    got = caught.value.errno
    assert got == code, f"expected {errno.errorcode[code]}, got {errno.errorcode.get(got, got)}"


def _parts(path: str) -> list[str]:
    return [p for p in path.split("/") if p]


class Kernel:
    def __init__(self, ops: Operations) -> None:
        self.ops = ops
        self.ctx = pyfuse3.RequestContext()

    # ------------------------------------------------------------------ names

    async def lookup(self, path: str) -> int:
        inode = pyfuse3.ROOT_INODE
        for name in _parts(path):
            entry = await self.ops.lookup(inode, os.fsencode(name), self.ctx)
            if entry.st_ino == 0:  # a negative entry: the kernel answers ENOENT
                raise pyfuse3.FUSEError(errno.ENOENT)
            inode = entry.st_ino
        return inode

    async def _parent(self, path: str) -> tuple[int, bytes]:
        *parent, name = _parts(path)
        return await self.lookup("/".join(parent)), os.fsencode(name)

    async def getattr(self, path: str) -> pyfuse3.EntryAttributes:
        return await self.ops.getattr(await self.lookup(path), self.ctx)

    async def size(self, path: str) -> int:
        return int((await self.getattr(path)).st_size)

    # ------------------------------------------------------------------ open files

    async def open(self, path: str, flags: int = os.O_RDONLY) -> int:
        info = await self.ops.open(await self.lookup(path), flags, self.ctx)
        return int(info.fh)

    async def create(self, path: str, flags: int = os.O_WRONLY | os.O_CREAT) -> int:
        parent, name = await self._parent(path)
        info, _ = await self.ops.create(parent, name, 0o644, flags, self.ctx)
        return int(info.fh)

    async def read(self, fh: int, offset: int = 0, size: int = 1 << 24) -> bytes:
        return await self.ops.read(fh, offset, size)

    async def write(self, fh: int, data: bytes, offset: int = 0) -> int:
        return await self.ops.write(fh, offset, data)

    async def flush(self, fh: int) -> None:
        await self.ops.flush(fh)

    async def release(self, fh: int) -> None:
        await self.ops.release(fh)

    async def close(self, fh: int) -> None:
        """close(2) of the only descriptor: flush (its errno is close's), then release."""
        try:
            await self.flush(fh)
        finally:
            await self.release(fh)

    async def truncate(self, path: str, size: int, fh: int | None = None) -> None:
        """truncate(2) by path (``fh`` None) or ftruncate(2) of an open file."""
        attr = pyfuse3.EntryAttributes()
        attr.st_size = size
        fields = cast(pyfuse3.SetattrFields, SetattrFields(update_size=True))
        await self.ops.setattr(await self.lookup(path), attr, fields, fh, self.ctx)

    async def touch(self, path: str) -> None:
        attr = pyfuse3.EntryAttributes()
        fields = cast(pyfuse3.SetattrFields, SetattrFields(update_mtime=True))
        await self.ops.setattr(await self.lookup(path), attr, fields, None, self.ctx)

    # ------------------------------------------------------------------ the tree

    async def rename(self, old: str, new: str) -> None:
        old_parent, old_name = await self._parent(old)
        new_parent, new_name = await self._parent(new)
        await self.ops.rename(old_parent, old_name, new_parent, new_name, 0, self.ctx)

    async def unlink(self, path: str) -> None:
        parent, name = await self._parent(path)
        await self.ops.unlink(parent, name, self.ctx)

    # ------------------------------------------------------------------ whole files

    async def read_file(self, path: str) -> bytes:
        fh = await self.open(path)
        try:
            return await self.read(fh)
        finally:
            await self.close(fh)

    async def write_file(
        self, path: str, data: bytes, flags: int = os.O_WRONLY | os.O_TRUNC
    ) -> None:
        fh = await self.open(path, flags)
        try:
            assert await self.write(fh, data) == len(data)
        finally:
            await self.close(fh)

    async def errors_log(self) -> list[str]:
        return (await self.read_file(".neurofs/errors.log")).decode().splitlines()

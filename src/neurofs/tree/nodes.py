"""Node kinds of the mounted tree: directories, files, symlinks.

Nodes know nothing of FUSE. A node is identified by its path from the mount root (``key``),
so that the fs layer can give the same path the same inode even when a listing is fetched
again and new node objects are built. Sources subclass these or use the generic ones here.
"""

from __future__ import annotations

import enum
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Generic, TypeVar, overload

from neurofs.errors import InvalidContent, NotFound, ReadOnly
from neurofs.tree.buffers import MAX_EDIT_BYTES


class Kind(enum.Enum):
    DIRECTORY = "directory"
    FILE = "file"
    SYMLINK = "symlink"


@dataclass(frozen=True)
class Attrs:
    """What getattr reports. ``size`` is exact; ``mtime`` in seconds since the epoch."""

    kind: Kind
    size: int = 0
    mtime: float = 0.0
    writable: bool = False
    # True when neither the node nor (for directories) its listing can ever change:
    # the fs layer then lets the kernel cache entries and attributes for long.
    immutable: bool = False
    # Only the mount's owner may read it, even on a mount shared with -o allow_other (the
    # user's own rejected writes and error log).
    private: bool = False
    # Written to, never read (the .neurofs/control channel): mode 0200.
    write_only: bool = False
    # Only in a listing: the size is not known yet (the file is made at its first lookup);
    # the fs layer lets the kernel keep nothing of it, so any stat or open asks again.
    provisional: bool = False


# A node's path from the mount root, one name per level: what identifies it (and its inode).
NodePath = tuple[str, ...]


class Node(ABC):
    """Anything with a name in the tree."""

    kind: Kind
    # Extended attributes (``user.…``): name → how to get the value. Listing the names costs
    # nothing; reading a value may cost a request.
    xattrs: Mapping[str, Callable[[], Awaitable[bytes]]] = MappingProxyType({})

    def __init__(self, key: NodePath) -> None:
        self.key = key

    @property
    def name(self) -> str:
        return self.key[-1] if self.key else ""

    @property
    def stale(self) -> bool:
        """Whether this object no longer stands for its path, though the kernel still reaches
        the path through it (a placeholder that became what the server made, or nothing):
        the fs layer then looks the path up again. Answered from state kept outside nodes."""
        return False

    @abstractmethod
    async def stat(self) -> Attrs: ...

    async def listed(self) -> Attrs:
        """The attributes a directory listing shows (readdirplus): ``stat()`` unless finding
        them costs much more than a listing should (then ``provisional`` ones)."""
        return await self.stat()


class Directory(Node):
    kind = Kind.DIRECTORY
    # Editors' scratch files (swap files, backups, temporaries) may be created here: true in
    # directories that hold sidecars.
    accepts_scratch: bool = False

    @abstractmethod
    async def children(self) -> Sequence[Node]:
        """Every child, in a stable order (listing order of readdir)."""

    async def child(self, name: str) -> Node:
        """The child called ``name``; raises NotFound. Override when a direct lookup is cheaper."""
        for node in await self.children():
            if node.name == name:
                return node
        raise NotFound("/".join((*self.key, name)))

    async def remove_child(self, name: str) -> None:
        """Delete a child on the server (the fs layer checks the delete option first)."""
        raise ReadOnly(f"{'/'.join((*self.key, name))} cannot be deleted")

    async def make_directory(self, name: str) -> Node:
        """mkdir of a child (e.g. a new CAVE table, made real by writing its metadata)."""
        raise ReadOnly(f"directories cannot be created in {'/'.join(self.key) or '/'}")

    async def remove_directory(self, name: str) -> None:
        """rmdir of a child directory."""
        raise ReadOnly(f"{'/'.join((*self.key, name))} cannot be removed")

    def creates_from(self, name: str) -> bool:
        """Whether a new file called ``name`` written here is a request to create something
        on the server (committed at close, like a sidecar), rather than a scratch file."""
        return False

    async def create_from_file(self, name: str, data: bytes) -> bytes:
        """Create what ``data`` describes; return a short receipt that replaces the file."""
        raise ReadOnly(f"nothing can be created in {'/'.join(self.key)}")

    async def rename_child(self, name: str, new_parent: Directory, new_name: str) -> None:
        """Move a child on the server."""
        raise ReadOnly(f"{'/'.join((*self.key, name))} cannot be moved")

    async def reload_on_server(self) -> None:
        """Have the server read this directory's object again from its storage (only a
        WEBKNOSSOS dataset can: its datastore's reload, ``neurofs refresh
        --reload-datastore``). What the mount holds of it is the caller's to refresh."""
        raise InvalidContent(f"{'/'.join(self.key) or '.'} is not a WEBKNOSSOS dataset directory")


E = TypeVar("E")


class IndexedDirectory(Directory, Generic[E]):
    """A directory whose listing is an index by name, built by its source once per fetch of
    the listing (``Memo.view``): a lookup is a dictionary look-up that builds one node."""

    @abstractmethod
    async def entries(self) -> Mapping[str, E]:
        """File name → what the child is made from, in listing order."""

    @abstractmethod
    def node(self, name: str, entry: E) -> Node:
        """The child called ``name``."""

    async def children(self) -> Sequence[Node]:
        return [self.node(name, entry) for name, entry in (await self.entries()).items()]

    async def child(self, name: str) -> Node:
        entries = await self.entries()
        if name not in entries:
            raise NotFound("/".join((*self.key, name)))
        return self.node(name, entries[name])


class FileHandle(ABC):
    """State of one open file (read position pattern, snapshot of generated content)."""

    @abstractmethod
    async def read(self, offset: int, size: int) -> bytes: ...

    async def release(self) -> None:  # noqa: B027 - optional hook
        """Called once when the last reference to the open file is closed."""

    def read_exactly(self) -> None:  # noqa: B027 - optional hook
        """The reader opened with O_DIRECT: it manages its own I/O, so nothing is fetched
        ahead for it (the kernel reads nothing ahead for it either)."""


class File(Node):
    kind = Kind.FILE
    # keep_cache: the kernel may keep this file's pages across opens (content never changes).
    keep_cache: bool = False
    # direct_io: sizes are not known in advance (live control files); not for data files,
    # since it disables mmap.
    direct_io: bool = False

    @abstractmethod
    async def open(self) -> FileHandle: ...


class EditableFile(File):
    """A file whose saves become API calls (sidecars, annotation tables). The fs layer
    buffers writes and calls ``commit`` at close and fsync."""

    # Writes beyond this size are refused (EFBIG) rather than buffered.
    max_edit_bytes: int = MAX_EDIT_BYTES

    @property
    @abstractmethod
    def writable(self) -> bool: ...

    @abstractmethod
    def check_writable(self) -> None:
        """Raise ReadOnly (EROFS) when this file cannot be written."""

    @abstractmethod
    async def render(self) -> bytes:
        """The current server state as the file's text."""

    @abstractmethod
    async def commit(self, edited: bytes, base: bytes | None) -> bool:
        """Send the user's text; ``base`` is what they last read (None: not read). False
        when nothing changed (nothing sent)."""


class Symlink(Node):
    kind = Kind.SYMLINK

    def __init__(
        self, key: NodePath, target: str, mtime: float = 0.0, immutable: bool = False
    ) -> None:
        super().__init__(key)
        self.target = target
        self._attrs = Attrs(Kind.SYMLINK, len(target.encode()), mtime, immutable=immutable)

    async def stat(self) -> Attrs:
        return self._attrs


# ---------------------------------------------------------------- generic building blocks


class StaticDirectory(Directory):
    """A directory whose children are known when it is built."""

    def __init__(
        self, key: NodePath, children: Sequence[Node], mtime: float = 0.0, immutable: bool = False
    ) -> None:
        super().__init__(key)
        self._children = list(children)
        self._by_name = {c.name: c for c in self._children}
        self._attrs = Attrs(Kind.DIRECTORY, 0, mtime, immutable=immutable)

    async def stat(self) -> Attrs:
        return self._attrs

    async def children(self) -> Sequence[Node]:
        return self._children

    async def child(self, name: str) -> Node:
        try:
            return self._by_name[name]
        except KeyError:
            raise NotFound("/".join((*self.key, name))) from None


class ComputedListing(Sequence[Node]):
    """A directory's entries made by position when asked (a volume's chunk grid): readdir
    pages through it without building it whole. Their names are valid and distinct by
    construction, so the fs layer takes them as they come."""

    def __init__(self, count: int, node_at: Callable[[int], Node]) -> None:
        self._count = count
        self._node_at = node_at

    def __len__(self) -> int:
        return self._count

    @overload
    def __getitem__(self, index: int) -> Node: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[Node]: ...

    def __getitem__(self, index: int | slice) -> Node | Sequence[Node]:
        if isinstance(index, slice):
            return [self._node_at(i) for i in range(*index.indices(self._count))]
        if index < 0:
            index += self._count
        if not 0 <= index < self._count:
            raise IndexError(index)
        return self._node_at(index)


class BytesHandle(FileHandle):
    """An open file over a snapshot of bytes."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    async def read(self, offset: int, size: int) -> bytes:
        return self._data[offset : offset + size]


class GeneratedFile(File):
    """A file rendered from server state (JSON, YAML, headers).

    ``render`` must be deterministic for a given server state, because getattr reports the
    length of one rendering and read serves another. ``costly``: rendering reads much more
    than a listing should (a whole table's rows), so a listing shows provisional attributes
    and renders nothing; the file's own stat renders it.
    """

    def __init__(
        self,
        key: NodePath,
        render: Callable[[], Awaitable[bytes]],
        mtime: float = 0.0,
        immutable: bool = False,
        costly: bool = False,
    ) -> None:
        super().__init__(key)
        self._render = render
        self._mtime = mtime
        self._immutable = immutable
        self._costly = costly
        self.keep_cache = immutable

    async def stat(self) -> Attrs:
        data = await self._render()
        return Attrs(Kind.FILE, len(data), self._mtime, immutable=self._immutable)

    async def listed(self) -> Attrs:
        if self._costly:
            return Attrs(Kind.FILE, 0, self._mtime, provisional=True)
        return await self.stat()

    async def open(self) -> FileHandle:
        return BytesHandle(await self._render())


class LiveFile(File):
    """A control file whose content changes all the time (stats): rendered at open, served
    with direct_io so readers see the whole snapshot whatever size getattr reported."""

    direct_io = True

    def __init__(self, key: NodePath, render: Callable[[], bytes], private: bool = False) -> None:
        super().__init__(key)
        self._render = render
        self._private = private

    async def stat(self) -> Attrs:
        return Attrs(Kind.FILE, len(self._render()), time.time(), private=self._private)

    async def open(self) -> FileHandle:
        return BytesHandle(self._render())

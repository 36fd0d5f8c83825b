"""The inode table: path keys ↔ inode numbers, with the kernel's lookup counts.

A path keeps its inode number for as long as the kernel remembers it (lookup count > 0), even
when its listing is fetched again and a new node object replaces the old one. When the kernel
forgets an inode, its number is retired and never reused within the mount.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyfuse3

from neurofs.tree.nodes import Attrs, Node, NodePath


@dataclass
class InodeEntry:
    node: Node
    lookups: int = 0
    # The path moved (rename): the node must be looked up again by ``key`` before use.
    stale_key: NodePath | None = None
    # Attributes seen at the last open: unchanged attributes let the kernel keep its pages.
    opened_attrs: Attrs | None = None


class InodeTable:
    def __init__(self, root: Node) -> None:
        self._by_key: dict[NodePath, int] = {root.key: pyfuse3.ROOT_INODE}
        self._entries: dict[int, InodeEntry] = {pyfuse3.ROOT_INODE: InodeEntry(root, 1)}
        self._next = pyfuse3.ROOT_INODE + 1

    def __len__(self) -> int:
        return len(self._entries)

    def entry(self, inode: int) -> InodeEntry | None:
        return self._entries.get(inode)

    def remember(self, node: Node) -> tuple[int, bool]:
        """The inode of ``node``'s path (the fresh node object replaces the old); and
        whether the inode is new."""
        inode = self._by_key.get(node.key)
        if inode is not None:
            self._entries[inode].node = node
            self._entries[inode].stale_key = None
            return inode, False
        inode = self._next
        self._next += 1
        self._by_key[node.key] = inode
        self._entries[inode] = InodeEntry(node)
        return inode, True

    def rekey(self, old: NodePath, new: NodePath) -> None:
        """After a rename: every inode at or below ``old`` now lives below ``new``."""
        moved = [
            (inode, entry)
            for inode, entry in self._entries.items()
            if self._key_of(entry)[: len(old)] == old and inode != pyfuse3.ROOT_INODE
        ]
        for inode, entry in moved:
            key = self._key_of(entry)
            if self._by_key.get(key) == inode:
                del self._by_key[key]
        for inode, entry in moved:
            new_key = new + self._key_of(entry)[len(old) :]
            entry.stale_key = new_key
            self._by_key[new_key] = inode

    @staticmethod
    def _key_of(entry: InodeEntry) -> NodePath:
        return entry.stale_key if entry.stale_key is not None else entry.node.key

    def at_or_below(self, key: NodePath) -> list[tuple[int, NodePath]]:
        """Every inode the kernel knows at or below ``key``, with its path."""
        return [
            (inode, path)
            for inode, entry in self._entries.items()
            if (path := self._key_of(entry))[: len(key)] == key
        ]

    def inode_of(self, key: NodePath) -> int | None:
        return self._by_key.get(key)

    def look_up_again(self, inode: int) -> None:
        """The node behind ``inode`` may be out of date (a refresh): find it again by its
        path before the next use, and let the kernel drop its pages at the next open."""
        entry = self._entries.get(inode)
        if entry is not None:
            entry.stale_key = self._key_of(entry)
            entry.opened_attrs = None

    def incref(self, inode: int) -> None:
        self._entries[inode].lookups += 1

    def drop_if_unused(self, inode: int) -> None:
        """Undo a ``remember`` whose entry the kernel never received."""
        entry = self._entries.get(inode)
        if entry is not None and entry.lookups == 0 and inode != pyfuse3.ROOT_INODE:
            del self._entries[inode]
            self._by_key.pop(self._key_of(entry), None)

    def forget(self, inode: int, count: int) -> None:
        entry = self._entries.get(inode)
        if entry is None or inode == pyfuse3.ROOT_INODE:
            return
        entry.lookups -= count
        if entry.lookups <= 0:
            del self._entries[inode]
            key = self._key_of(entry)
            if self._by_key.get(key) == inode:
                del self._by_key[key]

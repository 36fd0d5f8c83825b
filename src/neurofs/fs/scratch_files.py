"""Where the mount's scratch files are: directory → name → file, in memory for the mount's
life. Directories list them after their own entries, and lookups find them first."""

from __future__ import annotations

from neurofs.tree.nodes import NodePath
from neurofs.tree.scratch import ScratchFile


class ScratchFiles:
    def __init__(self) -> None:
        self._by_directory: dict[NodePath, dict[str, ScratchFile]] = {}

    def in_directory(self, directory: NodePath) -> list[ScratchFile]:
        return list(self._by_directory.get(directory, {}).values())

    def get(self, directory: NodePath, name: str) -> ScratchFile | None:
        return self._by_directory.get(directory, {}).get(name)

    def create(self, directory: NodePath, name: str, data: bytes = b"") -> ScratchFile:
        node = ScratchFile((*directory, name), data)
        self._by_directory.setdefault(directory, {})[name] = node
        return node

    def remove(self, directory: NodePath, name: str) -> ScratchFile | None:
        entries = self._by_directory.get(directory, {})
        node = entries.pop(name, None)
        if not entries:
            self._by_directory.pop(directory, None)
        return node

    def move(self, node: ScratchFile, directory: NodePath, name: str) -> ScratchFile:
        self.remove(node.key[:-1], node.name)
        moved = node.moved((*directory, name))
        self._by_directory.setdefault(directory, {})[name] = moved
        return moved

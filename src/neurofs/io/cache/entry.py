"""What the block cache records about one block, and the key it is recorded under."""

from __future__ import annotations

from dataclasses import dataclass

# A block's key: (content identity, block number within that content).
BlockKey = tuple[str, int]

MAX_INDEX = 2**63 - 1  # SQLite INTEGER range


@dataclass(slots=True)
class BlockEntry:
    """One recorded block. A re-put creates a new object, so identity tells whether the entry a
    thread looked up is still the current one."""

    name: str  # path relative to blocks/
    size: int
    crc: int
    last_used: float  # wall-clock seconds, strictly increasing within a process
    # Read back at least once since it was stored (and not demoted since): "protected".
    protected: bool = False


def checked_key(content: str, index: int) -> BlockKey:
    """The key of a block about to be stored; TypeError or ValueError if it cannot be one."""
    if not isinstance(content, str):
        raise TypeError(f"content must be str, not {type(content).__name__}")
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index <= MAX_INDEX:
        raise ValueError(f"block index must be an int in [0, 2**63), not {index!r}")
    return (content, index)

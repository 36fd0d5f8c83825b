"""What the block cache records about one block, and the key it is recorded under."""

from __future__ import annotations

import zlib
from dataclasses import dataclass

# A block's key: (content identity, block number within that content).
BlockKey = tuple[str, int]

MAX_INDEX = 2**63 - 1  # SQLite INTEGER range

# One CRC32 covers this many bytes of a block: a read of 4 KiB then reads and checks at most
# two units (32 KiB), not the whole 1 MiB block, while the checksums of a block stay small
# (64 bytes for 1 MiB) in the index and in memory.
CHECK_UNIT = 16 * 1024


def unit_sums(data: bytes | memoryview) -> bytes:
    """The CRC32 of each ``CHECK_UNIT`` of ``data`` (the last one may be shorter), 4 bytes
    each, little-endian."""
    view = memoryview(data)
    return b"".join(
        zlib.crc32(view[i : i + CHECK_UNIT]).to_bytes(4, "little")
        for i in range(0, len(view), CHECK_UNIT)
    )


def sums_length(size: int) -> int:
    """Bytes of ``unit_sums`` for a block of ``size`` bytes."""
    return 4 * -(-size // CHECK_UNIT)


@dataclass(slots=True)
class BlockEntry:
    """One recorded block. A re-put creates a new object, so identity tells whether the entry a
    thread looked up is still the current one."""

    name: str  # path relative to blocks/
    size: int
    # The CRC32 of each CHECK_UNIT (``unit_sums``). None for a block stored by an older
    # version, which recorded one CRC32 of the whole block, ``crc``, instead.
    sums: bytes | None
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

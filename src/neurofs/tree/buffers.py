"""Bytes held in memory while a file is being written (a sidecar's pending edit, a scratch
file), with a size cap: these files are metadata, and a runaway writer must get EFBIG rather
than grow the daemon without bound."""

from __future__ import annotations

from neurofs.errors import TooLarge

# The default cap; a file kind may allow more (EditableFile.max_edit_bytes).
MAX_EDIT_BYTES = 16 * 1024 * 1024


def write_into(buffer: bytearray, offset: int, data: bytes, limit: int = MAX_EDIT_BYTES) -> None:
    """Write ``data`` at ``offset``, filling a gap with zero bytes as a sparse file reads."""
    end = offset + len(data)
    if end > limit:
        raise TooLarge(f"writes beyond {limit} bytes are refused for this file")
    if offset > len(buffer):
        buffer.extend(b"\0" * (offset - len(buffer)))
    buffer[offset:end] = data


def resize(buffer: bytearray, size: int, limit: int = MAX_EDIT_BYTES) -> None:
    """Cut or zero-extend ``buffer`` to ``size`` bytes (truncate(2))."""
    if size > limit:
        raise TooLarge(f"files here may not grow beyond {limit} bytes")
    if size < len(buffer):
        del buffer[size:]
    else:
        buffer.extend(b"\0" * (size - len(buffer)))

"""glibc allocator tuning for a process that moves hundreds of MB through multi-MiB buffers.

Range answers arrive as 4 MiB buffers that live for a fraction of a second. glibc serves
large allocations with mmap at first, but after the first such buffer is freed it raises
its mmap threshold to that size, and from then on every 4 MiB buffer comes from the heap,
whose freed pieces fragment and are rarely given back: the daemon's resident memory grew to
about 250 MB streaming 2 GiB. A fixed threshold keeps buffers of 2 MiB and more in their own
mappings, returned to the kernel the moment they are freed (measured: peak RSS 200 MB, the
same CPU time). Smaller thresholds cost CPU in page faults for no further gain.

Fixing that threshold also fixes the heap's trim threshold at glibc's 128 KiB default
(both move together only while neither is set): the heap's top was given back to the kernel
each time a 1 MiB block's buffer at its top was freed, and the next buffer paid for its pages
again in page faults, about 0.5 ms per MiB received. The top is kept up to
``KEPT_HEAP_TOP_BYTES`` instead.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger(__name__)

_M_TRIM_THRESHOLD = -1  # from glibc's malloc.h
_M_MMAP_THRESHOLD = -3
LARGE_BUFFER_BYTES = 2 * 1024 * 1024
KEPT_HEAP_TOP_BYTES = 32 * 1024 * 1024


def map_large_buffers(threshold: int = LARGE_BUFFER_BYTES) -> bool:
    """Give allocations of ``threshold`` bytes and more their own mappings (glibc only).
    False when the C library is not glibc or refuses; the process works the same, with
    more memory."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    ok = bool(mallopt(_M_MMAP_THRESHOLD, threshold))
    ok = ok and bool(mallopt(_M_TRIM_THRESHOLD, KEPT_HEAP_TOP_BYTES))
    if not ok:
        log.debug("mallopt(M_MMAP_THRESHOLD, %d) refused", threshold)
    return ok

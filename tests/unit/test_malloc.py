"""The allocator tuning of the daemon (``io/malloc.py``), observed as page faults.

Each check runs in a fresh interpreter, so the settings of one do not leak into the test
process or into each other."""

from __future__ import annotations

import subprocess
import sys

# 200 buffers of 1 MiB, each freed before the next: the pattern of a stream's blocks.
PROGRAM = """
import ctypes, resource, sys
from neurofs.io import malloc
if sys.argv[1] == "tuned":
    assert malloc.map_large_buffers()
else:  # the large-buffer threshold alone, which fixes the heap's trim threshold at 128 KiB
    ctypes.CDLL("libc.so.6").mallopt(-3, malloc.LARGE_BUFFER_BYTES)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(200):
    block = b"x" * (1024 * 1024)
    del block
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def page_faults(mode: str) -> int:
    out = subprocess.run(
        [sys.executable, "-c", PROGRAM, mode], check=True, capture_output=True, text=True
    )
    return int(out.stdout)


def test_freed_block_buffers_keep_their_pages() -> None:
    # 256 pages per MiB: the first buffer faults its pages in, the next 199 reuse them.
    assert page_faults("tuned") < 2 * 256


def test_without_the_kept_heap_top_every_buffer_faults_its_pages_again() -> None:
    # What the tuning prevents (and what makes the check above able to fail).
    assert page_faults("threshold only") > 100 * 256

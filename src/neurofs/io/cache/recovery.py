"""Repair at open: the index and the block files brought back into agreement after whatever
the last process left (a kill -9 mid-write, a power cut that lost the last rows, a file
damaged or deleted behind its back, a row edited by hand)."""

from __future__ import annotations

import logging

from neurofs.io.cache.entry import BlockEntry, BlockKey
from neurofs.io.cache.index import BlockIndex, Row, RowName, parse_row
from neurofs.io.cache.store import BlockStore, is_name_of

log = logging.getLogger(__name__)


def recover(
    store: BlockStore, index: BlockIndex, rows: list[Row]
) -> list[tuple[BlockKey, BlockEntry]]:
    """The blocks to record, in the order of ``rows``. Rows that are malformed, or whose file
    is missing, has another size or a name that is not theirs, are deleted; then the files
    that no remaining row names (temp files of interrupted writes included)."""
    on_disk = store.sweep()
    kept: list[tuple[BlockKey, BlockEntry]] = []
    dropped: list[RowName] = []
    for row in rows:
        parsed = parse_row(row)
        if (
            parsed is None
            or not is_name_of(parsed[1].name, parsed[0])
            or on_disk.get(parsed[1].name) != parsed[1].size
        ):
            dropped.append((row[0], row[1], row[2]))
        else:
            kept.append(parsed)
    if dropped:
        log.info("block cache: dropping %d index rows without a sound file", len(dropped))
        index.delete(dropped)  # rows before files, as always
    referenced = {entry.name for _key, entry in kept}
    store.unlink([name for name in on_disk if name not in referenced])
    return kept

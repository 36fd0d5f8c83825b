"""A synapse table of any size whose rows are computed, never stored (the scale sample).

Row ``i`` (1 ≤ i ≤ n) is a function of ``i`` and the seed alone: its positions come from a
64-bit mix of the two, its creation time grows with ``i``. The table answers what the engines
ask of any table (:class:`~neurofs_emulators.cave.state.AnnotationTable`'s ``row_count``,
``find``, ``scan``, ``count_valid``, ``add``, ``next_id``) without a list of its rows:

- a scan of an id range computes the rows of that range only, in id order, as the primary
  key's index gives them to the real engine's database;
- counting the rows valid at an instant in an id range is arithmetic;
- writes live in an overlay: a computed row asked for by id (to update or delete it) is kept
  from then on, so the change sticks; new rows go after ``n``.

So the emulator starts at once and a query costs the rows it reads, whatever ``n`` is.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

from neurofs_emulators.cave.schemas import SchemaSpec
from neurofs_emulators.cave.state import AnnotationTable, Row, TableMeta, segment_ids

_MASK = (1 << 64) - 1


def _mix(value: int) -> int:
    """splitmix64's finaliser: a well-spread 64-bit hash of ``value``."""
    value = (value + 0x9E3779B97F4A7C15) & _MASK
    value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & _MASK
    return value ^ (value >> 31)


class LargeTable(AnnotationTable):
    """A synapse-schema table of ``n`` computed rows, created from ``start`` one every
    ``step``, plus the rows written while the emulator runs."""

    def __init__(
        self,
        meta: TableMeta,
        spec: SchemaSpec,
        *,
        n: int,
        seed: int,
        start: dt.datetime,
        step: dt.timedelta,
    ) -> None:
        super().__init__(meta, spec)
        self.n, self.seed, self.start, self.step = n, seed, start, step
        # Computed rows asked for by id (so a write to them sticks) and rows added since.
        self._kept: dict[int, Row] = {}
        self._added: dict[int, Row] = {}
        self.revision = 1

    def created_at(self, row_id: int) -> dt.datetime:
        return self.start + self.step * row_id

    def computed(self, row_id: int) -> Row:
        """Row ``row_id`` as the seed makes it (1 ≤ row_id ≤ n)."""
        h = _mix(row_id ^ (self.seed << 32))
        x = 20_000 + h % 100_000
        y = 20_000 + (h >> 17) % 100_000
        z = 1_000 + (h >> 34) % 2_000
        dx = (h >> 45) % 121 - 60
        dy = (h >> 52) % 121 - 60
        dz = (h >> 59) % 7 - 3
        pre, post = (x, y, z), (x + dx, y + dy, z + dz)
        values: dict[str, Any] = {}
        for name, point in (("pre_pt", pre), ("post_pt", post)):
            supervoxel, root = segment_ids(*point)
            values[f"{name}_position"] = (float(point[0]), float(point[1]), float(point[2]))
            values[f"{name}_supervoxel_id"] = supervoxel
            values[f"{name}_root_id"] = root
        values["ctr_pt_position"] = tuple(
            float((a + b) // 2) for a, b in zip(pre, post, strict=True)
        )
        values["size"] = float(40 + _mix(h) % 3_960)
        return Row(row_id, self.created_at(row_id), values)

    # ------------------------------------------------------------------ the table's answers

    def add(self, row: Row) -> None:
        self._added[row.id] = row

    def next_id(self) -> int:
        return max(self.n, max(self._added, default=0)) + 1

    def row_count(self) -> int:
        return self.n + len(self._added)

    def find(self, row_id: int) -> Row | None:
        if row_id in self._added:
            return self._added[row_id]
        if not 1 <= row_id <= self.n:
            return None
        row = self._kept.get(row_id)
        if row is None:
            row = self._kept[row_id] = self.computed(row_id)
        return row

    def scan(self, lo: int = 0, hi: int | None = None) -> Iterator[Row]:
        last = self.n if hi is None else min(self.n, hi - 1)
        kept = self._kept
        for row_id in range(max(lo, 1), last + 1):
            yield kept.get(row_id) or self.computed(row_id)
        for row_id in sorted(self._added):
            if row_id >= lo and (hi is None or row_id < hi):
                yield self._added[row_id]

    def count_valid(self, when: dt.datetime, lo: int = 0, hi: int | None = None) -> int:
        first = max(lo, 1)
        last = self.n if hi is None else min(self.n, hi - 1)
        # Computed rows are created in id order: those created by ``when`` are a prefix.
        last = min(last, (when - self.start) // self.step) if when >= self.start else 0
        count = max(last - first + 1, 0)
        for row_id, row in self._kept.items():
            if first <= row_id <= last and not row.valid_at(when):
                count -= 1
        inside = (r for i, r in self._added.items() if i >= lo and (hi is None or i < hi))
        return count + sum(1 for r in inside if r.valid_at(when))

"""The CAVE emulator's deterministic sample data, and :class:`SampleCave`, its ground truth.

One datastack, ``DATASTACK``, on the aligned volume ``ALIGNED_VOLUME`` (voxels of 4 × 4 × 40 nm,
segmentation ``graphene://<local>/segmentation/table/neurofs_demo_pcg``). Its permission group
(the "dataset" middle_auth checks) is ``AUTH_DATASET``.

Users (token → who):

| token | user id | rights |
|---|---|---|
| ``OWNER_TOKEN`` | 1 | view + edit; owner of every sample table |
| ``EDITOR_TOKEN`` | 2 | view + edit, owns nothing (table-owner checks refuse it) |
| ``OTHER_TOKEN`` | 3 | view only (writes: 403 missing_permission) |
| ``TOS_TOKEN`` | 4 | has not accepted the terms of service (403 missing_tos) |

Annotation tables (all ``PRIVATE`` write, ``PUBLIC`` read, owner user 1):

| table | schema | rows (count) | valid rows | notes |
|---|---|---|---|---|
| ``synapse`` | synapse | 51,511 | 50,526 | 474 deleted, 511 superseded by newer rows |
| ``bound_tag`` | bound_tag | 240 | 232 | 8 deleted; tags apical/basal/axon/soma/spine |
| ``cell_type_local`` | cell_type_local | 300 | 300 | has ``notice_text`` (→ ``Warning``) |

Timeline: rows are created from ``SAMPLE_START``; version 1 is frozen at ``VERSION_TIMES[0]``
and version 2 at ``VERSION_TIMES[1]``; the deletions, the superseding rows and the later rows
happen between the two, so the versions differ. Writes made while the emulator runs happen at
the current time, after both versions.

One neuroglancer state, ``STATE_ID``. The datastack's viewer (``viewer_site``) is a
neuroglancer deployment of the spelunker kind at ``VIEWER_PATH`` on the global server's
origin, publishing ``VIEWER_BUILD`` as its ``version.json``.

The scale sample (``--sample large``) is the same datastack with one more table,
``synapse_large`` (schema synapse, ``LARGE_ROWS`` = 10,000,000 rows, all valid, frozen in
version 2 only), whose rows are computed from their ids (:mod:`.computed`), never stored.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from neurofs_emulators.cave.computed import LargeTable
from neurofs_emulators.cave.definitions import DEFINITIONS, SCHEMA_NAMES
from neurofs_emulators.cave.schemas import SCHEMAS
from neurofs_emulators.cave.state import (
    AnalysisTableRecord,
    AnnotationTable,
    CaveState,
    MatVersion,
    NglState,
    Row,
    SegmentationMeta,
    TableMeta,
    annotation_row,
    mat_record,
    segment_ids,
)

DATASTACK = "neurofs_demo"
ALIGNED_VOLUME = "neurofs_demo_volume"
ALIGNED_VOLUME_ID = 1
AUTH_DATASET = "neurofs_demo"
AUTH_DATASET_ID = 1
# The middle_auth group whose members hold the permissions on AUTH_DATASET.
AUTH_GROUP = "neurofs_demo_users"
PCG_TABLE = "neurofs_demo_pcg"
IMAGE_SOURCE = "precomputed://gs://neurofs-demo/em"
# Where the datastack's neuroglancer deployment is served (on the global server's origin:
# clients ask it for its version.json, so it must be reachable offline).
VIEWER_PATH = "/neuroglancer/"
# Its version.json: the build information a spelunker deployment writes next to its client
# (seung-lab/neuroglancer, ``.github/workflows/deploy_gae.yml``: tag, commit URL, ``date``,
# branch).
VIEWER_BUILD = {
    "tag": "v2.40.1-148-g5b1ad9e",
    "url": "https://github.com/seung-lab/neuroglancer/commit/"
    "5b1ad9e2c0f4b8f1e6d7a3c9b2e4f6a8d0c1e3b5",
    "timestamp": "Tue Mar 4 17:21:09 UTC 2025",
    "branch": "seung-lab/neuroglancer/spelunker",
}
VOXEL_RESOLUTION = (4.0, 4.0, 40.0)

OWNER_TOKEN = "neurofs-demo-cave-owner-token"
EDITOR_TOKEN = "neurofs-demo-cave-editor-token"
OTHER_TOKEN = "neurofs-demo-cave-other-token"
TOS_TOKEN = "neurofs-demo-cave-tos-token"

OWNER_ID = 1
EDITOR_ID = 2
OTHER_ID = 3
TOS_ID = 4

TOS_DOCUMENT_ID = 1
TOS_NAME = "NeuroFS Demo Terms of Service"

SEED = 20240501
SYNAPSE_ROWS = 51_000
# Rows 1..SYNAPSE_EARLY exist before version 1; the rest arrive between version 1 and 2.
SYNAPSE_EARLY = 46_000
BOUND_TAG_ROWS = 240
BOUND_TAG_EARLY = 200
CELL_TYPE_ROWS = 300
TAGS = ("apical", "basal", "axon", "soma", "spine")
CELL_TYPES = {
    "classical": ("pyramidal", "basket", "chandelier", "martinotti", "neurogliaform"),
    "valence": ("e", "i"),
}
CELL_TYPE_NOTICE = "Cell types are preliminary; check the description before use."

# The scale sample (``--sample large``) adds this table, its rows computed from their ids.
LARGE_TABLE = "synapse_large"
LARGE_ROWS = 10_000_000

SAMPLE_START = dt.datetime(2024, 3, 1, 0, 0, 0)
VERSION_TIMES = (dt.datetime(2024, 5, 1, 8, 0, 0, 103215), dt.datetime(2024, 6, 1, 8, 0, 0, 203215))
VERSION_EXPIRES = (
    dt.datetime(2080, 5, 1, 8, 0, 0, 103215),
    dt.datetime(2080, 6, 1, 8, 0, 0, 203215),
)
TABLES_CREATED = dt.datetime(2024, 2, 28, 12, 0, 0, 481516)
SEGMENTATION_CREATED = dt.datetime(2024, 4, 30, 22, 0, 0, 10203)

STATE_ID = 5629499534213120
# Ids of new states: Datastore-like 16-digit ids, deterministic.
STATE_ID_STEP = 7919 * 1_000_003


@dataclass(frozen=True)
class User:
    id: int
    name: str
    email: str
    # Permissions on AUTH_DATASET once the terms of service are accepted.
    permissions: tuple[str, ...]
    accepted_tos: bool = True


USERS: dict[str, User] = {
    OWNER_TOKEN: User(OWNER_ID, "Olivia Owner", "olivia@neurofs.invalid", ("view", "edit")),
    EDITOR_TOKEN: User(EDITOR_ID, "Edgar Editor", "edgar@neurofs.invalid", ("view", "edit")),
    OTHER_TOKEN: User(OTHER_ID, "Oscar Other", "oscar@neurofs.invalid", ("view",)),
    TOS_TOKEN: User(TOS_ID, "Tess Newcomer", "tess@neurofs.invalid", ("view", "edit"), False),
}


def _micros(i: int) -> int:
    return (i * 7919) % 1_000_000


def _positions(rng: np.random.Generator, n: int) -> np.ndarray:
    xy = rng.integers(20_000, 120_000, size=(n, 2))
    z = rng.integers(1_000, 3_000, size=(n, 1))
    return np.concatenate([xy, z], axis=1)


def _bound(values: dict[str, Any], name: str, position: list[int]) -> None:
    supervoxel, root = segment_ids(position[0], position[1], position[2])
    values[f"{name}_position"] = (float(position[0]), float(position[1]), float(position[2]))
    values[f"{name}_supervoxel_id"] = supervoxel
    values[f"{name}_root_id"] = root


def _meta(table_id: int, name: str, schema: str, description: str) -> TableMeta:
    return TableMeta(
        id=table_id,
        schema_type=schema,
        table_name=name,
        created=TABLES_CREATED,
        user_id=str(OWNER_ID),
        description=description,
        voxel_resolution_x=VOXEL_RESOLUTION[0],
        voxel_resolution_y=VOXEL_RESOLUTION[1],
        voxel_resolution_z=VOXEL_RESOLUTION[2],
        last_modified=TABLES_CREATED,
        segmentation=SegmentationMeta(
            id=table_id,
            table_name=f"{name}__{PCG_TABLE}",
            schema_type=schema,
            created=SEGMENTATION_CREATED,
            segmentation_source=None,
            pcg_table_name=PCG_TABLE,
            last_updated=VERSION_TIMES[-1],
            annotation_table=name,
        ),
    )


def _finish(table: AnnotationTable) -> AnnotationTable:
    times = [r.created for r in table.rows] + [r.deleted for r in table.rows if r.deleted]
    table.meta.last_modified = max(times)
    table.revision = 1
    return table


def _synapse_table() -> AnnotationTable:
    table = AnnotationTable(
        _meta(1, "synapse", "synapse", "Automatically detected synapses of the demo volume."),
        SCHEMAS["synapse"],
    )
    rng = np.random.default_rng(SEED)
    n = SYNAPSE_ROWS
    pre = _positions(rng, n)
    post = pre + np.concatenate(
        [rng.integers(-60, 61, size=(n, 2)), rng.integers(-3, 4, size=(n, 1))], axis=1
    )
    ctr = (pre + post) // 2
    sizes = rng.integers(40, 4_000, size=n).tolist()
    pre_l, post_l, ctr_l = pre.tolist(), post.tolist(), ctr.tolist()
    v1, v2 = VERSION_TIMES
    span = int((v2 - v1).total_seconds()) - 3_600
    superseding: list[tuple[int, dt.datetime]] = []
    for i in range(1, n + 1):
        if i <= SYNAPSE_EARLY:
            created = SAMPLE_START + dt.timedelta(seconds=100 * i, microseconds=_micros(i))
        else:
            created = v1 + dt.timedelta(seconds=400 * (i - SYNAPSE_EARLY), microseconds=_micros(i))
        values: dict[str, Any] = {}
        _bound(values, "pre_pt", pre_l[i - 1])
        _bound(values, "post_pt", post_l[i - 1])
        c = ctr_l[i - 1]
        values["ctr_pt_position"] = (float(c[0]), float(c[1]), float(c[2]))
        values["size"] = float(sizes[i - 1])
        row = Row(i, created, values)
        if i <= SYNAPSE_EARLY and i % 97 == 0:
            row.deleted = v1 + dt.timedelta(seconds=(i * 13) % span, microseconds=_micros(i + 1))
            row.valid = False
        elif i <= SYNAPSE_EARLY and i % 89 == 0:
            superseding.append((i, v1 + dt.timedelta(seconds=(i * 31) % span, microseconds=5)))
        table.add(row)
    next_id = n + 1
    for old_id, when in superseding:
        old = table.by_id[old_id]
        values = dict(old.values)
        values["size"] = old.values["size"] + 1.0
        shifted = [int(v) + 2 for v in old.values["pre_pt_position"]]
        _bound(values, "pre_pt", shifted)
        table.add(Row(next_id, when, values))
        old.deleted = when
        old.superceded_id = next_id
        old.valid = False
        next_id += 1
    return _finish(table)


def _bound_tag_table() -> AnnotationTable:
    table = AnnotationTable(
        _meta(2, "bound_tag", "bound_tag", "Compartment tags placed by hand on the demo volume."),
        SCHEMAS["bound_tag"],
    )
    rng = np.random.default_rng(SEED + 1)
    points = _positions(rng, BOUND_TAG_ROWS).tolist()
    v1 = VERSION_TIMES[0]
    for i in range(1, BOUND_TAG_ROWS + 1):
        if i <= BOUND_TAG_EARLY:
            created = SAMPLE_START + dt.timedelta(hours=3 * i, microseconds=_micros(i))
        else:
            created = v1 + dt.timedelta(hours=12 * (i - BOUND_TAG_EARLY), microseconds=_micros(i))
        values: dict[str, Any] = {"tag": TAGS[i % len(TAGS)]}
        _bound(values, "pt", points[i - 1])
        row = Row(i, created, values)
        if i % 25 == 0 and i <= BOUND_TAG_EARLY:
            row.deleted = v1 + dt.timedelta(days=2, hours=i % 24, microseconds=_micros(i + 1))
            row.valid = False
        table.add(row)
    return _finish(table)


def _cell_type_table() -> AnnotationTable:
    table = AnnotationTable(
        _meta(
            3,
            "cell_type_local",
            "cell_type_local",
            "Cell types at soma positions, by a classical and a valence system.",
        ),
        SCHEMAS["cell_type_local"],
    )
    table.meta.notice_text = CELL_TYPE_NOTICE
    rng = np.random.default_rng(SEED + 2)
    points = _positions(rng, CELL_TYPE_ROWS).tolist()
    for i in range(1, CELL_TYPE_ROWS + 1):
        created = SAMPLE_START + dt.timedelta(hours=5 * i, microseconds=_micros(i))
        system = "classical" if i % 3 else "valence"
        kinds = CELL_TYPES[system]
        values: dict[str, Any] = {
            "classification_system": system,
            "cell_type": kinds[i % len(kinds)],
        }
        _bound(values, "pt", points[i - 1])
        table.add(Row(i, created, values))
    return _finish(table)


def _large_table() -> LargeTable:
    """The scale sample's table: LARGE_ROWS synapses computed from their ids, all created
    between version 1 and version 2 (so version 2 freezes every one of them)."""
    meta = _meta(
        4, LARGE_TABLE, "synapse", "Synapses of the scale sample, computed from their ids."
    )
    v1, v2 = VERSION_TIMES
    start = v1 + dt.timedelta(hours=1)
    step = (v2 - start - dt.timedelta(hours=1)) / (LARGE_ROWS + 1)
    step = dt.timedelta(microseconds=step // dt.timedelta(microseconds=1))
    table = LargeTable(meta, SCHEMAS["synapse"], n=LARGE_ROWS, seed=SEED, start=start, step=step)
    table.meta.last_modified = table.created_at(LARGE_ROWS)
    return table


def _versions(tables: list[AnnotationTable]) -> list[MatVersion]:
    versions = []
    record_id = 1
    for index, (when, expires) in enumerate(zip(VERSION_TIMES, VERSION_EXPIRES, strict=True)):
        records = []
        for table in tables:
            meta = table.meta
            if meta.last_modified > when and isinstance(table, LargeTable):
                continue  # made after this version
            records.append(
                AnalysisTableRecord(
                    record_id, ALIGNED_VOLUME, meta.schema_type, meta.table_name, when
                )
            )
            record_id += 1
        versions.append(MatVersion(index + 1, DATASTACK, index + 1, when, expires, records))
    return versions


def sample_state_json() -> dict[str, Any]:
    """The stored neuroglancer state (``STATE_ID``)."""
    return {
        "layers": [
            {"type": "image", "source": IMAGE_SOURCE, "name": "em"},
            {
                "type": "segmentation_with_graph",
                "source": f"graphene://https://neurofs.invalid/segmentation/table/{PCG_TABLE}",
                "name": "seg",
                "segments": [str(segment_ids(60_000, 60_000, 2_000)[1])],
            },
            {
                "type": "annotation",
                "name": "synapse",
                "annotations": [
                    {"point": [60000, 60000, 2000], "type": "point", "id": "1"},
                ],
            },
        ],
        "navigation": {
            "pose": {
                "position": {
                    "voxelSize": list(VOXEL_RESOLUTION),
                    "voxelCoordinates": [60000, 60000, 2000],
                }
            },
            "zoomFactor": 8,
        },
        "layout": "xy-3d",
    }


def build_state(sample: str = "demo") -> CaveState:
    """A fresh copy of the sample data (about 0.5 s; the synapse table dominates). The
    ``large`` sample adds :data:`LARGE_TABLE`, computed on the fly."""
    tables: list[AnnotationTable] = [_synapse_table(), _bound_tag_table(), _cell_type_table()]
    if sample == "large":
        tables.append(_large_table())
    body = json.dumps(sample_state_json()).encode()
    return CaveState(
        tables={t.meta.table_name: t for t in tables},
        versions=_versions(tables),
        states={STATE_ID: NglState(STATE_ID, body, str(OWNER_ID), SAMPLE_START)},
        next_table_id=len(tables) + 1,
        next_state_id=STATE_ID + STATE_ID_STEP,
    )


class SampleCave:
    """Ground truth of what a fresh emulator serves (before any write)."""

    datastack = DATASTACK
    aligned_volume = ALIGNED_VOLUME
    schema_names = SCHEMA_NAMES
    versions = (1, 2)
    version_times = VERSION_TIMES

    def __init__(self) -> None:
        self.state = build_state()

    @property
    def table_names(self) -> list[str]:
        return list(self.state.tables)

    def table(self, name: str) -> AnnotationTable:
        return self.state.tables[name]

    def schema_of(self, table: str) -> str:
        return self.state.tables[table].meta.schema_type

    def schema_definition(self, schema: str) -> dict[str, Any]:
        return DEFINITIONS[schema]

    def count(self, table: str) -> int:
        """What ``GET .../count`` answers: every row, superseded and deleted ones too."""
        return len(self.state.tables[table].rows)

    def rows(self, table: str, *, valid_only: bool = False) -> list[dict[str, Any]]:
        """Every row as ``GET .../annotations`` returns it, by id."""
        t = self.state.tables[table]
        rows = sorted(t.rows, key=lambda r: r.id)
        return [annotation_row(t, r) for r in rows if r.valid or not valid_only]

    def row(self, table: str, annotation_id: int) -> dict[str, Any]:
        t = self.state.tables[table]
        return annotation_row(t, t.by_id[annotation_id])

    def materialized(
        self, table: str, version: int, *, split_positions: bool = True
    ) -> list[dict[str, Any]]:
        """The rows of ``table`` frozen in ``version``, as JSON query records, by id."""
        t = self.state.tables[table]
        when = VERSION_TIMES[version - 1]
        rows = sorted((r for r in t.rows if r.valid_at(when)), key=lambda r: r.id)
        return [mat_record(t, r, split_positions) for r in rows]

    def state_json(self) -> dict[str, Any]:
        return sample_state_json()

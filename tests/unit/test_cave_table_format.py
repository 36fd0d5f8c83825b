"""CSV / JSON Lines of annotation tables: columns, round trips, errors with row numbers."""

from __future__ import annotations

import json

import pytest

from neurofs.errors import InvalidContent
from neurofs.sources.cave.table_format import (
    flat_to_nested,
    format_from_schema,
    parse_csv,
    parse_jsonl,
    plan_change,
    render_csv,
    render_jsonl,
)

POINT = {
    "required": ["position"],
    "type": "object",
    "properties": {"position": {"type": "array"}, "root_id": {"type": "integer"}},
}
SYNAPSE = {
    "definitions": {
        "BoundSpatialPoint": POINT,
        "SpatialPoint": POINT,
        "SynapseSchema": {
            "required": ["ctr_pt", "post_pt", "pre_pt"],
            "properties": {
                "ctr_pt": {"$ref": "#/definitions/SpatialPoint", "order": 1},
                "post_pt": {"$ref": "#/definitions/BoundSpatialPoint", "order": 2},
                "pre_pt": {"$ref": "#/definitions/BoundSpatialPoint", "order": 0},
                "size": {"type": ["number", "null"]},
                "valid": {"type": ["boolean", "null"]},
            },
        },
    },
    "$ref": "#/definitions/SynapseSchema",
}
FMT = format_from_schema(SYNAPSE)


def split(name: str, position: list[int]) -> dict[str, int]:
    return {f"{name}_position_{a}": v for a, v in zip("xyz", position, strict=True)}


# Query records as the materialization service answers them (JSON, positions split).
ROWS = [
    {
        "id": 1,
        **split("pre_pt", [31, 31, 0]),
        **split("ctr_pt", [32, 32, 0]),
        **split("post_pt", [33, 33, 0]),
        "pre_pt_supervoxel_id": 88000000000000031,
        "pre_pt_root_id": 864691135000000001,
        "post_pt_supervoxel_id": 88000000000000033,
        "post_pt_root_id": 864691135000000002,
        "size": 1.0,
        "valid": True,
        "created": 1714564800123,
    },
    {
        "id": 2,
        **split("pre_pt", [1, 2, 3]),
        **split("ctr_pt", [4, 5, 6]),
        **split("post_pt", [7, 8, 9]),
        "pre_pt_supervoxel_id": 5,
        "pre_pt_root_id": 6,
        "post_pt_supervoxel_id": 7,
        "post_pt_root_id": 8,
        "size": 2.5,
        "valid": True,
    },
]


def line(
    id: str = "",
    pre: tuple[str, str, str] = ("1", "2", "3"),
    ctr: tuple[str, str, str] = ("4", "5", "6"),
    post: tuple[str, str, str] = ("7", "8", "9"),
    size: str = "",
) -> bytes:
    """A CSV line of FMT with the read-only cells (segment ids, valid, ...) left empty."""
    cells = [id, *pre, "", "", *ctr, *post, "", "", size, "", "", "", ""]
    return (",".join(cells) + "\n").encode()


def test_columns_follow_the_schema_order():
    assert FMT.columns == [
        "id",
        "pre_pt_position_x",
        "pre_pt_position_y",
        "pre_pt_position_z",
        "pre_pt_supervoxel_id",
        "pre_pt_root_id",
        "ctr_pt_position_x",
        "ctr_pt_position_y",
        "ctr_pt_position_z",
        "post_pt_position_x",
        "post_pt_position_y",
        "post_pt_position_z",
        "post_pt_supervoxel_id",
        "post_pt_root_id",
        "size",
        "valid",
        "created",
        "superceded_id",
        "deleted",
    ]


def test_csv_and_jsonl_round_trip():
    text = render_csv(FMT, ROWS)
    assert text.splitlines()[1] == (
        b"1,31,31,0,88000000000000031,864691135000000001,32,32,0,"
        b"33,33,0,88000000000000033,864691135000000002,1,true,2024-05-01T12:00:00.123Z,,"
    )
    parsed = parse_csv(FMT, text)
    assert [p.id for p in parsed] == [1, 2]
    assert parsed[1].annotation == {
        "pre_pt": {"position": [1, 2, 3]},
        "ctr_pt": {"position": [4, 5, 6]},
        "post_pt": {"position": [7, 8, 9]},
        "size": 2.5,
    }
    jsonl = render_jsonl(FMT, ROWS)
    assert json.loads(jsonl.splitlines()[0])["pre_pt"] == {
        "position": [31, 31, 0],
        "supervoxel_id": 88000000000000031,
        "root_id": 864691135000000001,
    }
    assert json.loads(jsonl.splitlines()[0])["ctr_pt"] == {"position": [32, 32, 0]}
    again = parse_jsonl(FMT, jsonl)
    assert [p.annotation for p in again] == [p.annotation for p in parsed]


def test_read_only_columns_are_never_sent():
    """Segment ids and the other read-only cells may be left as read or changed: the parsed
    annotation (what a save sends) never holds them."""
    text = render_csv(FMT, ROWS)
    edited = text.replace(b"864691135000000001", b"42").replace(b"true", b"false")
    assert [p.annotation for p in parse_csv(FMT, edited)] == [
        p.annotation for p in parse_csv(FMT, text)
    ]
    assert all("root_id" not in str(p.annotation) for p in parse_csv(FMT, edited))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"id,foo\n", "header does not match"),
        (render_csv(FMT, ROWS).replace(b"31,31,0", b"a,b,c"), "row 2: 'pre_pt' position"),
        (render_csv(FMT, ROWS) + line(ctr=("", "", "")), "row 4: 'ctr_pt' position"),
        (render_csv(FMT, ROWS) + line(id="x"), "row 4: id 'x'"),
        (render_csv(FMT, ROWS) + b",1,2,3\n", "row 4: 4 cells"),
        (render_csv(FMT, ROWS) + line(size="big"), "row 4: 'size'"),
        (b"\xff\xfe", "UTF-8"),
    ],
)
def test_bad_csv_names_the_row(data, message):
    with pytest.raises(InvalidContent, match=message):
        parse_csv(FMT, data)


def test_plan_change_posts_puts_and_deletes_only_what_the_user_removed():
    current = {p.id: p.annotation for p in parse_csv(FMT, render_csv(FMT, ROWS))}
    current[3] = current[2]  # a row someone else added after the user read the table
    nines = ("9", "9", "9")
    rows = parse_csv(FMT, render_csv(FMT, ROWS[:1]) + line(pre=nines, ctr=nines, post=nines))
    rows[0].annotation["size"] = 5.0
    change = plan_change(rows, current, base_ids={1, 2})
    assert [r.id for r in change.put] == [1]
    assert [r.annotation["pre_pt"] for r in change.post] == [{"position": [9, 9, 9]}]
    assert change.delete == [2]  # row 3 was never seen by the user: kept
    with pytest.raises(InvalidContent, match="id 77"):
        plan_change(parse_csv(FMT, render_csv(FMT, [{**ROWS[0], "id": 77}])), current, set())


def test_a_missing_optional_point_is_no_change():
    """A row without its optional point reads back without it, so saving the file unchanged
    sends no update for it."""
    schema = {
        "definitions": {
            "SpatialPoint": POINT,
            "BoxSchema": {
                "required": ["start"],
                "properties": {
                    "start": {"$ref": "#/definitions/SpatialPoint", "order": 0},
                    "end": {"$ref": "#/definitions/SpatialPoint", "order": 1},
                },
            },
        },
        "$ref": "#/definitions/BoxSchema",
    }
    fmt = format_from_schema(schema)
    row = {"id": 5, **split("start", [1, 2, 3]), "valid": True}
    current = {5: {k: v for k, v in flat_to_nested(fmt, row).items() if k != "id"}}
    assert current[5] == {"start": {"position": [1, 2, 3]}}
    change = plan_change(parse_csv(fmt, render_csv(fmt, [row])), current, {5})
    assert (change.post, change.put, change.delete) == ([], [], [])

"""CSV / JSON Lines of annotation tables: columns, round trips, errors with row numbers."""

from __future__ import annotations

import pytest

from neurofs.errors import InvalidContent
from neurofs.sources.cave.table_format import (
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
ROWS = [
    {
        "id": 1,
        "pre_pt_position": [31, 31, 0],
        "ctr_pt_position": [32, 32, 0],
        "post_pt_position": [33, 33, 0],
        "size": 1.0,
        "valid": True,
        "created": "2024-05-01 12:00:00.123456",
        "superceded_id": None,
        "deleted": "None",
    },
    {
        "id": 2,
        "pre_pt_position": [1, 2, 3],
        "ctr_pt_position": [4, 5, 6],
        "post_pt_position": [7, 8, 9],
        "size": 2.5,
        "valid": True,
        "created": "x",
        "superceded_id": None,
        "deleted": "None",
    },
]


def test_columns_follow_the_schema_order():
    assert FMT.columns == [
        "id",
        "pre_pt_position_x",
        "pre_pt_position_y",
        "pre_pt_position_z",
        "ctr_pt_position_x",
        "ctr_pt_position_y",
        "ctr_pt_position_z",
        "post_pt_position_x",
        "post_pt_position_y",
        "post_pt_position_z",
        "size",
        "valid",
        "created",
        "superceded_id",
        "deleted",
    ]


def test_csv_and_jsonl_round_trip():
    text = render_csv(FMT, ROWS)
    assert text.splitlines()[1] == b"1,31,31,0,32,32,0,33,33,0,1,true,2024-05-01 12:00:00.123456,,"
    parsed = parse_csv(FMT, text)
    assert [p.id for p in parsed] == [1, 2]
    assert parsed[1].annotation == {
        "pre_pt": {"position": [1, 2, 3]},
        "ctr_pt": {"position": [4, 5, 6]},
        "post_pt": {"position": [7, 8, 9]},
        "size": 2.5,
    }
    again = parse_jsonl(FMT, render_jsonl(FMT, ROWS))
    assert [p.annotation for p in again] == [p.annotation for p in parsed]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"id,foo\n", "header does not match"),
        (render_csv(FMT, ROWS).replace(b"31,31,0", b"a,b,c"), "row 2: 'pre_pt' position"),
        (render_csv(FMT, ROWS) + b",1,2,3,,,,7,8,9,,,,,\n", "row 4: 'ctr_pt' position"),
        (render_csv(FMT, ROWS) + b"x,1,2,3,4,5,6,7,8,9,1,,,,\n", "row 4: id 'x'"),
        (render_csv(FMT, ROWS) + b",1,2,3\n", "row 4: 4 cells"),
        (render_csv(FMT, ROWS) + b",1,2,3,4,5,6,7,8,9,big,,,,\n", "row 4: 'size'"),
        (b"\xff\xfe", "UTF-8"),
    ],
)
def test_bad_csv_names_the_row(data, message):
    with pytest.raises(InvalidContent, match=message):
        parse_csv(FMT, data)


def test_plan_change_posts_puts_and_deletes_only_what_the_user_removed():
    current = {p.id: p.annotation for p in parse_csv(FMT, render_csv(FMT, ROWS))}
    current[3] = current[2]  # a row someone else added after the user read the table
    rows = parse_csv(FMT, render_csv(FMT, ROWS[:1]) + b",9,9,9,9,9,9,9,9,9,,,,,\n")
    rows[0].annotation["size"] = 5.0
    change = plan_change(rows, current, base_ids={1, 2})
    assert [r.id for r in change.put] == [1]
    assert [r.annotation["pre_pt"] for r in change.post] == [{"position": [9, 9, 9]}]
    assert change.delete == [2]  # row 3 was never seen by the user: kept
    with pytest.raises(InvalidContent, match="id 77"):
        plan_change(parse_csv(FMT, render_csv(FMT, [{**ROWS[0], "id": 77}])), current, set())

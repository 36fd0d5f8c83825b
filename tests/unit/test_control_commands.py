"""Parsing what is written to ``.neurofs/control``, and the bbox → chunk selection of
``neurofs prefetch --bbox``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from neurofs.cli.bbox import (
    ArrayLayout,
    Box,
    BoxError,
    chunk_files,
    chunk_keys,
    parse_box,
)
from neurofs.errors import InvalidContent
from neurofs.tree.control import (
    MAX_COMMAND_BYTES,
    ClearCache,
    DropCached,
    PruneOlderThan,
    PruneTo,
    Refresh,
    ReloadDatastore,
    parse_command,
)


@pytest.mark.parametrize(
    ("text", "command"),
    [
        (b"refresh dandi/000001/draft\n", Refresh(("dandi", "000001", "draft"))),
        (b"refresh dandi/000001/draft", Refresh(("dandi", "000001", "draft"))),
        (b"refresh ./dandi//000001/", Refresh(("dandi", "000001"))),
        (b"refresh", Refresh(())),
        (b"refresh .", Refresh(())),
        ("refresh cave/ds/tables/a b/é".encode(), Refresh(("cave", "ds", "tables", "a b", "é"))),
        (b"cache clear\n", ClearCache()),
        (b"cache prune older-than=604800", PruneOlderThan(604800.0)),
        (b"cache prune to=0\n", PruneTo(0)),
        (b"cache prune to=21474836480", PruneTo(21474836480)),
        (b"cache drop dandi/000001/a b.nwb\n", DropCached(("dandi", "000001", "a b.nwb"))),
        (
            b"reload-datastore webknossos/datasets/lab/l4 demo\n",
            ReloadDatastore(("webknossos", "datasets", "lab", "l4 demo")),
        ),
    ],
)
def test_valid_commands(text: bytes, command: object) -> None:
    assert parse_command(text) == command


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (b"", "unknown command"),
        (b"\n", "unknown command"),
        (b"bogus", "unknown command"),
        (b"REFRESH x", "unknown command"),
        (b"cache", "unknown command"),
        (b"cache clear now", "unknown command"),
        (b"cache prune", "unknown command"),
        (b"cache prune older-than=7d", "whole number"),
        (b"cache prune older-than=-1", "whole number"),
        (b"cache prune to=1.5", "whole number"),
        (b"cache prune to=", "whole number"),
        (b"cache prune to=99999999999999999999999", "whole number"),
        ("cache prune to=１２".encode(), "whole number"),  # fullwidth digits
        (b"cache prune size=1", "unknown command"),
        (b"refresh /etc", "relative"),
        (b"cache drop", "unknown command"),
        (b"cache drop ", "takes a path"),
        (b"cache drop .", "takes a path"),
        (b"cache drop /etc/passwd", "relative"),
        (b"cache drop dandi/../../x", "'..'"),
        (b"refresh dandi/../..", "'..'"),
        (b"reload-datastore", "takes the path of a WEBKNOSSOS dataset"),
        (b"reload-datastore .", "takes the path of a WEBKNOSSOS dataset"),
        (b"reload-datastore /webknossos", "relative"),
        (b"reload-datastore webknossos/../..", "'..'"),
        (b"refresh a\nrefresh b\n", "one command per write"),
        (b"refresh a\x00b", "control characters"),
        (b"refresh a\rb", "control characters"),
        (b"\xff\xfe\x00junk", "UTF-8"),
        (bytes(range(256)), "UTF-8"),
        (b"refresh " + b"a/" * MAX_COMMAND_BYTES, "at most"),
    ],
)
def test_invalid_commands_say_what_is_wrong(text: bytes, reason: str) -> None:
    with pytest.raises(InvalidContent, match=reason):
        parse_command(text)


# ------------------------------------------------------------------ bbox


def test_parse_box() -> None:
    assert parse_box("0,32,64:32,64,96") == Box((0, 32, 64), (32, 64, 96))
    for bad in ("0,0,0", "0,0:1,1", "1,1,1:1,2,2", "a,0,0:1,1,1", "-1,0,0:1,1,1", "0,0,0:1,1,1:2"):
        with pytest.raises(BoxError):
            parse_box(bad)


OME = ArrayLayout(("z", "y", "x"), (96, 256, 320), (32, 32, 32), "/")


def test_box_inside_one_chunk() -> None:
    assert list(chunk_keys(OME, Box((1, 2, 3), (5, 6, 7)))) == ["0/0/0"]


def test_box_boundaries_are_end_exclusive() -> None:
    # x 0..32 is exactly chunk 0; x 0..33 reaches into chunk 1.
    assert list(chunk_keys(OME, Box((0, 0, 0), (32, 32, 32)))) == ["0/0/0"]
    assert list(chunk_keys(OME, Box((0, 0, 0), (33, 32, 32)))) == ["0/0/0", "0/0/1"]
    # Axis order of the keys is the array's: z/y/x.
    assert list(chunk_keys(OME, Box((0, 40, 70), (10, 50, 80)))) == ["2/1/0"]


def test_box_is_clipped_to_the_array() -> None:
    keys = list(chunk_keys(OME, Box((300, 250, 90), (10_000, 10_000, 10_000))))
    assert keys == ["2/7/9"]
    assert list(chunk_keys(OME, Box((400, 0, 0), (500, 10, 10)))) == []


def test_channel_axis_is_taken_whole_and_native_order() -> None:
    rgb = ArrayLayout(("c", "z", "y", "x"), (3, 64, 64, 64), (3, 32, 32, 32), "/")
    assert list(chunk_keys(rgb, Box((0, 0, 0), (40, 1, 1)))) == ["0/0/0/0", "0/0/0/1"]
    native = ArrayLayout(("c", "x", "y", "z"), (1, 320, 256, 96), (1, 32, 32, 32), ".")
    assert list(chunk_keys(native, Box((40, 0, 70), (41, 1, 71)))) == ["0.1.0.2"]


def test_box_counts_match_the_intersection() -> None:
    keys = list(chunk_keys(OME, Box((10, 20, 30), (100, 70, 40))))
    # x 10..100 → chunks 0..3 (4), y 20..70 → 0..2 (3), z 30..40 → 0..1 (2)
    assert len(keys) == 4 * 3 * 2 == len(set(keys))


def test_chunk_files_reads_the_layout_and_skips_missing_chunks(tmp_path: Path) -> None:
    group = tmp_path / "color.ome.zarr"
    mag = group / "1"
    mag.mkdir(parents=True)
    (group / ".zattrs").write_text(
        json.dumps({"multiscales": [{"axes": [{"name": n} for n in "zyx"], "datasets": []}]})
    )
    (mag / ".zarray").write_text(
        json.dumps({"shape": [64, 64, 64], "chunks": [32, 32, 32], "dimension_separator": "/"})
    )
    (mag / "0" / "0").mkdir(parents=True)
    (mag / "0" / "0" / "0").write_bytes(b"x")
    (mag / "0" / "0" / "1").write_bytes(b"x")  # the other chunk of the box is missing
    assert chunk_files(mag, Box((0, 0, 0), (64, 10, 10))) == [mag / "0/0/0", mag / "0/0/1"]
    (mag / "0" / "0" / "1").unlink()
    assert chunk_files(mag, Box((0, 0, 0), (64, 10, 10))) == [mag / "0/0/0"]


def test_chunk_files_refuses_a_directory_that_is_not_a_mag(tmp_path: Path) -> None:
    with pytest.raises(BoxError, match="not a zarr volume mag"):
        chunk_files(tmp_path, Box((0, 0, 0), (1, 1, 1)))
    (tmp_path / ".zarray").write_text(json.dumps({"shape": [1], "chunks": [1]}))
    with pytest.raises(BoxError, match="no OME-Zarr axes"):
        chunk_files(tmp_path, Box((0, 0, 0), (1, 1, 1)))


def test_chunk_files_lists_each_chunk_of_the_box_once_in_key_order(tmp_path: Path) -> None:
    mag = tmp_path / "l.ome.zarr" / "1"
    mag.mkdir(parents=True)
    (mag.parent / ".zattrs").write_text(
        json.dumps({"multiscales": [{"axes": [{"name": n} for n in "zyx"]}]})
    )
    (mag / ".zarray").write_text(
        json.dumps({"shape": [96, 96, 96], "chunks": [32, 32, 32], "dimension_separator": "/"})
    )
    for z in range(3):
        for y in range(3):
            (mag / str(z) / str(y)).mkdir(parents=True)
            for x in range(3):
                (mag / str(z) / str(y) / str(x)).write_bytes(b"x")
    files = chunk_files(mag, Box((0, 0, 0), (96, 96, 96)))
    assert [tuple(int(v) for v in p.relative_to(mag).parts) for p in files] == [
        (z, y, x) for z in range(3) for y in range(3) for x in range(3)
    ]


async def test_forget_changeable_keeps_immutable_answers() -> None:
    from neurofs.io.memo import Memo

    memo = Memo()
    calls: list[str] = []

    async def fetch(name: str) -> str:
        calls.append(name)
        return name

    await memo.get("draft", lambda: fetch("draft"))
    await memo.get("release", lambda: fetch("release"), immutable=True)
    memo.forget_changeable()
    await memo.get("draft", lambda: fetch("draft"))
    await memo.get("release", lambda: fetch("release"), immutable=True)
    assert calls == ["draft", "release", "draft"]

"""The ChunkedGraph's names and answers as the mount reads them: the graph's table from a
datastack's segmentation source, node ids from file names, the current roots from a
lineage graph."""

from __future__ import annotations

import io

import pytest

from neurofs.errors import RemoteError
from neurofs.sources.cave.api import graph_table
from neurofs.sources.cave.models import LineageGraph
from neurofs.sources.cave.segments import LeafIdLines, id_lines
from neurofs.sources.payloads import validated
from neurofs.tree.names import id_of_name


def test_graph_table_is_the_sources_last_segment_as_caveclient_takes_it() -> None:
    source = "graphene://https://minnie.microns-daf.com/segmentation/table/minnie3_v1"
    assert graph_table(source) == "minnie3_v1"
    assert graph_table("graphene://http://127.0.0.1:9/segmentation/table/t") == "t"
    # No graph: none named, a precomputed volume, a source ending in a slash.
    for source in (None, "", "precomputed://gs://bucket/seg", "graphene://https://h/table/"):
        assert graph_table(source) is None


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("864691135000000101", 864691135000000101),
        ("1", 1),
        (str(2**64 - 1), 2**64 - 1),
        ("0", None),  # no node
        ("007", None),  # one id, one name
        (str(2**64), None),
        ("-1", None),
        ("12a", None),
        ("١٢", None),  # digits, but not ASCII ones
        ("", None),
        (" 1", None),
    ],
)
def test_an_id_from_a_file_name(name: str, value: int | None) -> None:
    assert id_of_name(name) == value


def test_id_lines() -> None:
    assert id_lines([3, 1, 2]) == b"3\n1\n2\n"
    assert id_lines([]) == b""


def _graph(links: list[tuple[int, int]], nodes: list[int]) -> LineageGraph:
    data = {
        "directed": True,
        "graph": {},
        "links": [{"source": s, "target": t} for s, t in links],
        "multigraph": False,
        "nodes": [{"id": n, "operation_id": None, "timestamp": 1.5} for n in nodes],
    }
    return validated(LineageGraph, data, "lineage")


def test_latest_roots_are_the_sinks_reached_from_the_root() -> None:
    # 1 split into 2 and 3; 3 merged with 4 into 5; 5 split into 6 and 7.
    graph = _graph([(1, 2), (1, 3), (3, 5), (4, 5), (5, 6), (5, 7)], [1, 2, 3, 4, 5, 6, 7])
    assert graph.latest(1) == [2, 6, 7]
    assert graph.latest(4) == [6, 7]  # not 2: another branch of the graph
    assert graph.latest(2) == [2]  # current: itself
    assert graph.latest(9) == [9]  # alone in no graph


def test_a_malformed_lineage_answer_is_a_remote_error() -> None:
    with pytest.raises(RemoteError):
        validated(LineageGraph, {"nodes": [], "links": [{"source": -1, "target": 2}]}, "x")
    with pytest.raises(RemoteError):
        validated(LineageGraph, {"nodes": [{"id": "12"}], "links": []}, "x")


def _lines(pieces: list[bytes]) -> tuple[bytes, int]:
    out = io.BytesIO()
    sink = LeafIdLines(out, "leaves of 7", most_bytes=10_000)
    for piece in pieces:
        sink.feed(piece)
    count = sink.finish()
    return out.getvalue(), count


@pytest.mark.parametrize(
    "answer",
    [
        b'{"leaf_ids":[11,12,1300000000000000000]}\n',  # flask's compact text
        b'{ "leaf_ids" : [ 11 , 12,\n 1300000000000000000 ] }',  # any JSON spacing
        b'{"leaf_ids":["11","12","1300000000000000000"]}',  # int64_as_str
    ],
)
def test_leaf_ids_become_lines_however_the_answer_is_cut(answer: bytes) -> None:
    expected = b"11\n12\n1300000000000000000\n"
    for cut in range(len(answer) + 1):
        for second in range(cut, len(answer) + 1, 3):
            assert _lines([answer[:cut], answer[cut:second], answer[second:]]) == (expected, 3)
    one_byte_at_a_time = [answer[i : i + 1] for i in range(len(answer))]
    assert _lines(one_byte_at_a_time) == (expected, 3)


def test_an_empty_list_of_leaves_is_an_empty_file() -> None:
    assert _lines([b'{"leaf_ids":', b"[]}"]) == (b"", 0)


@pytest.mark.parametrize(
    "answer",
    [
        b'{"leaf_ids":[11,12',  # cut short
        b'{"leaf_ids":[11,12]',  # no closing brace
        b'{"leaf_ids":[11,12,]}',  # a trailing comma
        b'{"leaf_ids":[,11]}',
        b'{"leaf_ids":[11,,12]}',
        b'{"leaf_ids":[11,-12]}',  # no id
        b'{"leaf_ids":[11,012]}',
        b'{"leaf_ids":[11,1.5]}',
        b'{"leaf_ids":[11,null]}',
        b'{"leaf_ids":[11,123456789012345678901]}',  # 21 digits
        b'{"leaf_ids":[11]}{"more":1}',  # something after the list
        b'{"leaf_ids":[11],"other":[]}',
        b'{"error":[11]}',  # not the answer
        b'{"leaf_ids":[[11]]}',
        b"<html>" + b" " * 10_000,
        b'{"leaf_ids":[' + b"1" * 10_000 + b"]}",  # one endless "id"
    ],
)
def test_an_answer_that_is_no_list_of_leaf_ids_is_refused(answer: bytes) -> None:
    with pytest.raises(RemoteError, match="leaves of 7: the graph's answer is refused"):
        _lines([answer[:5], answer[5:]])


def test_a_new_try_forgets_what_the_last_one_fed() -> None:
    out = io.BytesIO()
    sink = LeafIdLines(out, "leaves of 7", most_bytes=10_000)
    sink.feed(b'{"leaf_ids":[1,2,3')
    sink.begin()
    sink.feed(b'{"leaf_ids":[4]}')
    assert sink.finish() == 1
    assert out.getvalue() == b"4\n"


def test_a_list_of_leaves_longer_than_the_file_may_be_is_refused() -> None:
    out = io.BytesIO()
    sink = LeafIdLines(out, "leaves of 7", most_bytes=100)
    with pytest.raises(RemoteError, match="more than 100 bytes of ids"):
        sink.feed(b'{"leaf_ids":[')
        for _ in range(100):  # an answer that never ends
            sink.feed(b"123456789,")
    assert len(out.getvalue()) <= 100
    # Exactly at the limit is fine.
    assert _lines([b'{"leaf_ids":[' + b",".join([b"123456789"] * 1000) + b"]}"])[1] == 1000

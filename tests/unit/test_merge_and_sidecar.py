"""The shared write mechanism's pure parts: merge, parse, commit decisions."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from neurofs.errors import Conflict, InvalidContent, ReadOnly
from neurofs.tree.merge import DELETED, apply, diff
from neurofs.tree.sidecar import Sidecar, SidecarSpec, TextFormat, parse, render

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=10,
)
docs = st.dictionaries(st.text(max_size=4), json_values, max_size=5)


@given(docs, docs)
def test_applying_the_diff_to_the_base_gives_mine(base, mine):
    assert apply(base, diff(base, mine), base) == mine


@given(docs, docs)
def test_unchanged_server_means_mine(base, mine):
    # theirs == base: no conflict is possible and the result is exactly the user's document.
    assert apply(dict(base), diff(base, mine), base) == mine


def test_other_fields_changed_on_the_server_survive():
    base = {"name": "a", "description": "d", "keywords": ["x"]}
    mine = {**base, "description": "mine"}
    theirs = {**base, "keywords": ["y"]}
    assert apply(theirs, diff(base, mine), base) == {
        "name": "a",
        "description": "mine",
        "keywords": ["y"],
    }


def test_nested_changes_merge_field_by_field():
    base = {"a": {"x": 1, "y": 1}}
    mine = {"a": {"x": 2, "y": 1}}
    theirs = {"a": {"x": 1, "y": 3}}
    assert apply(theirs, diff(base, mine), base) == {"a": {"x": 2, "y": 3}}


def test_same_field_changed_both_sides_conflicts():
    base = {"d": "0"}
    with pytest.raises(Conflict):
        apply({"d": "theirs"}, diff(base, {"d": "mine"}), base)
    # The same change on both sides is not a conflict.
    assert apply({"d": "same"}, diff(base, {"d": "same"}), base) == {"d": "same"}


def test_deleted_keys():
    assert diff({"a": 1, "b": 2}, {"a": 1}) == {("b",): DELETED}
    assert apply({"a": 1, "b": 2}, {("b",): DELETED}, {"a": 1, "b": 2}) == {"a": 1}


@pytest.mark.parametrize(
    ("data", "fmt", "message"),
    [
        (b"", TextFormat.YAML, "empty"),
        (b"\xff", TextFormat.YAML, "UTF-8"),
        (b"a: [", TextFormat.YAML, "invalid YAML"),
        (b"- 1", TextFormat.YAML, "mapping"),
        (b"{", TextFormat.JSON, "invalid JSON"),
        (b"[]", TextFormat.JSON, "mapping"),
    ],
)
def test_parse_errors_are_clear(data, fmt, message):
    with pytest.raises(InvalidContent, match=message):
        parse(data, fmt)


def test_render_parse_round_trip():
    doc = {"name": "ü", "n": [1, {"a": None}]}
    for fmt in TextFormat:
        assert parse(render(doc, fmt), fmt) == doc


class Server:
    def __init__(self, doc):
        self.doc = doc
        self.sent = []

    async def load(self, fresh):
        return dict(self.doc)

    async def send(self, changes, merged, current):
        self.sent.append((changes, merged))
        self.doc = merged


def sidecar(server, **kw):
    def validate(doc):
        if not isinstance(doc.get("name"), str):
            raise InvalidContent("name must be text")

    spec = SidecarSpec(load=server.load, validate=validate, send=server.send, **kw)
    return Sidecar(("x.yaml",), spec)


async def test_commit_sends_only_real_changes():
    server = Server({"name": "a", "id": "computed"})
    node = sidecar(server, computed_keys=frozenset({"id"}))
    text = await node.render()
    assert await node.commit(text, text) is False
    assert server.sent == []
    with pytest.raises(InvalidContent, match="server-computed"):
        await node.commit(render({"name": "a", "id": "changed"}, TextFormat.YAML), text)
    assert await node.commit(render({"name": "b", "id": "changed"}, TextFormat.YAML), text) is True
    changes, merged = server.sent[0]
    assert changes == {("name",): "b"} and merged == {"name": "b", "id": "computed"}


async def test_read_only_sidecar_refuses():
    node = sidecar(Server({"name": "a"}), read_only_reason="published")
    with pytest.raises(ReadOnly, match="published"):
        await node.commit(b"name: b\n", None)

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from neurofs.tree.names import NAME_MAX, safe_name


@given(st.text(max_size=600))
def test_every_name_is_a_valid_single_path_component(name):
    out = safe_name(name)
    assert out not in ("", ".", "..")
    assert "/" not in out and "\0" not in out
    assert len(out.encode("utf-8")) <= NAME_MAX
    assert safe_name(name) == out  # deterministic


@given(
    st.text(
        alphabet=st.characters(blacklist_categories=("Cc", "Cs"), blacklist_characters="/"),
        min_size=1,
        max_size=80,
    )
)
def test_safe_names_are_unchanged(name):
    if name not in (".", ".."):
        assert safe_name(name) == name


@given(st.text(min_size=256, max_size=400), st.text(min_size=256, max_size=400))
def test_long_names_stay_distinct(a, b):
    if a != b:
        assert safe_name(a) != safe_name(b)


def test_examples():
    assert safe_name("a/b") == "a\u2215b"
    assert safe_name("..") == "\uff0e\uff0e"
    assert safe_name("x\0y") == "x\ufffdy"

"""Page names of long CAVE tables: computed from the count, each name naming one page."""

from __future__ import annotations

import pytest

from neurofs.sources.cave.pages import PAGE_ROWS, page_count, page_index, page_name


def test_pages_cover_ids_one_to_the_count() -> None:
    assert PAGE_ROWS == 10_000
    assert page_count(0) == 1 and page_count(1) == 1
    assert page_count(10_000) == 1 and page_count(10_001) == 2
    assert page_count(337_000_000) == 33_700
    assert page_name(0, 1000) == "rows-000000001-000010000.csv"
    assert page_name(999, 1000) == "rows-009990001-010000000.csv"
    # Past nine digits the names widen, all of a table alike (they still sort).
    assert page_name(0, 200_000) == "rows-0000000001-0000010000.csv"


@pytest.mark.parametrize(
    ("name", "index"),
    [
        ("rows-000000001-000010000.csv", 0),
        ("rows-009990001-010000000.csv", 999),
        ("rows-010000001-010010000.csv", None),  # past the last page
        ("rows-000000002-000010001.csv", None),  # not a page boundary
        ("rows-1-10000.csv", None),  # not the width the table's names have
        ("rows-000000001-000010000.csv.swp", None),
        ("append.csv", None),
    ],
)
def test_a_name_names_a_page_only_as_listed(name: str, index: int | None) -> None:
    assert page_index(name, 1000) == index

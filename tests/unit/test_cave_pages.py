"""Page names of long CAVE tables: computed from the count, each name naming one page."""

from __future__ import annotations

import pytest

from neurofs.sources.cave.frozen import part_index, part_name
from neurofs.sources.cave.pages import PAGE_ROWS, page_count, page_ids, page_index, page_name


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


def test_a_page_and_its_part_share_an_id_range() -> None:
    pages = page_count(10_000_000)
    assert part_name(0, pages) == "part-00000.parquet"
    assert part_name(999, pages) == "part-00999.parquet"
    assert page_ids(0, pages) == (1, PAGE_ROWS + 1)
    assert page_ids(pages - 1, pages) == (9_990_001, None)  # the last: every id on
    for name, index in [
        ("part-00999.parquet", 999),
        ("part-01000.parquet", None),
        ("part-0999.parquet", None),
        ("part-00001.csv", None),
        ("part--0001.parquet", None),
        ("part-0000\u00b2.parquet", None),
    ]:
        assert part_index(name, pages) == index, name
    # Parts are as many as pages, named as wide as the largest index needs.
    assert part_name(123_456, 200_000) == "part-123456.parquet"

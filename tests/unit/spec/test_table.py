"""Uploaded CSV tables: parsed by column, and their columns filled into a spec's series."""

from __future__ import annotations

from typing import Any

import pytest

from plotjobs.spec.table import TableError, parse_csv, resolve_columns

SALES_CSV = b"day,north,south\n2024-01-01,3,4\n2024-01-02,5,1.5\n"


def test_a_csv_becomes_its_columns() -> None:
    assert parse_csv(b"\xef\xbb\xbfa, b\r\n1, x\r\n\r\n2,y\r\n") == {"a": ["1", "2"], "b": ["x", "y"]}


@pytest.mark.parametrize(
    ("data", "said"),
    [
        (b"", "empty"),
        (b"a,b\n", "no rows"),
        (b"a,a\n1,2\n", "twice"),
        (b"a,b\n1,2,3\n", "line 2 has 3 fields"),
        (b"a\n\xff\n", "not UTF-8"),
        (b"a,\n1,2\n", "column 2"),
    ],
)
def test_an_unusable_csv_is_refused_as_csv(data: bytes, said: str) -> None:
    with pytest.raises(TableError) as caught:
        parse_csv(data)
    assert caught.value.field == "csv" and said in caught.value.message


def test_columns_fill_the_series_and_name_them() -> None:
    document = {"title": "t", "series": [{"x_column": "day", "y_column": "south"}]}
    resolved = resolve_columns(document, parse_csv(SALES_CSV))
    assert resolved == {"title": "t", "series": [{"x": ["2024-01-01", "2024-01-02"], "y": [4.0, 1.5], "name": "south"}]}
    assert document["series"] == [{"x_column": "day", "y_column": "south"}]  # the input is left as it was


@pytest.mark.parametrize(
    ("series", "table", "field"),
    [
        ([{"y_column": "north"}], None, "series.0.y_column"),
        ([{"y_column": "east"}], SALES_CSV, "series.0.y_column"),
        ([{"y_column": "north", "y": [1]}], SALES_CSV, "series.0.y_column"),
        ([{"y_column": "day"}], SALES_CSV, "csv"),
        ([{"y": [1]}], SALES_CSV, "spec"),
    ],
)
def test_a_bad_column_reference_names_its_field(series: list[Any], table: bytes | None, field: str) -> None:
    with pytest.raises(TableError) as caught:
        resolve_columns({"series": series}, parse_csv(table) if table is not None else None)
    assert caught.value.field == field


def test_a_spec_without_columns_or_a_csv_is_left_alone() -> None:
    document = {"series": [{"y": [1]}]}
    assert resolve_columns(document, None) == document

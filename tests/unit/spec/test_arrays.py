"""Large data validated in bulk: arrays from JSON lists and CSV columns, the first bad cell named, limits per kind."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from plotjobs.spec.arrays import CATEGORIES_NOTE
from plotjobs.spec.base import attach_arrays, detached_document, violations
from plotjobs.spec.chart import MAX_LARGE_POINTS, MAX_POINTS, ChartSpec
from plotjobs.spec.table import TableError, parse_csv, resolve_columns

LARGE = 30_000


def _refused(document: dict[str, Any]) -> tuple[str, str]:
    with pytest.raises(ValidationError) as caught:
        ChartSpec.model_validate(document)
    return violations(caught.value)[0]


def test_small_data_stays_lists_and_large_data_becomes_arrays() -> None:
    small = ChartSpec.model_validate({"series": [{"x": [1, 2], "y": [3, 4]}]})
    assert small.series is not None and small.series[0].y == [3.0, 4.0]
    large = ChartSpec.model_validate({"series": [{"x": list(range(LARGE)), "y": [0.5] * LARGE}]})
    assert large.series is not None
    assert isinstance(large.series[0].x, np.ndarray) and large.series[0].x.dtype == np.float64
    assert isinstance(large.series[0].y, np.ndarray) and large.series[0].y.dtype == np.float64


@pytest.mark.parametrize(
    ("bad", "message"),
    [("1", "valid number"), (True, "valid number"), (None, "valid number"), (1e300, "finite"), (10**400, "finite")],
)
def test_a_bad_value_of_large_json_data_is_named_by_its_position(bad: Any, message: str) -> None:
    y: list[Any] = [1.0] * LARGE
    y[25_000] = bad
    field, said = _refused({"series": [{"y": y}]})
    assert (field, message in said) == ("series.0.y.25000", True)


def test_nan_and_infinity_in_arrays_are_named() -> None:
    y = np.ones(LARGE)
    y[LARGE - 1] = np.nan
    assert _refused({"series": [{"y": y}]})[0] == f"series.0.y.{LARGE - 1}"
    y[7] = np.inf
    assert _refused({"series": [{"y": y}]})[0] == "series.0.y.7"


def test_large_dates_become_datetime64_with_offsets_made_utc_and_a_bad_one_named() -> None:
    days = [f"2024-01-{day:02d}T12:00+02:00" for day in range(1, 31)] * 1000
    spec = ChartSpec.model_validate({"series": [{"x": days, "y": [1.0] * len(days)}]})
    assert spec.series is not None
    x = spec.series[0].x
    assert isinstance(x, np.ndarray) and x.dtype == np.dtype("datetime64[ms]")
    assert str(x[0]) == "2024-01-01T10:00:00.000"
    days[12_345] = "2024-02-30"
    field, message = _refused({"series": [{"x": days, "y": [1.0] * len(days)}]})
    assert field == "series.0.x.12345" and "'2024-02-30' is not an ISO date" in message
    days[12_345] = "9999-01-01"
    assert _refused({"series": [{"x": days, "y": [1.0] * len(days)}]})[0] == "series.0.x.12345"


def test_lengths_must_match_for_large_data_too() -> None:
    field, message = _refused({"series": [{"x": list(range(LARGE + 1)), "y": [1.0] * LARGE}]})
    assert field == "series.0.x" and f"{LARGE + 1} x values for {LARGE} y values" in message


@pytest.mark.parametrize("kind", ["line", "scatter", "area"])
def test_lines_scatters_and_areas_take_two_million_points_in_all(kind: str) -> None:
    half = np.zeros(MAX_LARGE_POINTS // 2)
    assert ChartSpec.model_validate({"kind": kind, "series": [{"y": half}, {"y": half}]}).kind == kind
    field, message = _refused({"kind": kind, "series": [{"y": half}, {"y": np.zeros(MAX_LARGE_POINTS // 2 + 1)}]})
    assert field == "series" and f"{MAX_LARGE_POINTS + 1} points in all; at most {MAX_LARGE_POINTS}" in message


@pytest.mark.parametrize(
    ("kind", "column", "limit", "field"),
    [
        ("histogram", "values", MAX_POINTS, "series"),
        ("bar", "y", 1000, "series"),
        ("pie", "y", 100, "series.0.y"),
        ("bar", "y", MAX_POINTS, "series"),
    ],
)
def test_other_kinds_keep_their_small_limits(kind: str, column: str, limit: int, field: str) -> None:
    named, message = _refused({"kind": kind, "series": [{column: [1.0] * (limit + 1)}]})
    assert named == field and f"at most {limit}" in message


def test_a_kind_of_the_wrong_type_beside_large_data_is_a_clear_error() -> None:
    assert _refused({"kind": ["line"], "series": [{"y": [1.0] * LARGE}]})[0] == "series"


def test_category_names_on_x_are_for_small_data() -> None:
    field, message = _refused({"series": [{"x": [f"c{n % 3}" for n in range(LARGE)], "y": [1.0] * LARGE}]})
    assert field == "series.0.x" and CATEGORIES_NOTE in message
    days = ["2024-01-01"] * LARGE
    assert _refused({"x_type": "number", "series": [{"x": days, "y": [1.0] * LARGE}]})[0] == "x_type"
    assert _refused({"x_type": "date", "series": [{"x": list(range(LARGE)), "y": [1.0] * LARGE}]})[0] == "series.0.x.0"


def test_a_large_spec_detaches_its_arrays_and_validates_again_from_them() -> None:
    spec = ChartSpec.model_validate({"title": "t", "series": [{"x": list(range(LARGE)), "y": [2.0] * LARGE}]})
    document, arrays = detached_document(spec)
    assert document["series"][0]["x"] == {"$array": 0} and document["series"][0]["y"] == {"$array": 1}
    assert len(str(document)) < 1000 and len(arrays) == 2
    again = ChartSpec.model_validate(attach_arrays(document, arrays))
    assert again.series is not None and np.array_equal(again.series[0].y, np.full(LARGE, 2.0))
    assert spec.model_dump(mode="json")["series"][0]["y"] == [2.0] * LARGE  # no context: JSON data inline


def _csv(rows: int, bad_row: int | None = None, *, dates: bool = False, quoted: bool = False) -> bytes:
    lines = ["when,value" if not quoted else '"when","value"']
    for row in range(1, rows + 1):
        x = f"2024-01-01T00:{row % 60:02d}" if dates else str(row)
        lines.append(f"{x},{'oops' if row == bad_row else row * 0.5}")
    return ("\n".join(lines) + "\n").encode()


@pytest.mark.parametrize(("dates", "quoted"), [(False, False), (True, False), (False, True)])
def test_a_large_csv_becomes_arrays(dates: bool, quoted: bool) -> None:
    table = parse_csv(_csv(LARGE, dates=dates, quoted=quoted))
    resolved = resolve_columns({"series": [{"x_column": "when", "y_column": "value"}]}, table)
    spec = ChartSpec.model_validate(resolved)
    assert spec.series is not None
    x, y = spec.series[0].x, spec.series[0].y
    assert isinstance(x, np.ndarray) and x.dtype.kind == ("M" if dates else "f") and len(x) == LARGE
    assert isinstance(y, np.ndarray) and y[-1] == LARGE * 0.5


@pytest.mark.parametrize(("dates", "column"), [(False, "value"), (True, "value")])
def test_a_bad_cell_deep_in_a_large_csv_is_named_by_row_and_column(dates: bool, column: str) -> None:
    table = parse_csv(_csv(LARGE, bad_row=27_001, dates=dates))
    with pytest.raises(TableError) as caught:
        resolve_columns({"series": [{"x_column": "when", "y_column": "value"}]}, table)
    assert caught.value.field == "csv"
    assert caught.value.message == f"data row 27001 of column {column!r} is 'oops', not a number"


def test_a_bad_date_deep_in_a_large_csv_is_named() -> None:
    data = _csv(LARGE, dates=True).replace(b"\n2024-01-01T00:05,", b"\n2024-01-01T25:05,", 1)
    with pytest.raises(TableError) as caught:
        resolve_columns({"series": [{"x_column": "when", "y_column": "value"}]}, parse_csv(data))
    assert caught.value.message.startswith("data row 5 of column 'when' is '2024-01-01T25:05', not an ISO date")


@pytest.mark.parametrize("cell", ["2024", "today", "NaT", "2024-01"])
def test_what_numpy_would_read_as_a_date_and_iso_does_not_is_named(cell: str) -> None:
    days = ["2024-01-01"] * LARGE
    days[20_500] = cell
    field, message = _refused({"series": [{"x": days, "y": [1.0] * LARGE}]})
    assert field == "series.0.x.20500" and "not an ISO date" in message


def test_numbers_python_reads_and_numpy_does_not_are_read_in_a_large_csv() -> None:
    table = parse_csv(_csv(LARGE).replace(b"\n7,3.5\n", b"\n7,3_5.0\n", 1))
    resolved = resolve_columns({"series": [{"x_column": "when", "y_column": "value"}]}, table)
    assert resolved["series"][0]["y"][6] == 35.0 and len(resolved["series"][0]["y"]) == LARGE


def test_a_large_csv_with_a_short_row_names_its_line() -> None:
    data = _csv(LARGE).replace(b"\n25000,", b"\n25000", 1)
    with pytest.raises(TableError, match="line 25001 has 1 fields; the header has 2"):
        parse_csv(data)


@pytest.mark.parametrize("moment", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
@pytest.mark.parametrize("count", [1, LARGE])
def test_an_offset_past_the_calendar_is_refused_with_its_field(moment: str, count: int) -> None:
    field, message = _refused({"series": [{"x": [moment] * count, "y": [1] * count}]})
    assert field == "series.0.x.0" and "outside the years" in message


def test_a_csv_date_whose_offset_passes_the_calendar_is_refused() -> None:
    csv = b"x,y\n" + b"0001-01-01T00:00+01:00,1\n" * LARGE
    with pytest.raises(TableError):
        resolve_columns({"series": [{"x_column": "x", "y_column": "y"}]}, parse_csv(csv))


def test_a_long_x_is_refused_by_its_length_before_its_values_are_read() -> None:
    # The last value is no x at all: only a check that reads no value answers with the lengths.
    long_x: list[Any] = [1] * (LARGE * 10) + [{}]
    field, message = _refused({"series": [{"y": [1], "x": long_x}]})
    assert field == "series.0.x" and message == f"{len(long_x)} x values for 1 y values; they must match"

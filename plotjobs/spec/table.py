"""Uploaded CSV tables: parse them, and fill a spec's column references with their data."""

from __future__ import annotations

import csv
import io
from typing import Any

from plotjobs.spec.chart import MAX_NAME

COLUMN_FIELDS = {"x_column": "x", "y_column": "y", "values_column": "values"}
# Columns that must hold numbers; x may also hold dates or category names.
NUMERIC_TARGETS = {"y", "values"}


class TableError(ValueError):
    """The uploaded CSV, or a reference to one of its columns, cannot be used."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


Table = dict[str, list[str]]


def parse_csv(data: bytes) -> Table:
    """The columns of a CSV file whose first row holds the column names."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise TableError("csv", f"the CSV is not UTF-8 text (byte {error.start})") from None
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        rows = [(reader.line_num, row) for row in reader if any(cell.strip() for cell in row)]
    except csv.Error as error:
        raise TableError("csv", f"the CSV is malformed at line {reader.line_num}: {error}") from None
    if not rows:
        raise TableError("csv", "the CSV is empty: its first row must hold the column names")
    (_, header), *data_rows = rows
    names = [name.strip() for name in header]
    for position, name in enumerate(names, start=1):
        if not name:
            raise TableError("csv", f"column {position} of the header row has no name")
        if len(name) > MAX_NAME:
            raise TableError("csv", f"column {position}'s name is longer than {MAX_NAME} characters")
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise TableError("csv", f"the header names a column twice: {', '.join(duplicates)}")
    if not data_rows:
        raise TableError("csv", "the CSV has a header but no rows of data")
    table: Table = {name: [] for name in names}
    for line, row in data_rows:
        if len(row) != len(names):
            raise TableError("csv", f"line {line} has {len(row)} fields; the header has {len(names)}")
        for name, cell in zip(names, row, strict=True):
            table[name].append(cell.strip())
    return table


def _number(cell: str, line: int, column: str) -> float:
    try:
        return float(cell)
    except ValueError:
        shown = repr(cell[:40]) if cell else "an empty cell"
        raise TableError("csv", f"data row {line} of column {column!r} is {shown}, not a number") from None


def _column_values(cells: list[str], column: str, target: str) -> list[Any]:
    if target in NUMERIC_TARGETS:
        return [_number(cell, row, column) for row, cell in enumerate(cells, start=1)]
    try:
        return [float(cell) for cell in cells]
    except ValueError:
        return list(cells)


def resolve_columns(document: dict[str, Any], table: Table | None) -> dict[str, Any]:
    """The spec document with every ``*_column`` of its series replaced by that column's data."""
    series = document.get("series")
    if not isinstance(series, list):
        series = []
    resolved = []
    used = 0
    for index, entry in enumerate(series):
        if not isinstance(entry, dict):
            resolved.append(entry)
            continue
        filled = dict(entry)
        for column_field, target in COLUMN_FIELDS.items():
            column = filled.get(column_field)
            if column is None or not isinstance(column, str):
                continue  # absent, or the wrong type for the spec model to report
            field = f"series.{index}.{column_field}"
            if table is None:
                raise TableError(field, "names a CSV column but no 'csv' file was uploaded")
            if target in filled:
                raise TableError(field, f"give {target} or {column_field}, not both")
            if column not in table:
                raise TableError(field, f"no column {column!r} in the CSV (it has: {', '.join(table)})")
            filled[target] = _column_values(table[column], column, target)
            del filled[column_field]
            used += 1
            if column_field in ("y_column", "values_column"):
                filled.setdefault("name", column)
        resolved.append(filled)
    if table is not None and not used:
        message = "a CSV was uploaded but no series names its columns (x_column, y_column, values_column)"
        raise TableError("spec", message)
    return {**document, "series": resolved} if "series" in document else document

"""Uploaded CSV tables: parse them, and fill a spec's column references with their data.

A table of up to ``LIST_POINTS`` lines is read cell by cell into lists of strings, as it always
was. A larger one is read into arrays: all-number files without quotes by numpy's C reader
(``np.loadtxt``), anything else by the standard ``csv`` module in chunks of ``CHUNK_ROWS`` rows,
each column turned into a float64 or datetime64 array chunk by chunk, so that the whole table
never exists as Python strings or floats at once. See docs/spec.md.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from plotjobs.spec import arrays
from plotjobs.spec.base import SpecRuleError
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


# Rows converted at a time on the chunked path: a few MB of Python strings at most.
CHUNK_ROWS = 65_536
# Bytes of UTF-8 checked at a time before a large table is read.
_UTF8_SLICE = 1 << 20


@dataclass
class LargeColumn:
    """A column of a large table: numbers or dates as an array, or the first cell that is neither."""

    kind: str = ""  # "number", "date" or "text" once the first chunk is read
    chunks: list[np.ndarray] = field(default_factory=list)
    values: np.ndarray | None = None
    # (data row, cell, what it is not) of the first cell that breaks the column's kind.
    bad: tuple[int, str, str] | None = None

    def add(self, cells: tuple[str, ...], first_row: int) -> None:
        """Convert one chunk of cells, the first being data row ``first_row``."""
        if self.bad is not None:
            return
        if self.kind in ("", "number"):
            try:
                self.chunks.append(np.array(cells, dtype=np.float64))
                self.kind = "number"
                return
            except ValueError:
                cells = tuple(cell.strip() for cell in cells)
                if self.kind == "number" or _is_number(cells[0]):
                    self._fail(cells, first_row, "a number")
                    return
        if self.kind == "" and not arrays.looks_like_date(cells[0]):
            self.kind = "text"
            self.bad = (first_row, cells[0], "a number")
            return
        self.kind = "date"
        try:
            try:
                self.chunks.append(arrays.dates(cells, "x"))
            except SpecRuleError:
                # Spaces around a date: read again without them (numpy reads numbers with them).
                cells = tuple(cell.strip() for cell in cells)
                self.chunks.append(arrays.dates(cells, "x"))
        except SpecRuleError as error:
            position = int(error.field.rpartition(".")[2])
            self.bad = (first_row + position, cells[position], "an ISO date (YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS])")
            self.chunks = []

    def _fail(self, cells: tuple[str, ...], first_row: int, wanted: str) -> None:
        self.kind = "number"
        position = next((position for position, cell in enumerate(cells) if not _is_number(cell)), None)
        if position is None:
            # Numbers Python reads and numpy does not (1_000): read as the small path reads them.
            self.chunks.append(np.array([float(cell) for cell in cells], dtype=np.float64))
            return
        self.bad = (first_row + position, cells[position], wanted)
        self.chunks = []

    def finish(self) -> None:
        """Join the chunks into one array."""
        if self.bad is None:
            self.values = np.concatenate(self.chunks) if self.chunks else np.empty(0)
        self.chunks = []


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


Table = dict[str, list[str] | LargeColumn]


def parse_csv(data: bytes) -> Table:
    """The columns of a CSV file whose first row holds the column names."""
    if data.count(b"\n") > arrays.LIST_POINTS + 1:
        return _parse_large(data)
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
    names = _column_names(header)
    if not data_rows:
        raise TableError("csv", "the CSV has a header but no rows of data")
    table: dict[str, list[str]] = {name: [] for name in names}
    for line, row in data_rows:
        if len(row) != len(names):
            raise TableError("csv", f"line {line} has {len(row)} fields; the header has {len(names)}")
        for name, cell in zip(names, row, strict=True):
            table[name].append(cell.strip())
    return dict(table)


def _column_names(header: list[str]) -> list[str]:
    names = [name.strip() for name in header]
    for position, name in enumerate(names, start=1):
        if not name:
            raise TableError("csv", f"column {position} of the header row has no name")
        if len(name) > MAX_NAME:
            raise TableError("csv", f"column {position}'s name is longer than {MAX_NAME} characters")
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise TableError("csv", f"the header names a column twice: {', '.join(duplicates)}")
    return names


def _check_utf8(data: bytes) -> None:
    decoder = codecs.getincrementaldecoder("utf-8")()
    for offset in range(0, len(data), _UTF8_SLICE):
        try:
            decoder.decode(data[offset : offset + _UTF8_SLICE], final=offset + _UTF8_SLICE >= len(data))
        except UnicodeDecodeError as error:
            raise TableError("csv", f"the CSV is not UTF-8 text (byte {offset + error.start})") from None


def _rows(data: bytes) -> Generator[tuple[int, list[str]]]:
    """(line, row) of every row with a non-blank cell, read as a stream (no copy of the text)."""
    reader = csv.reader(io.TextIOWrapper(io.BytesIO(data), encoding="utf-8-sig", newline=""), strict=True)
    try:
        for row in reader:
            # One join instead of a look at each cell: the same test, in C.
            if "".join(row).strip():
                yield reader.line_num, row
    except csv.Error as error:
        raise TableError("csv", f"the CSV is malformed at line {reader.line_num}: {error}") from None


def _parse_large(data: bytes) -> Table:
    _check_utf8(data)
    rows = _rows(data)
    first = next(rows, None)
    if first is None:
        raise TableError("csv", "the CSV is empty: its first row must hold the column names")
    header_line, header = first
    names = _column_names(header)
    if header_line == 1 and b'"' not in data:
        numbers = _all_numbers(data, len(names))
        if numbers is not None:
            rows.close()
            return {name: LargeColumn("number", values=column) for name, column in zip(names, numbers, strict=True)}
    columns = [LargeColumn() for _ in names]
    chunk: list[list[str]] = []
    first_row = 1
    for line, row in rows:
        if len(row) != len(names):
            raise TableError("csv", f"line {line} has {len(row)} fields; the header has {len(names)}")
        chunk.append(row)
        if len(chunk) == CHUNK_ROWS:
            _add_chunk(columns, chunk, first_row)
            first_row += len(chunk)
            chunk = []
    if chunk:
        _add_chunk(columns, chunk, first_row)
    if first_row == 1 and not chunk:
        raise TableError("csv", "the CSV has a header but no rows of data")
    for column in columns:
        column.finish()
    return dict(zip(names, columns, strict=True))


def _add_chunk(columns: list[LargeColumn], chunk: list[list[str]], first_row: int) -> None:
    for column, cells in zip(columns, zip(*chunk, strict=True), strict=True):
        column.add(cells, first_row)


def _all_numbers(data: bytes, width: int) -> list[np.ndarray] | None:
    """Every column as float64 when the whole table is numbers (numpy's C reader), else None."""
    try:
        table = np.loadtxt(
            io.BytesIO(data), dtype=np.float64, delimiter=",", skiprows=1, comments=None, ndmin=2, encoding="utf-8"
        )
    except ValueError:
        return None
    if table.shape[1] != width or not table.shape[0]:
        return None
    return [np.ascontiguousarray(table[:, index]) for index in range(width)]


def _number(cell: str, line: int, column: str) -> float:
    try:
        return float(cell)
    except ValueError:
        shown = repr(cell[:40]) if cell else "an empty cell"
        raise TableError("csv", f"data row {line} of column {column!r} is {shown}, not a number") from None


def _large_column_values(cells: LargeColumn, column: str, target: str) -> np.ndarray:
    if cells.bad is not None:
        row, cell, wanted = cells.bad
        if target == "x" and cells.kind == "text":
            message = f"column {column!r} holds text (data row {row} is {cell[:40]!r}); {arrays.CATEGORIES_NOTE}"
            raise TableError("csv", message)
        shown = repr(cell[:40]) if cell else "an empty cell"
        raise TableError("csv", f"data row {row} of column {column!r} is {shown}, not {wanted}")
    assert cells.values is not None
    if target in NUMERIC_TARGETS and cells.kind != "number":
        raise TableError("csv", f"data row 1 of column {column!r} is a date, not a number")
    return cells.values


def _column_values(cells: list[str] | LargeColumn, column: str, target: str) -> list[Any] | np.ndarray:
    if isinstance(cells, LargeColumn):
        return _large_column_values(cells, column, target)
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

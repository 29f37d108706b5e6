"""The chart spec: what a chart request may ask for, and the rules across its fields (docs/spec.md)."""

from __future__ import annotations

import datetime as dt
import math
import re
import unicodedata
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal

import numpy as np
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    StrictBool,
    StrictInt,
    StrictStr,
    WithJsonSchema,
    WrapSerializer,
    WrapValidator,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from plotjobs.spec import arrays
from plotjobs.spec.arrays import parse_date
from plotjobs.spec.base import MEDIA_TYPES, FileFormatSpec, SpecRuleError, array_field_serializer

# A full date as JSON Schema's "date" format means it (RFC 3339), the only form start accepts.
ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
CONTENT_TYPES = MEDIA_TYPES

# Bounds that keep every accepted spec renderable well inside the job timeout.
MAX_SERIES = 20
# Points in all of a histogram's series (lines, scatters and areas take MAX_LARGE_POINTS).
MAX_POINTS = arrays.LIST_POINTS
# Points in all of a line, scatter or area chart: drawn from arrays, downsampled per pixel column.
MAX_LARGE_POINTS = 2_000_000
LARGE_KINDS = frozenset({"line", "scatter", "area"})
MAX_BARS = 1_000
MAX_PIE_WEDGES = 100
MAX_CATEGORIES = 500
MAX_BINS = 200
MAX_LABEL = 200
MAX_NAME = 100
# Matplotlib's dates end at year 9999, and axis margins reach past the data.
MIN_YEAR = arrays.MIN_YEAR
MAX_YEAR = arrays.MAX_YEAR
# Beyond this, axis spans overflow float arithmetic inside the layout code.
MAX_ABS_VALUE = arrays.MAX_ABS_VALUE

_LOOKS_LIKE_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")


def _plain_text(value: str) -> str:
    """Refuse control characters and lone surrogates: no font draws them and file formats reject some."""
    for position, character in enumerate(value):
        if unicodedata.category(character) in ("Cc", "Cs"):
            raise PydanticCustomError(
                "control_character",
                "holds the control character {code} at position {position}; use printable text",
                {"code": f"U+{ord(character):04X}", "position": position},
            )
    return value


Number = Annotated[float, Field(strict=True, allow_inf_nan=False, ge=-MAX_ABS_VALUE, le=MAX_ABS_VALUE)]


def _x_value(value: Any) -> float | str:
    """A number in bounds or a short string: one clear message instead of one per union member."""
    if isinstance(value, str):
        if len(value) > MAX_NAME:
            raise PydanticCustomError("x_too_long", "an x value has at most {limit} characters", {"limit": MAX_NAME})
        return _plain_text(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value) or abs(value) > MAX_ABS_VALUE:
            raise PydanticCustomError(
                "x_out_of_range", "an x number must be finite and within ±{limit:g}", {"limit": MAX_ABS_VALUE}
            )
        return float(value)
    raise PydanticCustomError("x_type", "an x value is a number, an ISO date string or a category name")


XValue = Annotated[
    float | str,
    PlainValidator(_x_value),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "minimum": -MAX_ABS_VALUE, "maximum": MAX_ABS_VALUE},
                {"type": "string", "maxLength": MAX_NAME},
            ]
        }
    ),
]


def _keep_arrays(value: Any, handler: Any) -> Any:
    """Arrays were read and checked in bulk by ChartSpec; lists are validated one value at a time."""
    if isinstance(value, np.ndarray):
        return value
    return handler(value)


# Large data arrives here as numpy arrays (float64, or datetime64[ms] for x): see plotjobs.spec.arrays.
XColumn = Annotated[list[XValue], WrapValidator(_keep_arrays), WrapSerializer(array_field_serializer)]
NumberColumn = Annotated[list[Number], WrapValidator(_keep_arrays), WrapSerializer(array_field_serializer)]
Label = Annotated[StrictStr, Field(max_length=MAX_LABEL), AfterValidator(_plain_text)]
Name = Annotated[StrictStr, Field(max_length=MAX_NAME), AfterValidator(_plain_text)]
ColumnName = Annotated[StrictStr, Field(min_length=1, max_length=MAX_NAME)]


class Series(BaseModel):
    """One named set of points (x, y), or of values for a histogram."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Name = Field(default="", description="Shown in the legend.")
    x: XColumn | None = Field(
        default=None,
        description="Numbers, ISO dates (2024-03-01, 2024-03-01T12:00) or category names; "
        "0, 1, 2, ... when absent. For a pie: the wedge labels.",
    )
    y: NumberColumn | None = Field(default=None, description="The values; one per x. For a pie: wedge sizes (≥ 0).")
    values: NumberColumn | None = Field(default=None, description="The samples of a histogram.")
    x_column: ColumnName | None = Field(default=None, description="CSV upload only: the column that fills x.")
    y_column: ColumnName | None = Field(default=None, description="CSV upload only: the column that fills y.")
    values_column: ColumnName | None = Field(default=None, description="CSV upload only: the column that fills values.")

    @field_validator("x_column", "y_column", "values_column")
    @classmethod
    def _columns_need_a_csv(cls, value: str | None) -> str | None:
        if value is not None:
            raise PydanticCustomError(
                "csv_only",
                "a column refers to an uploaded CSV: send multipart/form-data with a 'spec' part and a 'csv' file",
            )
        return value


class ChartSpec(FileFormatSpec):
    """What to draw. Without series it is the demo chart: 10 random values over 10 days."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["line", "bar", "scatter", "area", "histogram", "pie"] = "line"
    title: Label = ""
    x_label: Label = Field(default="", description="Text under the x axis.")
    y_label: Label = Field(default="", description="Text beside the y axis.")
    series: list[Series] | None = Field(
        default=None, min_length=1, max_length=MAX_SERIES, description="The data; the demo data when absent."
    )
    x_type: Literal["auto", "number", "date", "category"] = Field(
        default="auto",
        description="How to read x: auto takes numbers as numbers, date-like strings as dates "
        "(each must be valid), other strings as categories.",
    )
    bins: StrictInt = Field(default=10, ge=1, le=MAX_BINS, description="Histogram bins.")
    legend: StrictBool | None = Field(
        default=None, description="Show a legend; when absent, only if a series is named."
    )
    theme: Literal["light", "dark"] = "light"
    seed: StrictInt | None = Field(default=None, ge=0, le=2**32 - 1, description="Random seed for the demo data.")
    start: dt.date | None = Field(default=None, description="First day of the demo data; today when absent.")
    format: Literal["png", "svg", "pdf"] = "png"
    width: StrictInt = Field(default=800, ge=100, le=4000, description="Width in pixels.")
    height: StrictInt = Field(default=500, ge=100, le=4000, description="Height in pixels.")
    dpi: StrictInt = Field(default=100, ge=50, le=300)

    generator_name: ClassVar[str] = "chart"

    @property
    def metric_label(self) -> str:
        """The chart kind: a handful of values, safe as a metric label."""
        return self.kind

    def is_reproducible(self) -> bool:
        """Its own data, or seeded demo data: the output is a function of the spec alone."""
        return self.series is not None or self.seed is not None

    def irreproducibility(self) -> tuple[str, str]:
        """Demo data without a seed is random."""
        return "seed", "give the data inline in 'series', or a 'seed' for the demo data (without a seed it is random)"

    def pinned(self, today: dt.date) -> ChartSpec:
        """Seeded demo data without ``start`` starts ``today``, so the job renders exactly what its key names."""
        if self.series is None and self.seed is not None and self.start is None:
            return self.model_copy(update={"start": today})
        return self

    @field_validator("start", mode="before")
    @classmethod
    def _start_is_an_iso_date(cls, value: Any) -> Any:
        # The document promises a YYYY-MM-DD string: no timestamps or other forms pydantic would also read.
        if value is None or isinstance(value, dt.date):
            return value
        if not isinstance(value, str) or not ISO_DATE.fullmatch(value):
            raise ValueError("start must be a date as YYYY-MM-DD")
        return value

    @field_validator("start")
    @classmethod
    def _start_leaves_room_for_the_demo_days(cls, value: dt.date | None) -> dt.date | None:
        # The demo data spans 10 days from start; every one must be a date the axis can draw.
        if value is not None and not (value.year >= MIN_YEAR and (value + dt.timedelta(days=9)).year <= MAX_YEAR):
            raise ValueError(f"start must fall in the years {MIN_YEAR}..{MAX_YEAR} (with 9 days to spare)")
        return value

    @model_validator(mode="before")
    @classmethod
    def _large_data_as_arrays(cls, data: Any) -> Any:
        # Beyond LIST_POINTS, numbers are read and checked in bulk, before pydantic would take them one by one.
        if not isinstance(data, dict) or not isinstance(data.get("series"), list):
            return data
        entries = [entry for entry in data["series"] if isinstance(entry, dict)]
        columns = [entry.get(name) for entry in entries for name in ("x", "y", "values")]
        if not any(isinstance(column, np.ndarray) for column in columns):
            _check_long_x(data["series"])
            total = listed_points(data)
            if total <= arrays.LIST_POINTS:
                return data
            kind = data.get("kind", "line")
            if _points_limit(kind) < total:
                raise SpecRuleError("series", f"{total} points in all; at most {_points_limit(kind)}")
        x_type = data.get("x_type", "auto")
        converted: list[Any] = []
        for index, given in enumerate(data["series"]):
            entry = dict(given) if isinstance(given, dict) else given
            if isinstance(entry, dict):
                for name in ("y", "values"):
                    if _is_column(entry.get(name)):
                        entry[name] = arrays.numbers(entry[name], f"series.{index}.{name}")
                if _is_column(entry.get("x")) and len(entry["x"]):
                    entry["x"] = arrays.x_values(entry["x"], str(x_type), f"series.{index}.x")
            converted.append(entry)
        return {**data, "series": converted}

    @model_validator(mode="after")
    def _data_fits_the_kind(self) -> ChartSpec:
        if self.series is None:
            return self
        total = 0
        for index, series in enumerate(self.series):
            total += _check_series(self.kind, series, f"series.{index}")
        limit = _points_limit(self.kind)
        if total > limit:
            raise SpecRuleError("series", f"{total} points in all; at most {limit}")
        if self.kind == "pie" and len(self.series) != 1:
            raise SpecRuleError("series", "a pie takes exactly one series")
        if self.kind == "bar" and total > MAX_BARS:
            raise SpecRuleError("series", f"{total} bars in all; at most {MAX_BARS}")
        if self.kind not in ("histogram", "pie"):
            axis = x_axis(self)
            if axis.kind == "category" and len(axis.categories) > MAX_CATEGORIES:
                message = f"x holds {len(axis.categories)} categories; at most {MAX_CATEGORIES}"
                raise SpecRuleError("series", message)
        return self


def _check_long_x(series: list[Any]) -> None:
    """A list of x longer than LIST_POINTS is refused, unread, unless it matches its y (counted as y points then)."""
    for index, entry in enumerate(series):
        if not isinstance(entry, dict) or not _is_column(entry.get("x")) or len(entry["x"]) <= arrays.LIST_POINTS:
            continue
        y = entry.get("y")
        y_count = len(y) if isinstance(y, (list, np.ndarray)) else 0
        if len(entry["x"]) != y_count:
            message = f"{len(entry['x'])} x values for {y_count} y values; they must match"
            raise SpecRuleError(f"series.{index}.x", message)


def listed_points(document: Any) -> int:
    """The points a chart spec document's series list (their y or values), counted without reading a value."""
    series = document.get("series") if isinstance(document, dict) else None
    if not isinstance(series, list):
        return 0
    entries = [entry for entry in series if isinstance(entry, dict)]
    return sum(len(entry[name]) for entry in entries for name in ("y", "values") if _is_column(entry.get(name)))


def _is_column(value: object) -> bool:
    return isinstance(value, (list, np.ndarray))


def _points_limit(kind: object) -> int:
    return MAX_LARGE_POINTS if isinstance(kind, str) and kind in LARGE_KINDS else MAX_POINTS


def _check_series(kind: str, series: Series, where: str) -> int:
    """Check one series against its chart kind and return its number of points."""
    if kind == "histogram":
        if series.x is not None or series.y is not None:
            raise SpecRuleError(where, "a histogram takes 'values', not x and y")
        if series.values is None or not len(series.values):
            raise SpecRuleError(f"{where}.values", "a histogram series needs at least one value")
        return len(series.values)
    if series.values is not None:
        raise SpecRuleError(f"{where}.values", "only a histogram takes 'values'; give x and y")
    if series.y is None or not len(series.y):
        raise SpecRuleError(f"{where}.y", "needs at least one value")
    if series.x is not None and len(series.x) != len(series.y):
        raise SpecRuleError(f"{where}.x", f"{len(series.x)} x values for {len(series.y)} y values; they must match")
    if kind == "pie":
        if len(series.y) > MAX_PIE_WEDGES:
            raise SpecRuleError(f"{where}.y", f"{len(series.y)} wedges; a pie has at most {MAX_PIE_WEDGES}")
        if any(value < 0 for value in series.y):
            raise SpecRuleError(f"{where}.y", "pie wedge sizes cannot be negative")
        if sum(series.y) <= 0:
            raise SpecRuleError(f"{where}.y", "pie wedge sizes must add up to more than 0")
    return len(series.y)


@dataclass(frozen=True)
class XAxis:
    """The shared x axis of all series: its kind, and the position of each category."""

    kind: str
    categories: dict[str, int]


def x_axis(spec: ChartSpec) -> XAxis:
    """Decide how x is read across all series, checking every value; ValueError names the bad one."""
    assert spec.series is not None
    if any(isinstance(series.x, np.ndarray) for series in spec.series):
        return _array_x_axis(spec)
    given = [(index, series.x) for index, series in enumerate(spec.series) if series.x is not None]
    strings = [isinstance(value, str) for _, values in given for value in values]
    if any(strings) and not all(strings):
        raise SpecRuleError("series", "x mixes numbers and strings; quote every x or none")
    kind = spec.x_type
    if kind == "auto":
        if not any(strings):
            kind = "number"
        elif all(_LOOKS_LIKE_DATE.match(str(value)) for _, values in given for value in values):
            kind = "date"
        else:
            kind = "category"
    if kind == "number" and any(strings):
        raise SpecRuleError("x_type", "x_type is number but x holds strings")
    if kind == "date":
        _check_dates(spec.series)
    categories: dict[str, int] = {}
    if kind == "category":
        for _, values in given:
            for value in values:
                categories.setdefault(category_label(value), len(categories))
    return XAxis(kind, categories)


def _array_x_axis(spec: ChartSpec) -> XAxis:
    """The x axis of large data: numbers (float64) or dates (datetime64) throughout."""
    assert spec.series is not None
    given = [np.asarray(series.x) for series in spec.series if series.x is not None]
    kinds = {"date" if x.dtype.kind == "M" else "number" for x in given}
    if len(kinds) > 1:
        raise SpecRuleError("series", "x mixes numbers and strings; quote every x or none")
    kind = kinds.pop() if kinds else "number"
    if kind == "date":
        if spec.x_type not in ("auto", "date"):
            raise SpecRuleError("x_type", f"x_type is {spec.x_type} but x holds dates")
        for index, series in enumerate(spec.series):
            if series.x is None:
                raise SpecRuleError(f"series.{index}.x", "a date axis needs x dates for every series")
    elif spec.x_type == "date":
        raise SpecRuleError("x_type", "x_type is date but x holds numbers")
    elif spec.x_type == "category":
        raise SpecRuleError("x_type", arrays.CATEGORIES_NOTE)
    return XAxis(kind, {})


def _check_dates(series_list: list[Series]) -> None:
    """Every series has x, and every x is an ISO date; SpecRuleError names the first that is not."""
    for index, series in enumerate(series_list):
        if series.x is None:
            raise SpecRuleError(f"series.{index}.x", "a date axis needs x dates for every series")
        for position, value in enumerate(series.x):
            where = f"series.{index}.x.{position}"
            if not isinstance(value, str):
                raise SpecRuleError(where, f"{value:g} is not an ISO date string")
            parse_date(value, where)


def category_label(value: float | str) -> str:
    if isinstance(value, str):
        return value
    return f"{value:g}"

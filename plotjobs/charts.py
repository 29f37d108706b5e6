"""Chart specs and the pure render: spec in, bytes out. Knows nothing of web or queue."""

from __future__ import annotations

import datetime as dt
import io
import itertools
import math
import re
import unicodedata
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import matplotlib
import matplotlib.style
import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter, DateFormatter, DayLocator
from matplotlib.figure import Figure
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationError,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

ProgressCallback = Callable[[float, str], None]

# A full date as JSON Schema's "date" format means it (RFC 3339), the only form start accepts.
ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
CONTENT_TYPES = {"png": "image/png", "svg": "image/svg+xml", "pdf": "application/pdf"}

# Bounds that keep every accepted spec renderable well inside the job timeout.
MAX_SERIES = 20
MAX_POINTS = 20_000
MAX_BARS = 1_000
MAX_PIE_WEDGES = 100
MAX_CATEGORIES = 500
MAX_BINS = 200
MAX_LABEL = 200
MAX_NAME = 100
# Matplotlib's dates end at year 9999, and axis margins reach past the data.
MIN_YEAR = 1000
MAX_YEAR = 8999
DAY_TICKS_BELOW = 5
# Beyond this, axis spans overflow float arithmetic inside the layout code.
MAX_ABS_VALUE = 1e100

# Fixed metadata keeps output byte-identical for an identical spec (no creation dates).
_SAVE_METADATA = {
    "png": {"Software": None},
    "svg": {"Date": None, "Creator": None},
    "pdf": {"CreationDate": None, "Creator": None, "Producer": None},
}

# User text is never typeset by TeX, whatever the host's matplotlibrc says.
_BASE_RC: dict[str, Any] = {"text.usetex": False, "svg.hashsalt": "plotjobs"}
_THEMES: dict[str, list[Any]] = {"light": ["default", _BASE_RC], "dark": ["default", "dark_background", _BASE_RC]}

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
Label = Annotated[StrictStr, Field(max_length=MAX_LABEL), AfterValidator(_plain_text)]
Name = Annotated[StrictStr, Field(max_length=MAX_NAME), AfterValidator(_plain_text)]
ColumnName = Annotated[StrictStr, Field(min_length=1, max_length=MAX_NAME)]


class Series(BaseModel):
    """One named set of points (x, y), or of values for a histogram."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Name = Field(default="", description="Shown in the legend.")
    x: list[XValue] | None = Field(
        default=None,
        description="Numbers, ISO dates (2024-03-01, 2024-03-01T12:00) or category names; "
        "0, 1, 2, ... when absent. For a pie: the wedge labels.",
    )
    y: list[Number] | None = Field(default=None, description="The values; one per x. For a pie: wedge sizes (≥ 0).")
    values: list[Number] | None = Field(default=None, description="The samples of a histogram.")
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


class ChartSpec(BaseModel):
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

    @property
    def content_type(self) -> str:
        """The media type of the rendered bytes."""
        return CONTENT_TYPES[self.format]

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
        if value is not None and not (MIN_YEAR <= value.year and (value + dt.timedelta(days=9)).year <= MAX_YEAR):
            raise ValueError(f"start must fall in the years {MIN_YEAR}..{MAX_YEAR} (with 9 days to spare)")
        return value

    @model_validator(mode="after")
    def _data_fits_the_kind(self) -> ChartSpec:
        if self.series is None:
            return self
        total = 0
        for index, series in enumerate(self.series):
            total += _check_series(self.kind, series, f"series.{index}")
        if total > MAX_POINTS:
            raise SpecRuleError("series", f"{total} points in all; at most {MAX_POINTS}")
        if self.kind == "pie" and len(self.series) != 1:
            raise SpecRuleError("series", "a pie takes exactly one series")
        if self.kind == "bar" and total > MAX_BARS:
            raise SpecRuleError("series", f"{total} bars in all; at most {MAX_BARS}")
        if self.kind not in ("histogram", "pie"):
            axis = _x_axis(self)
            if axis.kind == "category" and len(axis.categories) > MAX_CATEGORIES:
                message = f"x holds {len(axis.categories)} categories; at most {MAX_CATEGORIES}"
                raise SpecRuleError("series", message)
        return self


class SpecRuleError(ValueError):
    """A rule across fields is broken; ``field`` is the dotted path of the input at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def violations(error: ValidationError) -> list[tuple[str, str]]:
    """Each (field, message) of a failed spec validation, fields as dotted paths."""
    found = []
    for item in error.errors():
        cause = (item.get("ctx") or {}).get("error")
        if isinstance(cause, SpecRuleError):
            found.append((cause.field, cause.message))
        else:
            found.append((".".join(str(part) for part in item["loc"]) or "spec", item["msg"]))
    return found


def _check_series(kind: str, series: Series, where: str) -> int:
    """Check one series against its chart kind and return its number of points."""
    if kind == "histogram":
        if series.x is not None or series.y is not None:
            raise SpecRuleError(where, "a histogram takes 'values', not x and y")
        if not series.values:
            raise SpecRuleError(f"{where}.values", "a histogram series needs at least one value")
        return len(series.values)
    if series.values is not None:
        raise SpecRuleError(f"{where}.values", "only a histogram takes 'values'; give x and y")
    if not series.y:
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
class _XAxis:
    """The shared x axis of all series: its kind, and the position of each category."""

    kind: str
    categories: dict[str, int]


def _parse_date(text: str, where: str) -> dt.datetime:
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        message = f"{text[:40]!r} is not an ISO date (YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS])"
        raise SpecRuleError(where, message) from None
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.timezone.utc).replace(tzinfo=None)
    if not MIN_YEAR <= moment.year <= MAX_YEAR:
        raise SpecRuleError(where, f"{text[:40]!r} is outside the years {MIN_YEAR}..{MAX_YEAR}")
    return moment


def _x_axis(spec: ChartSpec) -> _XAxis:
    """Decide how x is read across all series, checking every value; ValueError names the bad one."""
    assert spec.series is not None
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
        for index, series in enumerate(spec.series):
            if series.x is None:
                raise SpecRuleError(f"series.{index}.x", "a date axis needs x dates for every series")
            for position, value in enumerate(series.x):
                where = f"series.{index}.x.{position}"
                if not isinstance(value, str):
                    raise SpecRuleError(where, f"{value:g} is not an ISO date string")
                _parse_date(value, where)
    categories: dict[str, int] = {}
    if kind == "category":
        for _, values in given:
            for value in values:
                categories.setdefault(_category_label(value), len(categories))
    return _XAxis(kind, categories)


def _category_label(value: float | str) -> str:
    if isinstance(value, str):
        return value
    return f"{value:g}"


def _demo_spec(spec: ChartSpec) -> ChartSpec:
    """The spec with the demo data filled in: 10 random values over 10 days from ``start``."""
    rng = np.random.default_rng(spec.seed)
    start = spec.start or dt.datetime.now(dt.timezone.utc).date()
    days = [(start + dt.timedelta(days=offset)).isoformat() for offset in range(10)]
    values = [float(value) for value in rng.random(10)]
    data = {"values": values} if spec.kind == "histogram" else {"x": days, "y": values}
    demo = Series.model_validate(data)
    return spec.model_copy(update={"series": [demo], "x_type": "date"})


def downsample_line(x: np.ndarray, y: np.ndarray, max_points: int) -> tuple[np.ndarray, np.ndarray]:
    """At most ``max_points`` of a line that draw the same: each bucket's lowest and highest point.

    A line of a million points covers a few thousand pixel columns; drawing one minimum and
    one maximum per column keeps every peak and trough and makes the render cost follow the
    picture's size instead of the data's.
    """
    count = len(y)
    if count <= max_points or max_points < 4:
        return x, y
    buckets = max_points // 2
    size = -(-count // buckets)
    padded = np.pad(np.asarray(y, dtype=float), (0, buckets * size - count), mode="edge").reshape(buckets, size)
    offsets = np.arange(buckets) * size
    keep = np.concatenate(([0, count - 1], offsets + padded.argmin(axis=1), offsets + padded.argmax(axis=1)))
    indices = np.unique(np.minimum(keep, count - 1))
    return np.asarray(x)[indices], np.asarray(y)[indices]


def _ignore_progress(fraction: float, stage: str) -> None:
    return None


def _x_positions(axis: _XAxis, series: Series, count: int) -> list[Any]:
    if series.x is None:
        return list(range(count))
    if axis.kind == "date":
        return [_parse_date(str(value), "x") for value in series.x]
    if axis.kind == "category":
        return [axis.categories[_category_label(value)] for value in series.x]
    return list(series.x)


def _display_name(series: Series, number: int) -> str:
    return series.name or f"series {number + 1}"


def _draw_xy(axes: Axes, spec: ChartSpec, series_list: Sequence[Series], axis: _XAxis, show_legend: bool) -> None:
    count = len(series_list)
    positions = [_x_positions(axis, series, len(series.y or ())) for series in series_list]
    # Bars fill 80% of the narrowest step between x values, shared among the series side by side.
    bar_width: Any = _bar_step(axis, positions) * (0.8 / count)
    for number, (series, x) in enumerate(zip(series_list, positions, strict=True)):
        assert series.y is not None
        label = _display_name(series, number) if show_legend else None
        if spec.kind == "line":
            # A pixel column shows at most its lowest and highest point; drawing more only costs time.
            xs, ys = downsample_line(np.asarray(x), np.asarray(series.y, dtype=float), 2 * spec.width)
            axes.plot(xs, ys, marker="o" if len(x) <= 50 else None, label=label)
        elif spec.kind == "scatter":
            axes.scatter(x, series.y, s=16, label=label)
        elif spec.kind == "area":
            order = sorted(range(len(x)), key=lambda index: x[index])
            xs, ys = [x[index] for index in order], [series.y[index] for index in order]
            line = axes.plot(xs, ys, label=label)[0]
            axes.fill_between(xs, ys, alpha=0.3, color=line.get_color())
        else:
            offset = bar_width * (number - (count - 1) / 2)
            axes.bar([value + offset for value in x], series.y, width=bar_width, label=label)
    if axis.kind == "date":
        _format_dates(axes, series_list)
    elif axis.kind == "category":
        axes.set_xticks(list(axis.categories.values()), labels=list(axis.categories), parse_math=False)
        if any(len(label) > 3 for label in axis.categories) or len(axis.categories) > 12:
            axes.tick_params(axis="x", labelrotation=45)
            for tick in axes.get_xticklabels():
                tick.set_horizontalalignment("right")


def _bar_step(axis: _XAxis, positions: list[list[Any]]) -> Any:
    """The narrowest step between distinct x values of all series (a day or 1 when there is none)."""
    unit: Any = dt.timedelta(days=1) if axis.kind == "date" else 1.0
    distinct = sorted({value for values in positions for value in values})
    return min((b - a for a, b in itertools.pairwise(distinct)), default=unit)


def _format_dates(axes: Axes, series_list: Sequence[Series]) -> None:
    texts = [str(value) for series in series_list for value in series.x or []]
    if all(len(text) == 10 for text in texts):
        days = [dt.date.fromisoformat(text) for text in texts]
        # Over a few days the automatic locator picks hours, and every tick would repeat its day.
        few_days = (max(days) - min(days)).days < DAY_TICKS_BELOW
        axes.xaxis.set_major_locator(DayLocator() if few_days else AutoDateLocator())
        axes.xaxis.set_major_formatter(DateFormatter("%Y-%m-%d"))
        axes.figure.autofmt_xdate()
    else:
        locator = AutoDateLocator()
        axes.xaxis.set_major_locator(locator)
        axes.xaxis.set_major_formatter(ConciseDateFormatter(locator))


def _draw_pie(axes: Axes, series: Series, show_legend: bool) -> None:
    assert series.y is not None
    labels = [_category_label(value) for value in series.x] if series.x is not None else None
    text_props = {"parse_math": False}
    if show_legend:
        wedges = axes.pie(series.y, textprops=text_props)[0]
        if labels is not None:
            _plain_legend(axes, wedges, labels)
    else:
        axes.pie(series.y, labels=labels, textprops=text_props)
    axes.set_aspect("equal")


def _plain_legend(axes: Axes, handles: Sequence[Any] | None = None, labels: Sequence[str] = ()) -> None:
    legend = axes.legend(handles, labels) if handles is not None else axes.legend()
    for text in legend.get_texts():
        text.set_parse_math(False)


def _histogram_range(samples: list[np.ndarray]) -> tuple[float, float]:
    """The binned range, widened when all values (nearly) coincide.

    numpy widens a zero-width range by ±0.5, which is lost to rounding for large values
    (e.g. 4.5e15) and then fails with "too many bins"; a relative margin always survives.
    """
    low = min(float(values.min()) for values in samples)
    high = max(float(values.max()) for values in samples)
    margin = max(abs(low), abs(high), 1.0) * 1e-6
    if high - low < margin:
        return low - margin, high + margin
    return low, high


def _draw(figure: Figure, spec: ChartSpec) -> None:
    assert spec.series is not None
    axes = figure.add_subplot()
    show_legend = spec.legend if spec.legend is not None else any(series.name for series in spec.series)
    if spec.kind == "pie":
        _draw_pie(axes, spec.series[0], show_legend)
    elif spec.kind == "histogram":
        samples = [np.asarray(series.values, dtype=float) for series in spec.series]
        names = [_display_name(series, number) for number, series in enumerate(spec.series)]
        axes.hist(samples, bins=spec.bins, range=_histogram_range(samples), label=names if show_legend else None)
    else:
        _draw_xy(axes, spec, spec.series, _x_axis(spec), show_legend)
    if show_legend and spec.kind != "pie":
        handles, _ = axes.get_legend_handles_labels()
        if handles:
            _plain_legend(axes)
    if spec.title:
        axes.set_title(spec.title, parse_math=False)
    if spec.x_label:
        axes.set_xlabel(spec.x_label, parse_math=False)
    if spec.y_label:
        axes.set_ylabel(spec.y_label, parse_math=False)


def render(spec: ChartSpec, progress: ProgressCallback | None = None) -> bytes:
    """Draw ``spec`` and return the encoded file; ``progress(fraction, stage)`` marks each step."""
    report = progress or _ignore_progress
    report(0.1, "preparing data")
    chart = spec if spec.series is not None else _demo_spec(spec)

    report(0.3, "drawing")
    buffer = io.BytesIO()
    with matplotlib.style.context(_THEMES[spec.theme]), warnings.catch_warnings():
        # Text in a script the bundled fonts lack is drawn as boxes: expected, not worth a log line per job.
        warnings.filterwarnings("ignore", message=r"Glyph \d+ .* missing from font", category=UserWarning)
        figure = Figure(figsize=(spec.width / spec.dpi, spec.height / spec.dpi), dpi=spec.dpi)
        FigureCanvasAgg(figure)
        _draw(figure, chart)
        report(0.7, "encoding")
        figure.savefig(buffer, format=spec.format, metadata=_SAVE_METADATA[spec.format])
    return buffer.getvalue()


def warm_up() -> None:
    """Load fonts and caches once, so the first real job pays no start-up cost."""
    for file_format in CONTENT_TYPES:
        render(ChartSpec.model_validate({"format": file_format, "seed": 0, "title": "warm-up"}))

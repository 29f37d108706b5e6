"""The chart generator's render: a validated ChartSpec in, the encoded file out (matplotlib, Agg).

Pure: no Redis, no queue, no web; ``progress(fraction, stage)`` marks each step. See docs/spec.md.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import itertools
import warnings
from collections.abc import Sequence
from typing import Any

import matplotlib
import matplotlib.style
import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_rgb
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter, DateFormatter, DayLocator, date2num
from matplotlib.figure import Figure

from plotjobs.generators import ProgressCallback
from plotjobs.render.fonts import families_for
from plotjobs.spec.arrays import parse_date
from plotjobs.spec.chart import CONTENT_TYPES, ChartSpec, Series, XAxis, category_label, x_axis

DAY_TICKS_BELOW = 5
# Downsampling keeps a lowest and a highest point per bucket, so it needs room for two buckets.
MIN_DOWNSAMPLED_POINTS = 4
# Lines with more points than this are drawn without a marker on each point.
MARKERS_UP_TO_POINTS = 50
# Category labels are rotated when one is longer than this or there are more of them than that.
UPRIGHT_LABEL_CHARACTERS = 3
UPRIGHT_LABEL_COUNT = 12
_DATE_ONLY_LENGTH = len("YYYY-MM-DD")
# Scatters of more points than this, in all series, are drawn as a density. Up to it the markers
# cost at most 0.5 s and 2.2 MB as SVG; each point past it adds about 20 µs and 110 bytes to an
# SVG or PDF, so 10^6 markers take 20 s and 100 MB (docs/benchmarks.md).
DENSITY_ABOVE_POINTS = 20_000
# A density bin is this many pixels on each side: fine enough to read as a cloud of points.
DENSITY_BIN_PIXELS = 2
# In a density of several series each bin shows its series' colour, at least this opaque.
DENSITY_MIN_ALPHA = 0.25
# Matplotlib's warning for a character that no font in the list has: it is drawn as a box.
MISSING_GLYPH_WARNING = r"Glyph \d+ .* missing from font"

# Fixed metadata keeps output byte-identical for an identical spec (no creation dates).
_SAVE_METADATA = {
    "png": {"Software": None},
    "svg": {"Date": None, "Creator": None},
    "pdf": {"CreationDate": None, "Creator": None, "Producer": None},
}

# User text is never typeset by TeX, whatever the host's matplotlibrc says.
_BASE_RC: dict[str, Any] = {"text.usetex": False, "svg.hashsalt": "plotjobs"}
_THEMES: dict[str, list[Any]] = {"light": ["default", _BASE_RC], "dark": ["default", "dark_background", _BASE_RC]}


def _demo_spec(spec: ChartSpec) -> ChartSpec:
    """The spec with the demo data filled in: 10 random values over 10 days from ``start``."""
    rng = np.random.default_rng(spec.seed)
    start = spec.start or dt.datetime.now(dt.UTC).date()
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
    if count <= max_points or max_points < MIN_DOWNSAMPLED_POINTS:
        return x, y
    buckets = max_points // 2
    size = -(-count // buckets)
    padded = np.pad(np.asarray(y, dtype=float), (0, buckets * size - count), mode="edge").reshape(buckets, size)
    offsets = np.arange(buckets) * size
    keep = np.concatenate(([0, count - 1], offsets + padded.argmin(axis=1), offsets + padded.argmax(axis=1)))
    indices = np.unique(np.minimum(keep, count - 1))
    return np.asarray(x)[indices], np.asarray(y)[indices]


def downsample_area(x: np.ndarray, y: np.ndarray, max_points: int) -> tuple[np.ndarray, np.ndarray]:
    """An area's points in x order, at most ``max_points`` of them that draw the same (``downsample_line``)."""
    order = np.argsort(x, kind="stable")
    return downsample_line(x[order], y[order], max_points)


@dataclasses.dataclass(frozen=True)
class DensityGrid:
    """The bins every series of a density scatter is counted in, a few pixels each, over all the points."""

    x_range: tuple[float, float]
    y_range: tuple[float, float]
    bins: tuple[int, int]
    # One series is drawn with a colour map of its counts; several each in their own colour.
    single: bool


def _span(values: Sequence[np.ndarray]) -> tuple[float, float]:
    """The range of ``values``, widened when they (nearly) coincide (as ``_histogram_range``)."""
    finite = [array[np.isfinite(array)] for array in values]
    low = min((float(array.min()) for array in finite if array.size), default=0.0)
    high = max((float(array.max()) for array in finite if array.size), default=1.0)
    margin = max(abs(low), abs(high), 1.0) * 1e-6
    if high - low < margin:
        return low - margin, high + margin
    return low, high


def _widened(span: tuple[float, float], margin: float) -> tuple[float, float]:
    low, high = span
    return low - (high - low) * margin, high + (high - low) * margin


def density_grid(axes: Axes, points: Sequence[tuple[np.ndarray, np.ndarray]], *, dates: bool) -> DensityGrid:
    """Set ``axes`` up for a density of ``points`` and return its bins.

    x holds numbers, or with ``dates`` matplotlib's day numbers; the bins cover the axes as it is
    laid out now. The figure's corner says how many points are drawn as a density.
    """
    if dates:
        axes.xaxis_date()
    box = axes.get_window_extent()
    bins = (max(1, int(box.width) // DENSITY_BIN_PIXELS), max(1, int(box.height) // DENSITY_BIN_PIXELS))
    # The axes' usual margins around the points, as a scatter of markers has.
    x_range = _widened(_span([x for x, _ in points]), axes.get_xmargin())
    y_range = _widened(_span([y for _, y in points]), axes.get_ymargin())
    count = sum(len(y) for _, y in points)
    figure = axes.get_figure(root=True)
    assert figure is not None
    figure.text(
        0.99, 0.99, f"{count:,} points drawn as density", ha="right", va="top", fontsize="x-small", parse_math=False
    )
    return DensityGrid(x_range, y_range, bins, single=len(points) == 1)


def draw_density(
    axes: Axes, grid: DensityGrid, points: tuple[np.ndarray, np.ndarray], *, color: str, label: str | None
) -> None:
    """Draw one series of a density scatter: its count of points in each bin of ``grid`` as an image.

    Counting costs one pass over the points, and the image is the size of the axes in pixels
    (embedded as one bitmap in SVG and PDF), so a million points draw as fast as a thousand.
    """
    x, y = points
    finite = np.isfinite(x) & np.isfinite(y)
    counts, _, _ = np.histogram2d(x[finite], y[finite], bins=grid.bins, range=(grid.x_range, grid.y_range))
    # histogram2d counts x along the first axis; an image's rows are y.
    counts = counts.T
    extent = (*grid.x_range, *grid.y_range)
    options: dict[str, Any] = {"origin": "lower", "extent": extent, "aspect": "auto", "interpolation": "nearest"}
    if grid.single:
        # One series: a colour map of its counts, with its scale (and name) beside the axes.
        image = axes.imshow(np.ma.masked_equal(counts, 0), cmap="viridis", norm="log", **options)
        figure = axes.get_figure(root=True)
        assert figure is not None
        scale = figure.colorbar(image, ax=axes, fraction=0.05, pad=0.02)
        scale.set_label(f"{label}: points per bin" if label else "points per bin", parse_math=False)
        return
    shade = np.log1p(counts) / max(float(np.log1p(counts.max())), 1e-12)
    image_data = np.zeros((*counts.shape, 4))
    image_data[..., :3] = to_rgb(color)
    image_data[..., 3] = np.where(counts > 0, DENSITY_MIN_ALPHA + (1 - DENSITY_MIN_ALPHA) * shade, 0.0)
    axes.imshow(image_data, **options)
    if label is not None:
        # The image has no legend entry of its own: an empty marker of the series' colour stands for it.
        axes.scatter([], [], s=16, color=color, label=label)


def _density_points(
    axis: XAxis, series_list: Sequence[Series], positions: list[list[Any]]
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Each series' points as float arrays (dates as day numbers) when the scatter is drawn as a density, else []."""
    if sum(len(x) for x in positions) <= DENSITY_ABOVE_POINTS:
        return []
    xs = [date2num(np.asarray(x, dtype="datetime64[us]")) if axis.kind == "date" else x for x in positions]
    return [
        (np.asarray(x, dtype=float), np.asarray(series.y, dtype=float))
        for x, series in zip(xs, series_list, strict=True)
    ]


def _ignore_progress(fraction: float, stage: str) -> None:
    return None


def _x_positions(axis: XAxis, series: Series, count: int) -> Any:
    if isinstance(series.x, np.ndarray):
        # Large data: float64 numbers or datetime64 dates, which matplotlib draws as they are.
        return series.x
    if series.x is None:
        return np.arange(count, dtype=float) if isinstance(series.y, np.ndarray) else list(range(count))
    if axis.kind == "date":
        return [parse_date(str(value), "x") for value in series.x]
    if axis.kind == "category":
        return [axis.categories[category_label(value)] for value in series.x]
    return list(series.x)


def _display_name(series: Series, number: int) -> str:
    return series.name or f"series {number + 1}"


def _draw_xy(axes: Axes, spec: ChartSpec, series_list: Sequence[Series], axis: XAxis, show_legend: bool) -> None:
    count = len(series_list)
    positions = [_x_positions(axis, series, len(series.y) if series.y is not None else 0) for series in series_list]
    # Bars fill 80% of the narrowest step between x values, shared among the series side by side.
    bar_width: Any = _bar_step(axis, positions) * (0.8 / count) if spec.kind == "bar" else None
    density = _density_points(axis, series_list, positions) if spec.kind == "scatter" else []
    grid = density_grid(axes, density, dates=axis.kind == "date") if density else None
    colors = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]
    for number, (series, x) in enumerate(zip(series_list, positions, strict=True)):
        assert series.y is not None
        label = _display_name(series, number) if show_legend else None
        if spec.kind == "line":
            # A pixel column shows at most its lowest and highest point; drawing more only costs time.
            xs, ys = downsample_line(np.asarray(x), np.asarray(series.y, dtype=float), 2 * spec.width)
            axes.plot(xs, ys, marker="o" if len(x) <= MARKERS_UP_TO_POINTS else None, label=label)
        elif spec.kind == "scatter" and grid is not None:
            draw_density(axes, grid, density[number], color=colors[number % len(colors)], label=label)
        elif spec.kind == "scatter":
            # Numbers as arrays: from a list matplotlib builds its masked array point by point (dates keep their type).
            scatter_x: Any = x if axis.kind == "date" else np.asarray(x, dtype=float)
            axes.scatter(scatter_x, np.asarray(series.y, dtype=float), s=16, label=label)
        elif spec.kind == "area":
            sorted_x, sorted_y = _area_outline(x, series.y, 2 * spec.width)
            line = axes.plot(sorted_x, sorted_y, label=label)[0]
            axes.fill_between(sorted_x, sorted_y, alpha=0.3, color=line.get_color())
        else:
            offset = bar_width * (number - (count - 1) / 2)
            axes.bar([value + offset for value in x], series.y, width=bar_width, label=label)
    if axis.kind == "date":
        _format_dates(axes, series_list)
    elif axis.kind == "category":
        axes.set_xticks(list(axis.categories.values()), labels=list(axis.categories), parse_math=False)
        long_labels = any(len(label) > UPRIGHT_LABEL_CHARACTERS for label in axis.categories)
        if long_labels or len(axis.categories) > UPRIGHT_LABEL_COUNT:
            axes.tick_params(axis="x", labelrotation=45)
            for tick in axes.get_xticklabels():
                tick.set_horizontalalignment("right")


def _area_outline(x: Any, y: Any, max_points: int) -> tuple[Any, Any]:
    """An area's points in x order; a long one (or large data) downsampled in numpy as a line is."""
    if isinstance(x, np.ndarray) or len(x) > max_points:
        return downsample_area(np.asarray(x), np.asarray(y, dtype=float), max_points)
    listed = sorted(range(len(x)), key=lambda index: x[index])
    return [x[index] for index in listed], [y[index] for index in listed]


def _bar_step(axis: XAxis, positions: list[list[Any]]) -> Any:
    """The narrowest step between distinct x values of all series (a day or 1 when there is none)."""
    unit: Any = dt.timedelta(days=1) if axis.kind == "date" else 1.0
    distinct = sorted({value for values in positions for value in values})
    return min((b - a for a, b in itertools.pairwise(distinct)), default=unit)


def _day_span(series_list: Sequence[Series]) -> int | None:
    """Days from the first x to the last when every x is a day without a time, else None."""
    stamps = [np.asarray(series.x) for series in series_list if isinstance(series.x, np.ndarray)]
    if stamps:
        whole = np.concatenate(stamps)
        if not (whole == whole.astype("datetime64[D]")).all():
            return None
        return int((whole.max() - whole.min()) // np.timedelta64(1, "D"))
    texts = [str(value) for series in series_list for value in series.x or []]
    if not all(len(text) == _DATE_ONLY_LENGTH for text in texts):
        return None
    days = [dt.date.fromisoformat(text) for text in texts]
    return (max(days) - min(days)).days


def _format_dates(axes: Axes, series_list: Sequence[Series]) -> None:
    span = _day_span(series_list)
    if span is not None:
        # Over a few days the automatic locator picks hours, and every tick would repeat its day.
        few_days = span < DAY_TICKS_BELOW
        axes.xaxis.set_major_locator(DayLocator() if few_days else AutoDateLocator())
        axes.xaxis.set_major_formatter(DateFormatter("%Y-%m-%d"))
        axes.figure.autofmt_xdate()
    else:
        locator = AutoDateLocator()
        axes.xaxis.set_major_locator(locator)
        axes.xaxis.set_major_formatter(ConciseDateFormatter(locator))


def _draw_pie(axes: Axes, series: Series, show_legend: bool) -> None:
    assert series.y is not None
    labels = [category_label(value) for value in series.x] if series.x is not None else None
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
        _draw_xy(axes, spec, spec.series, x_axis(spec), show_legend)
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


def _texts(spec: ChartSpec) -> list[str]:
    """Every piece of text the chart may show that the spec gives: title, labels, names, categories."""
    texts = [spec.title, spec.x_label, spec.y_label]
    for series in spec.series or ():
        texts.append(series.name)
        # All strings or none (a spec rule): a million numbers need not be looked at one by one.
        if series.x is not None and len(series.x) > 0 and isinstance(series.x[0], str):
            texts.extend(value for value in series.x if isinstance(value, str))
    return texts


def render(spec: ChartSpec, progress: ProgressCallback | None = None) -> bytes:
    """Draw ``spec`` and return the encoded file; ``progress(fraction, stage)`` marks each step."""
    with warnings.catch_warnings():
        # Text in a script no bundled font covers is drawn as boxes: expected, not worth a log line per job.
        warnings.filterwarnings("ignore", message=MISSING_GLYPH_WARNING, category=UserWarning)
        return render_showing_missing_glyphs(spec, progress)


def render_showing_missing_glyphs(spec: ChartSpec, progress: ProgressCallback | None = None) -> bytes:
    """``render``, with matplotlib's warning for each character no font has left to the caller."""
    report = progress or _ignore_progress
    report(0.1, "preparing data")
    chart = spec if spec.series is not None else _demo_spec(spec)

    report(0.3, "drawing")
    buffer = io.BytesIO()
    fonts = {"font.family": families_for(_texts(chart))}
    with matplotlib.style.context([*_THEMES[spec.theme], fonts]):
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

"""Huge scatters are drawn as a density in bounded time and say so; smaller charts draw as before."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import time
from typing import Any

import matplotlib.image
import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from plotjobs.render import chart as charts
from plotjobs.spec.chart import MAX_POINTS, ChartSpec, Series
from tests.unit.render.test_chart import _line_vertices

FORMATS = ["png", "svg", "pdf"]
MILLION = 1_000_000
NOTE = "1,000,000 points drawn as density"
# Rendered by the code before density scatters existed: charts under the threshold must not change.
SMALL_SCATTER = {
    "kind": "scatter",
    "title": "Small scatter",
    "series": [{"name": "a", "x": [1, 2, 3, 4], "y": [2, 4, 1, 3]}, {"name": "b", "x": [1.5, 2.5], "y": [1, 2]}],
}
SMALL_SCATTER_SHA256 = {
    "png": "d2ffe63b8bed9667127779a918cec61ad4b1f25766c9f6090b7942d6b9ed7803",
    "svg": "e58700756671addf4fe3be58d32a66d2d5305d7df8ea61953e0e1f852962eb8f",
    "pdf": "d11b956566636d0691827c97f29ced2b54852f0062ec11eecbe5d98207cc085c",
}
SMALL_AREA = {"kind": "area", "series": [{"name": "a", "x": [3, 1, 2, 5], "y": [2, 4, 1, 3]}]}
SMALL_AREA_SHA256 = {
    "png": "28d9d2db92bea61e9e985ce9036b91ed2f78dbc0d882a6ab356a84a72d6b91a4",
    "svg": "cc18a9e63be5075ebc6268246c80f6ae0a87fd4c03eeffc34a3f4edbb67a92a0",
    "pdf": "e421d72fff8808601e116d80d9542a71754fe057b92a4537af1adb0f73b27b29",
}
# A scatter of exactly the threshold's points (seed 7, rounded), rendered by the same earlier code.
THRESHOLD_SCATTER_SHA256 = {
    "png": "5a1dd0f1ff5fc763027470ce2aaa06aab2742d083bd80b6042477a4e4a3bbe24",
    "svg": "4c17d932b5012625d9dc60bc74d5bb2f32c5e661d5d6a98375f96019dee53074",
    "pdf": "bcb012863113b8a1371cf8c6c67d6d0e75a106fb25604416364947e76e4a1a18",
}


def _beyond_the_limit(series: list[Series], **fields: Any) -> ChartSpec:
    """A scatter spec with more points than MAX_POINTS allows today (built without validation)."""
    base = ChartSpec.model_validate({"kind": "scatter", **fields})
    return ChartSpec.model_construct(**{**dict(base), "series": series})


def _normal_series(count: int, seed: int, name: str = "", shift: float = 0.0) -> Series:
    rng = np.random.default_rng(seed)
    x, y = rng.normal(shift, 1, count).tolist(), rng.normal(shift, 1, count).tolist()
    return Series.model_construct(name=name, x=x, y=y, values=None)


@pytest.fixture(scope="module")
def million() -> Series:
    return _normal_series(MILLION, seed=1)


def _scatter_of(count: int, file_format: str) -> ChartSpec:
    rng = np.random.default_rng(7)
    x = [round(float(value), 3) for value in rng.normal(size=count)]
    y = [round(float(value), 3) for value in rng.normal(size=count)]
    return ChartSpec.model_validate({"kind": "scatter", "series": [{"x": x, "y": y}], "format": file_format})


def _top_right_corner_is_blank(png: bytes) -> bool:
    pixels = matplotlib.image.imread(io.BytesIO(png), format="png")
    corner = pixels[:20, -250:, :3]
    return bool((corner > 0.99).all())


@pytest.mark.parametrize("file_format", FORMATS)
def test_a_million_point_scatter_renders_as_a_density_quickly_deterministically_and_says_so(
    million: Series, file_format: str
) -> None:
    spec = _beyond_the_limit([million], format=file_format, title="A million")
    started = time.perf_counter()
    first = charts.render(spec)
    took = time.perf_counter() - started
    # Markers would take some 20 s and 100 MB as SVG; the density a second or so, whatever the format.
    assert took < 15, took
    assert len(first) < 1_000_000, len(first)
    assert charts.render(spec) == first
    if file_format == "png":
        assert matplotlib.image.imread(io.BytesIO(first), format="png").shape[:2] == (500, 800)
        assert not _top_right_corner_is_blank(first)
    elif file_format == "svg":
        assert NOTE.encode() in first
        assert b"<image " in first
    else:
        assert first.startswith(b"%PDF-") and b"/Subtype /Image" in first


def test_the_note_is_only_on_a_density() -> None:
    assert _top_right_corner_is_blank(charts.render(_scatter_of(MAX_POINTS, "png")))


@pytest.mark.parametrize("file_format", FORMATS)
def test_a_scatter_below_the_threshold_is_drawn_exactly_as_before(file_format: str) -> None:
    spec = ChartSpec.model_validate({**SMALL_SCATTER, "format": file_format})
    assert hashlib.sha256(charts.render(spec)).hexdigest() == SMALL_SCATTER_SHA256[file_format]


@pytest.mark.parametrize("file_format", FORMATS)
def test_a_scatter_of_exactly_the_threshold_is_drawn_as_markers_as_before(file_format: str) -> None:
    assert charts.DENSITY_ABOVE_POINTS == MAX_POINTS
    data = charts.render(_scatter_of(charts.DENSITY_ABOVE_POINTS, file_format))
    assert hashlib.sha256(data).hexdigest() == THRESHOLD_SCATTER_SHA256[file_format]


def test_one_point_past_the_threshold_is_a_density() -> None:
    spec = _scatter_of(charts.DENSITY_ABOVE_POINTS, "svg")
    assert spec.series is not None and spec.series[0].x is not None and spec.series[0].y is not None
    grown = Series.model_construct(name="", x=[*spec.series[0].x, 0.5], y=[*spec.series[0].y, 0.5], values=None)
    data = charts.render(ChartSpec.model_construct(**{**dict(spec), "series": [grown]}))
    assert b"20,001 points drawn as density" in data and b"<image " in data


def test_each_series_of_a_density_keeps_its_colour_and_legend_entry() -> None:
    series = [_normal_series(60_000, seed=2, name="north"), _normal_series(60_000, seed=3, name="south", shift=3)]
    data = charts.render(_beyond_the_limit(series, format="svg"))
    # matplotlib composites the two images into one bitmap in SVG and PDF.
    assert b"<image " in data
    assert b"120,000 points drawn as density" in data
    assert b"<!-- north -->" in data and b"<!-- south -->" in data


def test_a_dated_density_keeps_a_date_axis() -> None:
    start = dt.datetime(2024, 3, 1)
    minutes = np.random.default_rng(4).integers(0, 60 * 24 * 60, 50_000)
    x = [(start + dt.timedelta(minutes=int(minute))).isoformat() for minute in minutes]
    series = Series.model_construct(name="", x=x, y=np.sin(minutes / 500.0).tolist(), values=None)
    data = charts.render(_beyond_the_limit([series], format="svg"))
    assert b"50,000 points drawn as density" in data
    # Month names and days label the ticks; ConciseDateFormatter's offset names the last tick's year and month.
    assert all(f"<!-- {label} -->".encode() in data for label in ["Mar", "15", "Apr", "2024-May"])


def test_the_density_counts_every_finite_point_once_in_bins_of_a_few_pixels() -> None:
    figure = Figure(figsize=(8, 5), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=100_000), rng.normal(size=100_000)
    x[:10] = np.nan
    grid = charts.density_grid(axes, [(x, y)], dates=False)
    box = axes.get_window_extent()
    assert grid.bins == (int(box.width) // charts.DENSITY_BIN_PIXELS, int(box.height) // charts.DENSITY_BIN_PIXELS)
    assert grid.x_range[0] < np.nanmin(x) and grid.x_range[1] > np.nanmax(x)
    charts.draw_density(axes, grid, (x, y), color="C0", label=None)
    counts = axes.images[0].get_array()
    assert counts is not None
    assert counts.shape == (grid.bins[1], grid.bins[0])
    assert int(counts.sum()) == 100_000 - 10
    assert [text.get_text() for text in figure.texts] == ["100,000 points drawn as density"]


@pytest.mark.parametrize("file_format", FORMATS)
def test_a_small_area_is_drawn_exactly_as_before(file_format: str) -> None:
    spec = ChartSpec.model_validate({**SMALL_AREA, "format": file_format})
    assert hashlib.sha256(charts.render(spec)).hexdigest() == SMALL_AREA_SHA256[file_format]


def test_downsample_area_sorts_by_x_and_keeps_every_extreme() -> None:
    rng = np.random.default_rng(6)
    x = rng.permutation(100_000).astype(float)
    y = np.sin(x / 300.0)
    y[x == 31_337] = 9.0
    y[x == 77_777] = -9.0
    small_x, small_y = charts.downsample_area(x, y, 1000)
    assert len(small_x) <= 1002
    assert list(small_x) == sorted(small_x) and small_x[0] == 0 and small_x[-1] == 99_999
    assert small_y.max() == 9.0 and small_y.min() == -9.0


def test_a_long_area_is_drawn_with_far_fewer_vertices_than_points() -> None:
    rng = np.random.default_rng(8)
    x = rng.permutation(MAX_POINTS).tolist()
    y = rng.normal(0, 1, MAX_POINTS).tolist()
    width = 400
    spec = ChartSpec.model_validate({"kind": "area", "series": [{"x": x, "y": y}], "format": "svg", "width": width})
    # The longest path is the filled area: the downsampled line there and back along the baseline.
    vertices = _line_vertices(charts.render(spec))
    assert len(vertices) <= 2 * (2 * width + 2) + 2 < MAX_POINTS // 10, len(vertices)

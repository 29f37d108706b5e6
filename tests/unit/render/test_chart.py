"""The pure render: spec in, decodable bytes out, progress reported in order."""

from __future__ import annotations

import io
import re
import subprocess
import sys
from xml.etree import ElementTree

import matplotlib.image
import numpy as np
import pytest
from pydantic import ValidationError

from plotjobs.render import chart as charts
from plotjobs.spec.base import violations
from plotjobs.spec.chart import MAX_POINTS, ChartSpec

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_default_chart_is_a_png_of_the_requested_size() -> None:
    data = charts.render(ChartSpec())
    assert data.startswith(PNG_SIGNATURE)
    pixels = matplotlib.image.imread(io.BytesIO(data), format="png")
    assert pixels.shape[:2] == (500, 800)


def test_size_and_dpi_set_the_pixel_size() -> None:
    data = charts.render(ChartSpec(width=300, height=200, dpi=50))
    assert matplotlib.image.imread(io.BytesIO(data), format="png").shape[:2] == (200, 300)


def test_svg_parses_as_xml() -> None:
    root = ElementTree.fromstring(charts.render(ChartSpec(format="svg")))
    assert root.tag.endswith("svg")


def test_pdf_has_a_header_and_one_page() -> None:
    data = charts.render(ChartSpec(format="pdf"))
    assert data.startswith(b"%PDF-")
    assert data.count(b"/Type /Page\n") + data.count(b"/Type /Page>") + data.count(b"/Type /Page ") >= 1


@pytest.mark.parametrize("file_format", ["png", "svg", "pdf"])
def test_a_seeded_spec_is_byte_identical(file_format: str) -> None:
    spec = ChartSpec(seed=42, start="2024-03-01", title="same", format=file_format)  # type: ignore[arg-type]
    assert charts.render(spec) == charts.render(spec)


def test_different_seeds_differ() -> None:
    start = "2024-03-01"
    assert charts.render(ChartSpec.model_validate({"seed": 1, "start": start})) != charts.render(
        ChartSpec.model_validate({"seed": 2, "start": start})
    )


def test_progress_rises_through_named_stages() -> None:
    seen: list[tuple[float, str]] = []
    charts.render(ChartSpec(), lambda fraction, stage: seen.append((fraction, stage)))
    fractions = [fraction for fraction, _ in seen]
    assert fractions == sorted(fractions)
    assert all(0 < fraction < 1 for fraction in fractions)
    assert [stage for _, stage in seen] == ["preparing data", "drawing", "encoding"]


def test_title_is_plain_text_not_mathtext() -> None:
    bomb = "$" + "{" * 500 + "x" + "}" * 500 + "$"
    assert charts.render(ChartSpec(title=bomb[:200])).startswith(PNG_SIGNATURE)
    assert charts.render(ChartSpec(title=r"$\frac{1}{2}$ costs $5")).startswith(PNG_SIGNATURE)


@pytest.mark.parametrize(
    ("document", "field"),
    [
        ({"width": "800"}, "width"),
        ({"width": 10}, "width"),
        ({"dpi": 1000}, "dpi"),
        ({"title": 5}, "title"),
        ({"title": "x" * 201}, "title"),
        ({"format": "gif"}, "format"),
        ({"kind": "radar"}, "kind"),
        ({"start": "yesterday"}, "start"),
        ({"colour": "red"}, "colour"),
        ({"seed": -1}, "seed"),
    ],
)
def test_bad_specs_name_the_field(document: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        ChartSpec.model_validate(document)
    assert caught.value.errors()[0]["loc"][0] == field


def test_charts_imports_neither_web_nor_queue() -> None:
    code = "import sys, plotjobs.render.chart; print(sorted({'flask','redis','rq'} & set(sys.modules)))"
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60).stdout
    assert output.strip() == "[]"


KINDS = ["line", "bar", "scatter", "area", "histogram", "pie"]
FORMATS = ["png", "svg", "pdf"]
# Nested mathtext that exhausts the recursion limit if it is ever parsed (checked below).
MATH_BOMB = "$" + "{" * 40 + "x" + "}" * 40 + "$"


def sample_series(kind: str) -> list[dict[str, object]]:
    if kind == "histogram":
        return [{"name": "a", "values": [1, 2, 2, 3, 3, 3, 4]}, {"name": "b", "values": [2.5, 3.5]}]
    if kind == "pie":
        return [{"x": ["apples", "pears", "figs"], "y": [3, 2, 1]}]
    return [
        {"name": "north", "x": ["2024-01-01", "2024-01-02", "2024-01-05"], "y": [1, 3, 2]},
        {"name": "south", "x": ["2024-01-01", "2024-01-03", "2024-01-04"], "y": [2, 1, 4.5]},
    ]


def pdf_page_count(data: bytes) -> int:
    return len(re.findall(rb"/Type\s*/Page\b(?!s)", data))


def decode(data: bytes, file_format: str) -> None:
    """Fail unless ``data`` is a well-formed file of ``file_format``."""
    if file_format == "png":
        assert matplotlib.image.imread(io.BytesIO(data), format="png").shape[:2] == (300, 400)
    elif file_format == "svg":
        root = ElementTree.fromstring(data)
        assert root.tag == "{http://www.w3.org/2000/svg}svg"
        assert root.get("width") == "288pt" and root.get("height") == "216pt"
    else:
        assert data.startswith(b"%PDF-") and data.rstrip().endswith(b"%%EOF")
        assert pdf_page_count(data) == 1


@pytest.mark.parametrize("file_format", FORMATS)
@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_renders_in_every_format(kind: str, file_format: str) -> None:
    spec = ChartSpec.model_validate(
        {
            "kind": kind,
            "format": file_format,
            "series": sample_series(kind),
            "width": 400,
            "height": 300,
            "title": "Sales",
            "x_label": "day",
            "y_label": "units",
        }
    )
    decode(charts.render(spec), file_format)


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_draws_the_demo_data(kind: str) -> None:
    spec = ChartSpec.model_validate({"kind": kind, "seed": 3, "start": "2024-01-01", "width": 400, "height": 300})
    decode(charts.render(spec), "png")


def test_a_spec_with_data_is_byte_identical_twice() -> None:
    spec = ChartSpec.model_validate({"kind": "bar", "series": sample_series("bar"), "legend": True, "theme": "dark"})
    assert charts.render(spec) == charts.render(spec)


@pytest.mark.parametrize(
    "x",
    [
        [0.5, 1.5, 4.0],
        ["2024-01-01", "2024-02-01", "2024-03-01"],
        ["2024-01-01T08:00", "2024-01-01T12:30:00+02:00", "2024-01-01T18:00:00Z"],
        ["red", "green", "blue"],
        None,
    ],
)
@pytest.mark.parametrize("kind", ["line", "bar", "scatter", "area"])
def test_x_may_be_numbers_dates_or_categories(kind: str, x: list[object] | None) -> None:
    series: dict[str, object] = {"y": [3, 1, 2]} if x is None else {"x": x, "y": [3, 1, 2]}
    spec = ChartSpec.model_validate({"kind": kind, "series": [series], "width": 400, "height": 300})
    decode(charts.render(spec), "png")


@pytest.mark.parametrize("last_day", ["2024-03-01", "2024-03-02", "2024-03-11", "2024-09-30"])
def test_dates_are_shown_as_iso_days_without_repeats(last_day: str) -> None:
    spec = ChartSpec.model_validate({"series": [{"x": ["2024-03-01", last_day], "y": [1, 2]}], "format": "svg"})
    # Matplotlib's SVG carries each drawn text in a comment beside its glyphs.
    texts = re.findall(rb"<!-- (.*?) -->", charts.render(spec))
    days = [text for text in texts if re.fullmatch(rb"\d{4}-\d{2}-\d{2}", text)]
    assert len(days) >= 2
    assert len(days) == len(set(days)), days
    assert all(re.fullmatch(rb"[\d.\-]+", text) for text in texts if text not in days), texts


def test_dark_theme_paints_a_dark_background() -> None:
    light, dark = (
        matplotlib.image.imread(io.BytesIO(charts.render(ChartSpec(theme=theme, seed=1))), format="png")
        for theme in ("light", "dark")
    )
    assert light[2, 2, :3].mean() > 0.9
    assert dark[2, 2, :3].mean() < 0.1


def test_legend_follows_the_switch() -> None:
    document = {"series": [{"name": "only-in-legend", "y": [1, 2]}], "format": "svg"}
    assert b"only-in-legend" not in charts.render(ChartSpec.model_validate({**document, "legend": False}))
    shown = charts.render(ChartSpec.model_validate(document))
    assert b"only-in-legend" in shown or b"legend" in shown


def test_the_math_bomb_explodes_when_parsed() -> None:
    from matplotlib.figure import Figure

    figure = Figure()
    figure.suptitle(MATH_BOMB)
    with pytest.raises(RecursionError):
        figure.savefig(io.BytesIO(), format="png")


@pytest.mark.parametrize("kind", ["line", "bar", "pie", "histogram"])
def test_user_text_is_never_parsed_as_math(kind: str) -> None:
    series = sample_series(kind)
    if kind == "pie":
        series = [{"x": [MATH_BOMB, r"$\frac{1}{2}$"], "y": [1, 2]}]
    elif kind != "histogram":
        series = [{"name": MATH_BOMB, "x": [MATH_BOMB, "$5"], "y": [1, 2]}]
    else:
        series = [{"name": MATH_BOMB, "values": [1, 2]}]
    for legend in (True, False):
        spec = ChartSpec.model_validate(
            {
                "kind": kind,
                "series": series,
                "title": MATH_BOMB,
                "x_label": MATH_BOMB,
                "y_label": MATH_BOMB,
                "legend": legend,
            }
        )
        assert charts.render(spec).startswith(PNG_SIGNATURE)


def test_usetex_stays_off_whatever_the_rc() -> None:
    with matplotlib.rc_context({"text.usetex": True}):
        assert charts.render(ChartSpec(title="$x$", seed=1)).startswith(PNG_SIGNATURE)


@pytest.mark.parametrize(
    ("document", "field"),
    [
        ({"series": []}, "series"),
        ({"series": [{"y": []}]}, "series.0.y"),
        ({"series": [{"x": [1, 2], "y": [1]}]}, "series.0.x"),
        ({"series": [{"x": ["2024-01-01", "2024-02-30"], "y": [1, 2]}]}, "series.0.x.1"),
        ({"series": [{"x": ["yesterday"], "y": [1]}], "x_type": "date"}, "series.0.x.0"),
        ({"series": [{"x": ["2024-01-01", "9999-12-31"], "y": [1, 2]}]}, "series.0.x.1"),
        ({"series": [{"x": ["a"], "y": [1]}], "x_type": "number"}, "x_type"),
        ({"series": [{"x": [1, "a"], "y": [1, 2]}]}, "series"),
        ({"series": [{"y": ["1"]}]}, "series.0.y.0"),
        ({"series": [{"y": [True]}]}, "series.0.y.0"),
        ({"series": [{"y": [1e300]}]}, "series.0.y.0"),
        ({"series": [{"y": [1], "values": [1]}]}, "series.0.values"),
        ({"kind": "histogram", "series": [{"x": [1], "y": [1]}]}, "series.0"),
        ({"kind": "histogram", "series": [{"values": []}]}, "series.0.values"),
        ({"kind": "histogram", "bins": 0}, "bins"),
        ({"kind": "pie", "series": [{"y": [1, -1]}]}, "series.0.y"),
        ({"kind": "pie", "series": [{"y": [0, 0]}]}, "series.0.y"),
        ({"kind": "pie", "series": [{"y": [1]}, {"y": [1]}]}, "series"),
        ({"kind": "pie", "series": [{"y": [1] * 101}]}, "series.0.y"),
        ({"kind": "bar", "series": [{"y": [1] * 1001}]}, "series"),
        ({"kind": "histogram", "series": [{"values": [1] * 10_001}, {"values": [1] * 10_000}]}, "series"),
        ({"series": [{"x": [str(n) for n in range(501)], "y": [1] * 501}]}, "series"),
        ({"series": [{"y": [1]}] * 21}, "series"),
        ({"series": [{"name": "n" * 101, "y": [1]}]}, "series.0.name"),
        ({"series": [{"x": ["c" * 101], "y": [1]}]}, "series.0.x.0"),
        ({"series": [{"y": [1], "y_column": "a"}]}, "series.0.y_column"),
        ({"x_label": "x" * 201}, "x_label"),
        ({"start": "0999-01-01"}, "start"),
        ({"start": "8999-12-30"}, "start"),
        ({"theme": "blue"}, "theme"),
        ({"legend": "yes"}, "legend"),
    ],
)
def test_bad_data_names_the_field(document: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        ChartSpec.model_validate(document)
    assert violations(caught.value)[0][0] == field


def test_a_histogram_of_one_huge_repeated_value_renders() -> None:
    # numpy's ±0.5 widening of a zero-width range is lost to rounding at this magnitude.
    spec = ChartSpec.model_validate(
        {"kind": "histogram", "bins": 1, "series": [{"values": [4503599627370498.0, 4503599627370498.0]}]}
    )
    assert charts.render(spec).startswith(PNG_SIGNATURE)


def test_downsample_line_keeps_short_lines_and_every_extreme_of_long_ones() -> None:
    x = np.arange(10)
    y = np.arange(10.0)
    short_x, short_y = charts.downsample_line(x, y, 100)
    assert short_x is x and short_y is y

    x = np.arange(1_000_000)
    y = np.sin(x / 1000.0)
    y[123_457] = 5.0
    y[876_543] = -5.0
    small_x, small_y = charts.downsample_line(x, y, 2000)
    assert len(small_x) <= 2002
    assert small_x[0] == 0 and small_x[-1] == 999_999
    assert list(small_x) == sorted(small_x)
    assert small_y.max() == 5.0 and small_y.min() == -5.0
    assert np.array_equal(small_y, y[small_x])


def _line_vertices(svg: bytes) -> list[tuple[float, float]]:
    """The vertices of the SVG's longest path: the plotted line."""
    paths = [path.get("d", "") for path in ElementTree.fromstring(svg).iter("{http://www.w3.org/2000/svg}path")]
    longest = max(paths, key=lambda d: d.count("L"))
    numbers = [float(number) for number in re.findall(r"-?\d+(?:\.\d+)?", longest)]
    return list(zip(numbers[0::2], numbers[1::2], strict=True))


def test_a_long_line_is_drawn_with_far_fewer_vertices_than_points_and_keeps_its_extremes() -> None:
    y = [float(value) for value in np.random.default_rng(1).normal(0, 30, MAX_POINTS)]
    y[12_345], y[4_321] = 500.0, -500.0
    width = 400
    spec = ChartSpec.model_validate({"series": [{"y": y}], "format": "svg", "width": width, "height": 300})
    vertices = _line_vertices(charts.render(spec))
    # At most the lowest and highest point of each of 2 x width buckets (the whole line drawn: 5000+ vertices).
    assert len(vertices) <= 2 * width + 2 < MAX_POINTS // 10, len(vertices)
    # Both spikes survive: the noise around 0 sits halfway between the topmost and the bottommost vertex.
    # (Without the +500 it would sit near the top, at about 0.2; without the -500 near the bottom.)
    heights = sorted(vertical for _, vertical in vertices)
    top, bottom, middle = heights[0], heights[-1], heights[len(heights) // 2]
    assert 0.4 < (middle - top) / (bottom - top) < 0.6, (top, middle, bottom)

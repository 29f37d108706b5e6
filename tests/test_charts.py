"""The pure render: spec in, decodable bytes out, progress reported in order."""

from __future__ import annotations

import io
import subprocess
import sys
import xml.etree.ElementTree as ElementTree

import matplotlib.image
import numpy as np
import pytest
from pydantic import ValidationError

from plotjobs import charts
from plotjobs.charts import ChartSpec

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
    code = "import sys, plotjobs.charts; print(sorted({'flask','redis','rq'} & set(sys.modules)))"
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert output.strip() == "[]"


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

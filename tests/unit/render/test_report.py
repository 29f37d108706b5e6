"""The report render: a PDF of pages and a PNG contact sheet, progress per part, the same bytes twice."""

from __future__ import annotations

import io
from typing import Any

import pytest
from PIL import Image
from pypdf import PdfReader

from plotjobs.errors import RenderRefused
from plotjobs.render import report as render_report
from plotjobs.spec.report import MAX_PART_PIXELS, ReportSpec

BARS = {
    "data": {"values": [{"a": "A", "b": 3}, {"a": "B", "b": 5}]},
    "mark": "bar",
    "encoding": {"x": {"field": "a", "type": "nominal"}, "y": {"field": "b", "type": "quantitative"}},
}
PARTS: list[dict[str, Any]] = [
    {"text": "An introduction.\nIts second line, long enough to wrap: " + "word " * 40},
    {"generator": "chart", "spec": {"seed": 1, "start": "2024-01-01", "title": "A line"}},
    {"generator": "vega-lite", "spec": {"vega_lite": BARS, "scale": 2}},
    {"generator": "chart", "spec": {"kind": "bar", "series": [{"x": ["a", "b"], "y": [1, 2]}]}},
    {"text": "A closing word."},
]


def spec(**fields: Any) -> ReportSpec:
    return ReportSpec.model_validate({"title": "Quarterly", "parts": PARTS} | fields)


def test_the_pdf_has_the_title_and_text_and_one_picture_per_drawing_over_a_few_pages() -> None:
    reader = PdfReader(io.BytesIO(render_report.render(spec())))
    assert 2 <= len(reader.pages) <= 3
    text = " ".join(page.extract_text() for page in reader.pages)
    for words in ("Quarterly", "An introduction.", "A closing word."):
        assert words in text
    # matplotlib lists every picture of the document in each page's resources.
    pictures = {(image.name, image.image.size) for page in reader.pages for image in page.images}
    assert len(pictures) == 3
    assert (800, 500) in {size for _, size in pictures}
    box = reader.pages[0].mediabox
    assert (round(float(box.width)), round(float(box.height))) == (595, 842)


def test_the_pdf_carries_no_date_or_producer() -> None:
    data = render_report.render(spec())
    assert b"/CreationDate" not in data
    assert b"/Producer" not in data


def test_a_part_too_tall_for_what_is_left_of_a_page_starts_the_next() -> None:
    tall = {"generator": "chart", "spec": {"seed": 1, "start": "2024-01-01", "width": 400, "height": 1000}}
    short_text, long_text = {"text": "one line"}, {"text": "a line\n" * 30}
    for parts, pages in (([short_text, tall], 1), ([long_text, tall], 2), ([tall, tall, tall], 2)):
        reader = PdfReader(io.BytesIO(render_report.render(spec(parts=parts))))
        assert len(reader.pages) == pages, parts


def test_the_png_contact_sheet_holds_every_part_in_a_grid() -> None:
    data = render_report.render(spec(format="png"))
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        columns = render_report.SHEET_COLUMNS
        rows = -(-len(PARTS) // columns)
        size = (columns * render_report.CELL_WIDTH, rows * render_report.CELL_HEIGHT + render_report.SHEET_TITLE_PIXELS)
        assert image.size == size
        # A cell with a drawing is not blank.
        cell = image.convert("L").crop((render_report.CELL_WIDTH, 60, 2 * render_report.CELL_WIDTH, 60 + 300))
        low, high = cell.getextrema()
        assert low < 128 < high


@pytest.mark.parametrize("file_format", ["pdf", "png"])
def test_an_identical_spec_gives_identical_bytes(file_format: str) -> None:
    assert spec(format=file_format).is_reproducible()
    assert render_report.render(spec(format=file_format)) == render_report.render(spec(format=file_format))


@pytest.mark.parametrize("file_format", ["pdf", "png"])
def test_progress_names_each_part_in_order(file_format: str) -> None:
    seen: list[tuple[float, str]] = []
    render_report.render(spec(format=file_format), lambda fraction, stage: seen.append((fraction, stage)))
    assert [stage for _, stage in seen] == [
        "part 1 of 5: text",
        "part 2 of 5: chart",
        "part 3 of 5: vega-lite",
        "part 4 of 5: chart",
        "part 5 of 5: text",
        "encoding",
    ]
    fractions = [fraction for fraction, _ in seen]
    assert fractions == sorted(fractions)
    assert all(0 < fraction < 0.9 for fraction in fractions)


def test_a_vega_lite_part_over_the_part_pixel_bound_is_refused() -> None:
    big = {"generator": "vega-lite", "spec": {"vega_lite": {**BARS, "width": 2000, "height": 2000}, "scale": 2}}
    with pytest.raises(RenderRefused, match=f"at most {MAX_PART_PIXELS}"):
        render_report.render(spec(parts=[big]))


def test_a_picture_keeps_its_own_size_shrunk_to_the_page_and_a_higher_dpi_only_sharpens_it() -> None:
    assert render_report.picture_size(400, 300, 100) == render_report.picture_size(800, 600, 200) == (4.0, 3.0)
    room = render_report.PAGE_WIDTH - 2 * render_report.MARGIN
    width, height = render_report.picture_size(1600, 800, 100)
    assert width == pytest.approx(room)
    assert height == pytest.approx(room / 2)
    width, height = render_report.picture_size(300, 3000, 100)
    assert height == pytest.approx((render_report.PAGE_HEIGHT - 2 * render_report.MARGIN) * 0.48)
    assert width == pytest.approx(height / 10)


def test_text_is_wrapped_and_keeps_its_line_breaks() -> None:
    lines = render_report.wrapped("first\n\n" + "word " * 30, columns=40)
    assert lines[:2] == ("first", "")
    assert all(len(line) <= 40 for line in lines)
    assert len(lines) == 6


def test_warm_up_renders_both_formats() -> None:
    render_report.warm_up()

"""The vega-lite render: every format decodes, progress in order, the same bytes twice, nothing fetched."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any, get_args
from xml.etree import ElementTree

import pytest
import vl_convert
from PIL import Image
from pypdf import PdfReader

from plotjobs.errors import RenderRefused
from plotjobs.render import vega_lite as render_vega_lite
from plotjobs.spec.vega_lite import MAX_OUTPUT_PIXELS, VEGA_LITE_VERSION, Theme, VegaLiteSpec

BAR = {
    "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
    "width": 200,
    "height": 120,
    "title": "Two bars",
    "data": {"values": [{"a": "A", "b": 3}, {"a": "B", "b": 5}]},
    "mark": "bar",
    "encoding": {"x": {"field": "a", "type": "nominal"}, "y": {"field": "b", "type": "quantitative"}},
}


def spec(**fields: Any) -> VegaLiteSpec:
    return VegaLiteSpec.model_validate({"vega_lite": BAR} | fields)


def unchecked(document: dict[str, Any]) -> VegaLiteSpec:
    """A spec that skipped validation, as if a document got past the model's checks."""
    return VegaLiteSpec.model_construct(vega_lite=document, format="svg", scale=1.0, ppi=72, theme=None)


def svg_size(data: bytes) -> tuple[float, float]:
    root = ElementTree.fromstring(data)
    return float(root.attrib["width"]), float(root.attrib["height"])


def test_the_pinned_vega_lite_is_one_the_converter_bundles() -> None:
    assert VEGA_LITE_VERSION in vl_convert.get_vegalite_versions()
    assert VEGA_LITE_VERSION.startswith("5.")


def test_the_themes_the_spec_offers_are_the_converters() -> None:
    assert set(get_args(Theme)) == set(vl_convert.get_themes())


def test_svg_parses_as_xml_and_holds_the_title() -> None:
    data = render_vega_lite.render(spec(format="svg"))
    root = ElementTree.fromstring(data)
    assert root.tag.endswith("svg")
    assert "Two bars" in data.decode()


def test_png_decodes_at_the_svg_size_times_scale_and_ppi() -> None:
    width, height = svg_size(render_vega_lite.render(spec(format="svg")))
    for fields, factor in (({}, 1), ({"scale": 2}, 2), ({"ppi": 144}, 2), ({"scale": 1.5, "ppi": 144}, 3)):
        data = render_vega_lite.render(spec(**fields))
        assert data.startswith(b"\x89PNG\r\n\x1a\n")
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            assert image.size == (round(width * factor), round(height * factor)), fields


def test_pdf_has_one_page_of_the_svg_size() -> None:
    width, height = svg_size(render_vega_lite.render(spec(format="svg")))
    reader = PdfReader(io.BytesIO(render_vega_lite.render(spec(format="pdf"))))
    assert len(reader.pages) == 1
    box = reader.pages[0].mediabox
    assert (round(float(box.width)), round(float(box.height))) == (round(width), round(height))


@pytest.mark.parametrize("file_format", ["png", "svg"])
def test_an_identical_spec_gives_identical_bytes(file_format: str) -> None:
    assert render_vega_lite.render(spec(format=file_format)) == render_vega_lite.render(spec(format=file_format))


def test_a_theme_changes_the_drawing() -> None:
    assert render_vega_lite.render(spec(format="svg", theme="dark")) != render_vega_lite.render(spec(format="svg"))


def test_progress_rises_through_named_stages() -> None:
    seen: list[tuple[float, str]] = []
    render_vega_lite.render(spec(), lambda fraction, stage: seen.append((fraction, stage)))
    assert [stage for _, stage in seen] == ["compiling", "checking size", "encoding"]
    fractions = [fraction for fraction, _ in seen]
    assert fractions == sorted(fractions)
    assert all(0 < fraction < 1 for fraction in fractions)


@pytest.mark.parametrize("url", ["https://example.com/data.csv", "http://127.0.0.1:6379/", "data/cars.json"])
def test_the_converter_fetches_no_url_even_past_validation(url: str) -> None:
    document = {**BAR, "data": {"url": url}}
    with pytest.raises(RenderRefused, match="not allowed"):
        render_vega_lite.render(unchecked(document))


def test_the_converter_reads_no_local_file_even_past_validation(tmp_path: Path) -> None:
    # file: URLs are not base URLs the converter checks: what holds is that it reads nothing.
    secret = tmp_path / "secret.txt"
    secret.write_text("line\nthe-secret-line\n")
    document = {
        "data": {"url": secret.as_uri(), "format": {"type": "csv"}},
        "mark": "text",
        "encoding": {"y": {"field": "line", "type": "nominal"}, "text": {"field": "line"}},
    }
    try:
        drawing = render_vega_lite.render(unchecked(document))
    except RenderRefused:
        return
    assert b"the-secret-line" not in drawing


def test_an_image_mark_past_validation_is_not_drawn() -> None:
    document = {
        **BAR,
        "data": {"values": [{"a": "file:///etc/hostname"}]},
        "mark": "image",
        "encoding": {"url": {"field": "a", "type": "nominal"}},
    }
    with pytest.raises(RenderRefused, match="image"):
        render_vega_lite.render(unchecked(document))


def test_an_output_over_the_pixel_bound_stops_before_encoding() -> None:
    seen: list[str] = []
    big = VegaLiteSpec.model_validate({"vega_lite": {**BAR, "width": 4000, "height": 4000}, "scale": 4})
    with pytest.raises(RenderRefused, match=f"at most {MAX_OUTPUT_PIXELS}"):
        render_vega_lite.render(big, lambda _, stage: seen.append(stage))
    assert "encoding" not in seen


def test_a_document_vega_lite_cannot_compile_is_refused_with_its_reason() -> None:
    document = {**BAR, "transform": [{"calculate": "datum.b +* 2", "as": "c"}]}
    with pytest.raises(RenderRefused, match="Vega-Lite could not draw this document") as caught:
        render_vega_lite.render(spec(vega_lite=document))
    assert "Unexpected token" in caught.value.message
    assert "\n" not in caught.value.message


def test_warm_up_renders_each_format() -> None:
    render_vega_lite.warm_up()
